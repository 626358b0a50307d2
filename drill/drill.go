// Package drill runs failover drills against a live federation: it takes a
// cluster out of service on purpose (a cordon, or in meshfed dev a crash of
// its broker and agent), times detection, failover, the first output from
// the fallback and failback from the control plane's objects and the
// outputs read, produces a numbered input stream (to the home cluster only
// when the input is geo-replicated) and reads the watched output topics
// and the fallback's copy of the input to count what was lost, duplicated
// or left unreplicated, and keeps the reports as JSON files. The figures
// themselves are computed by package federation (pure); the I/O lives here.
package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Defaults of Config fields left zero.
const (
	DefaultDuration        = 10 * time.Second
	DefaultOutputs         = 3
	DefaultReadyTimeout    = 60 * time.Second
	DefaultRecoveryTimeout = 60 * time.Second
	DefaultDrainTimeout    = 20 * time.Second
	DefaultPollInterval    = 50 * time.Millisecond
)

// Config describes one drill.
type Config struct {
	// Client talks to the control plane. Required.
	Client *client.Client
	// Cluster is the cluster to take out. Required.
	Cluster string
	// Mode is federation.DrillModeCordon or federation.DrillModeCrash.
	// Empty: cordon.
	Mode string
	// Crash kills and restarts the cluster's broker and agent. Required
	// in crash mode.
	Crash Crasher
	// ProducerFailover, in a crash drill with a geo-replicated input,
	// writes the stream to the first fallback copy while the home is down
	// (and home again after it returns), as a producer with cluster
	// failover, or one in a surviving region, would. False: the stream is
	// written to the home only, also while it is down (its sends wait for
	// it), and the fallback has only what replication delivered before
	// the crash.
	ProducerFailover bool
	// Burst, before the failure, sends this many input messages to the
	// home at once and makes the failure once the home has written the
	// first output of them: the home dies with a backlog, which reaches
	// the fallback by replication, and the fallback's first output times
	// its recovery under load. Zero: no burst.
	Burst int
	// StrandFor, in crash mode with a geo-replicated input, kills the
	// fallback copy's broker this long before the crash (and starts it
	// again right after), so that what the home acknowledges meanwhile is
	// stranded: the recovery-point path, exercised on purpose. The
	// fallback is Down meanwhile, so failover waits for its broker. Zero:
	// replication runs up to the crash.
	StrandFor time.Duration
	// Duration is how long the cluster stays out, counted from the failure
	// (longer if failover takes longer). Zero: DefaultDuration.
	Duration time.Duration
	// Rate is the input stream's rate in messages per second. Zero: no
	// stream, timings only.
	Rate float64
	// Inputs are the topics the stream is produced to, each to every one
	// of its clusters (the first is the home copy). Nil: derived from the
	// first affected function (its input cluster, plus its failover
	// clusters when the input moves with the function).
	Inputs []federation.DrillStream
	// Watch are the output topics read for accounting. Nil: the first
	// affected function's output (plus its failover clusters when the
	// output is in the failed cluster).
	Watch []federation.DrillStream
	// Outputs is the number of tokens (output items) per input message.
	// Zero: DefaultOutputs.
	Outputs int
	// ReadyTimeout bounds the wait for the cluster to be Healthy with its
	// instances Running, and for the first output of the stream.
	ReadyTimeout time.Duration
	// RecoveryTimeout bounds the wait for every affected instance to run
	// elsewhere, and for the cluster to be seen Healthy after the uncordon
	// or restart.
	RecoveryTimeout time.Duration
	// FailbackTimeout bounds the wait for failback after the uncordon or
	// restart.
	// Zero: do not wait (failback reported as skipped).
	FailbackTimeout time.Duration
	// DrainTimeout bounds the wait, after the stream stops, for the last
	// outputs to arrive.
	DrainTimeout time.Duration
	// PollInterval is how often the control plane is read: the resolution
	// of the timings. Zero: DefaultPollInterval.
	PollInterval time.Duration
	// Progress, if set, receives one event per phase change.
	Progress func(Event)
	// ID names the drill. Empty: generated from the time.
	ID string
	// PulsarLogger receives the Pulsar client's logs. Nil: discarded.
	PulsarLogger plog.Logger
	// Now reads the clock. Nil: time.Now.
	Now func() time.Time
}

// Phases reported in events.
const (
	PhasePreflight  = "preflight"
	PhaseStream     = "stream"
	PhaseCordon     = "cordon"
	PhaseCrash      = "crash"
	PhaseStrand     = "strand"
	PhaseOutput     = "output"
	PhaseDetected   = "detected"
	PhaseMoved      = "moved"
	PhaseRecovered  = "recovered"
	PhaseHold       = "hold"
	PhaseUncordon   = "uncordon"
	PhaseRestart    = "restart"
	PhaseHealthy    = "healthy"
	PhaseBack       = "back"
	PhaseFailedBack = "failed-back"
	PhaseDrain      = "drain"
	PhaseDone       = "done"
	PhaseWarning    = "warning"
)

// Event is one step of a running drill.
type Event struct {
	At    time.Time
	Phase string
	// Since is the time since the failure (zero before it).
	Since   time.Duration
	Message string
}

func (e Event) String() string {
	if e.Since > 0 {
		return fmt.Sprintf("%-11s +%6.2fs  %s", e.Phase, e.Since.Seconds(), e.Message)
	}
	return fmt.Sprintf("%-11s %9s %s", e.Phase, "", e.Message)
}

// NewID returns a drill id: the UTC time and a random suffix, lower-case
// letters, digits and one dash, so that it sorts by time.
func NewID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b[:])
}

type runner struct {
	cfg    Config
	c      *client.Client
	report *federation.DrillReport
	// pulsar clients by cluster name.
	pulsar map[string]pulsar.Client
	urls   map[string]string
	// fallbackCopy is the fallback cluster whose copy of the input was
	// measured, and inFallback the inputs it held when the home returned
	// (nil: not measured).
	fallbackCopy string
	inFallback   map[int64]bool
	// restoreBegan is when the first attempt to bring the cluster back
	// began: in a crash drill, the home broker acknowledged nothing
	// between the kill and then.
	restoreBegan time.Time
	// sawFallbackOutput is set once the first output from a fallback was
	// reported.
	sawFallbackOutput bool
	// burstFrom is the number of the burst's first input (valid when the
	// report's FallbackBacklog is set).
	burstFrom int64
}

// Run runs a drill and returns its report. After an error or a cancelled
// ctx once the cluster was taken out, it is uncordoned (or its broker and
// agent are started again) before Run returns, and the report so far is
// returned with the error.
func Run(ctx context.Context, cfg Config) (*federation.DrillReport, error) {
	if cfg.Client == nil || cfg.Cluster == "" {
		return nil, errors.New("drill: a client and a cluster are required")
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = federation.DrillModeCordon
	case federation.DrillModeCordon:
	case federation.DrillModeCrash:
		if cfg.Crash == nil {
			return nil, errors.New("drill: crash mode needs a way to kill the cluster's processes (a meshfed dev federation)")
		}
	default:
		return nil, fmt.Errorf("drill: mode %q: use cordon or crash", cfg.Mode)
	}
	if cfg.StrandFor < 0 || cfg.StrandFor > 0 && (cfg.Mode != federation.DrillModeCrash || cfg.Rate <= 0) {
		return nil, errors.New("drill: stranding inputs needs crash mode and an input stream")
	}
	if cfg.Burst < 0 || cfg.Burst > 0 && cfg.Rate <= 0 {
		return nil, errors.New("drill: a burst needs an input stream (a positive rate)")
	}
	positiveOr(&cfg.Duration, DefaultDuration)
	positiveOr(&cfg.Outputs, DefaultOutputs)
	positiveOr(&cfg.ReadyTimeout, DefaultReadyTimeout)
	positiveOr(&cfg.RecoveryTimeout, DefaultRecoveryTimeout)
	positiveOr(&cfg.DrainTimeout, DefaultDrainTimeout)
	positiveOr(&cfg.PollInterval, DefaultPollInterval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PulsarLogger == nil {
		cfg.PulsarLogger = plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))
	}
	if cfg.ID == "" {
		cfg.ID = NewID(cfg.Now())
	}
	r := &runner{cfg: cfg, c: cfg.Client, pulsar: map[string]pulsar.Client{}, urls: map[string]string{},
		report: &federation.DrillReport{ID: cfg.ID, Cluster: cfg.Cluster, Mode: cfg.Mode, Duration: cfg.Duration, Rate: cfg.Rate}}
	defer func() {
		for _, pc := range r.pulsar {
			pc.Close()
		}
	}()
	err := r.run(ctx)
	r.report.Finalize()
	if err != nil {
		r.report.Problems = append(r.report.Problems, "drill did not finish: "+err.Error())
	}
	return r.report, err
}

// positiveOr sets *v to def unless it is positive.
func positiveOr[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func (r *runner) emit(phase, format string, args ...any) {
	if r.cfg.Progress == nil {
		return
	}
	now := r.cfg.Now()
	ev := Event{At: now, Phase: phase, Message: fmt.Sprintf(format, args...)}
	if c := r.report.Timeline.Failed; !c.IsZero() {
		ev.Since = now.Sub(c)
	}
	r.cfg.Progress(ev)
}

func (r *runner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.report.Notes = append(r.report.Notes, msg)
	r.emit(PhaseWarning, "%s", msg)
}

// snapshot is one read of what the drill watches in the control plane.
type snapshot struct {
	cluster     *meshfedv1.Cluster
	assignments map[string]*meshfedv1.Assignment
}

func asgKey(a *meshfedv1.Assignment) string {
	return objects.RefTo(objects.KindAssignment, a.GetMetadata()).String()
}

func (r *runner) read(ctx context.Context) (snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := r.c.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: r.cfg.Cluster})
	if err != nil {
		return snapshot{}, fmt.Errorf("get cluster %s: %w", r.cfg.Cluster, err)
	}
	list, err := r.c.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindAssignment})
	if err != nil {
		return snapshot{}, fmt.Errorf("list assignments: %w", err)
	}
	s := snapshot{cluster: got.GetObject().GetCluster(), assignments: map[string]*meshfedv1.Assignment{}}
	for _, o := range list.GetObjects() {
		if a := o.GetAssignment(); a != nil {
			s.assignments[asgKey(a)] = a
		}
	}
	return s, nil
}

// poll reads the control plane every PollInterval and calls check with
// each read until check returns true (nil), timeout passes
// (errTimeout), or ctx ends. Transient read errors are retried.
func (r *runner) poll(ctx context.Context, timeout time.Duration, check func(snapshot, time.Time) bool) error {
	deadline := r.cfg.Now().Add(timeout)
	var lastErr error
	for {
		s, err := r.read(ctx)
		now := r.cfg.Now()
		if err == nil {
			if check(s, now) {
				return nil
			}
		} else {
			lastErr = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if now.After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("%w (last read error: %v)", errTimeout, lastErr)
			}
			return errTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

var errTimeout = errors.New("timed out")

func running(a *meshfedv1.Assignment) bool {
	return a != nil && a.GetSpec().GetAgent() != "" && a.GetStatus().GetState() == federation.StateRunning
}

// run runs the drill's phases in order: preflight, the input stream,
// taking the cluster out, failover, the hold, bringing it back, failback
// and the drain.
func (r *runner) run(ctx context.Context) error {
	home, err := r.preflight(ctx)
	if err != nil {
		return err
	}

	// The input stream and the watched topics.
	var st *stream
	if r.cfg.Rate > 0 {
		if st, err = r.startStream(ctx, home); err != nil {
			return err
		}
		defer st.close()
	}

	// Take the cluster out. From here on, bring it back whatever happens.
	out := false
	defer func() {
		if out && r.report.Timeline.Restored.IsZero() {
			cctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			r.bringBack(cctx, st, " (drill stopped early)")
		}
	}()
	if out, err = r.failCluster(ctx, st); err != nil {
		return err
	}
	idx := r.affectedIndex()
	if err := r.awaitFailover(ctx, st, idx); err != nil {
		return err
	}
	if err := r.hold(ctx, st); err != nil {
		return err
	}
	if err := r.bringBack(ctx, st, ""); err != nil {
		return err
	}
	if err := r.awaitFailback(ctx, st, idx); err != nil {
		return err
	}
	if st != nil {
		if err := r.drain(ctx, st); err != nil {
			return err
		}
	}
	r.report.Timeline.Finished = r.cfg.Now()
	r.emit(PhaseDone, "drill %s finished", r.report.ID)
	return nil
}

// preflight waits until the cluster is in service and its instances run,
// and records them as the affected instances; it returns their assignments.
func (r *runner) preflight(ctx context.Context) ([]*meshfedv1.Assignment, error) {
	rep, name := r.report, r.cfg.Cluster
	r.emit(PhasePreflight, "waiting for cluster %s to be Healthy with its instances Running", name)
	var home []*meshfedv1.Assignment
	var cordonedErr error
	lastWhy := ""
	err := r.poll(ctx, r.cfg.ReadyTimeout, func(s snapshot, _ time.Time) bool {
		if s.cluster.GetSpec().GetCordoned() {
			cordonedErr = fmt.Errorf("cluster %s is already cordoned: uncordon it first (meshfed cluster uncordon %s)", name, name)
			return true
		}
		home = home[:0]
		notRunning := []string{}
		for _, a := range s.assignments {
			if a.GetSpec().GetCluster() == name && a.GetSpec().GetAgent() != "" {
				home = append(home, a)
				if !running(a) {
					notRunning = append(notRunning, a.GetMetadata().GetName()+" "+a.GetStatus().GetState())
				}
			}
		}
		sort.Strings(notRunning)
		switch h := s.cluster.GetStatus().GetHealth(); {
		case h != federation.Healthy:
			lastWhy = fmt.Sprintf("cluster %s is %q", name, h)
		case len(home) == 0:
			lastWhy = fmt.Sprintf("cluster %s runs no instance", name)
		case len(notRunning) > 0:
			lastWhy = "not running yet: " + strings.Join(notRunning, ", ")
		default:
			return true
		}
		return false
	})
	if cordonedErr != nil {
		return nil, cordonedErr
	}
	if err != nil {
		return nil, fmt.Errorf("preflight: %w: %s", err, lastWhy)
	}
	sort.Slice(home, func(i, j int) bool { return asgKey(home[i]) < asgKey(home[j]) })
	for _, a := range home {
		fs := a.GetSpec().GetFunctionSpec()
		rep.Affected = append(rep.Affected, federation.DrillInstance{
			Assignment: a.GetMetadata().GetName(), Tenant: a.GetMetadata().GetTenant(), Namespace: a.GetMetadata().GetNamespace(),
			Mesh: a.GetSpec().GetMesh(), Function: a.GetSpec().GetFunction(), Index: int(a.GetSpec().GetIndex()),
			Guarantee: fs.GetProcessingGuarantee(), Failback: fs.GetFailover().GetFailback(),
		})
		if len(fs.GetFailover().GetClusters()) == 0 {
			r.note("%s has no failover clusters: it will not run while %s is out", a.GetMetadata().GetName(), name)
		}
	}
	r.emit(PhasePreflight, "cluster %s Healthy, running %s", name, affectedNames(rep.Affected))
	return home, nil
}

// failCluster strands inputs and sends the burst when asked, then takes
// the cluster out. out reports whether the cluster was taken out (the
// caller then brings it back whatever happens).
func (r *runner) failCluster(ctx context.Context, st *stream) (out bool, err error) {
	rep := r.report
	stranded := ""
	if r.cfg.StrandFor > 0 {
		if rep.Replication != federation.ReplicationGeo {
			r.note("inputs not stranded: the input is not geo-replicated")
		} else {
			defer func() {
				if stranded != "" {
					cctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
					defer cancel()
					_ = r.restartFallback(cctx, stranded)
				}
			}()
			fb, err := r.strand(ctx)
			stranded = fb
			if err != nil {
				return false, err
			}
		}
	}
	if st != nil && r.cfg.Burst > 0 {
		if err := r.burst(ctx, st); err != nil {
			return false, err
		}
	}
	rep.Timeline.Failed = r.cfg.Now()
	if err := r.takeOut(ctx, st); err != nil {
		rep.Timeline.Failed = time.Time{}
		return false, err
	}
	if stranded != "" {
		fb := stranded
		stranded = ""
		if err := r.restartFallback(ctx, fb); err != nil {
			return true, err
		}
	}
	return true, nil
}

// affectedIndex finds the affected instances by their assignment key.
type affectedIndex struct {
	byKey map[string]*federation.DrillInstance
	// keys are byKey's keys, sorted.
	keys []string
}

func (r *runner) affectedIndex() affectedIndex {
	rep := r.report
	byKey := map[string]*federation.DrillInstance{}
	for i := range rep.Affected {
		a := &rep.Affected[i]
		byKey[a.AssignmentRef().String()] = a
	}
	return affectedIndex{byKey: byKey, keys: slices.Sorted(maps.Keys(byKey))}
}

// awaitFailover waits until the cluster's failure was detected and every
// affected instance runs elsewhere; a timeout is noted, not returned.
func (r *runner) awaitFailover(ctx context.Context, st *stream, idx affectedIndex) error {
	rep, name := r.report, r.cfg.Cluster
	observeDetection := func(s snapshot, now time.Time) {
		if h := s.cluster.GetStatus().GetHealth(); rep.Timeline.Detected.IsZero() && (h == federation.Cordoned || h == federation.Down) {
			rep.Timeline.Detected = now
			r.emit(PhaseDetected, "cluster %s is %s", name, h)
		}
	}
	err := r.poll(ctx, r.cfg.RecoveryTimeout, func(s snapshot, now time.Time) bool {
		observeDetection(s, now)
		r.watchFallbackOutput(st)
		all := true
		for _, k := range idx.keys {
			inst, a := idx.byKey[k], s.assignments[k]
			if inst.MovedAt.IsZero() && running(a) && a.GetSpec().GetCluster() != name {
				inst.MovedTo, inst.MovedAt = a.GetSpec().GetCluster(), now
				r.emit(PhaseMoved, "%s Running in %s (agent %s, epoch %d)", inst.Assignment, inst.MovedTo, a.GetSpec().GetAgent(), a.GetSpec().GetEpoch())
			}
			all = all && !inst.MovedAt.IsZero()
		}
		if all && !rep.Timeline.Detected.IsZero() {
			rep.Timeline.Recovered = now
			return true
		}
		return false
	})
	switch {
	case err == nil:
		r.emit(PhaseRecovered, "every affected instance runs again")
	case errors.Is(err, errTimeout):
		r.note("failover incomplete after %s%s", r.cfg.RecoveryTimeout, r.degradedReasons(ctx))
	default:
		return err
	}
	return nil
}

// hold keeps the cluster out for the rest of the drill's duration.
func (r *runner) hold(ctx context.Context, st *stream) error {
	rep, name := r.report, r.cfg.Cluster
	if left := rep.Timeline.Failed.Add(r.cfg.Duration).Sub(r.cfg.Now()); left > 0 {
		r.emit(PhaseHold, "keeping cluster %s out for %.1fs more", name, left.Seconds())
		end := time.After(left)
	hold:
		for {
			r.watchFallbackOutput(st)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-end:
				break hold
			case <-time.After(r.cfg.PollInterval):
			}
		}
	}
	return nil
}

// awaitFailback waits until the cluster is Healthy again and, when asked
// and no mesh fails back manually, until every affected instance runs in
// it again; it records the failback status.
func (r *runner) awaitFailback(ctx context.Context, st *stream, idx affectedIndex) error {
	rep, name := r.report, r.cfg.Cluster
	manual := []string{}
	for _, a := range rep.Affected {
		if a.Failback == "manual" {
			manual = append(manual, a.Mesh)
		}
	}
	waitBack := r.cfg.FailbackTimeout > 0 && len(manual) == 0
	timeout := r.cfg.RecoveryTimeout
	if waitBack {
		timeout = max(timeout, r.cfg.FailbackTimeout)
	}
	restoredAt := rep.Timeline.Restored
	err := r.poll(ctx, timeout, func(s snapshot, now time.Time) bool {
		r.watchFallbackOutput(st)
		if rep.Timeline.Healthy.IsZero() && s.cluster.GetStatus().GetHealth() == federation.Healthy {
			rep.Timeline.Healthy = now
			r.emit(PhaseHealthy, "cluster %s is Healthy", name)
		}
		if !waitBack {
			return !rep.Timeline.Healthy.IsZero() || now.Sub(restoredAt) > r.cfg.RecoveryTimeout
		}
		all := true
		for _, k := range idx.keys {
			inst, a := idx.byKey[k], s.assignments[k]
			if inst.BackAt.IsZero() && running(a) && a.GetSpec().GetCluster() == name {
				inst.BackAt = now
				r.emit(PhaseBack, "%s Running in %s again", inst.Assignment, name)
			}
			all = all && !inst.BackAt.IsZero()
		}
		if all && !rep.Timeline.Healthy.IsZero() {
			rep.Timeline.FailedBack = now
			return true
		}
		return now.Sub(restoredAt) > r.cfg.FailbackTimeout
	})
	if err != nil && !errors.Is(err, errTimeout) {
		return err
	}
	switch {
	case len(manual) > 0:
		rep.FailbackStatus = federation.FailbackManual
		slices.Sort(manual)
		r.note("failback is manual: run meshfed failback %s", strings.Join(slices.Compact(manual), ", "))
	case !waitBack:
		rep.FailbackStatus = federation.FailbackSkipped
		r.emit(PhaseFailedBack, "not waiting for failback (--failback-timeout 0)")
	case !rep.Timeline.FailedBack.IsZero():
		rep.FailbackStatus = federation.FailbackDone
		r.emit(PhaseFailedBack, "every affected instance runs in %s again", name)
	default:
		rep.FailbackStatus = federation.FailbackPending
		r.emit(PhaseWarning, "failback incomplete after %s", r.cfg.FailbackTimeout)
	}
	return nil
}

// drain stops the input stream, reads the outputs still on their way and
// accounts for every input.
func (r *runner) drain(ctx context.Context, st *stream) error {
	rep := r.report
	st.stopProducing()
	if d := r.cfg.Now().Sub(rep.Timeline.Started); d > 5*time.Second {
		if got := float64(st.sent.Load()) / d.Seconds(); got < 0.8*r.cfg.Rate {
			r.note("the stream sent %d messages in %.1fs: %.1f msg/s of the %g asked (the drill's process was held up: a loaded machine?)",
				st.sent.Load(), d.Seconds(), got, r.cfg.Rate)
		}
	}
	if err := st.flush(); err != nil {
		r.note("input stream: %v", err)
	}
	produced, failures, _ := st.counts()
	r.emit(PhaseDrain, "stream stopped after %d messages (%d not acknowledged): reading the last outputs", produced, failures)
	deadline := r.cfg.Now().Add(r.cfg.DrainTimeout)
	for {
		main, tail := r.account(st)
		if main.Lost == 0 && (tail == nil || tail.Lost == 0) || !r.cfg.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.finishAccount(st)
	return nil
}

func affectedNames(as []federation.DrillInstance) string {
	var names []string
	for _, a := range as {
		names = append(names, a.AssignmentRef().String())
	}
	return strings.Join(names, ", ")
}

// degradedReasons returns the Degraded messages of the affected meshes.
func (r *runner) degradedReasons(ctx context.Context) string {
	seen := map[string]bool{}
	var out []string
	for _, a := range r.report.Affected {
		k := a.MeshRef().String()
		if seen[k] {
			continue
		}
		seen[k] = true
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := r.c.Get(gctx, &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: a.Tenant, Namespace: a.Namespace, Name: a.Mesh})
		cancel()
		if err != nil {
			continue
		}
		for _, c := range got.GetObject().GetFunctionMesh().GetStatus().GetConditions() {
			if c.GetType() == federation.ConditionDegraded && c.GetStatus() == "True" {
				out = append(out, k+" Degraded: "+c.GetMessage())
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, "; ")
}
