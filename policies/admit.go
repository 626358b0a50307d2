package policies

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/errlist"
	"github.com/meshfed/meshfed/objects"
)

// AdmitMesh decides whether m may be stored as it is: it evaluates every
// rule of m's tenant and namespace, and of the namespaces whose topics m
// uses, and returns nil or a Violations with every broken rule, in the
// order the package comment gives. Quotas count m as replacing the stored
// mesh of its name in v.Meshes. Run objects.Validate and
// objects.ValidateRefs first: AdmitMesh skips what they refuse (topics that
// do not parse, functions without a runtime) and treats a missing tenant or
// namespace as one without rules. It never changes m or what v returns.
func AdmitMesh(m *meshfedv1.FunctionMesh, v View) error {
	return evaluate(m, v, true)
}

// Recheck decides whether a stored mesh still keeps the rules after a policy
// change (a Grant deleted, a namespace or tenant tightened, a cluster's
// labels changed). It is AdmitMesh without the quota rules: quotas limit
// growth and never degrade what is already stored, so a lowered quota blocks
// new meshes and scale-ups but leaves running meshes alone. A non-nil result
// means the mesh should be marked Degraded (reason DegradedReason, message
// the error text) and its instances stopped; nothing is deleted.
func Recheck(m *meshfedv1.FunctionMesh, v View) error {
	return evaluate(m, v, false)
}

// AdmitPlacement decides whether function fn of m may run in cluster run,
// reading its input from cluster in and writing its output to cluster out,
// as the failover planner wants to move it (federation.EffectiveSpec gives
// the three: placement.cluster, input.cluster and output.cluster of the
// effective spec; an empty out means the function writes where it runs).
// It checks the rules that depend on clusters: the tenant's allowed
// clusters, residency (of m's namespace, and of the namespaces owning the
// topics it reads and writes, for the clusters it would use them in) and
// flow rules for in→run, run→out and in→out. Runtimes, quotas and grants do
// not depend on the cluster and are left to AdmitMesh. Violation paths name
// the field whose effective value (the cluster passed in) breaks the rule. The
// planner skips a fallback cluster for which it returns an error; a fn out
// of range is an error that is not a Violation.
func AdmitPlacement(m *meshfedv1.FunctionMesh, fn int, run, in, out string, v View) error {
	fns := objects.MeshFunctions(m.GetSpec())
	if fn < 0 || fn >= len(fns) {
		return fmt.Errorf("policies: mesh %s has no function %d (it has %d)", meshName(m), fn, len(fns))
	}
	c := newChecker(m, v)
	f := fns[fn]
	p := objects.MeshFunctionPath(m.GetSpec(), fn)
	if out == "" {
		out = run
	}
	if in != "" {
		c.cluster(p+".input.cluster", in)
	}
	if run != "" && run != in {
		c.cluster(p+".placement.cluster", run)
	}
	if out != "" && out != run && out != in {
		c.cluster(p+".output.cluster", out)
	}
	c.flows(p, in, run, out)
	c.topics(p, f, in, out, false)
	return c.err()
}

func evaluate(m *meshfedv1.FunctionMesh, v View, quotas bool) error {
	c := newChecker(m, v)
	fns := objects.MeshFunctions(m.GetSpec())
	var stored *meshfedv1.FunctionMesh
	if quotas {
		stored = c.quotas(m)
	}
	for i, f := range fns {
		p := objects.MeshFunctionPath(m.GetSpec(), i)
		c.runtime(p, f)
		if quotas {
			c.replicas(p, f, stored)
		}
		in := f.GetInput().GetCluster()
		run := f.GetPlacement().GetCluster()
		if run == "" {
			run = in
		}
		out := f.GetOutput().GetCluster()
		if out == "" {
			out = run
		}
		if in != "" {
			c.cluster(p+".input.cluster", in)
		}
		if o := f.GetOutput().GetCluster(); o != "" {
			c.cluster(p+".output.cluster", o)
		}
		if pl := f.GetPlacement().GetCluster(); pl != "" {
			c.cluster(p+".placement.cluster", pl)
		}
		for j, fc := range f.GetFailover().GetClusters() {
			if fc != "" {
				c.cluster(p+".failover.clusters["+strconv.Itoa(j)+"]", fc)
			}
		}
		c.flows(p, in, run, out)
		c.topics(p, f, in, out, true)
	}
	return c.err()
}

// checker evaluates the rules for one mesh and collects violations.
type checker struct {
	v                 View
	tenant, namespace string
	// ns is the display name "tenant/namespace" of the mesh's namespace.
	ns     string
	tspec  *meshfedv1.TenantSpec
	nsspec *meshfedv1.NamespaceSpec
	list   Violations
}

func newChecker(m *meshfedv1.FunctionMesh, v View) *checker {
	md := m.GetMetadata()
	c := &checker{v: v, tenant: md.GetTenant(), namespace: md.GetNamespace()}
	c.ns = objects.NamespaceRef(c.tenant, c.namespace).String()
	c.tspec = v.Tenant(c.tenant).GetSpec()
	c.nsspec = v.Namespace(c.tenant, c.namespace).GetSpec()
	return c
}

func (c *checker) add(rule Rule, path, format string, args ...any) {
	c.list = append(c.list, &Violation{Rule: rule, Path: path, Reason: errlist.Clip(fmt.Sprintf(format, args...), maxReason), Code: rule.Code()})
}

func (c *checker) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}

// q quotes a user-supplied string, clipped.
func q(s string) string { return strconv.Quote(errlist.Clip(s, maxQuoted)) }

func meshName(m *meshfedv1.FunctionMesh) string {
	return objects.RefTo(objects.KindFunctionMesh, m.GetMetadata()).String()
}

// replicas is the number of instances a function runs: zero means one.
func replicas(f *meshfedv1.FunctionSpec) int64 {
	if f.GetReplicas() <= 0 {
		return 1
	}
	return int64(f.GetReplicas())
}

type usage struct{ meshes, functions, instances int64 }

func usageOf(m *meshfedv1.FunctionMesh) usage {
	u := usage{meshes: 1}
	for _, f := range objects.MeshFunctions(m.GetSpec()) {
		u.functions++
		u.instances += replicas(f)
	}
	return u
}

// quotas checks the namespace-wide quotas and returns the stored version of
// m, if any. A quota is broken only by a write that raises the usage above
// it: a namespace already over a lowered quota may still change its meshes
// as long as the usage does not grow.
func (c *checker) quotas(m *meshfedv1.FunctionMesh) *meshfedv1.FunctionMesh {
	qs := c.nsspec.GetQuotas()
	if qs.GetMeshes() <= 0 && qs.GetFunctions() <= 0 && qs.GetInstances() <= 0 && qs.GetReplicasPerFunction() <= 0 {
		return nil
	}
	name := m.GetMetadata().GetName()
	var others, old usage
	var stored *meshfedv1.FunctionMesh
	for _, s := range c.v.Meshes(c.tenant, c.namespace) {
		if s.GetMetadata().GetName() == name {
			if stored == nil {
				stored = s
				old = usageOf(s)
			}
			continue
		}
		u := usageOf(s)
		others.meshes += u.meshes
		others.functions += u.functions
		others.instances += u.instances
	}
	mine := usageOf(m)
	if qm := int64(qs.GetMeshes()); qm > 0 && others.meshes+1 > qm && stored == nil {
		c.add(RuleQuotaMeshes, "metadata.name", "%s would be mesh %d of namespace %s, over its quota of %d meshes", q(name), others.meshes+1, c.ns, qm)
	}
	if qf := int64(qs.GetFunctions()); qf > 0 && others.functions+mine.functions > qf && mine.functions > old.functions {
		c.add(RuleQuotaFunctions, "spec.functions", "%d functions would bring namespace %s to %d, over its quota of %d functions", mine.functions, c.ns, others.functions+mine.functions, qf)
	}
	if qi := int64(qs.GetInstances()); qi > 0 && others.instances+mine.instances > qi && mine.instances > old.instances {
		c.add(RuleQuotaInstances, "spec.functions", "%d instances would bring namespace %s to %d, over its quota of %d instances", mine.instances, c.ns, others.instances+mine.instances, qi)
	}
	return stored
}

// replicas checks the per-function replica quota against replicas and
// maxReplicas, refusing only growth over the stored function of the same name.
func (c *checker) replicas(p string, f *meshfedv1.FunctionSpec, stored *meshfedv1.FunctionMesh) {
	qr := int64(c.nsspec.GetQuotas().GetReplicasPerFunction())
	if qr <= 0 {
		return
	}
	var oldRep, oldMax int64
	for _, s := range objects.MeshFunctions(stored.GetSpec()) {
		if s.GetName() == f.GetName() {
			oldRep, oldMax = replicas(s), int64(s.GetMaxReplicas())
			break
		}
	}
	if r := replicas(f); r > qr && r > oldRep {
		c.add(RuleQuotaReplicas, p+".replicas", "%d is over the quota of %d replicas per function of namespace %s", r, qr, c.ns)
	}
	if mx := int64(f.GetMaxReplicas()); mx > qr && mx > oldMax {
		c.add(RuleQuotaReplicas, p+".maxReplicas", "%d is over the quota of %d replicas per function of namespace %s", mx, qr, c.ns)
	}
}

// runtimeKind returns "builtin", "exec", "wasm", "connector" (a source or
// sink) or "" for no runtime.
func runtimeKind(f *meshfedv1.FunctionSpec) string {
	switch f.GetRuntime().GetKind().(type) {
	case *meshfedv1.Runtime_Builtin:
		return "builtin"
	case *meshfedv1.Runtime_Exec:
		return "exec"
	case *meshfedv1.Runtime_Wasm:
		return "wasm"
	case *meshfedv1.Runtime_Connector:
		return "connector"
	}
	return ""
}

func (c *checker) runtime(p string, f *meshfedv1.FunctionSpec) {
	allowed := c.nsspec.GetAllowedRuntimes()
	k := runtimeKind(f)
	if len(allowed) == 0 || k == "" || slices.Contains(allowed, k) {
		return
	}
	c.add(RuleAllowedRuntimes, p+".runtime", "%s is not allowed in namespace %s, which allows %s", k, c.ns, strings.Join(allowed, ", "))
}

// cluster checks one cluster the function reads from, writes to or runs in
// against the tenant's allowed clusters and the namespace's residency.
func (c *checker) cluster(path, name string) {
	if allowed := c.tspec.GetAllowedClusters(); len(allowed) > 0 && !slices.Contains(allowed, name) {
		c.add(RuleAllowedClusters, path, "%s is not one of the clusters tenant %s may use (%s)", q(name), c.tenant, errlist.Clip(strings.Join(allowed, ", "), maxQuoted))
	}
	if res := c.nsspec.GetResidency(); len(res) > 0 && !carries(c.v.Cluster(name), res) {
		c.add(RuleResidency, path, "%s is outside residency %s of namespace %s", q(name), labelList(res), c.ns)
	}
}

// carries reports whether cluster cl has every label of want. An unknown
// cluster carries none.
func carries(cl *meshfedv1.Cluster, want map[string]string) bool {
	have := cl.GetMetadata().GetLabels()
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// labelList formats labels as "k1=v1,k2=v2" in key order.
func labelList(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return errlist.Clip(strings.Join(keys, ","), maxQuoted)
}

// flows checks the cross-cluster hops of one function against the
// namespace's flow rules: input to placement, placement to output, and
// input to output. A hop within one cluster is not a flow and is always
// allowed; so is every hop when the namespace has no rules.
func (c *checker) flows(p, in, run, out string) {
	rules := c.nsspec.GetFlows()
	if len(rules) == 0 {
		return
	}
	hops := [3]struct{ from, to, fromWhat, path string }{
		{in, run, "input", p + ".placement.cluster"},
		{run, out, "placement", p + ".output.cluster"},
		{in, out, "input", p + ".output.cluster"},
	}
	for i, h := range hops {
		if h.from == "" || h.to == "" || h.from == h.to {
			continue
		}
		dup := false
		for _, e := range hops[:i] {
			dup = dup || e.from == h.from && e.to == h.to
		}
		if !dup && !flowAllowed(rules, h.from, h.to) {
			c.add(RuleFlows, h.path, "%s receives data from %s cluster %s, and no flow rule of namespace %s allows %s -> %s",
				q(h.to), h.fromWhat, q(h.from), c.ns, errlist.Clip(h.from, maxQuoted), errlist.Clip(h.to, maxQuoted))
		}
	}
}

func flowAllowed(rules []*meshfedv1.FlowRule, from, to string) bool {
	for _, r := range rules {
		if (r.GetFrom() == "*" || r.GetFrom() == from) && (r.GetTo() == "*" || r.GetTo() == to) {
			return true
		}
	}
	return false
}

// topicUse is one topic a function reads or writes, on one cluster.
type topicUse struct {
	path, topic, cluster, action string
}

// topics checks the topics of function f, used on clusters in (input and
// dead-letter topics) and out (output and log topics): with grants, that
// each topic of another tenant has a Grant for the action; always, that a
// topic of another namespace is used only on clusters that keep the owning
// namespace's residency.
func (c *checker) topics(p string, f *meshfedv1.FunctionSpec, in, out string, grants bool) {
	var uses []topicUse
	for i, t := range f.GetInput().GetTopics() {
		uses = append(uses, topicUse{p + ".input.topics[" + strconv.Itoa(i) + "]", t, in, "consume"})
	}
	if t := f.GetOutput().GetTopic(); t != "" {
		uses = append(uses, topicUse{p + ".output.topic", t, out, "produce"})
	}
	if t := f.GetDeadLetterTopic(); t != "" {
		uses = append(uses, topicUse{p + ".deadLetterTopic", t, in, "produce"})
	}
	if t := f.GetLogTopic(); t != "" {
		uses = append(uses, topicUse{p + ".logTopic", t, out, "produce"})
	}
	for _, u := range uses {
		t, err := objects.ParseTopic(u.topic)
		if err != nil {
			continue // objects.Validate refuses it
		}
		if t.Tenant == c.tenant && t.Namespace == c.namespace {
			continue
		}
		owner := t.Tenant + "/" + t.Namespace
		if grants && t.Tenant != c.tenant && !c.granted(t.Tenant, t.Namespace, u.action) {
			rule := RuleGrantConsume
			if u.action == "produce" {
				rule = RuleGrantProduce
			}
			c.add(rule, u.path, "%s is in tenant %s: no Grant in %s lets %s %s",
				q(u.topic), errlist.Clip(t.Tenant, maxQuoted), errlist.Clip(owner, maxQuoted), c.ns, u.action)
		}
		if res := c.v.Namespace(t.Tenant, t.Namespace).GetSpec().GetResidency(); len(res) > 0 && u.cluster != "" && !carries(c.v.Cluster(u.cluster), res) {
			c.add(RuleResidency, u.path, "%s on cluster %s is outside residency %s of namespace %s, which owns the topic",
				q(u.topic), q(u.cluster), labelList(res), errlist.Clip(owner, maxQuoted))
		}
	}
}

// granted reports whether a Grant in tenant/ns lets the mesh's namespace
// perform action.
func (c *checker) granted(tenant, ns, action string) bool {
	for _, g := range c.v.Grants(tenant, ns) {
		ge := g.GetSpec().GetGrantee()
		if ge.GetTenant() == c.tenant && ge.GetNamespace() == c.namespace && slices.Contains(g.GetSpec().GetActions(), action) {
			return true
		}
	}
	return false
}
