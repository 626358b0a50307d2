package agent

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startInterceptedAgent starts agent-a of cluster a, its calls to the
// control plane going through intercept.
func (f *testFed) startInterceptedAgent(t *testing.T, intercept grpc.UnaryClientInterceptor) {
	f.startAgentWith(t, "agent-a", "a", t.TempDir(), func(c *Config) {
		c.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithChainUnaryInterceptor(intercept)}
	})
}

// produceWords sends n pairs of messages to topic, w<i> then fox, in order,
// from an unbatched producer named src, and returns once all are stored.
func produceWords(t *testing.T, c pulsar.Client, topic string, n int) {
	t.Helper()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "src", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < n; i++ {
		for _, w := range []string{fmt.Sprintf("w%d", i), "fox"} {
			p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(w)}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
	}
	if err := p.FlushWithCtx(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// runWordCount starts a federation of cluster a whose agent calls the
// control plane through intercept, applies mesh with function count
// running word-count under guarantee from <mesh>-in to <mesh>-out, sends n
// pairs of produceWords and drains 2n outputs (what arrives in 30 s). It
// returns the federation, the input topic and the outputs.
func runWordCount(t *testing.T, intercept grpc.UnaryClientInterceptor, mesh, guarantee string, n int) (*testFed, string, []pulsar.Message) {
	t.Helper()
	f := newFederation(t, "a")
	f.startInterceptedAgent(t, intercept)
	in, out := "persistent://public/default/"+mesh+"-in", "persistent://public/default/"+mesh+"-out"
	f.apply(t, meshObj(mesh, builtinFn("count", "word-count", "a", in, "a", out, guarantee)))
	c := pulsarClient(t, f.brokers["a"])
	produceWords(t, c, in, n)
	return f, in, drainMessages(t, c, out, 2*n, 30*time.Second)
}

// wordCounts is what word-count writes once each for produceWords' n
// pairs: "w<i> 1" and "fox <i+1>".
func wordCounts(n int) []string {
	out := make([]string, 0, 2*n)
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("w%d 1", i), "fox "+strconv.Itoa(i+1))
	}
	return out
}

// missingOutputs lists the payloads of want that no message of got holds.
func missingOutputs(got []pulsar.Message, want []string) []string {
	seen := map[string]bool{}
	for _, m := range got {
		seen[string(m.Payload())] = true
	}
	var missing []string
	for _, w := range want {
		if !seen[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// stateCounter is counter key of function fn of mesh in public/default, 0
// when there is none.
func stateCounter(f *testFed, mesh, fn, key string) int64 {
	vs := f.srv.State().GetState(&meshfedv1.StateScope{Tenant: "public", Namespace: "default", Mesh: mesh, Function: fn}, []string{key})
	if len(vs) == 0 {
		return 0
	}
	return vs[0].GetCounter()
}

// waitWordState waits until the state of function count of mesh holds
// produceWords' n pairs counted once: fox n, every w<i> 1.
func waitWordState(t *testing.T, f *testFed, mesh string, n int) {
	t.Helper()
	controlplane.WaitFor(t, 10*time.Second, func() error {
		if v := stateCounter(f, mesh, "count", "fox"); v != int64(n) {
			return fmt.Errorf("state fox=%d, want %d", v, n)
		}
		for i := 0; i < n; i++ {
			if v := stateCounter(f, mesh, "count", fmt.Sprintf("w%d", i)); v != 1 {
				return fmt.Errorf("state w%d=%d, want 1", i, v)
			}
		}
		return nil
	})
}
