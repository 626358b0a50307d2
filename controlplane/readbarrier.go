package controlplane

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// readBarrier makes leader reads linearizable. A read waits for a Raft
// barrier issued after it arrived: the barrier commits only while this node
// still leads, and returns once the FSM has applied every earlier entry.
// Concurrent reads share one barrier.
type readBarrier struct {
	raft    *raft.Raft
	timeout time.Duration

	// mu guards waiting and running.
	mu      sync.Mutex
	waiting []chan error
	running bool
}

func newReadBarrier(r *raft.Raft, timeout time.Duration) *readBarrier {
	return &readBarrier{raft: r, timeout: timeout}
}

// wait returns once a barrier started after the call has completed.
func (b *readBarrier) wait(ctx context.Context) error {
	ch := make(chan error, 1)
	b.mu.Lock()
	b.waiting = append(b.waiting, ch)
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *readBarrier) loop() {
	for {
		b.mu.Lock()
		batch := b.waiting
		b.waiting = nil
		if len(batch) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		err := b.raft.Barrier(b.timeout).Error()
		for _, ch := range batch {
			ch <- err
		}
	}
}
