package broker

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestAutoCreationDisabled(t *testing.T) {
	b := TestBroker(t, func(c *Config) { c.DisableAutoCreateTopics = true })
	c := testClient(t, b)
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "nope"}); err == nil {
		t.Fatal("producer on an unknown topic was accepted with auto-creation disabled")
	}
	if code := adminDo(t, b, http.MethodPut, "/admin/v2/persistent/public/default/made", ""); code != http.StatusNoContent {
		t.Fatalf("create topic: HTTP %d", code)
	}
	if code := adminDo(t, b, http.MethodPut, "/admin/v2/persistent/public/default/made", ""); code != http.StatusConflict {
		t.Fatalf("create existing topic: HTTP %d", code)
	}
	produceN(t, c, "made", 1, nil)
	if code := adminDo(t, b, http.MethodPut, "/admin/v2/persistent/public/default/pmade/partitions", "2"); code != http.StatusNoContent {
		t.Fatalf("create partitioned topic: HTTP %d", code)
	}
	produceN(t, c, "pmade", 4, func(i int) string { return string(rune('a' + i)) })
	if code := adminDo(t, b, http.MethodDelete, "/admin/v2/persistent/public/default/made?force=true", ""); code != http.StatusNoContent {
		t.Fatalf("delete topic: HTTP %d", code)
	}
	if _, err := b.Stats("made"); err == nil {
		t.Fatal("deleted topic still has stats")
	}
}

func TestTenantsAndNamespaces(t *testing.T) {
	b := TestBroker(t, nil)
	steps := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPut, "/admin/v2/tenants/acme", `{"allowedClusters":["standalone"]}`, http.StatusNoContent},
		{http.MethodPut, "/admin/v2/tenants/acme", `{}`, http.StatusConflict},
		{http.MethodPut, "/admin/v2/namespaces/acme/ns", "", http.StatusNoContent},
		{http.MethodPut, "/admin/v2/namespaces/ghost/ns", "", http.StatusNotFound},
		{http.MethodPost, "/admin/v2/namespaces/acme/ns/deduplication", "true", http.StatusNoContent},
		{http.MethodPost, "/admin/v2/namespaces/acme/ns/deduplication", "maybe", http.StatusBadRequest},
		{http.MethodDelete, "/admin/v2/tenants/acme", "", http.StatusConflict},
	}
	for _, s := range steps {
		if got := adminDo(t, b, s.method, s.path, s.body); got != s.want {
			t.Fatalf("%s %s: HTTP %d, want %d", s.method, s.path, got, s.want)
		}
	}
	if !b.dedupEnabled("acme/ns") || b.dedupEnabled("public/default") {
		t.Fatal("namespace dedup setting not applied")
	}
	resp, err := http.Get(b.AdminURL() + "/admin/v2/namespaces/acme")
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list) != 1 || list[0] != "acme/ns" {
		t.Fatalf("namespaces of acme: %v", list)
	}
	for _, s := range []struct{ method, path string }{
		{http.MethodDelete, "/admin/v2/namespaces/acme/ns"},
		{http.MethodDelete, "/admin/v2/tenants/acme"},
	} {
		if got := adminDo(t, b, s.method, s.path, ""); got != http.StatusNoContent {
			t.Fatalf("%s %s: HTTP %d", s.method, s.path, got)
		}
	}
}
