//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/internal/testkit"
)

// TestFunctionMeshSamples applies the Function Mesh resources of
// examples/functionmesh, unmodified, with meshfed apply against real
// server, broker and agent processes: a Go function (an exec program the
// test builds), a Python function (Pulsar Functions code run with python3)
// and a mesh of the two. Messages sent with pulsar-client-go come back
// with "!" appended per function and their properties forwarded; the
// functions consume on Pulsar's default subscriptions (tenant/ns/name).
// The Java sample is refused with what to do.
func TestFunctionMeshSamples(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	dir := t.TempDir()
	for _, pattern := range []string{"*.yaml", "*.py"} {
		files, err := filepath.Glob(filepath.Join("..", "examples", "functionmesh", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("examples/functionmesh/%s: %v (%d files)", pattern, err, len(files))
		}
		for _, src := range files {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "go_func_all"), "../examples/functionmesh/go-exclamation")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Go function: %v\n%s", err, out)
	}

	f := newFed(t, fedOptions{servers: 1, clusters: []string{"test-pulsar"}})

	r := cli(t, "--server", f.srv(), "apply", "-f", filepath.Join(dir, "java-function.yaml"))
	if r.code == 0 || !strings.Contains(r.stderr, "spec.java: Java functions cannot run on meshfed") {
		t.Fatalf("the Java sample: want a refusal naming spec.java, got %s", r)
	}

	const n = 20
	tests := []struct {
		file string
		// subs are the functions' default subscriptions on their inputs.
		subs     map[string]string
		in, out  string
		suffix   string
		objectID string
	}{
		{"go-function.yaml", map[string]string{"public/default/go-function-sample": "go-function-input-topic"},
			"go-function-input-topic", "go-function-output-topic", "!", "functionmesh/public/default/go-function-sample"},
		{"py-function.yaml", map[string]string{"public/default/py-function-sample": "py-function-input-topic"},
			"py-function-input-topic", "py-function-output-topic", "!", "functionmesh/public/default/py-function-sample"},
		{"functionmesh.yaml", map[string]string{"public/default/ex1": "functionmesh-input-topic", "public/default/ex2": "mid-topic"},
			"functionmesh-input-topic", "functionmesh-output-topic", "!!", "functionmesh/public/default/functionmesh-sample"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f := f.sub(t)
			r := cli(t, "--server", f.srv(), "apply", "-f", filepath.Join(dir, tc.file))
			if r.code != 0 || !strings.Contains(r.stdout, tc.objectID+" created") || !strings.Contains(r.stderr, "skipped ConfigMap") {
				t.Fatalf("apply %s: want %s created and the ConfigMap skipped, got %s", tc.file, tc.objectID, r)
			}
			for sub, topic := range tc.subs {
				f.waitSubscribed("test-pulsar", topicURL(topic), sub)
			}
			start := time.Now()
			f.sendProps(topicURL(tc.in), n)
			got := f.readN("test-pulsar", topicURL(tc.out), n)
			for i, m := range got {
				want := fmt.Sprintf("m-%d%s", i, tc.suffix)
				if string(m.Payload()) != want || m.Properties()["origin"] != "e2e" || m.Key() != fmt.Sprint(i) {
					t.Errorf("output %d: payload %q key %q properties %v, want %q, key %d, origin=e2e", i, m.Payload(), m.Key(), m.Properties(), want, i)
				}
			}
			t.Logf("%s: %d messages through in %v", tc.file, n, time.Since(start).Round(time.Millisecond))
			for sub, topic := range tc.subs {
				f.waitDrained("test-pulsar", topicURL(topic), sub, time.Minute)
			}
		})
	}

	// A golang function that is a WebAssembly module, fetched from an
	// http:// goLocation: the wasm runtime runs it.
	t.Run("wasm from a URL", func(t *testing.T) {
		f := f.sub(t)
		module, err := os.ReadFile(buildWasmSplit(t))
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/packages/split.wasm" {
				http.NotFound(w, r)
				return
			}
			w.Write(module)
		}))
		defer hs.Close()
		file := filepath.Join(dir, "wasm-function.yaml")
		doc := "apiVersion: compute.functionmesh.io/v1alpha1\nkind: Function\nmetadata: {name: wasm-split}\nspec:\n" +
			"  input: {topics: [persistent://public/default/wasm-in]}\n  output: {topic: persistent://public/default/wasm-out}\n" +
			"  golang: {go: split.wasm, goLocation: '" + hs.URL + "/packages/split.wasm'}\n  clusterName: test-pulsar\n"
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, f.srv(), "apply", "-f", file)
		f.waitSubscribed("test-pulsar", topicURL("wasm-in"), "public/default/wasm-split")
		f.sendProps(topicURL("wasm-in"), 1)
		got := f.readN("test-pulsar", topicURL("wasm-out"), 1)
		if string(got[0].Payload()) != "m" {
			t.Errorf("output = %q, want %q (word-split of m-0)", got[0].Payload(), "m")
		}
	})
}

// waitSubscribed waits until sub exists on topic (the function's consumer
// is up), so that messages sent next are not before a latest-positioned
// subscription.
func (f *fed) waitSubscribed(cluster, topic, sub string) {
	f.t.Helper()
	testkit.Eventually(f.t, 2*time.Minute, fmt.Sprintf("subscription %s on %s", sub, topic), func() (bool, string) {
		st, err := f.brokers[cluster].stats(topic)
		if err != nil {
			return false, err.Error()
		}
		s, ok := st.Subscriptions[sub]
		if !ok {
			var names []string
			for name := range st.Subscriptions {
				names = append(names, name)
			}
			return false, fmt.Sprintf("subscriptions %v", names)
		}
		return len(s.Consumers) > 0, fmt.Sprintf("%d consumers", len(s.Consumers))
	})
}

// sendProps sends m-0 … m-(n-1) to topic on test-pulsar, keyed by their
// number and with property origin=e2e.
func (f *fed) sendProps(topic string, n int) {
	f.t.Helper()
	p, err := f.pulsar("test-pulsar").CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		f.t.Fatalf("producer for %s: %v", topic, err)
	}
	defer p.Close()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("m-%d", i)), Key: fmt.Sprint(i), Properties: map[string]string{"origin": "e2e"}})
		cancel()
		if err != nil {
			f.t.Fatalf("send %d to %s: %v", i, topic, err)
		}
	}
}

// readN reads the first n messages of topic, waiting for them.
func (f *fed) readN(cluster, topic string, n int) []pulsar.Message {
	f.t.Helper()
	r, err := f.pulsar(cluster).CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		f.t.Fatalf("reader of %s: %v", topic, err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []pulsar.Message
	for len(out) < n {
		m, err := r.Next(ctx)
		if err != nil {
			f.t.Fatalf("read %s: %d of %d messages: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}
