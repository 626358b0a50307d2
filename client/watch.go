package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrResync is returned by Watch when the server no longer holds the events
// after the requested revision: list again and watch from the list's revision.
var ErrResync = errors.New("watch revision compacted: resync from a full list")

// Watch streams events after rev to fn, reconnecting (to any server) and
// resuming from the last revision seen, until ctx ends, fn returns an error,
// or the server asks for a resync (ErrResync).
func (c *Client) Watch(ctx context.Context, req *meshfedv1.WatchRequest, fn func(*meshfedv1.WatchResponse) error) error {
	rev := req.GetStartRevision()
	backoff := 50 * time.Millisecond
	for {
		err := c.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			r := &meshfedv1.WatchRequest{Kind: req.GetKind(), Kinds: req.GetKinds(), Agent: req.GetAgent(),
				Tenant: req.GetTenant(), Namespace: req.GetNamespace(), StartRevision: rev}
			stream, err := Objects(conn).Watch(ctx, r)
			if err != nil {
				return err
			}
			for {
				resp, err := stream.Recv()
				if err != nil {
					if err == io.EOF {
						return status.Error(codes.Unavailable, "watch stream ended")
					}
					return err
				}
				if resp.GetResyncRequired() {
					return ErrResync
				}
				if err := fn(resp); err != nil {
					return err
				}
				backoff = 50 * time.Millisecond
				if resp.GetRevision() > rev {
					rev = resp.GetRevision()
				}
			}
		})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrResync):
			return ErrResync
		case status.Code(err) == codes.Unavailable:
		default:
			return fmt.Errorf("watch: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
