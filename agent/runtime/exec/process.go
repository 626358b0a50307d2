package exec

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshfed/meshfed/agent/runtime/limits"
)

// stderrDrain bounds how long reaping waits for the last stderr lines
// after the process group is gone (a daemonized grandchild may hold the
// pipe open forever).
const stderrDrain = 500 * time.Millisecond

// stderrLineMax is the longest stderr line logged as one record; longer
// lines are logged in pieces.
const stderrLineMax = 16 << 10

// tailLines is how many of the last stderr lines a crash error quotes.
const tailLines = 3

// aLongTimeAgo is a deadline in the past: setting it unblocks pending I/O.
var aLongTimeAgo = time.Unix(1, 0)

// process is one running child and the parent's ends of its pipes. Its
// methods run on the goroutine that holds function.mu, except kill, which
// Close may call at any time.
type process struct {
	cmd     *osexec.Cmd
	pid     int
	started time.Time
	// in is the write end of the child's stdin; out and outBuf read its
	// stdout; errR reads its stderr (owned by forwardStderr).
	in     *os.File
	out    *os.File
	outBuf *bufio.Reader
	errR   *os.File
	// lastID is the id of the last MESSAGE sent; zero: none yet.
	lastID uint64

	stderrDone chan struct{}
	// tailMu guards tail, the last stderr lines.
	tailMu sync.Mutex
	tail   []string

	// group holds the process under its limits; removed by reap.
	group *limits.Group

	killOnce sync.Once
	// reaped, exit and oomKilled are set by reap; oomKilled: the kernel
	// killed the process for exceeding its memory limit.
	reaped    bool
	exit      string
	oomKilled bool
}

// spawn starts the command in its own process group with fresh pipes,
// under group's limits. It owns group from then on: reap (or a failed
// start) removes it.
func spawn(path string, args []string, dir string, env []string, logger *slog.Logger, group *limits.Group) (*process, error) {
	p, err := spawnIn(path, args, dir, env, logger, group)
	if err != nil {
		_ = group.Remove()
	}
	return p, err
}

func spawnIn(path string, args []string, dir string, env []string, logger *slog.Logger, group *limits.Group) (*process, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd := &osexec.Cmd{
		Path:        path,
		Args:        args,
		Dir:         dir,
		Env:         env,
		Stdin:       inR,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: sysProcAttr(),
	}
	err = cmd.Start()
	// The child holds its ends now; the parent must not, or it would never
	// see end-of-file.
	closeAll(inR, outW, errW)
	if err != nil {
		closeAll(inW, outR, errR)
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &process{
		cmd:        cmd,
		pid:        cmd.Process.Pid,
		started:    time.Now(),
		in:         inW,
		out:        outR,
		outBuf:     bufio.NewReaderSize(outR, 64<<10),
		errR:       errR,
		stderrDone: make(chan struct{}),
		group:      group,
	}
	go p.forwardStderr(logger.With("pid", p.pid))
	if err := group.Add(p.pid); err != nil {
		p.kill()
		p.group = nil // the caller removes it
		p.reap()
		return nil, fmt.Errorf("limits: %w", err)
	}
	return p, nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// forwardStderr logs the child's stderr line by line. A line starting with
// a level ("DEBUG:", "INFO:", "WARNING:", "WARN:", "ERROR:", "CRITICAL:")
// is logged at that level without the prefix; any other line at INFO.
func (p *process) forwardStderr(logger *slog.Logger) {
	defer close(p.stderrDone)
	r := bufio.NewReaderSize(p.errR, stderrLineMax)
	for {
		line, err := r.ReadSlice('\n')
		if s := strings.TrimRight(string(line), "\r\n"); s != "" {
			level, text := stderrLevel(s)
			logger.Log(context.Background(), level, text, "stream", "stderr")
			p.tailMu.Lock()
			if len(p.tail) == tailLines {
				p.tail = append(p.tail[:0], p.tail[1:]...)
			}
			p.tail = append(p.tail, s)
			p.tailMu.Unlock()
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

var stderrLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"DEBUG:", slog.LevelDebug},
	{"INFO:", slog.LevelInfo},
	{"WARNING:", slog.LevelWarn},
	{"WARN:", slog.LevelWarn},
	{"ERROR:", slog.LevelError},
	{"CRITICAL:", slog.LevelError},
}

func stderrLevel(line string) (slog.Level, string) {
	for _, l := range stderrLevels {
		if strings.HasPrefix(line, l.prefix) {
			return l.level, strings.TrimSpace(line[len(l.prefix):])
		}
	}
	return slog.LevelInfo, line
}

// send writes one whole frame.
func (p *process) send(b []byte) error {
	_, err := p.in.Write(b)
	return err
}

// watch makes pending and future reads and writes fail once ctx is done.
// The returned func undoes that; call it before the next exchange.
func (p *process) watch(ctx context.Context) (unwatch func()) {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		p.out.SetReadDeadline(aLongTimeAgo)
		p.in.SetWriteDeadline(aLongTimeAgo)
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired
			p.out.SetReadDeadline(time.Time{})
			p.in.SetWriteDeadline(time.Time{})
		}
	}
}

// kill sends SIGKILL to the whole process group and unblocks any pending
// read or write. It is safe to call from any goroutine, any number of
// times. The group leader stays a zombie until reap, so its id cannot be
// reused before then.
func (p *process) kill() {
	p.killOnce.Do(func() {
		killGroup(p.pid)
		p.out.SetReadDeadline(aLongTimeAgo)
		p.in.SetWriteDeadline(aLongTimeAgo)
	})
}

// stop ends an idle process gracefully: it closes stdin (the protocol's
// "no more messages"), waits up to grace for stdout to reach end-of-file,
// then kills the group and reaps it.
func (p *process) stop(grace time.Duration) {
	p.in.Close()
	p.out.SetReadDeadline(time.Now().Add(grace))
	for {
		if _, _, err := readFrame(p.outBuf, DefaultMaxFrameSize); err != nil {
			break
		}
	}
	p.kill()
	p.reap()
}

// reap kills the group (if not done yet), waits for the leader, lets
// stderr drain and closes the pipes. It returns how the process ended,
// with its last stderr lines, for errors.
func (p *process) reap() string {
	if p.reaped {
		return p.exit
	}
	p.kill()
	err := p.cmd.Wait()
	p.errR.SetReadDeadline(time.Now().Add(stderrDrain))
	<-p.stderrDone
	closeAll(p.in, p.out, p.errR)
	p.reaped = true
	if p.group != nil {
		if n, gerr := p.group.OOMKills(); gerr == nil && n > 0 {
			p.oomKilled = true
		}
		_ = p.group.Remove()
	}

	var b bytes.Buffer
	switch {
	case p.oomKilled:
		fmt.Fprintf(&b, "killed by the kernel's OOM killer: over its memory limit of %d bytes (%s)", p.group.Limits().MemoryBytes, p.group.Mechanism())
	case err == nil:
		b.WriteString("exited with status 0")
	default:
		var ee *osexec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				fmt.Fprintf(&b, "killed by signal %s", ws.Signal())
			} else {
				fmt.Fprintf(&b, "exited with status %d", ee.ExitCode())
			}
		} else {
			fmt.Fprintf(&b, "wait: %v", err)
		}
	}
	p.tailMu.Lock()
	if len(p.tail) > 0 {
		fmt.Fprintf(&b, "; last stderr: %q", strings.Join(p.tail, " | "))
	}
	p.tailMu.Unlock()
	p.exit = b.String()
	return p.exit
}
