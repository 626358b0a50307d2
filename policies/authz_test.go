package policies

import (
	"errors"
	"fmt"
	"testing"

	"github.com/meshfed/meshfed/objects"
)

// The principals and scopes of the role × action matrix.
var (
	matrixPrincipals = []struct {
		key string
		p   Principal
	}{
		{"su", Principal{Name: "root", Role: RoleSuperuser}},
		{"ta", Principal{Name: "alice", Role: RoleTenantAdmin, Tenant: "t1"}},
		{"dev", Principal{Name: "dan", Role: RoleNamespaceDeveloper, Tenant: "t1", Namespace: "n1"}},
		{"vns", Principal{Name: "vic", Role: RoleViewer, Tenant: "t1", Namespace: "n1"}},
		{"vt", Principal{Name: "val", Role: RoleViewer, Tenant: "t1"}},
		{"vg", Principal{Name: "audit", Role: RoleViewer}},
		{"ag", Principal{Name: "agent-a1", Role: RoleAgent, Cluster: "a"}},
		{"bad", Principal{Name: "eve", Role: "owner", Tenant: "t1"}},
		{"taNoTenant", Principal{Name: "mallory", Role: RoleTenantAdmin}},
		{"devNoNS", Principal{Name: "dora", Role: RoleNamespaceDeveloper, Tenant: "t1"}},
	}
	// Scopes, in the order of the expectation strings below:
	// own namespace, other namespace of the tenant, other tenant, the whole
	// tenant, everything.
	matrixScopes = [5][2]string{{"t1", "n1"}, {"t1", "n2"}, {"t2", "n1"}, {"t1", ""}, {"", ""}}
)

// Expected decisions: for each action, each principal key maps to one
// character per scope, y (allowed) or . (denied). A missing key is ".....".
var matrix = map[Action]map[string]string{
	ActionReadCluster:     {"su": "yyyyy", "ta": "yyyyy", "dev": "yyyyy", "vns": "yyyyy", "vt": "yyyyy", "vg": "yyyyy", "ag": "yyyyy"},
	ActionWriteCluster:    {"su": "yyyyy"},
	ActionReadTenant:      {"su": "yyyyy", "ta": "yy.y.", "dev": "yy.y.", "vns": "yy.y.", "vt": "yy.y.", "vg": "yyyyy"},
	ActionWriteTenant:     {"su": "yyyyy"},
	ActionReadNamespace:   {"su": "yyyyy", "ta": "yy.y.", "dev": "y....", "vns": "y....", "vt": "yy.y.", "vg": "yyyyy"},
	ActionWriteNamespace:  {"su": "yyyyy", "ta": "yy.y."},
	ActionReadGrant:       {"su": "yyyyy", "ta": "yy.y.", "dev": "y....", "vns": "y....", "vt": "yy.y.", "vg": "yyyyy"},
	ActionWriteGrant:      {"su": "yyyyy", "ta": "yy.y."},
	ActionReadMesh:        {"su": "yyyyy", "ta": "yy.y.", "dev": "y....", "vns": "y....", "vt": "yy.y.", "vg": "yyyyy"},
	ActionWriteMesh:       {"su": "yyyyy", "ta": "yy.y.", "dev": "y...."},
	ActionReadAgent:       {"su": "yyyyy", "vg": "yyyyy"},
	ActionWriteAgent:      {"su": "yyyyy"},
	ActionReadAssignment:  {"su": "yyyyy", "ta": "yy.y.", "dev": "y....", "vns": "y....", "vt": "yy.y.", "vg": "yyyyy", "ag": "yyyyy"},
	ActionWriteAssignment: {"su": "yyyyy"},
	ActionOperatorRead:    {"su": "yyyyy", "vg": "yyyyy"},
	ActionOperatorWrite:   {"su": "yyyyy"},
	ActionAgentCall:       {"ag": "yyyyy"},
	ActionPackagePush:     {"su": "yyyyy", "ta": "yyyyy", "dev": "yyyyy"},
	ActionPackageGet:      {"su": "yyyyy", "ta": "yyyyy", "dev": "yyyyy", "vns": "yyyyy", "vt": "yyyyy", "vg": "yyyyy", "ag": "yyyyy"},
	ActionTokenCreate:     {"su": "yyyyy", "ta": "yy.y."},
	ActionTokenRevoke:     {"su": "yyyyy", "ta": "yy.y."},
	ActionTokenList:       {"su": "yyyyy", "ta": "yy.y."},
	ActionAuditRead:       {"su": "yyyyy", "ta": "yy.y.", "vg": "yyyyy"},
}

func TestAuthorizeMatrix(t *testing.T) {
	if len(matrix) != len(Actions()) {
		t.Fatalf("matrix has %d actions, Actions() %d", len(matrix), len(Actions()))
	}
	n := 0
	for _, a := range Actions() {
		row, ok := matrix[a]
		if !ok {
			t.Errorf("no matrix row for %s", a)
			continue
		}
		for _, pr := range matrixPrincipals {
			want := row[pr.key]
			if want == "" {
				want = "....."
			}
			got := ""
			for _, s := range matrixScopes {
				err := Authorize(pr.p, a, s[0], s[1])
				n++
				switch {
				case err == nil:
					got += "y"
				case errors.Is(err, ErrPermissionDenied):
					var d *Denied
					if !errors.As(err, &d) || d.Action != a || d.Tenant != s[0] || d.Namespace != s[1] || d.Reason == "" {
						t.Errorf("%s %s: denial %#v", pr.key, a, err)
					}
					got += "."
				default:
					t.Errorf("%s %s: error %v does not match ErrPermissionDenied", pr.key, a, err)
				}
			}
			if got != want {
				t.Errorf("%s may %s in [t1/n1 t1/n2 t2/n1 t1 all]: got %s, want %s", pr.key, a, got, want)
			}
		}
	}
	t.Logf("%d decisions", n)
	for _, pr := range matrixPrincipals {
		if err := Authorize(pr.p, "mesh.delete", "t1", "n1"); !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("%s: unknown action allowed: %v", pr.key, err)
		}
	}
}

func TestKindActions(t *testing.T) {
	for _, k := range objects.Kinds {
		r, ok1 := ReadAction(k.Name)
		w, ok2 := WriteAction(k.Name)
		if !ok1 || !ok2 || r == w {
			t.Errorf("%s: read %q %v, write %q %v", k.Name, r, ok1, w, ok2)
		}
		if _, ok := matrix[r]; !ok {
			t.Errorf("%s: read action %q is not in Actions()", k.Name, r)
		}
		if _, ok := matrix[w]; !ok {
			t.Errorf("%s: write action %q is not in Actions()", k.Name, w)
		}
	}
	if _, ok := ReadAction("Secret"); ok {
		t.Error("unknown kind has a read action")
	}
	if _, ok := WriteAction("Secret"); ok {
		t.Error("unknown kind has a write action")
	}
}

func TestDeniedMessage(t *testing.T) {
	p := Principal{Name: "bob", Role: RoleViewer, Tenant: "acme"}
	err := Authorize(p, ActionWriteMesh, "acme", "etl")
	if got, want := fmt.Sprint(err), `viewer "bob" of acme may not functionmesh.write in acme/etl: a viewer only reads`; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	dev := Principal{Name: "dan", Role: RoleNamespaceDeveloper, Tenant: "acme", Namespace: "etl"}
	err = Authorize(dev, ActionReadMesh, "other", "")
	if got, want := fmt.Sprint(err), `namespace-developer "dan" of acme/etl may not functionmesh.read in other: outside the principal's scope`; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	err = Authorize(Principal{Name: "root", Role: RoleSuperuser}, ActionAgentCall, "", "")
	if got, want := fmt.Sprint(err), `superuser "root" may not agent.call: agent calls need an agent certificate`; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestValidatePrincipal(t *testing.T) {
	for _, tc := range []struct {
		p  Principal
		ok bool
	}{
		{Principal{Role: RoleSuperuser}, true},
		{Principal{Role: RoleTenantAdmin, Tenant: "t"}, true},
		{Principal{Role: RoleTenantAdmin}, false},
		{Principal{Role: RoleNamespaceDeveloper, Tenant: "t", Namespace: "n"}, true},
		{Principal{Role: RoleNamespaceDeveloper, Tenant: "t"}, false},
		{Principal{Role: RoleNamespaceDeveloper, Namespace: "n"}, false},
		{Principal{Role: RoleViewer}, true},
		{Principal{Role: RoleViewer, Tenant: "t"}, true},
		{Principal{Role: RoleViewer, Tenant: "t", Namespace: "n"}, true},
		{Principal{Role: RoleViewer, Namespace: "n"}, false},
		{Principal{Role: RoleAgent, Cluster: "a"}, true},
		{Principal{Role: RoleAgent}, false},
		{Principal{Role: ""}, false},
		{Principal{Role: "root"}, false},
	} {
		err := tc.p.Validate()
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidPrincipal) {
			t.Errorf("%+v: %v", tc.p, err)
		}
	}
	if len(Roles()) != 5 {
		t.Errorf("roles: %v", Roles())
	}
}

func TestAuthorizeAgent(t *testing.T) {
	agentA := Principal{Name: "agent-a1", Role: RoleAgent, Cluster: "a"}
	if err := AuthorizeAgent(agentA, "a"); err != nil {
		t.Errorf("own cluster: %v", err)
	}
	err := AuthorizeAgent(agentA, "b")
	if want := `agent "agent-a1" of cluster a may not agent.call: its certificate binds it to cluster "a", not "b"`; fmt.Sprint(err) != want || !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("other cluster: got %v\nwant %s", err, want)
	}
	for _, p := range []Principal{{Name: "root", Role: RoleSuperuser}, {Name: "x", Role: RoleAgent}, {Name: "v", Role: RoleViewer}} {
		if err := AuthorizeAgent(p, ""); !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("%+v registered: %v", p, err)
		}
	}
}

func TestAuthorizeIssue(t *testing.T) {
	su := Principal{Name: "root", Role: RoleSuperuser}
	ta := Principal{Name: "alice", Role: RoleTenantAdmin, Tenant: "t1"}
	dev := Principal{Name: "dan", Role: RoleNamespaceDeveloper, Tenant: "t1", Namespace: "n1"}
	for _, tc := range []struct {
		issuer, want Principal
		result       string // ok, denied, invalid
	}{
		{su, Principal{Role: RoleSuperuser}, "ok"},
		{su, Principal{Role: RoleAgent, Cluster: "a"}, "ok"},
		{su, Principal{Role: RoleTenantAdmin, Tenant: "t2"}, "ok"},
		{ta, Principal{Role: RoleTenantAdmin, Tenant: "t1"}, "ok"},
		{ta, Principal{Role: RoleNamespaceDeveloper, Tenant: "t1", Namespace: "n2"}, "ok"},
		{ta, Principal{Role: RoleViewer, Tenant: "t1"}, "ok"},
		{ta, Principal{Role: RoleViewer, Tenant: "t1", Namespace: "n1"}, "ok"},
		{ta, Principal{Role: RoleViewer}, "denied"},
		{ta, Principal{Role: RoleSuperuser}, "denied"},
		{ta, Principal{Role: RoleAgent, Cluster: "a"}, "denied"},
		{ta, Principal{Role: RoleTenantAdmin, Tenant: "t2"}, "denied"},
		{ta, Principal{Role: RoleNamespaceDeveloper, Tenant: "t2", Namespace: "n1"}, "denied"},
		{dev, Principal{Role: RoleViewer, Tenant: "t1", Namespace: "n1"}, "denied"},
		{ta, Principal{Role: RoleNamespaceDeveloper, Tenant: "t1"}, "invalid"},
		{su, Principal{Role: "god"}, "invalid"},
	} {
		err := AuthorizeIssue(tc.issuer, tc.want)
		got := "ok"
		switch {
		case errors.Is(err, ErrInvalidPrincipal):
			got = "invalid"
		case errors.Is(err, ErrPermissionDenied):
			got = "denied"
		case err != nil:
			got = "other: " + err.Error()
		}
		if got != tc.result {
			t.Errorf("%s issues %+v: got %s (%v), want %s", tc.issuer, tc.want, got, err, tc.result)
		}
	}
}
