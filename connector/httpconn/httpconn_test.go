package httpconn

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfed/meshfed/connector"
	"github.com/meshfed/meshfed/internal/testkit"
)

// cfg is the config of connector hook of mesh m, its values the JSON js.
func cfg(t testing.TB, js string) connector.Config {
	return testkit.ConnectorConfig("http", "m", "hook", testkit.ConnectorValues(t, js))
}

func TestValidate(t *testing.T) {
	src, _ := connector.LookupSource("http")
	sink, _ := connector.LookupSink("http")
	tests := []struct {
		name     string
		validate func(map[string]any) error
		config   string
		want     []string
	}{
		{"source ok", src.Validate, `{"listen":":8090","path":"/in","token":"t","timeout":"5s"}`, nil},
		{"source no listen", src.Validate, `{"token":"t"}`, []string{"listen: required"}},
		{"source bad listen", src.Validate, `{"listen":"8090","token":"t"}`, []string{`listen: "8090" is not host:port`}},
		{"source no token", src.Validate, `{"listen":":1"}`, []string{"token: required"}},
		{"source bad path", src.Validate, `{"listen":":1","token":"t","path":"in"}`, []string{"path: \"in\" must start with /"}},
		{"sink ok", sink.Validate, `{"url":"https://h/x","mode":"record","headers":{"X-A":"b"},"retries":3,"backoff":"1s"}`, nil},
		{"sink no url", sink.Validate, `{}`, []string{"url: required"}},
		{"sink ftp", sink.Validate, `{"url":"ftp://h/x"}`, []string{"url: \"ftp://h/x\" is not an http"}},
		{"sink bad mode", sink.Validate, `{"url":"http://h","mode":"stream","method":"GET"}`, []string{"mode: \"stream\"", "method: \"GET\""}},
		{"sink bad header", sink.Validate, `{"url":"http://h","headers":{"a b":"c","X":"1\r\n2"}}`, []string{"headers.a b:", "headers.X: a header value"}},
		{"sink unknown", sink.Validate, `{"url":"http://h","retry":3}`, []string{"retry: unknown setting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.WantConfigErrors(t, tt.validate(testkit.ConnectorValues(t, tt.config)), tt.want...)
		})
	}
}

func FuzzConfig(f *testing.F) {
	f.Add(`{"listen":":8090","token":"t","maxBodyBytes":1024}`)
	f.Add(`{"url":"http://h/x","mode":"batch","headers":{"a":"b"},"timeout":"1s"}`)
	f.Add(`{"listen":[1],"token":{},"url":7,"headers":["x"],"retries":1e99}`)
	f.Fuzz(func(t *testing.T, js string) {
		var m map[string]any
		if json.Unmarshal([]byte(js), &m) != nil {
			return
		}
		if c, err := decodeSource(m); err == nil && (c.listen == "" || c.token == "" || c.maxBody < 1) {
			t.Fatalf("accepted a source config without listen or token: %q", js)
		}
		if c, err := decodeSink(m); err == nil && (c.url == "" || c.retries < 0) {
			t.Fatalf("accepted a sink config without url: %q", js)
		}
	})
}

func post(t *testing.T, url, token, body string) chan int {
	t.Helper()
	out := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set(KeyHeader, "dev-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- -1
			return
		}
		resp.Body.Close()
		out <- resp.StatusCode
	}()
	return out
}

// The webhook answers 200 only after the agent committed the record, and
// 503 to a request the source stops before making durable.
func TestSourceAnswersAfterCommit(t *testing.T) {
	src, err := openSource(context.Background(), cfg(t, `{"listen":"127.0.0.1:0","path":"/in","token":"s3cret"}`))
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*source)
	url := "http://" + s.addr + "/in"
	if code := <-post(t, url, "wrong", "x"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	answered := post(t, url, "s3cret", "reading-1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || string(recs[0].Value) != "reading-1" || recs[0].Key != "dev-1" {
		t.Fatalf("records %+v", recs)
	}
	select {
	case code := <-answered:
		t.Fatalf("answered %d before the commit", code)
	default:
	}
	if err := s.Commit(ctx, recs[0].Position); err != nil {
		t.Fatal(err)
	}
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("after commit: %d", code)
	}
	pending := post(t, url, "s3cret", "reading-2")
	if _, err := s.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if code := <-pending; code != http.StatusServiceUnavailable {
		t.Fatalf("stopped before commit: %d", code)
	}
}

func TestSinkRetriesThenDelivers(t *testing.T) {
	var calls atomic.Int32
	var got []BatchRecord
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	s, err := openSink(context.Background(), cfg(t, `{"url":"`+srv.URL+`","token":"tok","backoff":"1ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	batch := []connector.SinkRecord{
		{Record: connector.Record{Key: "k", Value: []byte("text")}, Stream: "s", Sequence: 7},
		{Record: connector.Record{Value: []byte{0xff, 0}}},
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || len(got) != 2 || got[0].Value != "text" || got[0].Stream != "s" || got[0].Sequence != 7 || string(got[1].ValueBase64) != "\xff\x00" {
		t.Fatalf("calls %d, body %+v", calls.Load(), got)
	}
}

func TestSinkDoesNotRetryClientErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "bad record", http.StatusBadRequest)
	}))
	defer srv.Close()
	s, err := openSink(context.Background(), cfg(t, `{"url":"`+srv.URL+`","mode":"record","backoff":"1ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(context.Background(), []connector.SinkRecord{{Record: connector.Record{Value: []byte("x")}}})
	if err == nil || !strings.Contains(err.Error(), "400") || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
}
