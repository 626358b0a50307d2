package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// SkipTB is a TB that can skip, as *testing.T and *testing.B can.
type SkipTB interface {
	TB
	Skipf(format string, args ...any)
}

// mosquittoPaths are where Debian's mosquitto package installs the broker.
var mosquittoPaths = []string{"/usr/sbin/mosquitto", "/usr/bin/mosquitto"}

// Mosquitto starts a mosquitto MQTT broker of its own on a free loopback
// port for the test, stops it at cleanup, and returns its URL
// (tcp://127.0.0.1:PORT). Without a mosquitto binary the test is skipped,
// unless MESHFED_REQUIRE_MOSQUITTO is set (as CI does), which fails it.
//
// The broker keeps sessions in memory, lets anonymous clients in, and lifts
// the two limits that would throttle or drop a meshfed source's QoS 1
// messages: max_inflight_messages (20 unacknowledged messages in flight by
// default; the source acknowledges after each batch is durable) and
// max_queued_messages (1,000 by default, past which mosquitto drops).
func Mosquitto(t SkipTB) string {
	t.Helper()
	bin, _ := exec.LookPath("mosquitto")
	for _, p := range mosquittoPaths {
		if bin != "" {
			break
		}
		if _, err := os.Stat(p); err == nil {
			bin = p
		}
	}
	if bin == "" {
		if os.Getenv("MESHFED_REQUIRE_MOSQUITTO") != "" {
			t.Fatalf("mosquitto is not installed and MESHFED_REQUIRE_MOSQUITTO is set (apt-get install mosquitto)")
		}
		t.Skipf("mosquitto is not installed (apt-get install mosquitto); set MESHFED_REQUIRE_MOSQUITTO=1 to fail instead")
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		conf := filepath.Join(dir, "mosquitto.conf")
		body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 1000\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n", port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("write mosquitto config: %v", err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start mosquitto: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitListening(addr, exited, 10*time.Second); err != nil {
			_ = cmd.Process.Kill()
			if attempt < 3 {
				continue // another process took the port first
			}
			t.Fatalf("mosquitto on %s: %v\n%s", addr, err, stderr.String())
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return "tcp://" + addr
	}
}

// waitListening polls addr until it accepts a connection, the process
// exits or timeout passes.
func waitListening(addr string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	wait := minPoll
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %s: %w", timeout, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, maxPoll)
	}
}
