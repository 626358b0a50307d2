package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane"
	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// BenchmarkFSMBatch measures what every server spends applying group-
// committed writes: Batch entries of 64 user applies of a 1 KiB Cluster
// each, with its audit record, over 10,000 keys (decode, merge, store
// transaction, audit record, events). Reported per write:
//
//	go test ./bench -run '^$' -bench FSMBatch -benchmem
func BenchmarkFSMBatch(b *testing.B) {
	const perBatch = 64
	fsm := controlplane.NewFSM(state.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	filler := fillerFor(1024)
	now := timestamppb.Now()
	batch := func(first, worker int) []byte {
		out := []byte{byte(controlplane.BatchType)}
		for seq := first; seq < first+perBatch; seq++ {
			e := &raftlogv1.ApplyObjects{Now: now,
				Objects: []*meshfedv1.Object{benchCluster(fmt.Sprintf("b-%d", seq%KeySpace), fill(filler, worker, seq))},
				Audit: &meshfedv1.AuditRecord{Principal: "bench", Method: "/meshfed.v1.ObjectService/Apply", Action: "cluster.write",
					Targets: []*meshfedv1.AuditTarget{{Kind: "Cluster", Name: fmt.Sprintf("b-%d", seq%KeySpace)}}}}
			body, err := proto.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			out = binary.AppendUvarint(out, uint64(len(body)+1))
			out = append(out, byte(controlplane.ApplyObjectsType))
			out = append(out, body...)
		}
		return out
	}
	index := uint64(1)
	apply := func(seq int) {
		r := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: batch(seq, 0)})
		if _, ok := r.(interface{ Error() string }); ok {
			b.Fatalf("batch at %d: %v", index, r)
		}
		index++
	}
	for seq := 0; seq < KeySpace; seq += perBatch {
		apply(seq)
	}
	// Two versions of the same 64 batches, taking turns, so that every
	// write changes its object.
	entries := make([][]byte, 0, 128)
	for worker := range 2 {
		for i := range 64 {
			entries = append(entries, batch(i*perBatch, worker+1))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += perBatch {
		fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: entries[(i/perBatch)%len(entries)]})
		index++
	}
}
