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
	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
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
		stream, err := openNamesWatch(ctx, cc[w%len(cc)])
		if err != nil {
			return WatchResult{}, fmt.Errorf("open watch %d: %w", w, err)
		}
		go func() {
			sawSync := false
			var resp watchNames
			for {
				if err := stream.RecvMsg(&resp); err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("watch %d: %w", w, err)
					}
					return
				}
				for _, name := range resp.names {
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

// openNamesWatch opens a watch of Cluster objects on conn whose responses
// are read with watchNames.
func openNamesWatch(ctx context.Context, conn *grpc.ClientConn) (grpc.ClientStream, error) {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, meshfedv1.ObjectService_Watch_FullMethodName,
		grpc.ForceCodecV2(namesCodec{encoding.GetCodecV2(gproto.Name)}))
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(&meshfedv1.WatchRequest{Kind: objects.KindCluster}); err != nil {
		return nil, err
	}
	return stream, stream.CloseSend()
}

// watchNames is a watch response of Cluster objects read only for the
// names of its events' objects. The thousand watchers of the measurement
// share the machine's cores with the servers, so they skip decoding the
// rest of each 1 KiB object, as a thousand agents on their own machines
// would not take the servers' CPU to decode theirs.
type watchNames struct{ names []string }

// namesCodec is the proto codec, except that it reads a watchNames from
// the wire by walking the fields down to the names.
type namesCodec struct{ encoding.CodecV2 }

func (c namesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	w, ok := v.(*watchNames)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	w.names = w.names[:0]
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	// WatchResponse.events (1) > Event.object (2) > Object.cluster (1) >
	// Cluster.metadata (3) > ObjectMeta.name (1).
	return eachField(buf.ReadOnlyData(), 1, func(ev []byte) error {
		return eachField(ev, 2, func(obj []byte) error {
			return eachField(obj, 1, func(cl []byte) error {
				return eachField(cl, 3, func(md []byte) error {
					return eachField(md, 1, func(name []byte) error {
						w.names = append(w.names, string(name))
						return nil
					})
				})
			})
		})
	})
}

// eachField calls fn with the value of every length-delimited field num
// of the message encoded in b.
func eachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("watch response: %w", protowire.ParseError(l))
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return fmt.Errorf("watch response field %d: %w", num, protowire.ParseError(l))
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return fmt.Errorf("watch response field %d: %w", n, protowire.ParseError(l))
		}
		b = b[l:]
	}
	return nil
}
