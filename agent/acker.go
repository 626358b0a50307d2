package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// acker acknowledges processed messages in batches, committing the
// function's buffered state changes first: an input is acknowledged only
// after its outputs were confirmed and its state change is durable.
type acker struct {
	consumer pulsar.Consumer
	state    *fnState
	logger   *slog.Logger
	queue    chan pulsar.Message

	// mu guards closed; done and close hold it so no send races the close.
	mu     sync.Mutex
	closed bool
}

func newAcker(c pulsar.Consumer, st *fnState, logger *slog.Logger) *acker {
	return &acker{consumer: c, state: st, logger: logger, queue: make(chan pulsar.Message, 4096)}
}

// done queues a message for acknowledgement. Safe from producer callbacks,
// also after close: a message completed after the instance stopped is left
// unacknowledged and redelivered.
func (a *acker) done(m pulsar.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.queue <- m
	}
}

// close stops run after it acknowledged everything queued.
func (a *acker) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
}

func (a *acker) run() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var batch []pulsar.Message
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.state.flush(ctx)
		cancel()
		for _, m := range batch {
			if err != nil {
				a.consumer.Nack(m)
			} else if aerr := a.consumer.Ack(m); aerr != nil {
				a.logger.Debug("ack", "err", aerr)
			}
		}
		if err != nil {
			a.logger.Warn("state commit failed; inputs will be redelivered", "err", err, "messages", len(batch))
		}
		batch = batch[:0]
	}
	for {
		select {
		case m, ok := <-a.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, m)
			if len(batch) >= 1000 {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}
