package logstore

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const crashChildEnv = "MESHFED_LOGSTORE_CRASH_DIR"

// crashEntry is entry(i) with a larger body, so appends take long enough
// for a kill to land inside one now and then.
func crashEntry(i uint64) *raft.Log {
	l := entry(i)
	l.Data = []byte(strings.Repeat(fmt.Sprintf("%d;", i), 200+int(i%800)))
	return l
}

// TestCrashDuringAppends runs a child process (this test binary) that
// appends batches and prints the last index of each after StoreLogs
// returns, SIGKILLs it after a varying number of acknowledged batches, and
// checks on reopening that every acknowledged entry is there, intact, and
// that what follows is a whole prefix of what was being written.
func TestCrashDuringAppends(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("kill delays seeded with %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	var acked uint64
	for round := 0; round < 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringAppends$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		killAfter := 5 + round*7 // acknowledged batches this round
		for n := 0; n < killAfter && sc.Scan(); n++ {
			line := sc.Text()
			v, ok := strings.CutPrefix(line, "ack ")
			if !ok {
				continue
			}
			last, err := strconv.ParseUint(v, 10, 64)
			if err != nil || last < acked {
				cmd.Process.Kill()
				t.Fatalf("child said %q after ack %d", line, acked)
			}
			acked = last
		}
		// The child keeps appending: the kill lands at a point in its loop
		// (encoding, write, sync) that varies with the delay.
		time.Sleep(time.Duration(rng.Int64N(int64(8 * time.Millisecond))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Acks printed before the kill took effect count too.
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
				if last, err := strconv.ParseUint(v, 10, 64); err == nil && last > acked {
					acked = last
				}
			}
		}
		cmd.Wait()
		torn := 0
		if round%2 == 1 {
			torn = tearTail(t, dir, round)
		}

		s, err := Open(dir, Options{SegmentSize: 256 << 10})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if first != 1 || last < acked {
			s.Close()
			t.Fatalf("round %d: log [%d, %d] after acknowledging up to %d", round, first, last, acked)
		}
		for i := first; i <= last; i++ {
			var got raft.Log
			if err := s.GetLog(i, &got); err != nil {
				s.Close()
				t.Fatalf("round %d: GetLog(%d): %v", round, i, err)
			}
			checkEntry(t, &got, crashEntry(i))
		}
		if r := s.Recovered(); torn > 0 && (r.TruncatedBytes != int64(torn) || r.TruncatedFile == "") {
			s.Close()
			t.Fatalf("round %d: a torn record of %d bytes was appended, open repaired %+v", round, torn, r)
		}
		t.Logf("round %d: acknowledged %d, found %d, repaired %+v", round, acked, last, s.Recovered())
		acked = last // a later round must keep what survived
		s.Close()
	}
}

// crashChild appends batches of 1..64 entries to the log in dir until it
// is killed, printing "ack <last index>" after each StoreLogs returns. It
// gives up after a minute in case the parent died.
func crashChild(dir string) {
	s, err := Open(dir, Options{SegmentSize: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	next, _ := s.LastIndex()
	next++
	deadline := time.Now().Add(time.Minute)
	for n := 0; time.Now().Before(deadline); n++ {
		size := uint64(1 + (n*37+int(next))%64)
		var batch []*raft.Log
		for i := next; i < next+size; i++ {
			batch = append(batch, crashEntry(i))
		}
		if err := s.StoreLogs(batch); err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(2)
		}
		next += size
		fmt.Fprintf(os.Stdout, "ack %d\n", next-1)
	}
	os.Exit(3)
}

// tearTail appends to the last segment in dir a prefix of the record that
// would come next, as a write cut short by a crash leaves it, and returns
// its length. SIGKILL rarely lands inside a write(2) (the page cache keeps
// whole writes), so the crash rounds add this torn write themselves.
func tearTail(t *testing.T, dir string, round int) int {
	t.Helper()
	s, err := Open(dir, Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatalf("round %d: open before tearing: %v", round, err)
	}
	last, _ := s.LastIndex()
	s.Close()
	files := segFiles(t, dir)
	rec := appendRecord(nil, crashEntry(last+1), flagBatchStart)
	n := 1 + (round*7919)%(len(rec)-1)
	appendBytes(t, files[len(files)-1], rec[:n])
	return n
}
