package state

import (
	"fmt"
	"math"
	"testing"
)

func TestAuditIDSortsInLogOrder(t *testing.T) {
	for _, c := range []struct {
		rev uint64
		seq uint32
	}{{0, 0}, {1, 0}, {7, 3}, {12345678901234567890, 42}, {math.MaxUint64, math.MaxUint32}} {
		if got, want := auditID(c.rev, c.seq), fmt.Sprintf("%020d.%010d", c.rev, c.seq); got != want {
			t.Errorf("auditID(%d, %d) = %q, want %q", c.rev, c.seq, got, want)
		}
	}
}
