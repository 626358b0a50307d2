package client

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeServer answers every Get, Apply and Watch with err and counts calls.
type fakeServer struct {
	meshfedv1.UnimplementedObjectServiceServer
	err   error
	calls atomic.Int32
}

func (f *fakeServer) Get(context.Context, *meshfedv1.GetRequest) (*meshfedv1.GetResponse, error) {
	f.calls.Add(1)
	return nil, f.err
}

func (f *fakeServer) Apply(context.Context, *meshfedv1.ApplyRequest) (*meshfedv1.ApplyResponse, error) {
	f.calls.Add(1)
	return nil, f.err
}

func (f *fakeServer) Watch(*meshfedv1.WatchRequest, grpc.ServerStreamingServer[meshfedv1.WatchResponse]) error {
	f.calls.Add(1)
	return f.err
}

func startFake(t *testing.T, err error) (*fakeServer, string) {
	t.Helper()
	lis, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	f := &fakeServer{err: err}
	s := grpc.NewServer()
	meshfedv1.RegisterObjectServiceServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return f, lis.Addr().String()
}

// TestAuthErrorsNotRetried checks that a refusal of the caller's identity or
// rights is returned at once: another server would refuse it the same way,
// and a write must not be sent twice. Unavailable still fails over.
func TestAuthErrorsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     codes.Code
		failOver bool
	}{
		{"unauthenticated", codes.Unauthenticated, false},
		{"permission denied", codes.PermissionDenied, false},
		{"invalid argument", codes.InvalidArgument, false},
		{"unavailable", codes.Unavailable, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, a1 := startFake(t, status.Error(tc.code, "refused by the first server"))
			second, a2 := startFake(t, status.Error(tc.code, "refused by the second server"))
			c, err := New([]string{a1, a2})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := int32(0)
			if tc.failOver {
				want = 1
			}
			calls := []struct {
				what string
				call func(ctx context.Context) error
			}{
				{"Get", func(ctx context.Context) error {
					_, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: "Cluster", Name: "a"})
					return err
				}},
			}
			if !tc.failOver {
				// A write answered Unavailable may have been accepted (see
				// do), and Watch retries Unavailable until its context
				// ends: both are checked only with errors that must end
				// them at once.
				calls = append(calls, []struct {
					what string
					call func(ctx context.Context) error
				}{
					{"Apply", func(ctx context.Context) error {
						_, err := c.Apply(ctx, &meshfedv1.ApplyRequest{})
						return err
					}},
					{"Watch", func(ctx context.Context) error {
						return c.Watch(ctx, &meshfedv1.WatchRequest{Kind: "Cluster"}, func(*meshfedv1.WatchResponse) error { return nil })
					}},
				}...)
			}
			for _, cl := range calls {
				first.calls.Store(0)
				second.calls.Store(0)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := cl.call(ctx)
				cancel()
				if status.Code(err) != tc.code {
					t.Errorf("%s: got %v, want code %s", cl.what, err, tc.code)
				}
				if got := first.calls.Load(); got != 1 {
					t.Errorf("%s: first server called %d times, want 1", cl.what, got)
				}
				if got := second.calls.Load(); got != want {
					t.Errorf("%s: second server called %d times, want %d", cl.what, got, want)
				}
			}
		})
	}
}

// TestWriteNotResentAfterAmbiguousUnavailable checks that a write answered
// Unavailable without the NOT_ACCEPTED reason (as when the server dies
// mid-call) is reported as Unknown and not sent to another server, even on
// the first call of a connection that was not yet ready; and that a clean
// refusal (NOT_ACCEPTED) fails over.
func TestWriteNotResentAfterAmbiguousUnavailable(t *testing.T) {
	notAcceptedErr, err := status.New(codes.Unavailable, "not the leader").WithDetails(&errdetails.ErrorInfo{Reason: "NOT_ACCEPTED", Domain: "meshfed.io"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		err      error
		want     codes.Code
		failOver bool
	}{
		{"connection broke", status.Error(codes.Unavailable, "error reading from server: EOF"), codes.Unknown, false},
		{"refused before accepting", notAcceptedErr.Err(), codes.Unavailable, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, a1 := startFake(t, tc.err)
			second, a2 := startFake(t, tc.err)
			c, err := New([]string{a1, a2})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = c.Apply(ctx, &meshfedv1.ApplyRequest{})
			if status.Code(err) != tc.want {
				t.Fatalf("Apply: got %v, want code %s", err, tc.want)
			}
			want := int32(0)
			if tc.failOver {
				want = 1
			}
			if got := first.calls.Load(); got != 1 {
				t.Errorf("first server called %d times, want 1", got)
			}
			if got := second.calls.Load(); got != want {
				t.Errorf("second server called %d times, want %d", got, want)
			}
		})
	}
}
