package controlplane

import (
	"sync"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
)

// watchEncodingsKept bounds the encoded watch responses kept for sharing.
const watchEncodingsKept = 16

// watchEncodings shares the encoding of a watch response among the streams
// that send the same one: when a write wakes a thousand watches of the same
// kind, the event is marshalled once, not a thousand times. Events in the
// store's history are immutable, so a response is identified by its first
// and last event and their count.
type watchEncodings struct {
	// mu guards recent.
	mu sync.Mutex
	// recent holds the newest encodings, oldest first.
	recent []*watchEncoding
}

type watchEncoding struct {
	first, last *meshfedv1.Event
	n           int
	// ready is closed once msg and err are set.
	ready chan struct{}
	msg   grpc.PreparedMsg
	err   error
}

// sendCompressor is what the transport stream of a server call reports
// about the compression of what it sends.
type sendCompressor interface{ SendCompress() string }

// send sends a response carrying events (resp.Events) on stream, encoding
// it once for every stream that sends the same events uncompressed.
func (w *watchEncodings) send(stream grpc.ServerStream, resp *meshfedv1.WatchResponse) error {
	evs := resp.GetEvents()
	ts, ok := grpc.ServerTransportStreamFromContext(stream.Context()).(sendCompressor)
	if len(evs) == 0 || !ok || ts.SendCompress() != "" {
		// A prepared message carries one stream's compression; share
		// only uncompressed ones.
		return stream.SendMsg(resp)
	}
	first, last := evs[0], evs[len(evs)-1]
	w.mu.Lock()
	var e *watchEncoding
	for _, c := range w.recent {
		if c.first == first && c.last == last && c.n == len(evs) {
			e = c
			break
		}
	}
	if e == nil {
		e = &watchEncoding{first: first, last: last, n: len(evs), ready: make(chan struct{})}
		if len(w.recent) >= watchEncodingsKept {
			w.recent = append(w.recent[:0], w.recent[1:]...)
		}
		w.recent = append(w.recent, e)
		w.mu.Unlock()
		e.err = e.msg.Encode(stream, resp)
		close(e.ready)
	} else {
		w.mu.Unlock()
		<-e.ready
	}
	if e.err != nil {
		return stream.SendMsg(resp)
	}
	return stream.SendMsg(&e.msg)
}
