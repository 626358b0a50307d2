package objects

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Accepted values of enum-like string fields. The empty string means the
// default each field's comment in the proto names.
var (
	processingGuarantees  = []string{"atmost_once", "atleast_once", "effectively_once"}
	subscriptionPositions = []string{"latest", "earliest"}
	// subscriptionName also allows '/', as Pulsar Functions' default
	// subscription, tenant/namespace/name, has it.
	subscriptionName = regexp.MustCompile(`^[-=:./\w]+$`)
	failbackModes    = []string{"auto", "manual"}
	spreadModes      = []string{"agent"}
	runtimeKinds     = []string{"builtin", "exec", "wasm", "connector"}
	grantActions     = []string{"produce", "consume"}
)

// wasmPackage matches content addresses of wasm modules and exec bundles.
var wasmPackage = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// envName matches environment variable names.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate runs the static admission checks on one object: everything that
// can be decided from the object alone. It returns nil or a FieldErrors with
// every problem found (File and Doc empty: see FieldErrors.In). Call
// Normalize first on objects not built by Decode. References to other
// objects are checked by ValidateRefs.
func Validate(o *meshfedv1.Object) error {
	var e errs
	k := KindOf(o)
	if k == nil {
		e.add("kind", "required: the object is empty")
		return e.err()
	}
	msg := Unwrap(o)
	if msg.ProtoReflect().Get(msg.ProtoReflect().Descriptor().Fields().ByName("api_version")).String() != APIVersion {
		e.add("apiVersion", "must be %s", APIVersion)
	}
	if kind := msg.ProtoReflect().Get(msg.ProtoReflect().Descriptor().Fields().ByName("kind")).String(); kind != k.Name {
		if kind == "" {
			e.add("kind", "required: %s", k.Name)
		} else {
			e.add("kind", "%q does not match the object, a %s", kind, k.Name)
		}
	}
	validateMeta(&e, k, msg.(metaHolder).GetMetadata())
	switch v := o.GetKind().(type) {
	case *meshfedv1.Object_Cluster:
		validateCluster(&e, v.Cluster.GetSpec())
	case *meshfedv1.Object_Tenant:
		validateTenant(&e, v.Tenant.GetSpec())
	case *meshfedv1.Object_Namespace:
		validateNamespace(&e, v.Namespace.GetSpec())
	case *meshfedv1.Object_Grant:
		validateGrant(&e, v.Grant.GetSpec())
		if g := v.Grant.GetSpec().GetGrantee(); g != nil && g.GetTenant() == v.Grant.GetMetadata().GetTenant() &&
			g.GetNamespace() == v.Grant.GetMetadata().GetNamespace() && g.GetTenant() != "" {
			e.add("spec.grantee", "%s/%s is the namespace the grant lives in; a namespace needs no grant to use its own topics", g.GetTenant(), g.GetNamespace())
		}
	case *meshfedv1.Object_FunctionMesh:
		validateMesh(&e, v.FunctionMesh.GetSpec())
	case *meshfedv1.Object_Agent:
		validateAgent(&e, v.Agent.GetSpec())
	case *meshfedv1.Object_Assignment:
		validateAssignment(&e, v.Assignment.GetSpec())
	}
	return e.err()
}

func validateMeta(e *errs, k *Kind, md *meshfedv1.ObjectMeta) {
	if md == nil {
		e.add("metadata", "required: set at least metadata.name")
		return
	}
	name(e, "metadata.name", md.GetName())
	switch k.Scope {
	case ScopeGlobal:
		if md.GetTenant() != "" {
			e.add("metadata.tenant", "must be empty: %s is not in a tenant", k.Name)
		}
		if md.GetNamespace() != "" {
			e.add("metadata.namespace", "must be empty: %s is not in a namespace", k.Name)
		}
	case ScopeTenant:
		name(e, "metadata.tenant", md.GetTenant())
		if md.GetNamespace() != "" {
			e.add("metadata.namespace", "must be empty: a %s belongs to a tenant, not to a namespace", k.Name)
		}
	case ScopeNamespace:
		name(e, "metadata.tenant", md.GetTenant())
		name(e, "metadata.namespace", md.GetNamespace())
	}
	labels(e, "metadata.labels", md.GetLabels())
}

// name checks a required DNS-label-like name.
func name(e *errs, path, s string) {
	if s == "" {
		e.add(path, "required")
		return
	}
	if r := checkDNSLabel(s); r != "" {
		e.add(path, "%s", r)
	}
}

// clusterName checks a reference to a cluster, which may be optional.
func clusterName(e *errs, path, s string, required bool) {
	if s == "" && !required {
		return
	}
	name(e, path, s)
}

func labels(e *errs, path string, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if r := checkLabelKey(k); r != "" {
			e.add(mapKey(path, k), "%s", r)
		}
		if r := checkLabelValue(m[k]); r != "" {
			e.add(mapKey(path, k), "%s", r)
		}
	}
}

func oneOf(e *errs, path, s string, allowed []string) {
	if s != "" && !slices.Contains(allowed, s) {
		e.add(path, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
}

func nonNegative(e *errs, path string, n int32) {
	if n < 0 {
		e.add(path, "must not be negative, got %d", n)
	}
}

func topic(e *errs, path, s string) {
	if _, err := ParseTopic(s); err != nil {
		e.add(path, "%v", err)
	}
}

func validateCluster(e *errs, s *meshfedv1.ClusterSpec) {
	if s == nil {
		e.add("spec", "required: set at least spec.serviceURL")
		return
	}
	if s.GetRegion() != "" {
		if r := checkLabelName(s.GetRegion()); r != "" {
			e.add("spec.region", "%q: %s", truncate(s.GetRegion()), r)
		}
	}
	if s.GetServiceUrl() == "" {
		e.add("spec.serviceURL", "required: the Pulsar service URL, such as pulsar://broker:6650")
	} else if r := checkURL(s.GetServiceUrl(), []string{"pulsar", "pulsar+ssl"}, true); r != "" {
		e.add("spec.serviceURL", "%s", r)
	}
	if s.GetAdminUrl() != "" {
		if r := checkURL(s.GetAdminUrl(), []string{"http", "https"}, false); r != "" {
			e.add("spec.adminURL", "%s", r)
		}
	}
	if a := s.GetAuth(); a != nil {
		p := parseClusterAuth(e, "spec.auth", a, AuthInObject)
		svcTLS := strings.HasPrefix(s.GetServiceUrl(), "pulsar+ssl://")
		if p.UsesTLSSettings() && !svcTLS && !strings.HasPrefix(s.GetAdminUrl(), "https://") {
			e.add("spec.auth", "TLS settings, but neither serviceURL (pulsar+ssl://) nor adminURL (https://) uses TLS: they would have no effect")
		}
	}
}

// checkURL returns why u is not a URL with one of the schemes and a host (and,
// with needPort, a port on every host), or "". Pulsar service URLs may list
// several comma-separated hosts.
func checkURL(u string, schemes []string, needPort bool) string {
	example := schemes[0] + "://host:port"
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Sprintf("%q is not a URL such as %s", truncate(u), example)
	}
	if !slices.Contains(schemes, p.Scheme) {
		return fmt.Sprintf("%q must start with %s://", truncate(u), strings.Join(schemes, ":// or "))
	}
	if p.Host == "" {
		return fmt.Sprintf("%q has no host; write %s", truncate(u), example)
	}
	if needPort && (p.Path != "" && p.Path != "/" || p.RawQuery != "" || p.User != nil) {
		return fmt.Sprintf("%q must be only %s", truncate(u), example)
	}
	for _, hp := range strings.Split(p.Host, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			if needPort {
				return fmt.Sprintf("%q: %q is not host:port", truncate(u), hp)
			}
			host, port = hp, ""
		}
		if host == "" {
			return fmt.Sprintf("%q: %q has no host", truncate(u), hp)
		}
		if port != "" || needPort {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Sprintf("%q: port %q is not a number from 1 to 65535", truncate(u), port)
			}
		}
	}
	return ""
}

func validateTenant(e *errs, s *meshfedv1.TenantSpec) {
	for i, a := range s.GetAdmins() {
		if strings.TrimSpace(a) == "" {
			e.add(index("spec.admins", i), "must not be empty")
		}
	}
	clusterList(e, "spec.allowedClusters", s.GetAllowedClusters())
}

// clusterList checks a list of cluster names for validity and duplicates.
func clusterList(e *errs, path string, list []string) {
	seen := map[string]int{}
	for i, c := range list {
		p := index(path, i)
		name(e, p, c)
		if j, dup := seen[c]; dup {
			e.add(p, "cluster %q is already listed at %s", c, index(path, j))
		}
		seen[c] = i
	}
}

func validateNamespace(e *errs, s *meshfedv1.NamespaceSpec) {
	q := s.GetQuotas()
	nonNegative(e, "spec.quotas.meshes", q.GetMeshes())
	nonNegative(e, "spec.quotas.functions", q.GetFunctions())
	nonNegative(e, "spec.quotas.instances", q.GetInstances())
	nonNegative(e, "spec.quotas.replicasPerFunction", q.GetReplicasPerFunction())
	choices(e, "spec.allowedRuntimes", s.GetAllowedRuntimes(), runtimeKinds)
	for i, f := range s.GetFlows() {
		p := index("spec.flows", i)
		for _, end := range []struct{ field, value string }{{"from", f.GetFrom()}, {"to", f.GetTo()}} {
			switch {
			case end.value == "":
				e.add(join(p, end.field), "required: a cluster name or \"*\"")
			case end.value != "*":
				name(e, join(p, end.field), end.value)
			}
		}
	}
	labels(e, "spec.residency", s.GetResidency())
}

func validateGrant(e *errs, s *meshfedv1.GrantSpec) {
	if s.GetGrantee() == nil {
		e.add("spec.grantee", "required: the tenant and namespace receiving the permission")
	} else {
		name(e, "spec.grantee.tenant", s.GetGrantee().GetTenant())
		name(e, "spec.grantee.namespace", s.GetGrantee().GetNamespace())
	}
	if len(s.GetActions()) == 0 {
		e.add("spec.actions", "required: produce, consume or both")
	}
	choices(e, "spec.actions", s.GetActions(), grantActions)
}

func validateMesh(e *errs, s *meshfedv1.FunctionMeshSpec) {
	if len(s.GetFunctions()) == 0 && len(s.GetSources()) == 0 && len(s.GetSinks()) == 0 {
		e.add("spec.functions", "required: at least one function, source or sink")
		return
	}
	seen := map[string]int{}
	names := map[string]string{} // function, source and sink names -> path
	subs := map[string]int{}     // cluster, topic and subscription -> function
	for i, f := range s.GetFunctions() {
		p := index("spec.functions", i)
		if j, dup := seen[f.GetName()]; dup && f.GetName() != "" {
			e.add(join(p, "name"), "function %q is already defined at %s", f.GetName(), index("spec.functions", j))
		} else {
			seen[f.GetName()] = i
			names[f.GetName()] = p
		}
		if f.GetRuntime().GetConnector() != nil {
			e.add(join(p, "runtime.connector"), "connectors are declared under spec.sources and spec.sinks")
		}
		validateFunction(e, p, f)
		// Two functions with one explicit subscription on one topic would
		// split its messages between them instead of each seeing all.
		in := f.GetInput()
		if in.GetSubscription() == "" {
			continue
		}
		for _, t := range in.GetTopics() {
			parsed, err := ParseTopic(t)
			if err != nil {
				continue
			}
			key := in.GetCluster() + " " + parsed.String() + " " + in.GetSubscription()
			if j, dup := subs[key]; dup && j != i {
				e.add(join(p, "input.subscription"), "%q on topic %q is also the subscription of %s; the two functions would split its messages", in.GetSubscription(), t, index("spec.functions", j))
				break
			}
			subs[key] = i
		}
	}
	validateConnectors(e, ConnectorSource, s.GetSources(), names)
	validateConnectors(e, ConnectorSink, s.GetSinks(), names)
}

func validateFunction(e *errs, p string, f *meshfedv1.FunctionSpec) {
	name(e, join(p, "name"), f.GetName())
	validateRuntime(e, join(p, "runtime"), f.GetRuntime())
	validateSecrets(e, p, f)

	nonNegative(e, join(p, "replicas"), f.GetReplicas())
	nonNegative(e, join(p, "minReplicas"), f.GetMinReplicas())
	nonNegative(e, join(p, "maxReplicas"), f.GetMaxReplicas())
	rep, lo, hi := f.GetReplicas(), f.GetMinReplicas(), f.GetMaxReplicas()
	if lo > 0 && hi > 0 && lo > hi {
		e.add(join(p, "minReplicas"), "%d is more than maxReplicas %d", lo, hi)
	}
	if rep > 0 && lo > 0 && rep < lo {
		e.add(join(p, "replicas"), "%d is less than minReplicas %d", rep, lo)
	}
	if rep > 0 && hi > 0 && rep > hi {
		e.add(join(p, "replicas"), "%d is more than maxReplicas %d", rep, hi)
	}
	oneOf(e, join(p, "processingGuarantee"), f.GetProcessingGuarantee(), processingGuarantees)

	in := f.GetInput()
	ip := join(p, "input")
	switch {
	case in == nil && f.GetRuntime().GetConnector().GetKind() == ConnectorSource:
		// A source reads an outside system.
	case in == nil:
		e.add(ip, "required: the cluster and topics the function reads")
	default:
		clusterName(e, join(ip, "cluster"), in.GetCluster(), true)
		if len(in.GetTopics()) == 0 {
			e.add(join(ip, "topics"), "required: at least one topic")
		}
		seen := map[string]int{}
		for i, t := range in.GetTopics() {
			tp := index(join(ip, "topics"), i)
			parsed, err := ParseTopic(t)
			if err != nil {
				e.add(tp, "%v", err)
				continue
			}
			if j, dup := seen[parsed.String()]; dup {
				e.add(tp, "topic %q is already listed at %s", t, index(join(ip, "topics"), j))
			}
			seen[parsed.String()] = i
		}
		if sub := in.GetSubscription(); sub != "" && !subscriptionName.MatchString(sub) {
			e.add(join(ip, "subscription"), "%q may hold only letters, digits, '-', '_', '=', ':', '.' and '/'", truncate(sub))
		}
		oneOf(e, join(ip, "subscriptionPosition"), in.GetSubscriptionPosition(), subscriptionPositions)
	}

	if out := f.GetOutput(); out != nil {
		op := join(p, "output")
		clusterName(e, join(op, "cluster"), out.GetCluster(), false)
		switch {
		case out.GetTopic() != "":
			topic(e, join(op, "topic"), out.GetTopic())
			if loopsBack(in, out) {
				e.add(join(op, "topic"), "%q on cluster %q is also an input of the function: it would consume its own output", out.GetTopic(), out.GetCluster())
			}
		case out.GetCluster() != "":
			e.add(join(op, "topic"), "required when output.cluster is set")
		}
	}

	placement := f.GetPlacement().GetCluster()
	clusterName(e, join(p, "placement.cluster"), placement, false)
	labels(e, join(p, "placement.nodeSelector"), f.GetPlacement().GetNodeSelector())
	oneOf(e, join(p, "placement.spread"), f.GetPlacement().GetSpread(), spreadModes)
	if placement == "" {
		placement = in.GetCluster()
	}
	if fo := f.GetFailover(); fo != nil {
		fp := join(p, "failover")
		clusterList(e, join(fp, "clusters"), fo.GetClusters())
		for i, c := range fo.GetClusters() {
			if c == placement && c != "" {
				e.add(index(join(fp, "clusters"), i), "%q is the cluster the function is placed in; a fallback must be another cluster", c)
			}
		}
		oneOf(e, join(fp, "failback"), fo.GetFailback(), failbackModes)
	}

	if f.GetDeadLetterTopic() != "" {
		topic(e, join(p, "deadLetterTopic"), f.GetDeadLetterTopic())
	}
	nonNegative(e, join(p, "maxMessageRetry"), f.GetMaxMessageRetry())
	if t := f.GetTimeout(); t != "" {
		d, err := time.ParseDuration(t)
		switch {
		case err != nil:
			e.add(join(p, "timeout"), "%q is not a duration such as 30s or 1m30s", truncate(t))
		case d <= 0:
			e.add(join(p, "timeout"), "must be greater than zero, got %s", t)
		}
	}
	if f.GetLogTopic() != "" {
		topic(e, join(p, "logTopic"), f.GetLogTopic())
	}
	validateAutoscaling(e, join(p, "autoscaling"), f)
	replicas := max(f.GetReplicas(), 1)
	if f.GetAutoscaling() != nil {
		replicas = max(replicas, f.GetMaxReplicas())
	}
	for i, n := range f.GetStoppedInstances() {
		if n < 0 || n >= replicas || slices.Index(f.GetStoppedInstances(), n) < i {
			e.add(index(join(p, "stoppedInstances"), i), "%d is not an instance index (0..%d) listed once", n, replicas-1)
		}
	}
	for n := range f.GetInstanceRestarts() {
		if n < 0 || n >= replicas {
			e.add(join(p, "instanceRestarts"), "%d is not an instance index (0..%d)", n, replicas-1)
		}
	}
	if r := f.GetResources(); r != nil {
		if r.GetCpu() != "" {
			if _, err := ParseCPU(r.GetCpu()); err != nil {
				e.add(join(p, "resources.cpu"), "%v", err)
			}
		}
		if r.GetMemory() != "" {
			if _, err := ParseMemory(r.GetMemory()); err != nil {
				e.add(join(p, "resources.memory"), "%v", err)
			}
		}
	}
}

// validateAutoscaling checks a function's autoscaling target (path p):
// it needs the bounds it scales between and at least one signal.
func validateAutoscaling(e *errs, p string, f *meshfedv1.FunctionSpec) {
	as := f.GetAutoscaling()
	if as == nil {
		return
	}
	fp := p[:strings.LastIndex(p, ".")]
	if f.GetMinReplicas() <= 0 {
		e.add(join(fp, "minReplicas"), "required with autoscaling: the fewest replicas to run (at least 1)")
	}
	if f.GetMaxReplicas() <= 0 {
		e.add(join(fp, "maxReplicas"), "required with autoscaling: the most replicas to run")
	} else if f.GetMaxReplicas() == f.GetMinReplicas() {
		e.add(join(fp, "maxReplicas"), "%d equals minReplicas: autoscaling needs room to scale", f.GetMaxReplicas())
	}
	if as.GetBacklogPerReplica() < 0 {
		e.add(join(p, "backlogPerReplica"), "must not be negative, got %d", as.GetBacklogPerReplica())
	}
	if c := as.GetCpuUtilization(); c < 0 || c > 100 {
		e.add(join(p, "cpuUtilization"), "must be a percentage between 1 and 100, got %d", c)
	}
	if as.GetBacklogPerReplica() == 0 && as.GetCpuUtilization() == 0 {
		e.add(p, "set backlogPerReplica, cpuUtilization or both: the signals to scale on")
	}
	for _, d := range []struct {
		field, value string
		positive     bool
	}{
		{"scaleUpStabilization", as.GetScaleUpStabilization(), false},
		{"scaleDownStabilization", as.GetScaleDownStabilization(), false},
		{"interval", as.GetInterval(), true},
	} {
		if d.value == "" {
			continue
		}
		v, err := time.ParseDuration(d.value)
		switch {
		case err != nil:
			e.add(join(p, d.field), "%q is not a duration such as 30s or 5m", truncate(d.value))
		case v < 0 || d.positive && v == 0:
			e.add(join(p, d.field), "must be %s, got %s", map[bool]string{true: "greater than zero", false: "zero or more"}[d.positive], d.value)
		}
	}
}

// loopsBack reports whether out writes to one of in's topics on the same
// cluster (an empty output cluster counts as the input cluster).
func loopsBack(in *meshfedv1.FunctionInput, out *meshfedv1.FunctionOutput) bool {
	if in == nil || out.GetCluster() != "" && out.GetCluster() != in.GetCluster() {
		return false
	}
	o, err := ParseTopic(out.GetTopic())
	if err != nil {
		return false
	}
	for _, t := range in.GetTopics() {
		if i, err := ParseTopic(t); err == nil && i == o {
			return true
		}
	}
	return false
}

func validateRuntime(e *errs, p string, r *meshfedv1.Runtime) {
	switch k := r.GetKind().(type) {
	case nil:
		e.add(p, "required: set exactly one of builtin, exec, wasm")
	case *meshfedv1.Runtime_Builtin:
		switch {
		case k.Builtin == "":
			e.add(join(p, "builtin"), "required: the name of a built-in function")
		case strings.ContainsFunc(k.Builtin, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			e.add(join(p, "builtin"), "%q contains a space or control character", truncate(k.Builtin))
		}
	case *meshfedv1.Runtime_Exec:
		ep := join(p, "exec")
		cmd := k.Exec.GetCommand()
		if len(cmd) == 0 || cmd[0] == "" {
			e.add(join(ep, "command"), "required: the program and its arguments, such as [python3, split.py]")
		}
		for _, key := range slices.Sorted(maps.Keys(k.Exec.GetEnv())) {
			if !envName.MatchString(key) {
				e.add(mapKey(join(ep, "env"), key), "%q is not an environment variable name (letters, digits and '_', not starting with a digit)", truncate(key))
			}
		}
		if pkg := k.Exec.GetPackage(); pkg != "" && !wasmPackage.MatchString(pkg) {
			e.add(join(ep, "package"), "%q is not a content address \"sha256:<64 lower-case hex digits>\"", truncate(pkg))
		}
	case *meshfedv1.Runtime_Connector:
		// Derived from spec.sources or spec.sinks, whose type is checked there.
	case *meshfedv1.Runtime_Wasm:
		pkg := k.Wasm.GetPackage()
		switch {
		case pkg == "":
			e.add(join(p, "wasm.package"), "required: the module's content address \"sha256:<64 hex digits>\"")
		case !wasmPackage.MatchString(pkg):
			e.add(join(p, "wasm.package"), "%q is not a content address \"sha256:<64 lower-case hex digits>\"", truncate(pkg))
		}
	}
}

func validateAgent(e *errs, s *meshfedv1.AgentSpec) {
	name(e, "spec.cluster", s.GetCluster())
	nonNegative(e, "spec.capacity", s.GetCapacity())
}

func validateAssignment(e *errs, s *meshfedv1.AssignmentSpec) {
	name(e, "spec.mesh", s.GetMesh())
	name(e, "spec.function", s.GetFunction())
	nonNegative(e, "spec.index", s.GetIndex())
	name(e, "spec.agent", s.GetAgent())
	name(e, "spec.cluster", s.GetCluster())
}

// Check validates a batch of objects, such as the documents of one file or
// one apply request: Validate on each, then, when st is not nil, ValidateRefs
// on those that passed. Errors carry filename and the 1-based position of
// the object in objs as its document number, which matches Decode's
// numbering for decoded files.
func Check(filename string, objs []*meshfedv1.Object, st Lookup) error {
	var all FieldErrors
	for i, o := range objs {
		err := Validate(o)
		if err == nil && st != nil {
			err = ValidateRefs(o, st)
		}
		all = append(all, AsFieldErrors(err).In(filename, i+1)...)
	}
	if len(all) == 0 {
		return nil
	}
	return all
}

// Lookup answers whether an object exists, for reference checks. Keys follow
// Key: a Tenant is ("Tenant", "", "", name), a Namespace is ("Namespace",
// tenant, "", name), a Cluster is ("Cluster", "", "", name). Callers applying
// a batch pass a Lookup that also sees the batch's other objects.
type Lookup interface {
	Exists(kind, tenant, namespace, name string) bool
}

// ValidateRefs checks that the objects o refers to exist: the tenant and
// namespace it lives in, the clusters a mesh reads from, writes to, runs in
// and fails over to, a tenant's allowed clusters, a namespace's flow-rule
// clusters, a grant's grantee namespace, an agent's cluster. Every missing
// object is reported, with the path of the field naming it. Run Validate
// first: ValidateRefs does not report malformed or empty names.
func ValidateRefs(o *meshfedv1.Object, st Lookup) error {
	var e errs
	k := KindOf(o)
	if k == nil {
		return nil
	}
	md := Unwrap(o).(metaHolder).GetMetadata()
	tenantOK := true
	if k.Scope != ScopeGlobal && md.GetTenant() != "" && !st.Exists(KindTenant, "", "", md.GetTenant()) {
		e.add("metadata.tenant", "unknown tenant %q", md.GetTenant())
		tenantOK = false
	}
	if k.Scope == ScopeNamespace && tenantOK && md.GetNamespace() != "" &&
		!st.Exists(KindNamespace, md.GetTenant(), "", md.GetNamespace()) {
		e.add("metadata.namespace", "unknown namespace %q in tenant %q", md.GetNamespace(), md.GetTenant())
	}
	cluster := func(path, c string) {
		if c != "" && c != "*" && !st.Exists(KindCluster, "", "", c) {
			e.add(path, "unknown cluster %q", c)
		}
	}
	switch v := o.GetKind().(type) {
	case *meshfedv1.Object_Tenant:
		for i, c := range v.Tenant.GetSpec().GetAllowedClusters() {
			cluster(index("spec.allowedClusters", i), c)
		}
	case *meshfedv1.Object_Namespace:
		for i, f := range v.Namespace.GetSpec().GetFlows() {
			cluster(join(index("spec.flows", i), "from"), f.GetFrom())
			cluster(join(index("spec.flows", i), "to"), f.GetTo())
		}
	case *meshfedv1.Object_Grant:
		g := v.Grant.GetSpec().GetGrantee()
		switch {
		case g.GetTenant() == "":
		case !st.Exists(KindTenant, "", "", g.GetTenant()):
			e.add("spec.grantee.tenant", "unknown tenant %q", g.GetTenant())
		case g.GetNamespace() != "" && !st.Exists(KindNamespace, g.GetTenant(), "", g.GetNamespace()):
			e.add("spec.grantee.namespace", "unknown namespace %q in tenant %q", g.GetNamespace(), g.GetTenant())
		}
	case *meshfedv1.Object_FunctionMesh:
		spec := v.FunctionMesh.GetSpec()
		for i, f := range MeshFunctions(spec) {
			p := MeshFunctionPath(spec, i)
			cluster(join(p, "input.cluster"), f.GetInput().GetCluster())
			cluster(join(p, "output.cluster"), f.GetOutput().GetCluster())
			if pl := f.GetPlacement().GetCluster(); pl != f.GetInput().GetCluster() && pl != f.GetOutput().GetCluster() {
				cluster(join(p, "placement.cluster"), pl)
			}
			for j, c := range f.GetFailover().GetClusters() {
				cluster(index(join(p, "failover.clusters"), j), c)
			}
		}
	case *meshfedv1.Object_Agent:
		cluster("spec.cluster", v.Agent.GetSpec().GetCluster())
	case *meshfedv1.Object_Assignment:
		cluster("spec.cluster", v.Assignment.GetSpec().GetCluster())
	}
	return e.err()
}

// choices checks that every value of the list at path is one of allowed
// and listed once.
func choices(e *errs, path string, values, allowed []string) {
	seen := map[string]bool{}
	for i, v := range values {
		p := index(path, i)
		switch {
		case !slices.Contains(allowed, v):
			e.add(p, "%q is not one of %s", v, strings.Join(allowed, ", "))
		case seen[v]:
			e.add(p, "%q is listed twice", v)
		}
		seen[v] = true
	}
}
