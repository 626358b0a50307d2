package limits

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func detectRlimit() (*Enforcer, error) {
	var cur unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_DATA, nil, &cur); err != nil {
		return nil, fmt.Errorf("prlimit: %w", err)
	}
	return &Enforcer{mech: Rlimit}, nil
}

// setRlimits caps a process's data segment (heap and private anonymous
// mappings, since Linux 4.7) at its memory limit. RLIMIT_DATA rather than
// RLIMIT_AS: runtimes such as Go's and the JVM's reserve far more address
// space than they use, and would not even start under an address-space
// cap. CPU has no rate limit among rlimits (RLIMIT_CPU is a lifetime
// budget of CPU seconds), so none is set.
func setRlimits(pid int, l Limits) error {
	if l.MemoryBytes <= 0 {
		return nil
	}
	lim := unix.Rlimit{Cur: uint64(l.MemoryBytes), Max: uint64(l.MemoryBytes)}
	if err := unix.Prlimit(pid, unix.RLIMIT_DATA, &lim, nil); err != nil {
		return fmt.Errorf("set RLIMIT_DATA of process %d: %w", pid, err)
	}
	return nil
}
