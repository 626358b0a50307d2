// Package client is the Go client of the meshfed control plane: a set of
// server addresses with fail-over, and typed calls over the gRPC API. The
// CLI, agents and tests use it.
package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// Client talks to any of several servers, moving on to the next one when a
// server is unreachable or has no leader.
type Client struct {
	addrs []string
	opts  []grpc.DialOption

	// mu guards conns and cur.
	mu    sync.Mutex
	conns []*grpc.ClientConn
	// cur is the index of the address that last answered.
	cur int
	// leaderHint is 1 + the index of the address a follower named as the
	// leader's during the last call; zero: none named.
	leaderHint atomic.Int32
}

// leaderHeader is the response header in which a server that forwarded a
// call to the leader names the leader's gRPC address
// (controlplane.LeaderHeader).
const leaderHeader = "meshfed-leader"

// learnLeader notes the leader a forwarding follower names, when it is one
// of the client's addresses, so the next calls go to it directly and skip
// the follower's hop. Servers reached through other addresses (a load
// balancer, other names) are not dialled: the hint is only a preference
// among the configured servers, and fail-over stays as it was.
func (c *Client) learnLeader(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var md metadata.MD
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&md))...)
	if v := md.Get(leaderHeader); len(v) > 0 {
		if i := slices.Index(c.addrs, v[0]); i >= 0 {
			c.leaderHint.Store(int32(i + 1))
		}
	}
	return err
}

// ParseAddrs splits a comma-separated address list, dropping blanks.
func ParseAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// New returns a client for the given gRPC addresses. Connections are made lazily.
func New(addrs []string, opts ...grpc.DialOption) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no server address: pass --server host:port[,host:port...] or set MESHFED_SERVER")
	}
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	opts = append(opts, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: time.Second,
	}),
		// Detect a frozen or partitioned server in about 5 s so calls and
		// watches fail over instead of hanging.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 3 * time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}),
		grpc.WithStatsHandler(sentTracker{}))
	c := &Client{addrs: addrs, conns: make([]*grpc.ClientConn, len(addrs))}
	opts = append(opts, grpc.WithChainUnaryInterceptor(c.learnLeader))
	c.opts = opts
	for i, a := range addrs {
		conn, err := grpc.NewClient(a, opts...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("server address %q: %w", a, err)
		}
		c.conns[i] = conn
	}
	return c, nil
}

// Close closes every connection.
func (c *Client) Close() error {
	for _, conn := range c.conns {
		if conn != nil {
			conn.Close()
		}
	}
	return nil
}

// Addrs returns the configured addresses.
func (c *Client) Addrs() []string { return c.addrs }

// retryable reports whether a call failed as unavailable: a read may be
// sent to another server; a write only when notAccepted or when it never
// left this client (see do). Every other code is final, Unauthenticated and
// PermissionDenied included: every server would refuse the caller alike.
func retryable(err error) bool {
	return status.Code(err) == codes.Unavailable
}

// notAccepted reports whether a server refused the request before
// accepting it (controlplane.NotAcceptedReason), so resending it is safe.
func notAccepted(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "NOT_ACCEPTED" {
			return true
		}
	}
	return false
}

// Do runs call against the servers in turn, starting with the one that last
// answered, until one answers with something other than Unavailable. Use it
// for writes: a server that timed out may have accepted the write, so Do
// does not move on after a timeout.
func (c *Client) Do(ctx context.Context, call func(ctx context.Context, conn *grpc.ClientConn) error) error {
	return c.do(ctx, false, call)
}

// DoRead is Do for calls that are safe to repeat (reads, watches): it also
// moves on from a server that used up its share of the deadline.
func (c *Client) DoRead(ctx context.Context, call func(ctx context.Context, conn *grpc.ClientConn) error) error {
	return c.do(ctx, true, call)
}

func (c *Client) do(ctx context.Context, idempotent bool, call func(ctx context.Context, conn *grpc.ClientConn) error) error {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var errs []string
	for i := range c.addrs {
		idx := (start + i) % len(c.addrs)
		attempt, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && len(c.addrs) > 1 {
			// Give each server a share of the deadline so a black-holed one
			// cannot eat all of it.
			attempt, cancel = context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(c.addrs)-i))
		}
		before := c.conns[idx].GetState()
		sent := new(atomic.Bool)
		attempt = context.WithValue(attempt, sentKey{}, sent)
		err := call(attempt, c.conns[idx])
		attemptTimedOut := attempt.Err() != nil && ctx.Err() == nil
		cancel()
		if idempotent && attemptTimedOut {
			errs = append(errs, fmt.Sprintf("%s: no answer within its share of the deadline", c.addrs[idx]))
			continue
		}
		if !idempotent && retryable(err) && !notAccepted(err) && (sent.Load() || before == connectivity.Ready) {
			// The connection broke after the request went out on it (or
			// may have: it was ready): the server may have accepted the
			// write. Sending it elsewhere could apply it twice.
			return status.Errorf(codes.Unknown, "write outcome unknown: %s stopped answering mid-request (%s); read the object before retrying",
				c.addrs[idx], status.Convert(err).Message())
		}
		if err == nil || !retryable(err) || ctx.Err() != nil {
			if err == nil {
				c.mu.Lock()
				c.cur = idx
				if h := c.leaderHint.Swap(0); h > 0 {
					c.cur = int(h - 1)
				}
				c.mu.Unlock()
			}
			return err
		}
		errs = append(errs, fmt.Sprintf("%s: %s", c.addrs[idx], status.Convert(err).Message()))
	}
	return status.Errorf(codes.Unavailable, "no server could serve the request (%s)", strings.Join(errs, "; "))
}

// sentKey is the context key of an attempt's *atomic.Bool that sentTracker
// sets once the request's headers were handed to a connection.
type sentKey struct{}

// sentTracker tells do whether an attempt left this client: a call on a
// connection that was still connecting may go out and then fail with
// Unavailable, and such a write may have been accepted.
type sentTracker struct{}

func (sentTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (sentTracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.OutHeader); ok && h.Client {
		if sent, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
			sent.Store(true)
		}
	}
}

func (sentTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (sentTracker) HandleConn(context.Context, stats.ConnStats) {}

// Objects returns the object API of a connection (for use inside Do).
func Objects(conn *grpc.ClientConn) meshfedv1.ObjectServiceClient {
	return meshfedv1.NewObjectServiceClient(conn)
}

// Operator returns the operator API of a connection (for use inside Do).
func Operator(conn *grpc.ClientConn) meshfedv1.OperatorServiceClient {
	return meshfedv1.NewOperatorServiceClient(conn)
}

// Tokens returns the token API of a connection (for use inside Do).
func Tokens(conn *grpc.ClientConn) meshfedv1.TokenServiceClient {
	return meshfedv1.NewTokenServiceClient(conn)
}

// Audit returns the audit API of a connection (for use inside Do).
func Audit(conn *grpc.ClientConn) meshfedv1.AuditServiceClient {
	return meshfedv1.NewAuditServiceClient(conn)
}

// Apply writes objects atomically.
func (c *Client) Apply(ctx context.Context, req *meshfedv1.ApplyRequest) (*meshfedv1.ApplyResponse, error) {
	var resp *meshfedv1.ApplyResponse
	err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = Objects(conn).Apply(ctx, req)
		return err
	})
	return resp, err
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, req *meshfedv1.GetRequest) (*meshfedv1.GetResponse, error) {
	var resp *meshfedv1.GetResponse
	err := c.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = Objects(conn).Get(ctx, req)
		return err
	})
	return resp, err
}

// List reads the objects of a kind.
func (c *Client) List(ctx context.Context, req *meshfedv1.ListRequest) (*meshfedv1.ListResponse, error) {
	var resp *meshfedv1.ListResponse
	err := c.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = Objects(conn).List(ctx, req)
		return err
	})
	return resp, err
}

// Delete removes one object.
func (c *Client) Delete(ctx context.Context, req *meshfedv1.DeleteRequest) (*meshfedv1.DeleteResponse, error) {
	var resp *meshfedv1.DeleteResponse
	err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = Objects(conn).Delete(ctx, req)
		return err
	})
	return resp, err
}
