package controlplane

import (
	"strings"
	"testing"

	"github.com/meshfed/meshfed/connector"
	"github.com/meshfed/meshfed/objects"
)

func init() {
	connector.RegisterSink("cp-test", connector.SinkFactory{Validate: func(v map[string]any) error {
		if _, ok := v["url"].(string); !ok {
			return connector.Invalid("url", "required: the endpoint")
		}
		return nil
	}})
}

func TestCheckConnectors(t *testing.T) {
	const head = `apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: m, tenant: public, namespace: default}
spec:
  sinks:
    - name: out
      input: {cluster: a, topics: [t]}
`
	tests := []struct{ name, doc, want string }{
		{"ok", head + "      type: cp-test\n      config: {url: http://x}\n", ""},
		{"missing key", head + "      type: cp-test\n      config: {}\n", "spec.sinks[0].config.url: required: the endpoint"},
		{"unknown type", head + "      type: nosuch\n", `spec.sinks[0].type: unknown connector type "nosuch"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := objects.Decode("m.yaml", []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			err = checkConnectors(objs[0])
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}
