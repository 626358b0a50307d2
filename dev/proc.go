package dev

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// spawner starts child processes from one goroutine locked to its OS
// thread. Linux sends a child's parent-death signal (Pdeathsig) when the
// thread that forked it exits, not the process; Go may retire an idle
// thread, so forking from a thread that lives as long as the federation
// makes the signal mean "meshfed dev died". The thread exits (and with it
// any child still alive) only after close.
type spawner struct {
	reqs chan spawnReq
	// once guards closing reqs.
	once sync.Once
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		// Never unlocked: the thread ends with this goroutine.
		runtime.LockOSThread()
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	s.reqs <- r
	return <-r.done
}

func (s *spawner) close() { s.once.Do(func() { close(s.reqs) }) }

// ProcessStatus is the state of one child process of a dev cluster.
type ProcessStatus struct {
	// Running is true while the process is alive.
	Running bool `json:"running"`
	// PID of the running process; 0 when not running.
	PID int `json:"pid,omitempty"`
	// Starts counts how often it was started in this run of meshfed dev.
	Starts int `json:"starts"`
	// LastExit describes how the previous process ended ("" if none has).
	LastExit string `json:"lastExit,omitempty"`
	// Log is the file its stdout and stderr are appended to.
	Log string `json:"log"`
}

// child is one broker or agent process of a dev cluster, started again
// with the same command line (so the same addresses and data dir) after
// a kill.
type child struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	logger  *slog.Logger

	// mu guards p, starts and lastExit.
	mu sync.Mutex
	// p is the current or last process; nil before the first start.
	p        *proc
	starts   int
	lastExit string
}

// proc is one run of a child.
type proc struct {
	cmd *exec.Cmd
	// done is closed once the process has exited and been reaped.
	done chan struct{}
	// expected is set before meshfed dev kills or stops the process, so
	// its exit is not reported as a crash. Guarded by child.mu.
	expected bool
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// childEnv is the environment of children: this process's, without the
// MESHFED_ variables (a user's MESHFED_TLS_* or MESHFED_TOKEN would make
// an agent speak TLS to the plaintext dev control plane).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MESHFED_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *child) status() ProcessStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ProcessStatus{Starts: c.starts, LastExit: c.lastExit, Log: c.logPath}
	if c.p != nil && c.p.running() {
		st.Running, st.PID = true, c.p.cmd.Process.Pid
	}
	return st
}

func (c *child) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p != nil && c.p.running()
}

// start starts the process unless it runs; it does not wait for it to be
// ready.
func (c *child) start(sp *spawner) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil && c.p.running() {
		return nil
	}
	f, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", c.name, err)
	}
	fmt.Fprintf(f, "=== meshfed dev %s: %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), c.bin, strings.Join(c.args, " "))
	cmd := exec.Command(c.bin, c.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = c.env
	cmd.SysProcAttr = sysProcAttr()
	if err := sp.start(cmd); err != nil {
		f.Close()
		return fmt.Errorf("start %s (%s): %w", c.name, c.bin, err)
	}
	c.starts++
	p := &proc{cmd: cmd, done: make(chan struct{})}
	c.p = p
	go func() {
		err := cmd.Wait()
		f.Close()
		c.mu.Lock()
		c.lastExit = exitString(err)
		expected := p.expected
		c.mu.Unlock()
		close(p.done)
		if !expected {
			c.logger.Warn("process exited on its own", "process", c.name, "exit", exitString(err), "log", c.logPath)
		}
	}()
	return nil
}

func exitString(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.Error() // "exit status 1", "signal: killed"
	default:
		return err.Error()
	}
}

// kill sends SIGKILL to the process's group, as `kill -9` would, and waits
// until it has been reaped. A process that is not running is left alone.
func (c *child) kill(timeout time.Duration) error {
	return c.signal(syscall.SIGKILL, 0, timeout)
}

// stop asks the process to exit (SIGTERM), and kills its group if it has
// not after grace.
func (c *child) stop(grace, timeout time.Duration) error {
	return c.signal(syscall.SIGTERM, grace, timeout)
}

func (c *child) signal(sig syscall.Signal, grace, timeout time.Duration) error {
	c.mu.Lock()
	p := c.p
	if p == nil || !p.running() {
		c.mu.Unlock()
		return nil
	}
	p.expected = true
	pid := p.cmd.Process.Pid
	c.mu.Unlock()
	if sig == syscall.SIGKILL {
		killGroup(pid)
	} else {
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
			return nil
		case <-time.After(grace):
			c.logger.Warn("process did not stop in time: killing it", "process", c.name, "grace", grace)
			killGroup(pid)
		}
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running %s after SIGKILL", c.name, pid, timeout)
	}
}

// exited returns a channel closed when the current process exits (nil if
// none was started).
func (c *child) exited() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == nil {
		return nil
	}
	return c.p.done
}

// logTail returns the last n lines of the child's log.
func (c *child) logTail(n int) string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
