package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Crasher kills a cluster's broker and agent (or its broker alone) as
// `kill -9` would, and starts them again on the same addresses and data
// dirs. meshfed dev's control API (dev.ControlClient) and an in-process
// dev federation (*dev.Federation) implement it.
type Crasher interface {
	KillCluster(ctx context.Context, cluster string) error
	StartCluster(ctx context.Context, cluster string) error
	KillBroker(ctx context.Context, cluster string) error
	StartBroker(ctx context.Context, cluster string) error
}

// strand cuts the replication from the home to the fallback copy for
// StrandFor before the crash by killing the fallback's broker: what the
// home acknowledges meanwhile cannot replicate, and is stranded by the
// crash. It returns the fallback cluster, whose broker the caller starts
// again (restartFallback) once the home has crashed.
func (r *runner) strand(ctx context.Context) (string, error) {
	fb := r.report.Inputs[0].Clusters[1]
	if err := r.cfg.Crash.KillBroker(ctx, fb); err != nil {
		return "", fmt.Errorf("kill the broker of %s to strand inputs in %s: %w", fb, r.cfg.Cluster, err)
	}
	r.emit(PhaseStrand, "broker of %s killed: for %s, what %s acknowledges cannot replicate to it", fb, r.cfg.StrandFor, r.cfg.Cluster)
	select {
	case <-ctx.Done():
		return fb, ctx.Err()
	case <-time.After(r.cfg.StrandFor):
	}
	return fb, nil
}

// restartFallback starts the fallback's broker killed by strand again.
func (r *runner) restartFallback(ctx context.Context, fb string) error {
	if err := r.cfg.Crash.StartBroker(ctx, fb); err != nil {
		r.emit(PhaseWarning, "could not start the broker of %s again: %v: start it through meshfed dev's control API (POST /v1/clusters/%s/start?part=broker)", fb, err, fb)
		return fmt.Errorf("restart the broker of %s: %w", fb, err)
	}
	r.emit(PhaseStrand, "broker of %s serves again: replication to it resumes once %s returns", fb, r.cfg.Cluster)
	return nil
}

// takeOut cordons or crashes the cluster. A crash switches the stream to
// its fallback target, if it has one, as a producer with cluster failover
// would.
func (r *runner) takeOut(ctx context.Context, st *stream) error {
	name := r.cfg.Cluster
	if r.cfg.Mode != federation.DrillModeCrash {
		if err := r.setCordoned(ctx, true); err != nil {
			return err
		}
		r.emit(PhaseCordon, "cluster %s cordoned: its agents stop their instances", name)
		return nil
	}
	if err := r.cfg.Crash.KillCluster(ctx, name); err != nil {
		// Whatever was killed comes back before the error is returned.
		cctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		if serr := r.cfg.Crash.StartCluster(cctx, name); serr != nil {
			r.emit(PhaseWarning, "could not start cluster %s again: %v", name, serr)
		}
		return fmt.Errorf("crash cluster %s: %w", name, err)
	}
	r.emit(PhaseCrash, "cluster %s crashed: its broker and agent killed with SIGKILL", name)
	if st != nil && len(st.targets) > 1 {
		st.writeTo(1)
		r.report.StreamFallback = st.targets[1].cluster
		r.emit(PhaseStream, "writing the stream to %s while %s is down", st.targets[1].cluster, name)
	}
	return nil
}

// bringBack notes what reached the fallback's copy of the input, then
// uncordons the cluster or starts its broker and agent again, and switches
// the stream back home.
func (r *runner) bringBack(ctx context.Context, st *stream, why string) error {
	name, rep := r.cfg.Cluster, r.report
	if st != nil && rep.Replication == federation.ReplicationGeo {
		r.fallbackCopy = r.fallbackCluster()
		r.inFallback = st.copySnapshot(r.fallbackCopy)
	}
	rep.Timeline.Restored = r.cfg.Now()
	if r.restoreBegan.IsZero() {
		r.restoreBegan = rep.Timeline.Restored
	}
	if r.cfg.Mode != federation.DrillModeCrash {
		if err := r.setCordoned(ctx, false); err != nil {
			rep.Timeline.Restored = time.Time{}
			r.emit(PhaseWarning, "could not uncordon cluster %s: %v: run meshfed cluster uncordon %s", name, err, name)
			return err
		}
		r.emit(PhaseUncordon, "cluster %s uncordoned%s", name, why)
		return nil
	}
	if err := r.cfg.Crash.StartCluster(ctx, name); err != nil {
		rep.Timeline.Restored = time.Time{}
		r.emit(PhaseWarning, "could not start cluster %s again: %v: start it through meshfed dev's control API (POST /v1/clusters/%s/start)", name, err, name)
		return fmt.Errorf("restart cluster %s: %w", name, err)
	}
	r.emit(PhaseRestart, "cluster %s restarted: its broker serves again on the same addresses%s", name, why)
	if st != nil && len(st.targets) > 1 {
		r.streamHome(ctx, st)
	}
	return nil
}

// streamHome switches the stream back to the restarted home cluster
// through a new producer: the one used before the crash reconnects on the
// client's backoff, seconds after the broker is back, and would hold the
// stream's new messages until then. Its sends made before the crash
// complete when it does.
func (r *runner) streamHome(ctx context.Context, st *stream) {
	home := st.targets[0].cluster
	p, err := r.producer(ctx, home, "meshfed-drill-"+r.report.ID+"-"+home+"-back")
	if err != nil {
		r.note("stream kept on %s after %s returned: %v", st.targets[1].cluster, home, err)
		return
	}
	st.addTarget(target{cluster: home, copies: []pulsar.Producer{p}})
	r.emit(PhaseStream, "writing the stream to %s again", home)
}

// fallbackCluster is the fallback copy of the input that unreplicated
// inputs are measured against: the one the stream was written to during
// the crash, else the cluster the first affected instance moved to if it
// holds a copy, else the first fallback copy.
func (r *runner) fallbackCluster() string {
	rep := r.report
	if rep.StreamFallback != "" {
		return rep.StreamFallback
	}
	copies := rep.Inputs[0].Clusters[1:]
	for _, a := range rep.Affected {
		for _, c := range copies {
			if a.MovedTo == c {
				return c
			}
		}
	}
	return copies[0]
}

// account matches the stream's inputs with what was read, the stranded
// tail apart once the fallback's copy was measured.
func (r *runner) account(st *stream) (federation.MessageAccount, *federation.MessageAccount) {
	produced, seen := st.snapshot()
	var stranded []int64
	if r.inFallback != nil {
		cutoff := r.report.Timeline.Failed
		if r.cfg.Mode == federation.DrillModeCrash {
			cutoff = r.restoreBegan
		}
		stranded = federation.Unreplicated(produced, r.report.Inputs[0].Clusters[0], cutoff, r.inFallback)
		if stranded == nil {
			stranded = []int64{}
		}
	}
	return federation.AccountDrill(produced, seen, stranded)
}

// finishAccount fills the report's message figures from the stream.
func (r *runner) finishAccount(st *stream) {
	rep := r.report
	main, tail := r.account(st)
	rep.Messages, rep.Stranded = &main, tail
	if tail != nil {
		n := tail.Produced
		rep.Unreplicated = &n
		if tail.LostMessages > 0 && rep.FailbackStatus != federation.FailbackDone {
			r.note("stranded tail: %d of %d unreplicated inputs not processed when the drill stopped (failback %s): they wait in %s",
				tail.LostMessages, tail.Produced, rep.FailbackStatus, r.cfg.Cluster)
		}
	}
	_, seen := st.snapshot()
	rep.OutputsCarryCluster = federation.OutputsCarryCluster(seen)
	if rep.FallbackBacklog > 0 && rep.OutputsCarryCluster {
		// The home may get through the whole burst between the first
		// output and the kill: then the fallback had nothing to write.
		rep.FallbackBacklog = federation.NotWrittenBy(seen, r.burstFrom, r.cfg.Burst, r.cfg.Cluster)
		if rep.FallbackBacklog == 0 {
			r.note("the home wrote the outputs of the whole burst of %d before it failed: the fallback had no backlog to process", r.cfg.Burst)
		}
	}
	rep.Timeline.FallbackOutput, rep.FallbackOutputCluster = federation.FirstOutputFrom(seen, rep.Timeline.Failed, r.cfg.Cluster)
	if !rep.OutputsCarryCluster && len(seen) > 0 {
		r.note("the outputs carry no %s property: the first output from the fallback cannot be timed", ClusterProperty)
	}
	st.mu.Lock()
	rep.ProduceFailures = st.failures
	readErr := st.readErr
	st.mu.Unlock()
	if readErr != nil {
		r.note("reading a watched topic failed: %v", readErr)
	}
}

// watchFallbackOutput reports, once, the first output read from a
// fallback cluster since the failure.
func (r *runner) watchFallbackOutput(st *stream) {
	if st == nil || r.sawFallbackOutput || r.report.Timeline.Failed.IsZero() {
		return
	}
	st.mu.Lock()
	at, cluster := federation.FirstOutputFrom(st.seen, r.report.Timeline.Failed, r.cfg.Cluster)
	st.mu.Unlock()
	if !at.IsZero() {
		r.sawFallbackOutput = true
		r.emit(PhaseOutput, "first output from %s read %.2fs after the failure", cluster, at.Sub(r.report.Timeline.Failed).Seconds())
	}
}

// setCordoned flips the cluster's spec.cordoned with a compare-and-swap,
// retrying on conflicts.
func (r *runner) setCordoned(ctx context.Context, cordoned bool) error {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := func() error {
			got, err := r.c.Get(cctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: r.cfg.Cluster})
			if err != nil {
				return fmt.Errorf("get cluster %s: %w", r.cfg.Cluster, err)
			}
			cl := proto.Clone(got.GetObject().GetCluster()).(*meshfedv1.Cluster)
			if cl.GetSpec().GetCordoned() == cordoned {
				return nil
			}
			cl.Spec.Cordoned = cordoned
			cl.Status = nil
			_, err = r.c.Apply(cctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{objects.Wrap(cl)}})
			return err
		}()
		cancel()
		if status.Code(err) == codes.Aborted && attempt < 10 {
			continue
		}
		if err != nil {
			what := "cordon"
			if !cordoned {
				what = "uncordon"
			}
			return fmt.Errorf("%s cluster %s: %w", what, r.cfg.Cluster, err)
		}
		return nil
	}
}

// burst sends Config.Burst messages to the stream's current target (the
// home) at once and returns once the home acknowledged them all,
// replication delivered them to the fallback's copy, and the first output
// of them was read: the home is working through them and fails with a
// backlog the fallback holds.
func (r *runner) burst(ctx context.Context, st *stream) error {
	from := st.sendNext(r.cfg.Burst)
	r.emit(PhaseStream, "burst of %d messages sent to %s", r.cfg.Burst, st.targets[st.cur.Load()].cluster)
	// Nothing to wait for without a fallback copy of the input, or when
	// replication to it was cut on purpose (Config.StrandFor): then the
	// burst is stranded with the rest.
	fallback := ""
	if r.cfg.StrandFor == 0 && len(r.report.Inputs) > 0 && len(r.report.Inputs[0].Clusters) > 1 {
		fallback = r.fallbackCluster()
	}
	deadline := time.NewTimer(r.cfg.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !st.settled(from, r.cfg.Burst) || !st.inCopyAll(fallback, from, r.cfg.Burst) || !st.sawFrom(from) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("the burst was not acknowledged, replicated to %s and processed by the home within %s", fallback, r.cfg.ReadyTimeout)
		case <-tick.C:
		}
	}
	if fallback != "" {
		r.report.FallbackBacklog = r.cfg.Burst
		r.burstFrom = from
	}
	r.emit(PhaseStream, "the home writes the burst's outputs: failing it with a backlog")
	return nil
}
