package controlplane

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// snapshotMagic starts every snapshot meshfed writes (and `operator snapshot save` files).
var snapshotMagic = []byte("MESHFED-SNAPSHOT-V1\n")

// FSM adapts the Raft log to the state store. It holds no state of its own
// besides the store pointer, which Restore swaps.
type FSM struct {
	cfg    state.Config
	logger *slog.Logger
	// legacy makes the FSM refuse the log types newer than the original
	// set, as a server from before them does (mixed-version tests). Set
	// before the FSM is used; false: every type this build knows.
	legacy bool
	// applied counts the entries applied, by type byte.
	applied [256]atomic.Uint64

	// mu guards store.
	mu    sync.RWMutex
	store *state.Store
}

var _ raft.FSM = (*FSM)(nil)

// applyResponse is what FSM.Apply returns to the proposer through the Raft future.
type applyResponse struct {
	apply    *state.ApplyResult
	deleted  *meshfedv1.Object
	counters []*meshfedv1.StateValue
	token    *meshfedv1.Token
	// initialized: this InitAuth entry created the signing key.
	initialized bool
	err         error
}

// NewFSM returns an FSM over an empty store.
func NewFSM(cfg state.Config, logger *slog.Logger) *FSM {
	return &FSM{cfg: cfg, logger: logger, store: state.New(cfg)}
}

// State returns the current store. After a restore it returns the new one.
func (f *FSM) State() *state.Store {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store
}

// Apply applies one committed log entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	st := f.State()
	if len(l.Data) == 0 {
		st.Touch(l.Index)
		return &applyResponse{err: errors.New("empty log entry")}
	}
	t, body := MessageType(l.Data[0]), l.Data[1:]
	f.applied[t].Add(1)
	if knownLogType(t, f.legacy) {
		return f.applyKnown(st, t, body, l.Index)
	}
	if t&IgnoreUnknownTypeFlag != 0 {
		f.logger.Warn("skipping unknown log entry type", "type", uint8(t), "index", l.Index)
		st.Touch(l.Index)
		return nil
	}
	panic(fmt.Sprintf("raft log entry %d has unknown type %d: this server is older than the one that wrote it; upgrade it", l.Index, uint8(t)))
}

// Applied returns how many entries of type t this FSM applied.
func (f *FSM) Applied(t MessageType) uint64 { return f.applied[t].Load() }

// applyKnown applies an entry of a type this server knows.
func (f *FSM) applyKnown(st *state.Store, t MessageType, body []byte, index uint64) interface{} {
	switch t {
	case UpdateStatusType:
		return f.applyUpdateStatus(st, body, index)
	case ApplyPlanType:
		return f.applyPlan(st, body, index)
	case RegisterAgentType:
		return f.applyRegisterAgent(st, body, index)
	case BatchType:
		return f.applyBatch(st, body, index)
	case ApplyObjectsType:
		return f.applyObjects(st, body, index)
	case DeleteObjectType:
		return f.applyDelete(st, body, index, st.Delete)
	case DeleteCascadeType:
		return f.applyDelete(st, body, index, st.DeleteCascade)
	case UpsertMemberType:
		return f.applyUpsertMember(st, body, index)
	case RemoveMemberType:
		return f.applyRemoveMember(st, body, index)
	case CommitStateType:
		return f.applyCommitState(st, body, index)
	case PutPackageType:
		return f.applyPutPackage(st, body, index)
	case InitAuthType:
		return f.applyInitAuth(st, body, index)
	case PutTokenType:
		return f.applyPutToken(st, body, index)
	case RevokeTokenType:
		return f.applyRevokeToken(st, body, index)
	case AppendAuditType:
		return f.applyAppendAudit(st, body, index)
	case TrimAuditType:
		return decodeApply(st, body, index, func(req *raftlogv1.TrimAudit) interface{} {
			st.TrimAudit(index, req.GetBeforeRevision())
			return &applyResponse{}
		})
	}
	panic(fmt.Sprintf("raft log entry %d: known type %s has no apply function", index, t))
}

func (f *FSM) applyObjects(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.ApplyObjects) interface{} {
		if isLegacySystem(req) {
			return f.applyLegacySystem(st, req, index)
		}
		res, err := st.Apply(index, req, false)
		if err != nil {
			st.Touch(index)
		}
		recordAudit(st, index, req.GetAudit(), err)
		return &applyResponse{apply: res, err: err}
	})
}

// applyDelete applies a DeleteObject body with del: st.Delete for
// DeleteObjectType, st.DeleteCascade for DeleteCascadeType.
func (f *FSM) applyDelete(st *state.Store, body []byte, index uint64,
	del func(uint64, *raftlogv1.DeleteObject, bool) (*meshfedv1.Object, error)) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.DeleteObject) interface{} {
		old, err := del(index, req, false)
		if err != nil {
			st.Touch(index)
		}
		recordAudit(st, index, req.GetAudit(), err)
		return &applyResponse{deleted: old, err: err}
	})
}

func (f *FSM) applyUpsertMember(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(m *raftlogv1.Member) interface{} {
		err := st.UpsertMember(index, m)
		recordAudit(st, index, m.GetAudit(), err)
		return &applyResponse{err: err}
	})
}

func (f *FSM) applyRemoveMember(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(m *raftlogv1.RemoveMember) interface{} {
		err := st.RemoveMember(index, m.GetId())
		recordAudit(st, index, m.GetAudit(), err)
		return &applyResponse{err: err}
	})
}

func (f *FSM) applyCommitState(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.CommitState) interface{} {
		counters, err := st.CommitState(index, req)
		if err != nil {
			st.Touch(index)
		}
		return &applyResponse{counters: counters, err: err}
	})
}

func (f *FSM) applyPutPackage(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.PutPackage) interface{} {
		audit := req.GetAudit()
		req.Audit = nil // the stored package carries no audit record
		err := st.PutPackage(index, req)
		recordAudit(st, index, audit, err)
		return &applyResponse{err: err}
	})
}

func (f *FSM) applyInitAuth(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.InitAuth) interface{} {
		ok, err := st.InitAuth(index, req)
		return &applyResponse{initialized: ok, err: err}
	})
}

func (f *FSM) applyPutToken(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.PutToken) interface{} {
		err := st.PutToken(index, req)
		recordAudit(st, index, req.GetAudit(), err)
		return &applyResponse{token: req.GetToken(), err: err}
	})
}

func (f *FSM) applyRevokeToken(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.RevokeToken) interface{} {
		t, err := st.RevokeToken(index, req)
		recordAudit(st, index, req.GetAudit(), err)
		return &applyResponse{token: t, err: err}
	})
}

func (f *FSM) applyAppendAudit(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.AppendAudit) interface{} {
		st.AppendAudit(index, req.GetRecords()...)
		return &applyResponse{}
	})
}

// recordAudit stores the audit record a write carried (decoded from the
// entry, so the store may keep it), with the write's outcome. Every server
// computes the same outcome from the same entry.
func recordAudit(st *state.Store, index uint64, rec *meshfedv1.AuditRecord, err error) {
	if rec == nil {
		return
	}
	fillOutcome(rec, err)
	st.AppendAudit(index, rec)
}

// Snapshot captures the store cheaply; the encoding happens in Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.State().Snapshot()}, nil
}

// Restore replaces the store with the one encoded in rc, swapping it in under
// the lock and waking the old store's watchers.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	snap, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	st, err := state.FromProto(f.cfg, snap)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	old := f.store
	f.store = st
	f.mu.Unlock()
	old.Abandon()
	f.logger.Info("restored state from snapshot", "revision", snap.GetRevision(), "objects", len(snap.GetObjects()))
	return nil
}

// readSnapshot decodes a snapshot stream: the magic line, then the protobuf.
func readSnapshot(r io.Reader) (*raftlogv1.Snapshot, error) {
	br := bufio.NewReader(r)
	head := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, head); err != nil || !bytes.Equal(head, snapshotMagic) {
		return nil, errors.New("not a meshfed snapshot (bad header)")
	}
	body, err := io.ReadAll(br)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	var snap raftlogv1.Snapshot
	if err := proto.Unmarshal(body, &snap); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	return &snap, nil
}

type fsmSnapshot struct{ snap *state.Snapshot }

// Persist encodes the snapshot into the sink, cancelling it on any error.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) write(w io.Writer) error {
	p, err := s.snap.Proto()
	if err != nil {
		return err
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if _, err := w.Write(snapshotMagic); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

func (s *fsmSnapshot) Release() {}

// decodeApply decodes an entry's body into a new M and applies it. An
// entry that does not decode changes nothing but the store's revision.
func decodeApply[M any, PM interface {
	*M
	proto.Message
}](st *state.Store, body []byte, index uint64, apply func(PM) interface{}) interface{} {
	req := PM(new(M))
	if err := proto.Unmarshal(body, req); err != nil {
		st.Touch(index)
		return &applyResponse{err: fmt.Errorf("decode %s: %w", req.ProtoReflect().Descriptor().Name(), err)}
	}
	return apply(req)
}
