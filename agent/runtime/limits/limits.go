// Package limits enforces CPU and memory limits on the processes of exec
// instances. It detects the best mechanism the host offers — cgroup v2,
// cgroup v1, resource limits (setrlimit) or none — and, per process,
// creates a group with the function's limits, moves the process into it,
// tells whether the kernel killed it for exceeding its memory limit, and
// removes the group when the process is gone. docs/limits.md says what each
// mechanism enforces.
package limits

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mechanism names how limits are enforced; it is what agents report.
type Mechanism string

// Mechanisms, best first.
const (
	// Cgroup2 is the unified cgroup hierarchy: memory.max, cpu.max, and
	// memory.events counting OOM kills.
	Cgroup2 Mechanism = "cgroup2"
	// Cgroup1 is the legacy hierarchy's memory and cpu controllers:
	// memory.limit_in_bytes, cpu.cfs_quota_us, and memory.oom_control
	// counting OOM kills.
	Cgroup1 Mechanism = "cgroup1"
	// Rlimit is setrlimit(2) on the process: RLIMIT_DATA caps its memory
	// (allocations fail past it); CPU is not limited.
	Rlimit Mechanism = "rlimit"
	// None enforces nothing.
	None Mechanism = "none"
	// Auto asks Detect for the best available mechanism.
	Auto Mechanism = "auto"
)

// ParseMechanism checks a --limits value.
func ParseMechanism(s string) (Mechanism, error) {
	switch m := Mechanism(s); m {
	case Auto, Cgroup2, Cgroup1, Rlimit, None:
		return m, nil
	}
	return "", fmt.Errorf("unknown limits mechanism %q (auto, cgroup2, cgroup1, rlimit or none)", s)
}

// Limits are one process's limits. Zero fields are not limited.
type Limits struct {
	// CPUMillis is the CPU time per second of wall time the process may
	// use, in thousandths of a core (500: half a core).
	CPUMillis int64
	// MemoryBytes caps the process's memory.
	MemoryBytes int64
}

// IsZero reports whether nothing is limited.
func (l Limits) IsZero() bool { return l.CPUMillis <= 0 && l.MemoryBytes <= 0 }

// DefaultRoot is where cgroup file systems are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// DefaultParent is the cgroup, relative to each hierarchy's root, under
// which the agent creates one group per process.
const DefaultParent = "meshfed"

// cfsPeriod is the CPU bandwidth period, in microseconds, of both cgroup
// versions' CPU limits (the kernel's default).
const cfsPeriod = 100_000

// Options locate the cgroup file systems.
type Options struct {
	// Root is where cgroup file systems are mounted; empty: DefaultRoot.
	Root string
	// Parent is the cgroup, relative to the hierarchy's root, that holds
	// the agent's groups; empty: DefaultParent. Give each agent on one host
	// its own.
	Parent string
}

// ErrUnavailable is returned by Detect when the mechanism asked for cannot
// be used on this host; the error says why.
var ErrUnavailable = errors.New("limits mechanism unavailable")

// Enforcer applies limits with one mechanism. It is safe for concurrent
// use. A nil Enforcer enforces nothing.
type Enforcer struct {
	mech Mechanism
	// dirs are the parent directories groups are created in: one for
	// cgroup v2, memory then cpu for cgroup v1; nil otherwise.
	dirs []string
}

// Mechanism is what the enforcer uses.
func (e *Enforcer) Mechanism() Mechanism {
	if e == nil {
		return None
	}
	return e.mech
}

// Detect returns an enforcer using want, or, for Auto, the best mechanism
// that works here: cgroup v2 with the memory and cpu controllers and a
// writable parent, then cgroup v1 with writable memory and cpu
// hierarchies, then rlimits (always available on Linux). It creates the
// parent cgroup. An explicit mechanism that does not work is an error
// wrapping ErrUnavailable that says why.
func Detect(want Mechanism, opts Options) (*Enforcer, error) {
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if opts.Parent == "" {
		opts.Parent = DefaultParent
	}
	parent := filepath.Clean(strings.Trim(opts.Parent, "/"))
	if parent == "." || strings.HasPrefix(parent, "..") {
		return nil, fmt.Errorf("cgroup parent %q: must name a group below the hierarchy's root", opts.Parent)
	}
	try := []Mechanism{want}
	if want == Auto {
		try = []Mechanism{Cgroup2, Cgroup1, Rlimit}
	}
	var whys []string
	for _, m := range try {
		var e *Enforcer
		var err error
		switch m {
		case Cgroup2:
			e, err = detectV2(opts.Root, parent)
		case Cgroup1:
			e, err = detectV1(opts.Root, parent)
		case Rlimit:
			e, err = detectRlimit()
		case None:
			e = &Enforcer{mech: None}
		default:
			return nil, fmt.Errorf("unknown limits mechanism %q", m)
		}
		if err == nil {
			e.sweepStale()
			return e, nil
		}
		whys = append(whys, fmt.Sprintf("%s: %v", m, err))
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(whys, "; "))
}

// v2Root finds the unified hierarchy: root itself on a cgroup v2 host,
// root/unified on a hybrid one.
func v2Root(root string) (string, error) {
	for _, dir := range []string{root, filepath.Join(root, "unified")} {
		if _, err := os.Stat(filepath.Join(dir, "cgroup.controllers")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 hierarchy at %s", root)
}

func detectV2(root, parent string) (*Enforcer, error) {
	dir, err := v2Root(root)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	have := strings.Fields(string(b))
	for _, c := range []string{"memory", "cpu"} {
		if !contains(have, c) {
			return nil, fmt.Errorf("controller %q is not enabled in %s (it has: %s)", c, dir, orNone(have))
		}
	}
	// Each level from the root down to the parent must hand the memory
	// and cpu controllers to its children.
	cur := dir
	for _, part := range append([]string{""}, strings.Split(parent, "/")...) {
		cur = filepath.Join(cur, part)
		if err := os.MkdirAll(cur, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", cur, err)
		}
		if err := enableControllers(cur); err != nil {
			return nil, err
		}
	}
	return &Enforcer{mech: Cgroup2, dirs: []string{cur}}, nil
}

// enableControllers makes dir's children get the memory and cpu
// controllers, unless they do already.
func enableControllers(dir string) error {
	path := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	on := strings.Fields(string(b))
	if contains(on, "memory") && contains(on, "cpu") {
		return nil
	}
	if err := os.WriteFile(path, []byte("+memory +cpu"), 0o644); err != nil {
		return fmt.Errorf("enable the memory and cpu controllers in %s: %w", path, err)
	}
	return nil
}

func detectV1(root, parent string) (*Enforcer, error) {
	var dirs []string
	for _, c := range []struct{ controller, file string }{
		{"memory", "memory.limit_in_bytes"},
		{"cpu", "cpu.cfs_quota_us"},
	} {
		base := filepath.Join(root, c.controller)
		if _, err := os.Stat(filepath.Join(base, c.file)); err != nil {
			return nil, fmt.Errorf("no cgroup v1 %s controller at %s", c.controller, base)
		}
		dir := filepath.Join(base, parent)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		if err := checkWritable(filepath.Join(dir, c.file)); err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	return &Enforcer{mech: Cgroup1, dirs: dirs}, nil
}

// checkWritable opens a control file for writing without writing to it.
func checkWritable(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", path, err)
	}
	return f.Close()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, " ")
}

// GroupName names a process's group: owner, the agent's process id and a
// sequence number, so that agents sharing a parent never collide and the
// groups of an agent that died can be told apart (sweepStale).
func GroupName(owner string, pid int, seq uint64) string {
	return fmt.Sprintf("%s-%d-%d", owner, pid, seq)
}

// sweepStale removes the groups an agent left when it was killed (its
// processes died with it, by their parent-death signal): those named by
// GroupName after a process that no longer exists, holding no process.
func (e *Enforcer) sweepStale() {
	for _, parent := range e.dirs {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, ent := range entries {
			if !ent.IsDir() {
				continue
			}
			parts := strings.Split(ent.Name(), "-")
			if len(parts) < 3 {
				continue
			}
			pid, err := strconv.Atoi(parts[len(parts)-2])
			if err != nil || pid <= 0 || pid == os.Getpid() {
				continue
			}
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
				continue // its agent is alive
			}
			dir := filepath.Join(parent, ent.Name())
			// (A cgroup always has cgroup.procs; rmdir fails on one that
			// still holds a process anyway.)
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err == nil && len(strings.TrimSpace(string(b))) == 0 || errors.Is(err, os.ErrNotExist) {
				_ = os.Remove(dir)
			}
		}
	}
}
