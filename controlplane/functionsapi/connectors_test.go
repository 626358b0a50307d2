package functionsapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func TestSourcesAPI(t *testing.T) {
	b := newFake()
	h := NewConnectors(b, nil, objects.ConnectorSource)
	const src = SourcesPrefix + "public/default/devices"
	cfg := `{"tenant":"public","namespace":"default","name":"devices","archive":"builtin://mqtt","topicName":"readings",
		"parallelism":2,"processingGuarantees":"ATLEAST_ONCE","configs":{"broker":"tcp://h:1883","topics":["s/#"]}}`
	if code, body := do(t, h, http.MethodPost, src, "application/json", bytes.NewBufferString(cfg)); code != http.StatusNoContent {
		t.Fatalf("create: %d %s", code, body)
	}
	m := b.meshes["devices"]
	s := m.GetSpec().GetSources()[0]
	if s.GetType() != "mqtt" || s.GetReplicas() != 2 || s.GetOutput().GetCluster() != "a" || s.GetOutput().GetTopic() != "readings" {
		t.Fatalf("stored %v", m)
	}
	if code, body := do(t, h, http.MethodPost, src, "application/json", bytes.NewBufferString(cfg)); code != http.StatusConflict {
		t.Fatalf("create again: %d %s", code, body)
	}
	if code, body := do(t, h, http.MethodGet, SourcesPrefix+"public/default", "", nil); code != http.StatusOK || body != `["devices"]` {
		t.Fatalf("list: %d %s", code, body)
	}
	code, body := do(t, h, http.MethodGet, src, "", nil)
	var got utils.SourceConfig
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil || got.Archive != "builtin://mqtt" || got.TopicName != "readings" || got.Parallelism != 2 {
		t.Fatalf("get: %d %s", code, body)
	}
	m.Status = &meshfedv1.FunctionMeshStatus{Functions: []*meshfedv1.FunctionStatus{{Name: "devices", Instances: []*meshfedv1.InstanceStatus{
		{Index: 0, State: "Running", Received: 10, Written: 9, Agent: "agent-a"}}}}}
	code, body = do(t, h, http.MethodGet, src+"/status", "", nil)
	var st utils.SourceStatus
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil || st.NumInstances != 2 || st.NumRunning != 1 ||
		st.Instances[0].Status.NumReceivedFromSource != 10 || st.Instances[0].Status.NumWritten != 9 || st.Instances[1].Status.Running {
		t.Fatalf("status: %d %s", code, body)
	}
	if code, body := do(t, h, http.MethodDelete, src, "", nil); code != http.StatusNoContent || b.meshes["devices"] != nil {
		t.Fatalf("delete: %d %s", code, body)
	}
}

func TestSinksAPIFormAndRefusals(t *testing.T) {
	b := newFake()
	h := NewConnectors(b, nil, objects.ConnectorSink)
	ct, form := multipartBody(t, map[string]string{"sinkConfig": `{"archive":"builtin://http","inputs":["marked"],"sourceSubscriptionName":"rows",
		"processingGuarantees":"EFFECTIVELY_ONCE","autoAck":true,"configs":{"url":"http://h/x"},"customRuntimeOptions":"{\"cluster\":\"a\"}"}`}, nil)
	if code, body := do(t, h, http.MethodPost, SinksPrefix+"public/default/rows", ct, form); code != http.StatusNoContent {
		t.Fatalf("create: %d %s", code, body)
	}
	s := b.meshes["rows"].GetSpec().GetSinks()[0]
	if s.GetType() != "http" || s.GetInput().GetSubscription() != "rows" || s.GetProcessingGuarantee() != "effectively_once" || s.GetInput().GetCluster() != "a" {
		t.Fatalf("stored %v", s)
	}
	bad := `{"className":"org.apache.pulsar.io.jdbc.JdbcSink","inputs":["x"],"retainOrdering":true,"secrets":{"pw":"x"}}`
	code, body := do(t, h, http.MethodPost, SinksPrefix+"public/default/jdbc", "application/json", bytes.NewBufferString(bad))
	for _, want := range []string{"className: not supported by meshfed", "retainOrdering:", "secrets:"} {
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("refusal: %d %s, want %q", code, body, want)
		}
	}
	if code, _ := do(t, NewConnectors(b, nil, objects.ConnectorSource), http.MethodGet, SourcesPrefix+"public/default/rows", "", nil); code != http.StatusBadRequest {
		t.Errorf("a sink read as a source: %d", code)
	}
}
