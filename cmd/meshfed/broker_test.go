package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/broker"
)

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	return out.String() + errOut.String(), code
}

func TestBrokerFlagsValidated(t *testing.T) {
	if out, code := runCLI(t, "broker", "--no-such-flag"); code != 2 {
		t.Fatalf("unknown flag: exit %d, output %s", code, out)
	}
	if out, code := runCLI(t, "broker", "--data-dir", t.TempDir(), "--fsync", "sometimes", "--listen", "127.0.0.1:0",
		"--http-addr", ""); code != 1 || !strings.Contains(out, "fsync") {
		t.Fatalf("bad fsync policy: exit %d, output %s", code, out)
	}
}

func TestProduceThenConsume(t *testing.T) {
	b := broker.TestBroker(t, nil)
	url := b.ServiceURL()
	out, code := runCLI(t, "produce", "persistent://public/default/cli", "--service-url", url, "-m", "hello", "-m", "world", "-n", "2")
	if code != 0 || !strings.Contains(out, "4 messages successfully produced") {
		t.Fatalf("produce: exit %d, output %s", code, out)
	}
	out, code = runCLI(t, "consume", "persistent://public/default/cli", "--service-url", url, "-s", "sub", "-p", "Earliest",
		"-n", "4", "--hide-properties")
	if code != 0 || strings.Count(out, "hello") != 2 || strings.Count(out, "world") != 2 ||
		!strings.Contains(out, "4 messages successfully consumed") {
		t.Fatalf("consume: exit %d, output %s", code, out)
	}
	if out, code := runCLI(t, "consume", "t", "-t", "Bogus", "-s", "x"); code != 2 {
		t.Fatalf("bad subscription type: exit %d, output %s", code, out)
	}
	if out, code := runCLI(t, "produce", "t"); code != 2 {
		t.Fatalf("produce without messages: exit %d, output %s", code, out)
	}
}

func TestBenchBrokerSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	out, code := runCLI(t, "bench", "broker", "--dir", t.TempDir(), "--messages", "200", "--latency-messages", "5",
		"--sizes", "100", "--fsync", "off")
	if code != 0 || !strings.Contains(out, "broker/raw") || !strings.Contains(out, "100 B") {
		t.Fatalf("bench-broker: exit %d, output %s", code, out)
	}
}
