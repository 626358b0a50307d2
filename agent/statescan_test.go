package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// countStateReads is a client interceptor that counts GetState calls: reads
// of the whole state and reads of named keys.
type countStateReads struct {
	// mu guards scans and keyReads.
	mu              sync.Mutex
	scans, keyReads int
}

func (c *countStateReads) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*meshfedv1.GetStateRequest); ok {
		c.mu.Lock()
		if r.GetAll() {
			c.scans++
		} else {
			c.keyReads++
		}
		c.mu.Unlock()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *countStateReads) counts() (scans, keyReads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scans, c.keyReads
}

// An instance reads its function's state once when it starts: counting
// words already counted and words never seen needs no further read, under
// both guarantees that keep state, and the counts go on from the state
// committed before the restart.
func TestInstanceReadsStateAheadOnce(t *testing.T) {
	for _, g := range []string{"atleast_once", "effectively_once"} {
		t.Run(g, func(t *testing.T) {
			f := newFederation(t, "a")
			mesh := "ra" + map[string]string{"atleast_once": "alo", "effectively_once": "eo"}[g]
			in, out := "persistent://public/default/"+mesh+"-in", "persistent://public/default/"+mesh+"-out"
			c := pulsarClient(t, f.brokers["a"])
			p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: in, Name: "src", DisableBatching: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			send := func(words ...string) {
				for _, w := range words {
					if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte(w)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			dir := t.TempDir()
			stop := f.startAgent(t, "agent-a", "a", dir)
			f.apply(t, meshObj(mesh, builtinFn("count", "word-count", "a", in, "a", out, g)))
			send("fox", "owl")
			drainMessages(t, c, out, 2, 20*time.Second)
			controlplane.WaitFor(t, 10*time.Second, func() error {
				if v := stateCounter(f, mesh, "count", "owl"); v != 1 {
					return fmt.Errorf("state owl=%d, want 1", v)
				}
				return nil
			})
			stop()

			reads := &countStateReads{}
			f.startAgentWith(t, "agent-a", "a", dir, func(c *Config) {
				c.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithChainUnaryInterceptor(reads.intercept)}
			})
			send("fox", "owl", "cat", "cat", "fox")
			got := drainMessages(t, c, out, 7, 20*time.Second)
			if last := string(got[len(got)-1].Payload()); last != "fox 3" {
				t.Errorf("last count %q, want \"fox 3\"", last)
			}
			if scans, keyReads := reads.counts(); scans == 0 || keyReads != 0 {
				t.Errorf("%d reads of the whole state and %d of single keys, want at least one and none", scans, keyReads)
			}
		})
	}
}
