package policies

import (
	"fmt"
	"slices"

	"github.com/meshfed/meshfed/internal/errlist"
	"github.com/meshfed/meshfed/objects"
)

// Role is what a user's token (or an agent's certificate) lets it do.
type Role string

// The roles. A principal's scope (Principal.Tenant, Principal.Namespace)
// limits where its role applies.
const (
	// RoleSuperuser may do everything except act as an agent. Scope unused.
	RoleSuperuser Role = "superuser"
	// RoleTenantAdmin administers one tenant (Principal.Tenant): its
	// namespaces, grants, meshes, tokens and audit records. It cannot change
	// the Tenant object itself (its allowed clusters are the superuser's).
	RoleTenantAdmin Role = "tenant-admin"
	// RoleNamespaceDeveloper reads one namespace (Principal.Tenant and
	// Principal.Namespace) and writes its meshes; it reads its tenant and
	// the clusters, and pushes packages.
	RoleNamespaceDeveloper Role = "namespace-developer"
	// RoleViewer reads, within its scope: everything when Principal.Tenant
	// is empty (an auditor), one tenant when Principal.Namespace is empty,
	// else one namespace.
	RoleViewer Role = "viewer"
	// RoleAgent is an agent authenticated by its certificate, bound to
	// Principal.Cluster. It may make agent calls, fetch packages, and read
	// the clusters and assignments it reconciles.
	RoleAgent Role = "agent"
)

// Roles lists the roles.
func Roles() []Role {
	return []Role{RoleSuperuser, RoleTenantAdmin, RoleNamespaceDeveloper, RoleViewer, RoleAgent}
}

// Principal is an authenticated caller.
type Principal struct {
	// Name identifies the caller in audit records (token subject or
	// certificate name).
	Name string
	Role Role
	// Tenant and Namespace are the scope of the role; see the Role constants.
	Tenant, Namespace string
	// Cluster is the cluster an agent's certificate binds it to. Only for
	// RoleAgent.
	Cluster string
}

// Validate reports whether the role is known and the scope fits it: a
// tenant admin needs a tenant, a namespace developer a tenant and a
// namespace, a viewer's namespace a tenant, an agent a cluster. The error
// matches ErrInvalidPrincipal.
func (p Principal) Validate() error {
	bad := func(why string) error { return fmt.Errorf("%w %s: %s", ErrInvalidPrincipal, q(p.Name), why) }
	switch p.Role {
	case RoleSuperuser:
	case RoleTenantAdmin:
		if p.Tenant == "" {
			return bad("a tenant-admin needs a tenant")
		}
	case RoleNamespaceDeveloper:
		if p.Tenant == "" || p.Namespace == "" {
			return bad("a namespace-developer needs a tenant and a namespace")
		}
	case RoleViewer:
		if p.Tenant == "" && p.Namespace != "" {
			return bad("a viewer's namespace needs a tenant")
		}
	case RoleAgent:
		if p.Cluster == "" {
			return bad("an agent needs a cluster")
		}
	default:
		return bad(fmt.Sprintf("unknown role %s; want one of superuser, tenant-admin, namespace-developer, viewer, agent", q(string(p.Role))))
	}
	return nil
}

// String describes the principal for error messages: `viewer "bob" of acme/etl`.
func (p Principal) String() string {
	s := errlist.Clip(string(p.Role), maxQuoted) + " " + q(p.Name)
	switch {
	case p.Role == RoleAgent:
		s += " of cluster " + errlist.Clip(p.Cluster, maxQuoted)
	case p.Role == RoleSuperuser:
	case p.Namespace != "":
		s += " of " + errlist.Clip(objects.NamespaceRef(p.Tenant, p.Namespace).String(), maxQuoted)
	case p.Tenant != "":
		s += " of " + errlist.Clip(p.Tenant, maxQuoted)
	}
	return s
}

// Action is something a principal may be allowed to do. Object actions
// take the object's tenant and namespace as scope (a Tenant object: its
// name as tenant); token and audit actions the scope of the tokens or
// records; the others (clusters, agents, operator, agent calls, packages)
// ignore the scope.
type Action string

// The actions. The RPC each one covers is in the package comment.
const (
	ActionReadCluster     Action = "cluster.read"
	ActionWriteCluster    Action = "cluster.write"
	ActionReadTenant      Action = "tenant.read"
	ActionWriteTenant     Action = "tenant.write"
	ActionReadNamespace   Action = "namespace.read"
	ActionWriteNamespace  Action = "namespace.write"
	ActionReadGrant       Action = "grant.read"
	ActionWriteGrant      Action = "grant.write"
	ActionReadMesh        Action = "functionmesh.read"
	ActionWriteMesh       Action = "functionmesh.write"
	ActionReadAgent       Action = "agent.read"
	ActionWriteAgent      Action = "agent.write"
	ActionReadAssignment  Action = "assignment.read"
	ActionWriteAssignment Action = "assignment.write"
	ActionOperatorRead    Action = "operator.read"
	ActionOperatorWrite   Action = "operator.write"
	ActionAgentCall       Action = "agent.call"
	ActionPackagePush     Action = "package.push"
	ActionPackageGet      Action = "package.get"
	ActionTokenCreate     Action = "token.create"
	ActionTokenRevoke     Action = "token.revoke"
	ActionTokenList       Action = "token.list"
	ActionAuditRead       Action = "audit.read"
)

// Actions lists every action.
func Actions() []Action {
	return []Action{
		ActionReadCluster, ActionWriteCluster, ActionReadTenant, ActionWriteTenant,
		ActionReadNamespace, ActionWriteNamespace, ActionReadGrant, ActionWriteGrant,
		ActionReadMesh, ActionWriteMesh, ActionReadAgent, ActionWriteAgent,
		ActionReadAssignment, ActionWriteAssignment, ActionOperatorRead, ActionOperatorWrite,
		ActionAgentCall, ActionPackagePush, ActionPackageGet,
		ActionTokenCreate, ActionTokenRevoke, ActionTokenList, ActionAuditRead,
	}
}

var kindActions = map[string][2]Action{
	objects.KindCluster:      {ActionReadCluster, ActionWriteCluster},
	objects.KindTenant:       {ActionReadTenant, ActionWriteTenant},
	objects.KindNamespace:    {ActionReadNamespace, ActionWriteNamespace},
	objects.KindGrant:        {ActionReadGrant, ActionWriteGrant},
	objects.KindFunctionMesh: {ActionReadMesh, ActionWriteMesh},
	objects.KindAgent:        {ActionReadAgent, ActionWriteAgent},
	objects.KindAssignment:   {ActionReadAssignment, ActionWriteAssignment},
}

// ReadAction returns the action that reads (Get, List, Watch) objects of
// kind (objects.Kind.Name), and false for an unknown kind.
func ReadAction(kind string) (Action, bool) {
	a, ok := kindActions[kind]
	return a[0], ok
}

// WriteAction returns the action that writes (Apply, Delete) objects of
// kind, and false for an unknown kind.
func WriteAction(kind string) (Action, bool) {
	a, ok := kindActions[kind]
	return a[1], ok
}

// Denied is an authorization refusal. It matches ErrPermissionDenied.
type Denied struct {
	Principal         Principal
	Action            Action
	Tenant, Namespace string
	// Reason says which rule refused.
	Reason string
}

// Error formats the refusal: `viewer "bob" of acme may not functionmesh.write
// in acme/etl: a viewer only reads`.
func (d *Denied) Error() string {
	where := ""
	switch {
	case d.Namespace != "":
		where = " in " + errlist.Clip(objects.NamespaceRef(d.Tenant, d.Namespace).String(), maxQuoted)
	case d.Tenant != "":
		where = " in " + errlist.Clip(d.Tenant, maxQuoted)
	}
	return d.Principal.String() + " may not " + errlist.Clip(string(d.Action), maxQuoted) + where + ": " + d.Reason
}

// Is matches ErrPermissionDenied.
func (d *Denied) Is(target error) bool { return target == ErrPermissionDenied }

// Authorize decides whether p may perform action in the scope tenant,
// namespace (see Action for what the scope means per action). An empty
// scope part means "all": listing every tenant, or every namespace of a
// tenant, needs a principal whose scope covers all; callers of List and
// Watch across scopes authorize each object and drop what is denied. It
// returns nil or a *Denied; an invalid principal is denied, never allowed.
func Authorize(p Principal, action Action, tenant, namespace string) error {
	deny := func(why string) error {
		return &Denied{Principal: p, Action: action, Tenant: tenant, Namespace: namespace, Reason: why}
	}
	if !slices.Contains(Actions(), action) {
		return deny("unknown action")
	}
	if err := p.Validate(); err != nil {
		return deny("invalid principal: " + err.Error())
	}
	switch p.Role {
	case RoleSuperuser:
		if action == ActionAgentCall {
			return deny("agent calls need an agent certificate")
		}
		return nil
	case RoleAgent:
		switch action {
		case ActionAgentCall, ActionPackageGet, ActionReadCluster, ActionReadAssignment:
			return nil
		}
		return deny("an agent may only make agent calls, fetch packages and read clusters and assignments")
	}
	switch action {
	case ActionReadCluster, ActionPackageGet:
		return nil
	case ActionPackagePush:
		if p.Role == RoleViewer {
			return deny("a viewer only reads")
		}
		return nil
	case ActionWriteCluster, ActionWriteTenant, ActionWriteAgent, ActionWriteAssignment, ActionOperatorWrite:
		return deny("only a superuser may")
	case ActionAgentCall:
		return deny("agent calls need an agent certificate")
	case ActionReadAgent, ActionOperatorRead:
		if p.Role == RoleViewer && p.Tenant == "" {
			return nil
		}
		return deny("only a superuser or a viewer of every tenant may")
	case ActionReadTenant:
		if covers(p.Tenant, "", tenant, "") {
			return nil
		}
		return deny("outside the principal's scope")
	case ActionReadNamespace, ActionReadGrant, ActionReadMesh, ActionReadAssignment:
		if p.Role == RoleTenantAdmin && covers(p.Tenant, "", tenant, namespace) || covers(p.Tenant, p.Namespace, tenant, namespace) {
			return nil
		}
		return deny("outside the principal's scope")
	case ActionWriteMesh:
		if p.Role == RoleViewer {
			return deny("a viewer only reads")
		}
		if p.Role == RoleTenantAdmin && covers(p.Tenant, "", tenant, namespace) || covers(p.Tenant, p.Namespace, tenant, namespace) {
			return nil
		}
		return deny("outside the principal's scope")
	case ActionWriteNamespace, ActionWriteGrant, ActionTokenCreate, ActionTokenRevoke, ActionTokenList:
		if p.Role != RoleTenantAdmin {
			return deny("only a tenant-admin of the tenant or a superuser may")
		}
		if covers(p.Tenant, "", tenant, namespace) {
			return nil
		}
		return deny("outside the principal's scope")
	case ActionAuditRead:
		if p.Role == RoleTenantAdmin && covers(p.Tenant, "", tenant, namespace) || p.Role == RoleViewer && p.Tenant == "" {
			return nil
		}
		return deny("only a superuser, a viewer of every tenant or a tenant-admin of the tenant may")
	}
	return deny("unknown action")
}

// covers reports whether the scope (pt, pn) includes (t, n), where an empty
// part of a scope means all.
func covers(pt, pn, t, n string) bool {
	switch {
	case pt == "":
		return true
	case pt != t:
		return false
	case pn == "":
		return true
	}
	return pn == n
}

// AuthorizeAgent decides whether p may act for cluster (register an agent
// there, heartbeat, report): only an agent whose certificate names that
// cluster may.
func AuthorizeAgent(p Principal, cluster string) error {
	deny := func(why string) error {
		return &Denied{Principal: p, Action: ActionAgentCall, Reason: why}
	}
	if p.Role != RoleAgent || p.Validate() != nil {
		return deny("agent calls need an agent certificate")
	}
	if p.Cluster != cluster {
		return deny(fmt.Sprintf("its certificate binds it to cluster %s, not %s", q(p.Cluster), q(cluster)))
	}
	return nil
}

// AuthorizeIssue decides whether p may create a token for want (token
// create): a superuser may issue any valid principal; a tenant-admin may
// issue tenant-admin, namespace-developer and viewer tokens within its own
// tenant; nobody else may issue tokens. An invalid want is an error matching
// ErrInvalidPrincipal.
func AuthorizeIssue(p Principal, want Principal) error {
	if err := want.Validate(); err != nil {
		return err
	}
	if p.Role == RoleTenantAdmin {
		switch want.Role {
		case RoleTenantAdmin, RoleNamespaceDeveloper, RoleViewer:
		default:
			return &Denied{Principal: p, Action: ActionTokenCreate, Tenant: want.Tenant, Namespace: want.Namespace,
				Reason: fmt.Sprintf("a tenant-admin may not issue a %s token", q(string(want.Role)))}
		}
	}
	return Authorize(p, ActionTokenCreate, want.Tenant, want.Namespace)
}
