package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// WatchResult is the fan-out of single writes to many watch streams.
type WatchResult struct {
	Watchers, Writes int
	// P50 and P99 are of the time from sending a write until every stream
	// has received its event; AckP50 of the time until the write returned.
	P50, P99, AckP50 time.Duration
}

// WatchFanout opens watchers watch streams on Cluster objects, spread over
// conns connections round-robin over addrs (every server serves watches),
// then applies writes objects one at a time and times each until all the
// streams have delivered it.
func WatchFanout(ctx context.Context, addrs []string, watchers, conns, writes, size int) (WatchResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cc []*grpc.ClientConn
	defer func() {
		for _, c := range cc {
			c.Close()
		}
	}()
	for i := range conns {
		c, err := grpc.NewClient(addrs[i%len(addrs)], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return WatchResult{}, fmt.Errorf("dial: %w", err)
		}
		cc = append(cc, c)
	}
	// Write i is object w-i. Writes of w-sync prove every stream is open.
	counts := make([]atomic.Int32, writes)
	done := make([]chan struct{}, writes)
	for i := range done {
		done[i] = make(chan struct{})
	}
	var synced atomic.Int32
	syncDone := make(chan struct{})
	errs := make(chan error, watchers)
	for w := range watchers {
		stream, err := meshfedv1.NewObjectServiceClient(cc[w%len(cc)]).Watch(ctx, &meshfedv1.WatchRequest{Kind: objects.KindCluster})
		if err != nil {
			return WatchResult{}, fmt.Errorf("open watch %d: %w", w, err)
		}
		go func() {
			sawSync := false
			for {
				resp, err := stream.Recv()
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("watch %d: %w", w, err)
					}
					return
				}
				for _, ev := range resp.GetEvents() {
					name := objects.Meta(ev.GetObject()).GetName()
					if name == "w-sync" {
						if !sawSync && synced.Add(1) == int32(watchers) {
							close(syncDone)
						}
						sawSync = true
						continue
					}
					i, ok := watchIndex(name)
					if ok && i < len(counts) && counts[i].Add(1) == int32(watchers) {
						close(done[i])
					}
				}
			}
		}()
	}
	c, err := client.New(addrs)
	if err != nil {
		return WatchResult{}, err
	}
	defer c.Close()
	filler := fillerFor(size)
	apply := func(name string, seq int) error {
		_, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{benchCluster(name, fill(filler, 0, seq))}})
		return err
	}
	wait := func(i int) error {
		select {
		case <-done[i]:
			return nil
		case err := <-errs:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("write %d reached %d of %d watchers in 30s", i, counts[i].Load(), watchers)
		}
	}
	// Streams register asynchronously: repeat the sync write until every
	// stream has seen one, so no measured write races a stream's start.
	err = waitUntil(ctx, 60*time.Second, "open watch streams", func() error {
		if err := apply("w-sync", int(time.Now().UnixNano())); err != nil {
			return err
		}
		select {
		case <-syncDone:
			return nil
		case err := <-errs:
			return err
		case <-time.After(time.Second):
			return fmt.Errorf("%d of %d streams saw a sync write", synced.Load(), watchers)
		}
	})
	if err != nil {
		return WatchResult{}, err
	}
	var fan, ack []time.Duration
	for i := range writes {
		t0 := time.Now()
		if err := apply(fmt.Sprintf("w-%d", i), i); err != nil {
			return WatchResult{}, fmt.Errorf("write %d: %w", i, err)
		}
		ack = append(ack, time.Since(t0))
		if err := wait(i); err != nil {
			return WatchResult{}, err
		}
		fan = append(fan, time.Since(t0))
	}
	return WatchResult{Watchers: watchers, Writes: writes, P50: Percentile(fan, 0.5), P99: Percentile(fan, 0.99), AckP50: Percentile(ack, 0.5)}, nil
}

// watchIndex maps the object name w-N to N.
func watchIndex(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "w-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}
