package controlplane

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// probe GETs path on a server's HTTP address and returns the status code
// and the body.
func probe(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + s.HTTPAddr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestHealthAndReadiness(t *testing.T) {
	servers := TestCluster(t, 3)
	for _, s := range servers {
		WaitFor(t, 10*time.Second, func() error {
			if code, body := probe(t, s, "/readyz"); code != http.StatusOK {
				return fmt.Errorf("%s /readyz: %d %s", s.NodeID(), code, body)
			}
			return nil
		})
		if code, body := probe(t, s, "/healthz"); code != http.StatusOK || body != "ok" {
			t.Errorf("%s /healthz: %d %q", s.NodeID(), code, body)
		}
	}

	// Left alone, the last server knows no leader: alive, not ready.
	leader := WaitForLeader(t, servers...)
	rest := followers(leader, servers)
	if err := leader.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := rest[0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() error {
		code, body := probe(t, rest[1], "/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "no raft leader known") {
			return fmt.Errorf("/readyz of the last server: %d %s", code, body)
		}
		return nil
	})
	if code, _ := probe(t, rest[1], "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz of the last server: %d, want 200 (the process is up)", code)
	}
}

// TestReadinessContactBound: a follower that has not heard from the leader
// within ReadyMaxContact is not ready, while the leader is.
func TestReadinessContactBound(t *testing.T) {
	servers := TestCluster(t, 2, func(c *Config) { c.ReadyMaxContact = time.Nanosecond })
	leader := WaitForLeader(t, servers...)
	for _, s := range servers {
		code, body := probe(t, s, "/readyz")
		switch {
		case s == leader && code != http.StatusOK:
			t.Errorf("leader /readyz: %d %s", code, body)
		case s != leader && (code != http.StatusServiceUnavailable || !strings.Contains(body, "last heard from leader")):
			t.Errorf("follower /readyz with a 1ns contact bound: %d %s", code, body)
		}
	}
}

// TestReadinessNeedsMembership: a server waiting for its --initial-cluster
// peers has no leader; one waiting for --join is not a member.
func TestReadinessNeedsMembership(t *testing.T) {
	ports := freePorts(t, 2)
	lonely := TestServer(t, func(c *Config) {
		c.InitialCluster = map[string]string{"s1": "", "s2": fmt.Sprintf("127.0.0.1:%d", ports[0])}
	})
	joining := TestServer(t, func(c *Config) {
		c.NodeID = "s3"
		c.Join = []string{fmt.Sprintf("127.0.0.1:%d", ports[1])}
	})
	for s, want := range map[*Server]string{lonely: "no raft leader known", joining: "not a member of a raft group"} {
		if code, body := probe(t, s, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
			t.Errorf("%s /readyz: %d %s, want 503 %q", s.NodeID(), code, body, want)
		}
	}
}
