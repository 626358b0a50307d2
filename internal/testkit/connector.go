package testkit

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"

	"github.com/meshfed/meshfed/connector"
)

// ConnectorValues decodes a connector config written as JSON, as the agent
// hands it over.
func ConnectorValues(t TB, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("connector config %s: %v", js, err)
	}
	return m
}

// ConnectorConfig is the config of connector name, of type typ, in mesh
// public/default/mesh, with values; it logs nowhere.
func ConnectorConfig(typ, mesh, name string, values map[string]any) connector.Config {
	return connector.Config{Tenant: "public", Namespace: "default", Mesh: mesh, Name: name, Type: typ, Values: values,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// WantConfigErrors checks err, the answer of a connector's Validate: nil
// when want is empty, else config errors whose "key: reason" lines hold
// every fragment of want.
func WantConfigErrors(t TB, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted")
		return
	}
	var got []string
	for _, ce := range connector.ConfigErrors(err) {
		got = append(got, ce.Key+": "+ce.Reason)
	}
	all := strings.Join(got, "\n")
	var missing []string
	for _, w := range want {
		if !strings.Contains(all, w) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("errors\n%s\ndo not contain %q", all, missing)
	}
}
