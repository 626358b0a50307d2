package limits

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Group holds one process under its limits. Prepare it before the process
// starts, Add the process once started, read OOMKills after it ended, and
// Remove it once the process was reaped.
type Group struct {
	mech   Mechanism
	limits Limits
	// dirs are the group's cgroup directories (cgroup v2: one; v1: memory,
	// then cpu); nil for rlimits and none.
	dirs []string
}

// Prepare creates a group named name (unique among the enforcer's live
// groups, without slashes) holding l. With zero limits or the None
// mechanism it returns a group that does nothing.
func (e *Enforcer) Prepare(name string, l Limits) (*Group, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("limits group name %q: must be a non-empty name without slashes", name)
	}
	g := &Group{mech: e.Mechanism(), limits: l}
	if l.IsZero() {
		g.mech = None
	}
	switch g.mech {
	case Cgroup2, Cgroup1:
		for _, parent := range e.dirs {
			dir := filepath.Join(parent, name)
			if err := mkdirFresh(dir); err != nil {
				g.Remove()
				return nil, err
			}
			g.dirs = append(g.dirs, dir)
		}
		write := g.writeV1
		if g.mech == Cgroup2 {
			write = g.writeV2
		}
		if err := write(); err != nil {
			g.Remove()
			return nil, err
		}
	}
	return g, nil
}

// mkdirFresh creates a cgroup; one left by an agent that died (its
// processes too, by their parent-death signal) is removed first.
func mkdirFresh(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, os.ErrExist) {
		old := &Group{dirs: []string{dir}}
		if rerr := old.Remove(); rerr != nil {
			return rerr
		}
		err = os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return nil
}

// Mechanism is what enforces the group's limits: None when it has none.
func (g *Group) Mechanism() Mechanism {
	if g == nil {
		return None
	}
	return g.mech
}

// Limits are the group's limits.
func (g *Group) Limits() Limits {
	if g == nil {
		return Limits{}
	}
	return g.limits
}

func (g *Group) writeV2() error {
	dir := g.dirs[0]
	if m := g.limits.MemoryBytes; m > 0 {
		if err := writeFile(dir, "memory.max", strconv.FormatInt(m, 10)); err != nil {
			return err
		}
		// Without swap the limit is the process's whole footprint; a
		// kernel without swap accounting has no such file.
		if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
			if err := writeFile(dir, "memory.swap.max", "0"); err != nil {
				return err
			}
		}
	}
	if c := g.limits.CPUMillis; c > 0 {
		if err := writeFile(dir, "cpu.max", fmt.Sprintf("%d %d", cpuQuota(c), cfsPeriod)); err != nil {
			return err
		}
	}
	return nil
}

func (g *Group) writeV1() error {
	mem, cpu := g.dirs[0], g.dirs[1]
	if m := g.limits.MemoryBytes; m > 0 {
		if err := writeFile(mem, "memory.limit_in_bytes", strconv.FormatInt(m, 10)); err != nil {
			return err
		}
		// memory+swap no higher than memory: no swapping past the limit.
		// Absent without swap accounting.
		if _, err := os.Stat(filepath.Join(mem, "memory.memsw.limit_in_bytes")); err == nil {
			if err := writeFile(mem, "memory.memsw.limit_in_bytes", strconv.FormatInt(m, 10)); err != nil {
				return err
			}
		}
	}
	if c := g.limits.CPUMillis; c > 0 {
		if err := writeFile(cpu, "cpu.cfs_period_us", strconv.Itoa(cfsPeriod)); err != nil {
			return err
		}
		if err := writeFile(cpu, "cpu.cfs_quota_us", strconv.FormatInt(cpuQuota(c), 10)); err != nil {
			return err
		}
	}
	return nil
}

// cpuQuota is the CPU time per period, in microseconds, of millis
// thousandths of a core; the kernel's minimum is 1 ms.
func cpuQuota(millis int64) int64 {
	return max(millis*cfsPeriod/1000, 1000)
}

func writeFile(dir, name, value string) error {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

// Add moves a started process into the group. The process ran without
// its limits for the moments between its start and Add; what it spawns
// after Add is held too (cgroups) or inherits the limits (rlimits).
func (g *Group) Add(pid int) error {
	switch g.Mechanism() {
	case Cgroup2, Cgroup1:
		for _, dir := range g.dirs {
			if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
				return err
			}
		}
	case Rlimit:
		return setRlimits(pid, g.limits)
	}
	return nil
}

// OOMKills returns how many times the kernel's OOM killer killed a process
// of the group for exceeding the group's memory limit. It is always zero
// for rlimits and none: there a process over its limit sees its
// allocations fail instead.
func (g *Group) OOMKills() (uint64, error) {
	switch g.Mechanism() {
	case Cgroup2:
		return readKeyed(filepath.Join(g.dirs[0], "memory.events"), "oom_kill")
	case Cgroup1:
		return readKeyed(filepath.Join(g.dirs[0], "memory.oom_control"), "oom_kill")
	}
	return 0, nil
}

// readKeyed reads a "key value" line of a flat-keyed cgroup file; a key the
// kernel does not write reads as zero.
func readKeyed(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %w", path, key, err)
			}
			return n, nil
		}
	}
	return 0, nil
}

// removeTries bounds how long Remove waits for the kernel to let go of a
// group whose last process was just reaped.
const removeTries = 50

// Remove deletes the group's cgroups. Call it after the group's processes
// were killed and reaped; a cgroup that still holds a process (one that
// left the process group) is killed first.
func (g *Group) Remove() error {
	if g == nil {
		return nil
	}
	var errs []error
	for _, dir := range g.dirs {
		var err error
		for try := 0; try < removeTries; try++ {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			if !errors.Is(err, syscall.EBUSY) {
				break
			}
			killAll(dir)
			time.Sleep(10 * time.Millisecond) // the kernel frees the group asynchronously
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	g.dirs = nil
	return errors.Join(errs...)
}

// killAll sends SIGKILL to every process left in a cgroup.
func killAll(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
