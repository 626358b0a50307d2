package controlplane

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// Group commit: while one Raft entry is in flight, the leader's concurrent
// object writes queue up and go into the next entry together, as one
// BatchType entry. Each write keeps its own outcome: the FSM applies the
// sub-entries in order, each in its own store transaction, exactly as if
// they had been separate entries at the same index, and answers each one.
//
// Sub-entries of one batch share the batch's index, which is their
// revision and the resourceVersion of what they write. So that every
// version of an object still has its own resourceVersion, one batch never
// holds two writes of the same key; a write whose keys overlap waits for
// the next batch.

// Group commit limits.
const (
	// groupMaxInFlight bounds the batches proposed and not yet answered.
	groupMaxInFlight = 1
	// groupMaxEntries and groupMaxBytes bound one batch.
	groupMaxEntries = 512
	groupMaxBytes   = 4 << 20
)

// encodeBatch builds a BatchType entry from whole encoded entries.
func encodeBatch(subs [][]byte) []byte {
	n := 1
	for _, s := range subs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 1, n)
	b[0] = byte(BatchType)
	for _, s := range subs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeBatch splits the body of a BatchType entry into its sub-entries.
// It checks the whole framing before anything is applied.
func decodeBatch(body []byte) ([][]byte, error) {
	var subs [][]byte
	for len(body) > 0 {
		n, w := binary.Uvarint(body)
		if w <= 0 {
			return nil, fmt.Errorf("decode Batch: sub-entry %d: bad length", len(subs)+1)
		}
		body = body[w:]
		if n > uint64(len(body)) {
			return nil, fmt.Errorf("decode Batch: sub-entry %d: length %d exceeds the %d bytes left", len(subs)+1, n, len(body))
		}
		sub := body[:n]
		if len(sub) > 0 && MessageType(sub[0])&^IgnoreUnknownTypeFlag == BatchType {
			return nil, fmt.Errorf("decode Batch: sub-entry %d: a batch inside a batch", len(subs)+1)
		}
		subs = append(subs, sub)
		body = body[n:]
	}
	return subs, nil
}

// batchResponse is the FSM's answer to a BatchType entry: one answer per
// sub-entry, in order (each what FSM.Apply returns for such an entry alone).
type batchResponse struct{ resps []interface{} }

// applyBatch applies the sub-entries of a batch in order at index and
// publishes their events together.
func (f *FSM) applyBatch(st *state.Store, body []byte, index uint64) interface{} {
	subs, err := decodeBatch(body)
	if err != nil {
		st.Touch(index)
		return &applyResponse{err: err}
	}
	st.BeginBatch(index)
	defer st.EndBatch()
	out := make([]interface{}, len(subs))
	for i, sub := range subs {
		if len(sub) == 0 || !sharesBatchTxn(MessageType(sub[0])) {
			st.FlushBatch() // it writes in a go-memdb transaction of its own
		}
		out[i] = f.Apply(&raft.Log{Type: raft.LogCommand, Index: index, Data: sub})
	}
	return &batchResponse{resps: out}
}

// sharesBatchTxn reports whether entries of type t write through the
// store's shared batch transaction (object writes and their audit
// records); the others write in a transaction of their own.
func sharesBatchTxn(t MessageType) bool {
	switch t {
	case ApplyObjectsType, DeleteObjectType, DeleteCascadeType, UpdateStatusType, ApplyPlanType, RegisterAgentType:
		return true
	}
	return false
}

// entryKeys returns the store keys an entry writes when it may share a
// batch, or nil when it must go alone.
func entryKeys(t MessageType, body proto.Message) []string {
	switch t {
	case ApplyObjectsType:
		req, ok := body.(*raftlogv1.ApplyObjects)
		if !ok {
			return nil
		}
		keys := make([]string, 0, len(req.GetObjects())+len(req.GetDeletes()))
		for _, o := range req.GetObjects() {
			k := objects.KeyOf(o)
			if k == "" {
				return nil
			}
			keys = append(keys, k)
		}
		for _, d := range req.GetDeletes() {
			keys = append(keys, objects.Key(d.GetKind(), d.GetTenant(), d.GetNamespace(), d.GetName()))
		}
		return keys
	case DeleteObjectType, DeleteCascadeType:
		// A cascade also deletes assignments, which no user write in
		// the same batch can name (users do not write assignments).
		req, ok := body.(*raftlogv1.DeleteObject)
		if !ok {
			return nil
		}
		k, err := objects.LookupKind(req.GetKind())
		if err != nil {
			return nil
		}
		return []string{objects.Key(k.Name, req.GetTenant(), req.GetNamespace(), req.GetName())}
	}
	return nil
}

// proposal is one write waiting for group commit.
type proposal struct {
	buf  []byte
	keys []string
	// done is closed once resp, index and err are set.
	done  chan struct{}
	resp  interface{}
	index uint64
	err   error
}

// groupCommit batches concurrent proposals into Raft entries.
type groupCommit struct {
	// apply proposes one encoded entry (raft.Apply with the apply timeout).
	apply func(buf []byte) raft.ApplyFuture
	// batchOK reports whether every member applies BatchType entries.
	batchOK func() bool

	// mu guards queue and inFlight.
	mu sync.Mutex
	// queue holds proposals not yet in a batch, oldest first.
	queue []*proposal
	// inFlight counts batches proposed and not yet answered.
	inFlight int
}

// propose commits buf (an encoded entry writing keys) alone or in a batch
// and returns the FSM's answer for it and the index of the entry.
func (g *groupCommit) propose(buf []byte, keys []string) (interface{}, uint64, error) {
	p := &proposal{buf: buf, keys: keys, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	if g.inFlight >= groupMaxInFlight {
		// The batch in flight takes the queue when it is answered.
		g.mu.Unlock()
		<-p.done
		return p.resp, p.index, p.err
	}
	g.inFlight++
	batch := g.takeLocked()
	g.mu.Unlock()
	g.run(batch)
	<-p.done
	return p.resp, p.index, p.err
}

// run commits batch, then hands what queued meanwhile to a new goroutine
// (so the caller returns with its own answer) or frees the slot.
func (g *groupCommit) run(batch []*proposal) {
	g.commit(batch)
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.inFlight--
		g.mu.Unlock()
		return
	}
	next := g.takeLocked()
	g.mu.Unlock()
	go g.run(next)
}

// takeLocked removes the next batch from the queue: the oldest proposals,
// up to the limits, stopping at one whose keys overlap the batch's or that
// must go alone.
func (g *groupCommit) takeLocked() []*proposal {
	n, size := 1, len(g.queue[0].buf)
	if g.queue[0].keys != nil && len(g.queue) > 1 && g.batchOK() {
		seen := make(map[string]bool)
		for _, k := range g.queue[0].keys {
			seen[k] = true
		}
	scan:
		for _, p := range g.queue[1:] {
			if p.keys == nil || n >= groupMaxEntries || size+len(p.buf) > groupMaxBytes {
				break
			}
			for _, k := range p.keys {
				if seen[k] {
					break scan
				}
			}
			for _, k := range p.keys {
				seen[k] = true
			}
			n++
			size += len(p.buf)
		}
	}
	batch := slices.Clone(g.queue[:n])
	clear(g.queue[:n])
	g.queue = g.queue[n:]
	return batch
}

// commit proposes batch as one entry and answers each proposal.
func (g *groupCommit) commit(batch []*proposal) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	if len(batch) == 1 {
		p := batch[0]
		f := g.apply(p.buf)
		if p.err = f.Error(); p.err == nil {
			p.resp, p.index = f.Response(), f.Index()
		}
		return
	}
	subs := make([][]byte, len(batch))
	for i, p := range batch {
		subs[i] = p.buf
	}
	f := g.apply(encodeBatch(subs))
	err := f.Error()
	var resps []interface{}
	if err == nil {
		switch r := f.Response().(type) {
		case *batchResponse:
			resps = r.resps
		case *applyResponse:
			err = r.err
		}
		if err == nil && len(resps) != len(batch) {
			err = fmt.Errorf("batch of %d entries got %d answers", len(batch), len(resps))
		}
	}
	for i, p := range batch {
		if p.err = err; err == nil {
			p.resp, p.index = resps[i], f.Index()
		}
	}
}
