package bench

import (
	"fmt"
	"testing"

	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// BenchmarkStoreApply measures the state store's cost of one 1 KiB write,
// the part of the FSM every server runs for every entry, once the event
// history is full (the steady state of a long-running server):
//
//	go test ./bench -run '^$' -bench StoreApply -benchmem
func BenchmarkStoreApply(b *testing.B) {
	filler := fillerFor(1024)
	for _, history := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			st := state.New(state.Config{EventHistory: history})
			write := func(index uint64, seq int) {
				req := &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{
					benchCluster(fmt.Sprintf("b-%d", seq%KeySpace), fill(filler, 0, seq)),
				}}
				if _, err := st.Apply(index, req, false); err != nil {
					b.Fatal(err)
				}
			}
			index := uint64(1)
			for seq := range history + 10 {
				write(index, seq)
				index++
			}
			b.ResetTimer()
			for seq := range b.N {
				write(index, seq)
				index++
			}
		})
	}
}
