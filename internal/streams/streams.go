// Package streams holds the loop every reader of a gRPC stream of chunks
// or events repeats, on the client side and the server side alike.
package streams

import (
	"errors"
	"io"
)

// Receiver is a stream read message by message; gRPC's client and server
// streams are ones.
type Receiver[M any] interface {
	Recv() (M, error)
}

// Each calls fn with every message of s until the stream ends, which
// returns nil, or Recv or fn fails, which returns that error.
func Each[M any](s Receiver[M], fn func(M) error) error {
	for {
		msg, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}
