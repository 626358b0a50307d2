package controlplane

import (
	"context"
	"sync"
	"time"

	"github.com/meshfed/meshfed/federation"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// liveCounters keeps, in the leader's memory only, the newest status each
// instance reported. Instance counters change on every report; writing each
// one through Raft would make every report a log entry sent to every server
// and every watching agent. The leader writes a report through Raft at once
// when something other than the counters changed (state, since, last error),
// and otherwise holds it: every interval one UpdateStatus entry writes the
// counters held since the last one, for all assignments together. Reads
// the leader serves lay the held counters over the stored ones. A new
// leader starts empty: counters read from it are the last written until
// the next report.
type liveCounters struct {
	// interval is how often held counters are written; zero or negative:
	// every change is written at once.
	interval time.Duration

	// mu guards byKey and meshWritten.
	mu sync.Mutex
	// byKey holds, per assignment key, the newest report accepted.
	byKey map[string]*liveReport
	// meshWritten holds when each mesh's status was last written for a
	// change of counters alone; absent: not in this leadership term.
	meshWritten map[string]time.Time
}

// liveReport is the newest report of one assignment's instance.
type liveReport struct {
	// meta names the assignment (tenant, namespace, name).
	meta   *meshfedv1.ObjectMeta
	epoch  uint64
	agent  string
	status *meshfedv1.InstanceStatus
	// dirty: status holds counters not yet written through Raft.
	dirty bool
}

func newLiveCounters(interval time.Duration) *liveCounters {
	return &liveCounters{interval: interval, byKey: map[string]*liveReport{}, meshWritten: map[string]time.Time{}}
}

// reset forgets every report: leadership began or ended.
func (c *liveCounters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byKey = map[string]*liveReport{}
	c.meshWritten = map[string]time.Time{}
}

// report records got, reported by agent for the assignment a (as stored),
// and says whether to write it through Raft now; otherwise it is held for
// the next flush.
func (c *liveCounters) report(a *meshfedv1.Assignment, agent string, got *meshfedv1.InstanceStatus) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := objects.KeyOf(objects.Wrap(a))
	r := c.byKey[key]
	if r == nil || r.epoch != a.GetSpec().GetEpoch() || r.agent != agent {
		r = &liveReport{meta: a.GetMetadata(), epoch: a.GetSpec().GetEpoch(), agent: agent}
		c.byKey[key] = r
	}
	r.status = got
	if c.interval <= 0 || !sameTransition(got, a.GetStatus()) {
		r.dirty = false
		return true
	}
	r.dirty = true
	return false
}

// due returns the held reports not yet written, marking them written.
func (c *liveCounters) due() []*liveReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*liveReport
	for _, r := range c.byKey {
		if r.dirty {
			r.dirty = false
			out = append(out, &liveReport{meta: r.meta, epoch: r.epoch, agent: r.agent, status: r.status})
		}
	}
	return out
}

// meshDue reports whether a mesh's status may be written now for a change
// of counters alone: at most once per interval.
func (c *liveCounters) meshDue(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.interval > 0 && now.Sub(c.meshWritten[key]) < c.interval {
		return false
	}
	c.meshWritten[key] = now
	return true
}

// held is how many assignments' reports are held.
func (c *liveCounters) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

// forget drops the reports of assignments keep rejects (deleted ones).
func (c *liveCounters) forget(keep func(key string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.byKey {
		if !keep(k) {
			delete(c.byKey, k)
		}
	}
}

// newer returns the report held for the assignment at key with epoch when
// it differs from stored in its counters only, else nil.
func (c *liveCounters) newer(key string, epoch uint64, stored *meshfedv1.InstanceStatus) *meshfedv1.InstanceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.byKey[key]
	if r == nil || r.epoch != epoch || !sameTransition(r.status, stored) || proto.Equal(r.status, stored) {
		return nil
	}
	return r.status
}

// overlay returns o with the newest counters laid over its status: an
// Assignment's own, a FunctionMesh's per instance. o is not changed; it is
// returned as is when nothing newer is held.
func (c *liveCounters) overlay(o *meshfedv1.Object) *meshfedv1.Object {
	switch {
	case o.GetAssignment() != nil:
		a := o.GetAssignment()
		st := c.newer(objects.KeyOf(o), a.GetSpec().GetEpoch(), a.GetStatus())
		if st == nil {
			return o
		}
		a = proto.CloneOf(a)
		a.Status = proto.CloneOf(st)
		return objects.Wrap(a)
	case o.GetFunctionMesh() != nil:
		return c.overlayMesh(o)
	}
	return o
}

// overlayMesh lays counters over a mesh's per-instance status. The mesh
// status does not carry epochs: an instance matches a report of the same
// agent and the same status but for the counters.
func (c *liveCounters) overlayMesh(o *meshfedv1.Object) *meshfedv1.Object {
	m := o.GetFunctionMesh()
	md := m.GetMetadata()
	var out *meshfedv1.FunctionMesh
	for i, fs := range m.GetStatus().GetFunctions() {
		for j, in := range fs.GetInstances() {
			key := objects.Key(objects.KindAssignment, md.GetTenant(), md.GetNamespace(), federation.AssignmentName(md.GetName(), fs.GetName(), int(in.GetIndex())))
			var st *meshfedv1.InstanceStatus
			c.mu.Lock()
			if r := c.byKey[key]; r != nil && r.agent == in.GetAgent() {
				// The mesh status names the instance by its assignment's
				// spec, the report may not.
				st = proto.CloneOf(r.status)
				st.Index, st.Agent, st.Cluster = in.GetIndex(), in.GetAgent(), in.GetCluster()
				if !sameTransition(st, in) || sameCounters(st, in) {
					st = nil
				}
			}
			c.mu.Unlock()
			if st == nil {
				continue
			}
			if out == nil {
				out = proto.CloneOf(m)
			}
			copyCounters(out.GetStatus().GetFunctions()[i].GetInstances()[j], st)
		}
	}
	if out == nil {
		return o
	}
	return objects.Wrap(out)
}

// sameTransition reports whether a and b agree on everything but the counters.
func sameTransition(a, b *meshfedv1.InstanceStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := proto.CloneOf(a), proto.CloneOf(b)
	copyCounters(x, &meshfedv1.InstanceStatus{})
	copyCounters(y, &meshfedv1.InstanceStatus{})
	return proto.Equal(x, y)
}

// sameMeshButCounters reports whether two mesh statuses differ at most in
// their instances' counters.
func sameMeshButCounters(a, b *meshfedv1.FunctionMeshStatus) bool {
	x, y := proto.CloneOf(a), proto.CloneOf(b)
	for _, st := range []*meshfedv1.FunctionMeshStatus{x, y} {
		for _, fs := range st.GetFunctions() {
			for _, in := range fs.GetInstances() {
				copyCounters(in, &meshfedv1.InstanceStatus{})
			}
		}
	}
	return proto.Equal(x, y)
}

func sameCounters(a, b *meshfedv1.InstanceStatus) bool {
	return a.GetReceived() == b.GetReceived() && a.GetProcessed() == b.GetProcessed() && a.GetFailed() == b.GetFailed() &&
		a.GetDeduplicated() == b.GetDeduplicated() && a.GetUnproven() == b.GetUnproven() &&
		a.GetWritten() == b.GetWritten() && a.GetBatches() == b.GetBatches() &&
		a.GetCpuMillis() == b.GetCpuMillis()
}

// copyCounters sets dst's counters to src's.
func copyCounters(dst, src *meshfedv1.InstanceStatus) {
	dst.Received, dst.Processed, dst.Failed = src.GetReceived(), src.GetProcessed(), src.GetFailed()
	dst.Deduplicated, dst.Unproven = src.GetDeduplicated(), src.GetUnproven()
	dst.Written, dst.Batches = src.GetWritten(), src.GetBatches()
	dst.CpuMillis = src.GetCpuMillis()
}

// flushCounters runs on the leader until stop: every interval it writes
// the counters held since the last flush in one UpdateStatus entry.
func (s *Server) flushCounters(stop <-chan struct{}) {
	defer s.wg.Done()
	if s.live.interval <= 0 {
		return
	}
	t := time.NewTicker(s.live.interval)
	defer t.Stop()
	for s.waitTick(stop, t.C) {
		if err := s.flushCountersOnce(context.Background()); err != nil {
			s.logger.Warn("write instance counters; retrying at the next flush", "err", err)
		}
	}
}

// flushCountersOnce writes the held counters of assignments that still
// stand as reported (same epoch, agent and status but for the counters).
func (s *Server) flushCountersOnce(ctx context.Context) error {
	st := s.fsm.State()
	var updates []*meshfedv1.Object
	for _, r := range s.live.due() {
		o, _, err := st.Get(objects.KindAssignment, r.meta.GetTenant(), r.meta.GetNamespace(), r.meta.GetName())
		if err != nil {
			continue
		}
		a := o.GetAssignment()
		if a.GetSpec().GetEpoch() != r.epoch || a.GetSpec().GetAgent() != r.agent || !sameTransition(r.status, a.GetStatus()) || proto.Equal(r.status, a.GetStatus()) {
			continue
		}
		up := proto.CloneOf(a)
		up.Status = r.status
		updates = append(updates, objects.Wrap(up))
	}
	if len(updates) == 0 {
		return nil
	}
	_, err := s.applySystem(ctx, UpdateStatusType, &raftlogv1.UpdateStatus{Objects: updates, Now: timestamppb.Now()})
	return err
}
