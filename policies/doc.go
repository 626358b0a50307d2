// Package policies owns meshfed's policy decisions: what a tenant's meshes
// may run, where, with which data (admission and failover), and what each
// role may do (authorization). It is pure: functions over values, no I/O, no
// clocks, no goroutines; the control plane enforces what it decides.
//
// # Admission
//
// The caller implements View over one consistent read of its state and
// calls, after objects.Validate and objects.ValidateRefs:
//
//	err := policies.AdmitMesh(mesh, view)      // on Apply of a FunctionMesh
//
// The decisions are deterministic functions of the View, so the natural
// place for the call is inside the store's apply of the Raft entry, over the
// write transaction after the batch's objects are put (a View that sees the
// batch): every replica reaches the same decision at the same log index, and
// two concurrent applies cannot both pass a quota that has room for one.
// The endpoint may call it before proposing as well, to refuse early.
//
// A nil error admits the mesh. Otherwise err is a Violations listing every
// broken rule (each a *Violation with a stable Rule name, the field Path, a
// Reason and a Code). The API boundary answers PermissionDenied when
// errors.Is(err, ErrPermissionDenied) and FailedPrecondition when
// errors.Is(err, ErrFailedPrecondition), in that order (Violations.Code
// gives the same answer), with err.Error() as the message. An apply of
// several documents admits each mesh against a View that already holds the
// batch's other objects. `meshfed policy check -f FILE` runs the same call
// against a View of the server's state plus the file (see Static) and
// prints the violations without applying.
//
// The rules, evaluated in this order (mesh-wide quotas first, then for each
// function in index order):
//
//	namespace.quotas.meshes               FailedPrecondition
//	namespace.quotas.functions            FailedPrecondition
//	namespace.quotas.instances            FailedPrecondition
//	namespace.allowedRuntimes             PermissionDenied
//	namespace.quotas.replicasPerFunction  FailedPrecondition
//	tenant.allowedClusters   }            PermissionDenied, per cluster field:
//	namespace.residency      }            input, output, placement, failover[j]
//	namespace.flows                       PermissionDenied, per cross-cluster hop
//	grant.consume / grant.produce         PermissionDenied, per topic, with
//	namespace.residency                   the topic owner's residency
//
// Quotas count the mesh as replacing the stored mesh of its name and refuse
// only growth: a write that does not raise the namespace's usage passes even
// when a lowered quota is already exceeded. Flows are the hops input →
// placement, placement → output and input → output; a hop inside one
// cluster is never a flow. A topic of another tenant needs a Grant in the
// topic's namespace naming the mesh's namespace, with consume for input
// topics and produce for the output, dead-letter and log topics; a topic of
// another namespace of the same tenant needs none. A topic of another
// namespace must also be used on clusters that carry that namespace's
// residency labels.
//
// # After a policy change
//
// When a Grant, Namespace, Tenant or Cluster changes, the control plane
// calls Recheck on every stored mesh the change can affect (the meshes of
// the namespace; for a Grant, the meshes of the grantee namespace; for a
// Tenant or Cluster, all of the tenant's or all meshes). Recheck is
// AdmitMesh without the quota rules. A non-nil result marks the mesh
// Degraded (reason DegradedReason, message err.Error()) and its instances
// stop; a later nil result clears it. Nothing is deleted.
//
// # Failover
//
// The federation planner, before moving function fn of mesh m to fallback
// cluster run, calls
//
//	policies.AdmitPlacement(m, fn, run, eff.Input.Cluster, eff.Output.Cluster, view)
//
// with the effective spec it would run (federation.EffectiveSpec) and skips
// the cluster when it returns an error. When no fallback passes, the mesh
// stays Degraded with the violations as the reason. AdmitPlacement checks the
// cluster-dependent rules only: tenant.allowedClusters, namespace.residency
// (the mesh's and the topic owners') and namespace.flows.
//
// # Authorization
//
// Every RPC authenticates a Principal (token or certificate) and calls
// Authorize with the action and the scope it touches:
//
//	ObjectService.Get/List/Watch       ReadAction(kind)     object's tenant, namespace
//	ObjectService.Apply/Delete         WriteAction(kind)    object's tenant, namespace
//	OperatorService.ListPeers          ActionOperatorRead
//	OperatorService.AddPeer/RemovePeer/SaveSnapshot/RestoreSnapshot
//	                                   ActionOperatorWrite
//	AgentService.*                     ActionAgentCall, then AuthorizeAgent(p, cluster)
//	AgentService.GetState/CommitState  as above for an agent; for any other
//	                                   principal ActionReadMesh/ActionWriteMesh
//	                                   on the function's mesh (Functions REST state)
//	PackageService.PushPackage         ActionPackagePush
//	PackageService.GetPackage          ActionPackageGet
//	token create/revoke/list           ActionTokenCreate (and AuthorizeIssue),
//	                                   ActionTokenRevoke, ActionTokenList
//	audit                              ActionAuditRead
//
// For a Tenant object the scope is (its name, ""); for global kinds and
// calls it is ignored. List and Watch over several scopes authorize each
// object and drop the denied ones. A refusal is a *Denied matching
// ErrPermissionDenied.
package policies
