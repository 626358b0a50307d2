package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// auditRows returns the data rows of an audit table.
func auditRows(out string) []string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME") {
		return nil
	}
	return lines[1:]
}

// hasRow reports whether a row holds every one of words.
func hasRow(rows []string, words ...string) bool {
	for _, r := range rows {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(r, w)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestAudit writes as a tenant-admin and is refused once, then reads the
// audit log by principal, by result, as JSON, and in the tenant-admin's scope.
func TestAudit(t *testing.T) {
	s := newSecureServer(t)
	s.must(tenantObjects, s.boot, "apply", "-f", "-")
	alice := createToken(s, s.boot, "--subject", "alice", "--role", "tenant-admin", "--tenant", "acme")
	s.must(meshIn("acme", "etl"), alice.Secret, "apply", "-f", "-")
	s.refused("outside the principal's scope", meshIn("other", "x"), alice.Secret, "apply", "-f", "-")

	// A write is audited in its own log entry; a refusal reaches the log
	// a moment later, so poll for it.
	var rows []string
	controlplane.WaitFor(t, 15*time.Second, func() error {
		rows = auditRows(s.must("", s.boot, "audit", "--principal", "alice"))
		if !hasRow(rows, "alice", "denied") {
			return fmt.Errorf("no denied record of alice yet:\n%s", strings.Join(rows, "\n"))
		}
		return nil
	})
	if len(rows) != 2 {
		t.Errorf("audit --principal alice: %d rows, want 2:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	if !hasRow(rows, "alice", "tenant-admin", "Apply", "functionmesh/acme/etl/wc", "ok") {
		t.Errorf("audit --principal alice lacks the write:\n%s", strings.Join(rows, "\n"))
	}
	if !hasRow(rows, "alice", "tenant-admin", "Apply", "functionmesh/other/x/wc", "denied", "may not functionmesh.write") {
		t.Errorf("audit --principal alice lacks the refusal:\n%s", strings.Join(rows, "\n"))
	}
	if rows := auditRows(s.must("", s.boot, "audit", "--principal", "bootstrap")); !hasRow(rows, "CreateToken", "token/acme/"+alice.Token.ID, "ok") {
		t.Errorf("audit --principal bootstrap lacks the token's creation:\n%s", strings.Join(rows, "\n"))
	}

	// A caller without a token is audited as unauthenticated.
	s.refused("pass --token", "", "", "get", "clusters")
	controlplane.WaitFor(t, 15*time.Second, func() error {
		if rows := auditRows(s.must("", s.boot, "audit", "--principal", "unauthenticated")); !hasRow(rows, "List", "denied", "requires a bearer token") {
			return fmt.Errorf("no record of the call without a token yet:\n%s", strings.Join(rows, "\n"))
		}
		return nil
	})

	// --result denied keeps only refusals.
	rows = auditRows(s.must("", s.boot, "audit", "--result", "denied"))
	if len(rows) == 0 || !hasRow(rows, "alice", "other/x") {
		t.Errorf("audit --result denied lacks alice's refusal:\n%s", strings.Join(rows, "\n"))
	}
	for _, r := range rows {
		if !strings.Contains(r, "denied") {
			t.Errorf("audit --result denied shows %q", r)
		}
	}

	// JSON has the full records.
	var recs []*struct{ Principal, Method, Action, Result, Code string }
	out := s.must("", s.boot, "audit", "--principal", "alice", "--result", "denied", "-o", "json")
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("audit -o json: %v:\n%s", err, out)
	}
	if r := recs[0]; r.Method != meshfedv1.ObjectService_Apply_FullMethodName || r.Action != "functionmesh.write" || r.Code != "PermissionDenied" {
		t.Errorf("audit -o json record: %+v", r)
	}

	// Time bounds and the limit.
	if rows := auditRows(s.must("", s.boot, "audit", "--principal", "alice", "--since", "1h")); len(rows) != 2 {
		t.Errorf("audit --since 1h: %d rows, want 2", len(rows))
	}
	if out := s.must("", s.boot, "audit", "--until", "1h"); !strings.Contains(out, "No audit records found.") {
		t.Errorf("audit --until 1h (an hour ago):\n%s", out)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if out := s.must("", s.boot, "audit", "--since", future); !strings.Contains(out, "No audit records found.") {
		t.Errorf("audit --since %s:\n%s", future, out)
	}
	_, errOut, code := s.run("", s.boot, "audit", "--limit", "1")
	if code != 0 || !strings.Contains(errOut, "--limit 1 reached") {
		t.Errorf("audit --limit 1: exit %d, stderr %q; want a note that the limit was reached", code, errOut)
	}

	// A tenant-admin reads its tenant's records, not another tenant's.
	s.must(meshIn("other", "x"), s.boot, "apply", "-f", "-")
	if rows := auditRows(s.must("", alice.Secret, "audit")); !hasRow(rows, "alice", "functionmesh/acme/etl/wc") || hasRow(rows, "bootstrap", "functionmesh/other/x/wc") {
		t.Errorf("alice's audit should show acme's records only:\n%s", strings.Join(rows, "\n"))
	}
	s.refused(`tenant-admin "alice" of acme may not audit.read in other`, "", alice.Secret, "audit", "--tenant", "other")
}

// TestAuditUsage checks the command-line errors of audit, which exit 2
// without reaching a server.
func TestAuditUsage(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "--result", "refused"},
		{"audit", "--since", "yesterday"},
		{"audit", "--until", "-1h"},
		{"audit", "--since", "1h", "--until", "2h"},
		{"audit", "--limit", "-1"},
		{"audit", "-o", "xml"},
		{"audit", "extra"},
	} {
		if _, errOut, code := cli(t, "", append([]string{"--server", "127.0.0.1:1"}, args...)...); code != 2 {
			t.Errorf("meshfed %v: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
	}
}

func TestParseTimeFlag(t *testing.T) {
	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "1h", want: now.Add(-time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "0s", want: now},
		{in: "2026-11-25T08:30:00Z", want: time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)},
		{in: "2026-11-25T08:30:00+02:00", want: time.Date(2026, 11, 25, 6, 30, 0, 0, time.UTC)},
		{in: "-1h", err: true},
		{in: "2026-11-25", err: true},
		{in: "yesterday", err: true},
	} {
		got, err := parseTimeFlag(tc.in, now)
		if tc.err != (err != nil) || !tc.err && !got.Equal(tc.want) {
			t.Errorf("parseTimeFlag(%q) = %s, %v; want %s (error %t)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestAuditColumns(t *testing.T) {
	if got := shortMethod(meshfedv1.TokenService_CreateToken_FullMethodName); got != "CreateToken" {
		t.Errorf("shortMethod: %q", got)
	}
	if got := shortMethod(""); got != "-" {
		t.Errorf("shortMethod of nothing: %q", got)
	}
	for _, tc := range []struct {
		ts   []*meshfedv1.AuditTarget
		want string
	}{
		{nil, "-"},
		{[]*meshfedv1.AuditTarget{{Kind: objects.KindFunctionMesh, Tenant: "acme", Namespace: "etl", Name: "wc"}}, "functionmesh/acme/etl/wc"},
		{[]*meshfedv1.AuditTarget{{Kind: objects.KindTenant, Name: "acme"}, {Kind: objects.KindCluster, Name: "a"}}, "tenant/acme,cluster/a"},
		{[]*meshfedv1.AuditTarget{{Kind: objects.KindCluster, Name: "a"}, {Kind: objects.KindCluster, Name: "b"}, {Kind: objects.KindCluster, Name: "c"}, {Kind: objects.KindCluster, Name: "d"}}, "cluster/a,cluster/b,+2 more"},
	} {
		if got := auditTargets(tc.ts); got != tc.want {
			t.Errorf("auditTargets = %q, want %q", got, tc.want)
		}
	}
	if got := clipText("a\nmessage  that is\tlong", 12); got != "a message t…" {
		t.Errorf("clipText: %q", got)
	}
	if got := clipText("héllo", 5); got != "héllo" {
		t.Errorf("clipText of a short text: %q", got)
	}
}
