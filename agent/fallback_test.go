package agent

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// setCordoned cordons or uncordons a cluster.
func (f *testFed) setCordoned(t *testing.T, cluster string, cordoned bool) {
	t.Helper()
	o, _, err := f.srv.State().Get("Cluster", "", "", cluster)
	if err != nil {
		t.Fatal(err)
	}
	cl := proto.Clone(o.GetCluster()).(*meshfedv1.Cluster)
	cl.Spec.Cordoned = cordoned
	f.apply(t, objects.Wrap(cl))
}

// waitRunningOn waits until instance 0 of mesh/fn reports Running on agent.
func (f *testFed) waitRunningOn(t *testing.T, mesh, fn, agent string) {
	t.Helper()
	controlplane.WaitFor(t, 30*time.Second, func() error {
		o, _, err := f.srv.State().Get("Assignment", "public", "default", mesh+"."+fn+".0")
		if err != nil {
			return err
		}
		a := o.GetAssignment()
		if a.GetSpec().GetAgent() != agent || a.GetStatus().GetState() != "Running" {
			return fmt.Errorf("%s.%s on %q is %q, want Running on %s", mesh, fn, a.GetSpec().GetAgent(), a.GetStatus().GetState(), agent)
		}
		return nil
	})
}

// commitState writes a function's state key as an agent would.
func (f *testFed) commitState(t *testing.T, mesh, fn, key, value string) {
	t.Helper()
	conn, err := grpc.NewClient(f.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = meshfedv1.NewAgentServiceClient(conn).CommitState(ctx, &meshfedv1.CommitStateRequest{
		Scope:  &meshfedv1.StateScope{Tenant: "public", Namespace: "default", Mesh: mesh, Function: fn},
		Ops:    []*meshfedv1.StateOp{{Key: key, Op: &meshfedv1.StateOp_Put{Put: []byte(value)}}},
		Writer: "test-" + key, Sequence: 1,
	})
	if err != nil {
		t.Fatalf("commit state %s: %v", key, err)
	}
}

// An instance failed over to cluster c finds no subscription on c's copy of
// its input and creates it at the home instance's watermark − rewind (or at
// the earliest message without a watermark, never at latest); once the
// function is back home, its subscription in c is removed. (c's copy is
// written by the test here; with a real geo-replicated copy see
// TestEffectivelyOnceFailoverToReplicatedCopy.)
func TestFallbackSubscriptionStartsAtTheHomeWatermark(t *testing.T) {
	f := newFederationWith(t, func(c *controlplane.Config) { c.FailbackHoldDown = 500 * time.Millisecond }, "a", "c")
	f.startAgent(t, "agent-a", "a", t.TempDir())
	f.startAgentWith(t, "agent-c", "c", t.TempDir(), func(c *Config) { c.FallbackRewind = time.Millisecond })
	withFailover := func(fn *meshfedv1.FunctionSpec) *meshfedv1.FunctionSpec {
		fn.Failover = &meshfedv1.Failover{Clusters: []string{"c"}}
		fn.Input.SubscriptionPosition = "" // latest: a fallback must not use it
		return fn
	}
	fin, fout := "persistent://public/default/fin", "persistent://public/default/fout"
	gin, gout := "persistent://public/default/gin", "persistent://public/default/gout"
	hin, hout := "persistent://public/default/hin", "persistent://public/default/hout" // 2 partitions
	for _, b := range []string{"a", "c"} {
		if err := testAdmin(t, f.brokers[b]).Topics().Create(topicName(t, hin), 2); err != nil {
			t.Fatalf("create %s in %s: %v", hin, b, err)
		}
	}
	f.apply(t, meshObj("fb",
		withFailover(builtinFn("f", "identity", "a", fin, "c", fout, "effectively_once")),
		withFailover(builtinFn("g", "identity", "a", gin, "c", gout, "atleast_once")),
		withFailover(builtinFn("h", "identity", "a", hin, "c", hout, "effectively_once"))))
	for _, fn := range []string{"f", "g", "h"} {
		f.waitRunningOn(t, "fb", fn, "agent-a")
	}

	// c's copy of the inputs: 10 messages whose second half is published
	// at least 10 ms after the first; the home watermark is p5's.
	cc := pulsarClient(t, f.brokers["c"])
	halves := func(topic, prefix string) (wm int64) {
		p, err := cc.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "src", DisableBatching: true})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var last time.Time
		for i := 0; i < 10; i++ {
			if i == 5 {
				for time.Now().Before(last.Add(10 * time.Millisecond)) {
					time.Sleep(time.Millisecond)
				}
			}
			id, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("%s%d", prefix, i))})
			if err != nil {
				t.Fatal(err)
			}
			last = time.Now()
			if i == 5 {
				for _, m := range drainMessages(t, cc, topic, 6, 10*time.Second) {
					if m.ID().EntryID() == id.EntryID() && m.ID().LedgerID() == id.LedgerID() {
						wm = m.PublishTime().UnixMilli()
					}
				}
			}
		}
		if wm == 0 {
			t.Fatalf("%s5 not read back from c", prefix)
		}
		return wm
	}
	f.commitState(t, "fb", "f", watermarkKey(fin, false, 0), strconv.FormatInt(halves(fin, "p"), 10))
	produce(t, cc, gin, 0, 3)
	// Partition 0 has a watermark, partition 1 none.
	f.commitState(t, "fb", "h", watermarkKey(hin+"-partition-0", false, 0), strconv.FormatInt(halves(hin+"-partition-0", "r"), 10))
	produce(t, cc, hin+"-partition-1", 0, 3)

	f.setCordoned(t, "a", true)
	for _, fn := range []string{"f", "g", "h"} {
		f.waitRunningOn(t, "fb", fn, "agent-c")
	}
	exactlyOnce(t, drainMessages(t, cc, fout, 5, 30*time.Second), []string{"p5", "p6", "p7", "p8", "p9"})
	exactlyOnce(t, drainMessages(t, cc, gout, 3, 30*time.Second), []string{"msg-0", "msg-1", "msg-2"})
	exactlyOnce(t, drainMessages(t, cc, hout, 8, 30*time.Second), []string{"r5", "r6", "r7", "r8", "r9", "msg-0", "msg-1", "msg-2"})
	adm := testAdmin(t, f.brokers["c"])
	for _, topic := range []string{fin, gin, hin + "-partition-0", hin + "-partition-1"} {
		subs, err := adm.Subscriptions().List(topicName(t, topic))
		if err != nil || len(subs) != 1 {
			t.Fatalf("subscriptions of %s in c while failed over: %v, %v", topic, subs, err)
		}
	}

	f.setCordoned(t, "a", false)
	for _, fn := range []string{"f", "g", "h"} {
		f.waitRunningOn(t, "fb", fn, "agent-a")
	}
	for _, c := range []struct{ fn, topic string }{{"f", fin}, {"g", gin}, {"h", hin + "-partition-0"}, {"h", hin + "-partition-1"}} {
		topic, sub := c.topic, "meshfed-public-default-fb-"+c.fn
		controlplane.WaitFor(t, 30*time.Second, func() error {
			subs, err := adm.Subscriptions().List(topicName(t, topic))
			if err != nil {
				return err
			}
			if slices.Contains(subs, sub) {
				return fmt.Errorf("subscription %s still on %s in c after failback", sub, topic)
			}
			return nil
		})
	}
}
