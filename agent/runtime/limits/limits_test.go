package limits

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fakes lay out the files the kernel would show in a cgroup file
// system under a temporary root, for the parents the tests use (the kernel
// creates a new group's control files itself; a plain directory has none).
var fakeParents = []string{"agents", "agents/a1", "meshfed"}

// fakeV2 lays out a cgroup v2 hierarchy.
func fakeV2(t *testing.T, controllers string) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "cgroup.controllers"), controllers)
	for _, dir := range append(fakeParents, "") {
		write(t, filepath.Join(root, dir, "cgroup.subtree_control"), "")
	}
	return root
}

// fakeV1 lays out cgroup v1 memory and cpu hierarchies.
func fakeV1(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range append(fakeParents, "") {
		write(t, filepath.Join(root, "memory", dir, "memory.limit_in_bytes"), "9223372036854771712")
		write(t, filepath.Join(root, "cpu", dir, "cpu.cfs_quota_us"), "-1")
	}
	return root
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDetect(t *testing.T) {
	hybrid := fakeV1(t)
	write(t, filepath.Join(hybrid, "unified", "cgroup.controllers"), "hugetlb")
	write(t, filepath.Join(hybrid, "unified", "cgroup.subtree_control"), "")
	for _, tc := range []struct {
		name string
		root string
		want Mechanism
		got  Mechanism
		err  string
	}{
		{"v2 auto", fakeV2(t, "cpuset cpu io memory pids"), Auto, Cgroup2, ""},
		{"v2 without memory falls back", fakeV2(t, "cpu pids"), Auto, Rlimit, ""},
		{"v2 asked without memory", fakeV2(t, "cpu pids"), Cgroup2, "", `controller "memory" is not enabled`},
		{"hybrid auto is v1", hybrid, Auto, Cgroup1, ""},
		{"hybrid asked v2", hybrid, Cgroup2, "", `controller "memory" is not enabled`},
		{"v1 asked on v2", fakeV2(t, "cpu memory"), Cgroup1, "", "no cgroup v1 memory controller"},
		{"nothing mounted", t.TempDir(), Auto, Rlimit, ""},
		{"none", t.TempDir(), None, None, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Detect(tc.want, Options{Root: tc.root, Parent: "agents/a1"})
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Detect = %v, want ErrUnavailable containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Mechanism() != tc.got {
				t.Fatalf("mechanism = %s, want %s", e.Mechanism(), tc.got)
			}
		})
	}
}

func TestDetectRefusesEscapingParent(t *testing.T) {
	for _, p := range []string{"/", "..", "../x", "a/../../b"} {
		if _, err := Detect(Cgroup1, Options{Root: fakeV1(t), Parent: p}); err == nil || !strings.Contains(err.Error(), "cgroup parent") {
			t.Errorf("parent %q: err = %v, want a cgroup parent error", p, err)
		}
	}
}

func TestParseMechanism(t *testing.T) {
	for _, s := range []string{"auto", "cgroup2", "cgroup1", "rlimit", "none"} {
		if m, err := ParseMechanism(s); err != nil || string(m) != s {
			t.Errorf("ParseMechanism(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseMechanism("cgroups"); err == nil {
		t.Error("ParseMechanism(cgroups) accepted")
	}
}

func TestV2GroupWritesLimits(t *testing.T) {
	root := fakeV2(t, "cpu memory")
	e, err := Detect(Cgroup2, Options{Root: root, Parent: "agents/a1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, filepath.Join(root, "agents"), filepath.Join(root, "agents/a1")} {
		if got := read(t, filepath.Join(dir, "cgroup.subtree_control")); got != "+memory +cpu" {
			t.Errorf("%s/cgroup.subtree_control = %q", dir, got)
		}
	}
	// The kernel would create these files with the directory.
	dir := filepath.Join(root, "agents/a1/i1")
	g, err := e.Prepare("i1", Limits{CPUMillis: 250, MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "memory.max")); got != "67108864" {
		t.Errorf("memory.max = %q", got)
	}
	if got := read(t, filepath.Join(dir, "cpu.max")); got != "25000 100000" {
		t.Errorf("cpu.max = %q", got)
	}
	write(t, filepath.Join(dir, "memory.events"), "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
	if n, err := g.OOMKills(); err != nil || n != 2 {
		t.Errorf("OOMKills = %d, %v; want 2", n, err)
	}
	if err := g.Add(4242); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "cgroup.procs")); got != "4242" {
		t.Errorf("cgroup.procs = %q", got)
	}
}

func TestV1GroupWritesLimits(t *testing.T) {
	root := fakeV1(t)
	e, err := Detect(Cgroup1, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Prepare("i7", Limits{CPUMillis: 1500, MemoryBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	mem, cpu := filepath.Join(root, "memory/meshfed/i7"), filepath.Join(root, "cpu/meshfed/i7")
	for path, want := range map[string]string{
		filepath.Join(mem, "memory.limit_in_bytes"): "1073741824",
		filepath.Join(cpu, "cpu.cfs_period_us"):     "100000",
		filepath.Join(cpu, "cpu.cfs_quota_us"):      "150000",
	} {
		if got := read(t, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	write(t, filepath.Join(mem, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
	if n, err := g.OOMKills(); err != nil || n != 1 {
		t.Errorf("OOMKills = %d, %v; want 1", n, err)
	}
}

func TestZeroLimitsMakeNoGroup(t *testing.T) {
	root := fakeV1(t)
	e, err := Detect(Cgroup1, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Prepare("idle", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Mechanism() != None {
		t.Errorf("mechanism = %s, want none", g.Mechanism())
	}
	if _, err := os.Stat(filepath.Join(root, "memory/meshfed/idle")); !os.IsNotExist(err) {
		t.Errorf("a group without limits created a cgroup: %v", err)
	}
	if _, err := e.Prepare("a/b", Limits{MemoryBytes: 1}); err == nil {
		t.Error("a name with a slash was accepted")
	}
}

// TestRealMemoryLimit runs a process that allocates past its limit under
// the best mechanism of this host and checks how the mechanism reports it:
// cgroups kill the process and count an OOM kill, rlimits make the
// allocation fail.
func TestRealMemoryLimit(t *testing.T) {
	for _, m := range []Mechanism{Auto, Rlimit} {
		t.Run(string(m), func(t *testing.T) { testRealMemoryLimit(t, m) })
	}
}

func testRealMemoryLimit(t *testing.T, m Mechanism) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	parent := "meshfed-test-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	e, err := Detect(m, Options{Parent: parent})
	if err != nil {
		t.Skipf("no limits mechanism: %v", err)
	}
	t.Cleanup(func() {
		for _, dir := range []string{parent, "memory/" + parent, "cpu/" + parent, "unified/" + parent} {
			os.Remove(filepath.Join(DefaultRoot, dir))
		}
	})
	t.Logf("mechanism: %s", e.Mechanism())
	g, err := e.Prepare("p1", Limits{MemoryBytes: 48 << 20, CPUMillis: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	// Wait for a line on stdin so the limits are in place before it allocates.
	cmd := exec.Command(py, "-c", "import sys; sys.stdin.readline(); b = bytearray(256 << 20); b[::4096] = b'x' * len(b[::4096]); print('survived')")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	err = cmd.Wait()
	if strings.Contains(out.String(), "survived") {
		t.Fatalf("the process allocated 256 MiB under a 48 MiB limit (%s)", e.Mechanism())
	}
	n, oerr := g.OOMKills()
	if oerr != nil {
		t.Fatal(oerr)
	}
	switch e.Mechanism() {
	case Cgroup1, Cgroup2:
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL || n != 1 {
			t.Fatalf("exit %v, oom kills %d; want SIGKILL and 1 (output %q)", err, n, out.String())
		}
	case Rlimit:
		if !strings.Contains(out.String(), "MemoryError") || n != 0 {
			t.Fatalf("exit %v, oom kills %d, output %q; want a MemoryError", err, n, out.String())
		}
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestDetectSweepsStaleGroups: groups named after an agent process that no
// longer exists and holding no process are removed; others stay.
func TestDetectSweepsStaleGroups(t *testing.T) {
	root := fakeV1(t)
	dead := GroupName("exec", 1<<22+7, 3) // above pid_max's default
	alive := GroupName("exec", os.Getppid(), 1)
	busy := GroupName("exec", 1<<22+8, 1)
	// A plain directory cannot be removed with files in it, as a cgroup
	// can: the dead agent's group is left empty.
	if err := os.MkdirAll(filepath.Join(root, "memory/meshfed", dead), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{alive, busy, "user-made"} {
		write(t, filepath.Join(root, "memory/meshfed", name, "cgroup.procs"), "")
	}
	write(t, filepath.Join(root, "memory/meshfed", busy, "cgroup.procs"), "12345\n")
	if _, err := Detect(Cgroup1, Options{Root: root}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{dead: false, alive: true, busy: true, "user-made": true} {
		_, err := os.Stat(filepath.Join(root, "memory/meshfed", name))
		if got := err == nil; got != want {
			t.Errorf("group %s exists: %v, want %v", name, got, want)
		}
	}
}

// TestRealCPULimit runs a busy loop for a second of wall time under a
// tenth of a core and checks the CPU time it got. Only cgroups limit CPU.
func TestRealCPULimit(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	parent := "meshfed-test-cpu"
	e, err := Detect(Auto, Options{Parent: parent})
	if err != nil || (e.Mechanism() != Cgroup1 && e.Mechanism() != Cgroup2) {
		t.Skipf("no cgroup here (%v): rlimits do not limit CPU", err)
	}
	t.Cleanup(func() {
		for _, dir := range []string{parent, "memory/" + parent, "cpu/" + parent, "unified/" + parent} {
			os.Remove(filepath.Join(DefaultRoot, dir))
		}
	})
	g, err := e.Prepare("spin", Limits{CPUMillis: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	cmd := exec.Command(py, "-c", "import sys, time\nsys.stdin.readline()\nend = time.monotonic() + 1\nwhile time.monotonic() < end: pass")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	used := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	t.Logf("%s, cpu 100m: a 1 s busy loop used %v of CPU", e.Mechanism(), used)
	// 100 ms per second, plus one period of slack for the start.
	if used > 300*time.Millisecond {
		t.Fatalf("a busy loop under 100m used %v of CPU in 1 s", used)
	}
}
