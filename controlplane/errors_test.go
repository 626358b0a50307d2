package controlplane

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestToStatusOutcomes checks that only errors Raft gives for entries it
// did not take into its log become a clean refusal (Unavailable with
// NOT_ACCEPTED), and that every error after which a write may still
// commit becomes Unknown.
func TestToStatusOutcomes(t *testing.T) {
	for _, tc := range []struct {
		err         error
		code        codes.Code
		notAccepted bool
	}{
		{fmt.Errorf("raft apply: %w", raft.ErrNotLeader), codes.Unavailable, true},
		{fmt.Errorf("raft apply: %w", raft.ErrEnqueueTimeout), codes.Unavailable, true},
		{fmt.Errorf("raft apply: %w", raft.ErrLeadershipTransferInProgress), codes.Unavailable, true},
		{ErrNoLeader, codes.Unavailable, true},
		{ErrShuttingDown, codes.Unavailable, true},
		{fmt.Errorf("%w: %w", ErrReadNotServed, raft.ErrLeadershipLost), codes.Unavailable, true},
		{ErrOutcomeUnknown, codes.Unknown, false},
		{fmt.Errorf("raft apply: %w", raft.ErrLeadershipLost), codes.Unknown, false},
		{fmt.Errorf("raft apply: %w", raft.ErrRaftShutdown), codes.Unknown, false},
		{fmt.Errorf("add voter: %w", raft.ErrLeadershipLost), codes.Unknown, false},
		{refuse(ErrInvalidArgument, "name: required"), codes.InvalidArgument, false},
		{refusef(ErrUnauthenticated, "token %s expired", "t1"), codes.Unauthenticated, false},
		{refuse(ErrPermissionDenied, "role viewer cannot write"), codes.PermissionDenied, false},
		{refuse(ErrNotFound, "peer s9 not found"), codes.NotFound, false},
		{fmt.Errorf("register: %w", refuse(ErrFailedPrecondition, "cluster a is not defined")), codes.FailedPrecondition, false},
	} {
		got := toStatus(tc.err)
		if c := status.Code(got); c != tc.code || notAcceptedStatus(got) != tc.notAccepted || status.Convert(got).Message() != tc.err.Error() && tc.code != codes.Unknown {
			t.Errorf("toStatus(%v) = %v (not accepted: %v), want code %s, not accepted %v", tc.err, got, notAcceptedStatus(got), tc.code, tc.notAccepted)
		}
	}
}
