package agent

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/meshfed/meshfed/federation"
)

// capabilities is what the agent advertises at registration, so that
// placement sends it only what it can run.
type capabilities struct {
	runtimes     []string
	interpreters []string
	cpuMillis    int64
	memoryBytes  int64
}

// probeCapabilities lists the configured runtimes, the interpreters found
// on PATH and the CPU and memory offered: the
// configured values, else this host's (every CPU; MemTotal of
// /proc/meminfo, zero where it cannot be read: memory then goes
// unadvertised).
func probeCapabilities(cfg Config) capabilities {
	var c capabilities
	for name := range cfg.Runtimes {
		c.runtimes = append(c.runtimes, name)
	}
	sort.Strings(c.runtimes)
	// Exec functions and exec sources and sinks need interpreters; the
	// latter run whatever the runtimes, so the agent always looks.
	for _, name := range federation.Interpreters {
		if _, err := exec.LookPath(name); err == nil {
			c.interpreters = append(c.interpreters, name)
		}
	}
	c.cpuMillis = cfg.CPUMillis
	if c.cpuMillis == 0 {
		c.cpuMillis = int64(goruntime.NumCPU()) * 1000
	}
	c.memoryBytes = cfg.MemoryBytes
	if c.memoryBytes == 0 {
		if f, err := os.Open("/proc/meminfo"); err == nil {
			c.memoryBytes, _ = memTotal(f)
			f.Close()
		}
	}
	return c
}

// memTotal reads MemTotal from /proc/meminfo's text, in bytes.
func memTotal(f io.Reader) (int64, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("meminfo: unexpected MemTotal line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo: %w", err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("meminfo: %w", err)
	}
	return 0, fmt.Errorf("meminfo: no MemTotal line")
}
