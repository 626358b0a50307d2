package objects

import (
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

const sha = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func validCluster() *meshfedv1.Cluster {
	return &meshfedv1.Cluster{ApiVersion: APIVersion, Kind: KindCluster,
		Metadata: &meshfedv1.ObjectMeta{Name: "a", Labels: map[string]string{"region": "eu", "example.com/tier": "gold"}},
		Spec:     &meshfedv1.ClusterSpec{Region: "eu-west-1", ServiceUrl: "pulsar://broker-a:6650", AdminUrl: "http://broker-a:8080"}}
}

func validTenant() *meshfedv1.Tenant {
	return &meshfedv1.Tenant{ApiVersion: APIVersion, Kind: KindTenant,
		Metadata: &meshfedv1.ObjectMeta{Name: "public"},
		Spec:     &meshfedv1.TenantSpec{Admins: []string{"alice"}, AllowedClusters: []string{"a", "b"}}}
}

func validNamespace() *meshfedv1.Namespace {
	return &meshfedv1.Namespace{ApiVersion: APIVersion, Kind: KindNamespace,
		Metadata: &meshfedv1.ObjectMeta{Name: "default", Tenant: "public"},
		Spec: &meshfedv1.NamespaceSpec{
			Quotas:          &meshfedv1.NamespaceQuotas{Meshes: 1, Functions: 2},
			AllowedRuntimes: []string{"builtin", "wasm"},
			Flows:           []*meshfedv1.FlowRule{{From: "a", To: "b"}, {From: "*", To: "*"}},
			Residency:       map[string]string{"residency": "eu"},
		}}
}

func validGrant() *meshfedv1.Grant {
	return &meshfedv1.Grant{ApiVersion: APIVersion, Kind: KindGrant,
		Metadata: &meshfedv1.ObjectMeta{Name: "g", Tenant: "research", Namespace: "models"},
		Spec: &meshfedv1.GrantSpec{Grantee: &meshfedv1.GrantSubject{Tenant: "hospital", Namespace: "training"},
			Actions: []string{"produce", "consume"}}}
}

func validFunction() *meshfedv1.FunctionSpec {
	return &meshfedv1.FunctionSpec{
		Name:                "split",
		Runtime:             &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "word-split"}},
		Replicas:            2,
		MinReplicas:         1,
		MaxReplicas:         4,
		ProcessingGuarantee: "effectively_once",
		Input: &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{"persistent://public/default/in", "other"},
			Subscription: "sub", SubscriptionPosition: "earliest"},
		Output:          &meshfedv1.FunctionOutput{Cluster: "b", Topic: "public/default/out"},
		Placement:       &meshfedv1.Placement{Cluster: "a"},
		Failover:        &meshfedv1.Failover{Clusters: []string{"c", "d"}, Failback: "manual"},
		DeadLetterTopic: "dlq",
		MaxMessageRetry: 3,
		Timeout:         "1m30s",
		LogTopic:        "non-persistent://public/default/log",
		Resources:       &meshfedv1.Resources{Cpu: "500m", Memory: "128Mi"},
	}
}

func validMesh(fns ...*meshfedv1.FunctionSpec) *meshfedv1.FunctionMesh {
	if len(fns) == 0 {
		fns = []*meshfedv1.FunctionSpec{validFunction()}
	}
	return &meshfedv1.FunctionMesh{ApiVersion: APIVersion, Kind: KindFunctionMesh,
		Metadata: &meshfedv1.ObjectMeta{Name: "wc", Tenant: "public", Namespace: "default"},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: fns}}
}

// vcase is one validation case: an object and the exact paths of the
// errors expected, each with part of its reason.
type vcase struct {
	name string
	obj  proto.Message
	want []wantErr // doc is ignored (0)
}

func runValidate(t *testing.T, cases []vcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrs(t, Validate(Wrap(tc.obj)), "", tc.want)
		})
	}
}

func fn(mut func(f *meshfedv1.FunctionSpec)) *meshfedv1.FunctionMesh {
	f := validFunction()
	mut(f)
	return validMesh(f)
}

func e(path, reason string) wantErr { return wantErr{0, path, reason} }

func TestValidateCommon(t *testing.T) {
	c := func(mut func(c *meshfedv1.Cluster)) *meshfedv1.Cluster { x := validCluster(); mut(x); return x }
	ns := func(mut func(n *meshfedv1.Namespace)) *meshfedv1.Namespace { x := validNamespace(); mut(x); return x }
	runValidate(t, []vcase{
		{"valid cluster", validCluster(), nil},
		{"valid tenant", validTenant(), nil},
		{"valid namespace", validNamespace(), nil},
		{"valid grant", validGrant(), nil},
		{"valid mesh", validMesh(), nil},
		{"apiVersion", c(func(c *meshfedv1.Cluster) { c.ApiVersion = "v1" }), []wantErr{e("apiVersion", "must be meshfed.io/v1")}},
		{"kind missing", c(func(c *meshfedv1.Cluster) { c.Kind = "" }), []wantErr{e("kind", "required: Cluster")}},
		{"kind wrong", c(func(c *meshfedv1.Cluster) { c.Kind = "Tenant" }), []wantErr{e("kind", `"Tenant" does not match the object, a Cluster`)}},
		{"metadata missing", c(func(c *meshfedv1.Cluster) { c.Metadata = nil }), []wantErr{e("metadata", "required")}},
		{"name missing", c(func(c *meshfedv1.Cluster) { c.Metadata.Name = "" }), []wantErr{e("metadata.name", "required")}},
		{"name upper case", c(func(c *meshfedv1.Cluster) { c.Metadata.Name = "EU" }), []wantErr{e("metadata.name", `"EU" is not a valid name`)}},
		{"name leading dash", c(func(c *meshfedv1.Cluster) { c.Metadata.Name = "-a" }), []wantErr{e("metadata.name", "not a valid name")}},
		{"name trailing dash", c(func(c *meshfedv1.Cluster) { c.Metadata.Name = "a-" }), []wantErr{e("metadata.name", "not a valid name")}},
		{"name too long", c(func(c *meshfedv1.Cluster) { c.Metadata.Name = strings.Repeat("a", 64) }), []wantErr{e("metadata.name", "64 characters long, more than 63")}},
		{"global kind with tenant", c(func(c *meshfedv1.Cluster) { c.Metadata.Tenant, c.Metadata.Namespace = "t", "n" }),
			[]wantErr{e("metadata.tenant", "must be empty"), e("metadata.namespace", "must be empty")}},
		{"namespace without tenant", ns(func(n *meshfedv1.Namespace) { n.Metadata.Tenant = "" }), []wantErr{e("metadata.tenant", "required")}},
		{"namespace in a namespace", ns(func(n *meshfedv1.Namespace) { n.Metadata.Namespace = "x" }), []wantErr{e("metadata.namespace", "must be empty: a Namespace belongs to a tenant")}},
		{"bad label key", c(func(c *meshfedv1.Cluster) {
			c.Metadata.Labels = map[string]string{"-x": "", "Ex.com/y": "v", "a/": "v"}
		}),
			[]wantErr{e("metadata.labels[-x]", `label key "-x"`), e("metadata.labels[Ex.com/y]", "prefix"), e("metadata.labels[a/]", "name must not be empty")}},
		{"bad label value", c(func(c *meshfedv1.Cluster) {
			c.Metadata.Labels = map[string]string{"k": "a b", "l": strings.Repeat("v", 64)}
		}),
			[]wantErr{e("metadata.labels[k]", `label value "a b"`), e("metadata.labels[l]", "more than 63")}},
	})
	m := validMesh()
	m.Metadata.Tenant, m.Metadata.Namespace = "", ""
	runValidate(t, []vcase{{"mesh scope missing", m, []wantErr{e("metadata.tenant", "required"), e("metadata.namespace", "required")}}})
	if err := Validate(&meshfedv1.Object{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty object: %v", err)
	}
}

func TestValidateCluster(t *testing.T) {
	c := func(mut func(s *meshfedv1.ClusterSpec)) *meshfedv1.Cluster {
		x := validCluster()
		mut(x.Spec)
		return x
	}
	runValidate(t, []vcase{
		{"ssl and several hosts", c(func(s *meshfedv1.ClusterSpec) {
			s.ServiceUrl, s.AdminUrl = "pulsar+ssl://h1:6651,h2:6651", "https://admin"
		}), nil},
		{"ipv6", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "pulsar://[::1]:6650" }), nil},
		{"no spec", &meshfedv1.Cluster{ApiVersion: APIVersion, Kind: KindCluster, Metadata: &meshfedv1.ObjectMeta{Name: "a"}}, []wantErr{e("spec", "required")}},
		{"no service URL", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "" }), []wantErr{e("spec.serviceURL", "required")}},
		{"http service URL", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "http://b:6650" }), []wantErr{e("spec.serviceURL", "must start with pulsar:// or pulsar+ssl://")}},
		{"no port", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "pulsar://b" }), []wantErr{e("spec.serviceURL", `"b" is not host:port`)}},
		{"bad port", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "pulsar://b:70000" }), []wantErr{e("spec.serviceURL", "port \"70000\" is not a number from 1 to 65535")}},
		{"path", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "pulsar://b:6650/x" }), []wantErr{e("spec.serviceURL", "must be only pulsar://host:port")}},
		{"no host", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "pulsar://:6650" }), []wantErr{e("spec.serviceURL", "has no host")}},
		{"not a URL", c(func(s *meshfedv1.ClusterSpec) { s.ServiceUrl = "pulsar://b:66%0" }), []wantErr{e("spec.serviceURL", "is not a URL")}},
		{"admin scheme", c(func(s *meshfedv1.ClusterSpec) { s.AdminUrl = "pulsar://b:8080" }), []wantErr{e("spec.adminURL", "must start with http:// or https://")}},
		{"admin no host", c(func(s *meshfedv1.ClusterSpec) { s.AdminUrl = "http:///x" }), []wantErr{e("spec.adminURL", "has no host")}},
		{"admin bad port", c(func(s *meshfedv1.ClusterSpec) { s.AdminUrl = "http://b:0" }), []wantErr{e("spec.adminURL", "port \"0\"")}},
		{"region", c(func(s *meshfedv1.ClusterSpec) { s.Region = "eu west" }), []wantErr{e("spec.region", `"eu west"`)}},
		{"auth params without plugin", c(func(s *meshfedv1.ClusterSpec) { s.Auth = &meshfedv1.ClusterAuth{AuthParams: "x"} }),
			[]wantErr{e("spec.auth.authPlugin", "required when authParams is set")}},
	})
}

func TestValidateTenantNamespaceGrant(t *testing.T) {
	tn := func(mut func(s *meshfedv1.TenantSpec)) *meshfedv1.Tenant { x := validTenant(); mut(x.Spec); return x }
	ns := func(mut func(s *meshfedv1.NamespaceSpec)) *meshfedv1.Namespace {
		x := validNamespace()
		mut(x.Spec)
		return x
	}
	gr := func(mut func(s *meshfedv1.GrantSpec)) *meshfedv1.Grant { x := validGrant(); mut(x.Spec); return x }
	runValidate(t, []vcase{
		{"empty admin", tn(func(s *meshfedv1.TenantSpec) { s.Admins = []string{"a", " "} }), []wantErr{e("spec.admins[1]", "must not be empty")}},
		{"allowed clusters", tn(func(s *meshfedv1.TenantSpec) { s.AllowedClusters = []string{"a", "B", "a"} }),
			[]wantErr{e("spec.allowedClusters[1]", `"B" is not a valid name`), e("spec.allowedClusters[2]", `cluster "a" is already listed at spec.allowedClusters[0]`)}},
		{"negative quotas", ns(func(s *meshfedv1.NamespaceSpec) {
			s.Quotas = &meshfedv1.NamespaceQuotas{Meshes: -1, Functions: -1, Instances: -1, ReplicasPerFunction: -1}
		}), []wantErr{e("spec.quotas.meshes", "must not be negative, got -1"), e("spec.quotas.functions", "negative"),
			e("spec.quotas.instances", "negative"), e("spec.quotas.replicasPerFunction", "negative")}},
		{"runtimes", ns(func(s *meshfedv1.NamespaceSpec) { s.AllowedRuntimes = []string{"java", "wasm", "wasm"} }),
			[]wantErr{e("spec.allowedRuntimes[0]", `"java" is not one of builtin, exec, wasm`), e("spec.allowedRuntimes[2]", `"wasm" is listed twice`)}},
		{"flows", ns(func(s *meshfedv1.NamespaceSpec) { s.Flows = []*meshfedv1.FlowRule{{From: "", To: "x y"}} }),
			[]wantErr{e("spec.flows[0].from", `required: a cluster name or "*"`), e("spec.flows[0].to", "not a valid name")}},
		{"residency", ns(func(s *meshfedv1.NamespaceSpec) { s.Residency = map[string]string{"zone": "a/b"} }),
			[]wantErr{e("spec.residency[zone]", `label value "a/b"`)}},
		{"grantee missing", gr(func(s *meshfedv1.GrantSpec) { s.Grantee = nil }), []wantErr{e("spec.grantee", "required")}},
		{"grantee incomplete", gr(func(s *meshfedv1.GrantSpec) { s.Grantee.Namespace = "" }), []wantErr{e("spec.grantee.namespace", "required")}},
		{"grant to itself", gr(func(s *meshfedv1.GrantSpec) {
			s.Grantee = &meshfedv1.GrantSubject{Tenant: "research", Namespace: "models"}
		}),
			[]wantErr{e("spec.grantee", "research/models is the namespace the grant lives in")}},
		{"no actions", gr(func(s *meshfedv1.GrantSpec) { s.Actions = nil }), []wantErr{e("spec.actions", "required: produce, consume or both")}},
		{"bad actions", gr(func(s *meshfedv1.GrantSpec) { s.Actions = []string{"read", "produce", "produce"} }),
			[]wantErr{e("spec.actions[0]", `"read" is not one of produce, consume`), e("spec.actions[2]", "listed twice")}},
	})
}

func TestValidateMesh(t *testing.T) {
	two := validFunction()
	two.Input.Cluster = "b"
	shared := validFunction()
	shared.Name = "other"
	shared.Input.Topics = []string{"persistent://public/default/other"}
	ownSub := validFunction()
	ownSub.Name = "third"
	ownSub.Input.Subscription = "sub-3"
	noFns := validMesh()
	noFns.Spec.Functions = nil
	runValidate(t, []vcase{
		{"no functions", noFns, []wantErr{e("spec.functions", "required: at least one function")}},
		{"shared subscription", validMesh(validFunction(), shared, ownSub),
			[]wantErr{e("spec.functions[1].input.subscription", `"sub" on topic "persistent://public/default/other" is also the subscription of spec.functions[0]`)}},
		{"duplicate function", validMesh(validFunction(), two), []wantErr{e("spec.functions[1].name", `function "split" is already defined at spec.functions[0]`)}},
		{"name", fn(func(f *meshfedv1.FunctionSpec) { f.Name = "Split_1" }), []wantErr{e("spec.functions[0].name", "not a valid name")}},
		{"no runtime", fn(func(f *meshfedv1.FunctionSpec) { f.Runtime = nil }), []wantErr{e("spec.functions[0].runtime", "required: set exactly one of builtin, exec, wasm")}},
		{"empty runtime", fn(func(f *meshfedv1.FunctionSpec) { f.Runtime = &meshfedv1.Runtime{} }), []wantErr{e("spec.functions[0].runtime", "required")}},
		{"empty builtin", fn(func(f *meshfedv1.FunctionSpec) { f.Runtime.Kind = &meshfedv1.Runtime_Builtin{} }), []wantErr{e("spec.functions[0].runtime.builtin", "required")}},
		{"builtin with space", fn(func(f *meshfedv1.FunctionSpec) { f.Runtime.Kind = &meshfedv1.Runtime_Builtin{Builtin: "a b"} }), []wantErr{e("spec.functions[0].runtime.builtin", "space or control character")}},
		{"exec ok", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{"python3", "x.py"}, Env: map[string]string{"A_1": "x"}, Package: sha}}
		}), nil},
		{"exec empty", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Env: map[string]string{"1A": "x"}, Package: "sha256:abc"}}
		}), []wantErr{e("spec.functions[0].runtime.exec.command", "required: the program and its arguments"),
			e("spec.functions[0].runtime.exec.env[1A]", "not an environment variable name"),
			e("spec.functions[0].runtime.exec.package", `"sha256:abc" is not a content address`)}},
		{"secrets ok", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{"python3", "x.py"}}}
			f.Secrets = map[string]string{"DB_PASSWORD": "env:PG_PASSWORD", "API_KEY": "file:///etc/meshfed/api-key", "TOKEN": "file:/run/token"}
		}), nil},
		{"secrets refused", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{"x"}, Env: map[string]string{"A": "1"}}}
			f.Secrets = map[string]string{"A": "env:B", "1X": "env:C", "CLEAR": "hunter2", "REL": "file:rel/path", "BADENV": "env:9x", "EMPTY": ""}
		}), []wantErr{e("spec.functions[0].secrets[1X]", "not an environment variable name"),
			e("spec.functions[0].secrets[A]", "also set in runtime.exec.env"),
			e("spec.functions[0].secrets[BADENV]", "not an environment variable name"),
			e("spec.functions[0].secrets[CLEAR]", "a secret in clear is not accepted"),
			e("spec.functions[0].secrets[EMPTY]", "empty"),
			e("spec.functions[0].secrets[REL]", "is not a file URL")}},
		{"secrets of a builtin", fn(func(f *meshfedv1.FunctionSpec) { f.Secrets = map[string]string{"K": "env:K"} }),
			[]wantErr{e("spec.functions[0].secrets", "only exec functions receive secrets")}},
		{"exec empty program", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{""}}}
		}), []wantErr{e("spec.functions[0].runtime.exec.command", "required")}},
		{"wasm ok", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: sha}}
		}), nil},
		{"wasm missing", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{}}
		}), []wantErr{e("spec.functions[0].runtime.wasm.package", "required")}},
		{"wasm upper hex", fn(func(f *meshfedv1.FunctionSpec) {
			f.Runtime.Kind = &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: strings.ToUpper(sha)}}
		}), []wantErr{e("spec.functions[0].runtime.wasm.package", "is not a content address")}},
		{"negative replicas", fn(func(f *meshfedv1.FunctionSpec) { f.Replicas, f.MinReplicas, f.MaxReplicas = -1, -1, -1 }),
			[]wantErr{e("spec.functions[0].replicas", "must not be negative"), e("spec.functions[0].minReplicas", "must not be negative"), e("spec.functions[0].maxReplicas", "must not be negative")}},
		{"min above max", fn(func(f *meshfedv1.FunctionSpec) { f.Replicas, f.MinReplicas, f.MaxReplicas = 0, 5, 4 }),
			[]wantErr{e("spec.functions[0].minReplicas", "5 is more than maxReplicas 4")}},
		{"replicas below min", fn(func(f *meshfedv1.FunctionSpec) { f.Replicas, f.MinReplicas = 1, 2 }),
			[]wantErr{e("spec.functions[0].replicas", "1 is less than minReplicas 2")}},
		{"replicas above max", fn(func(f *meshfedv1.FunctionSpec) { f.Replicas = 5 }),
			[]wantErr{e("spec.functions[0].replicas", "5 is more than maxReplicas 4")}},
		{"guarantee", fn(func(f *meshfedv1.FunctionSpec) { f.ProcessingGuarantee = "exactly_once" }),
			[]wantErr{e("spec.functions[0].processingGuarantee", `"exactly_once" is not one of atmost_once, atleast_once, effectively_once`)}},
		{"no input", fn(func(f *meshfedv1.FunctionSpec) { f.Input = nil }), []wantErr{e("spec.functions[0].input", "required")}},
		{"input incomplete", fn(func(f *meshfedv1.FunctionSpec) { f.Input = &meshfedv1.FunctionInput{} }),
			[]wantErr{e("spec.functions[0].input.cluster", "required"), e("spec.functions[0].input.topics", "required: at least one topic")}},
		{"bad topics", fn(func(f *meshfedv1.FunctionSpec) {
			f.Input.Topics = []string{"a/b", "persistent://public/default/x", "x", "http://t/n/x", "persistent://t/n/", "t/n/a b", "p/c/n/t"}
		}), []wantErr{e("spec.functions[0].input.topics[0]", `invalid topic "a/b": expected topic or tenant/namespace/topic`),
			e("spec.functions[0].input.topics[2]", `topic "x" is already listed at spec.functions[0].input.topics[1]`),
			e("spec.functions[0].input.topics[3]", `domain "http" is neither persistent nor non-persistent`),
			e("spec.functions[0].input.topics[4]", "the topic name is empty"),
			e("spec.functions[0].input.topics[5]", "space or control character"),
			e("spec.functions[0].input.topics[6]", "expected topic or tenant/namespace/topic")}},
		{"subscription", fn(func(f *meshfedv1.FunctionSpec) { f.Input.Subscription, f.Input.SubscriptionPosition = "a b", "oldest" }),
			[]wantErr{e("spec.functions[0].input.subscription", `"a b" may hold only`), e("spec.functions[0].input.subscriptionPosition", `"oldest" is not one of latest, earliest`)}},
		{"output cluster without topic", fn(func(f *meshfedv1.FunctionSpec) { f.Output.Topic = "" }),
			[]wantErr{e("spec.functions[0].output.topic", "required when output.cluster is set")}},
		{"output topic without cluster", fn(func(f *meshfedv1.FunctionSpec) { f.Output.Cluster = "" }), nil},
		{"bad output", fn(func(f *meshfedv1.FunctionSpec) { f.Output = &meshfedv1.FunctionOutput{Cluster: "B", Topic: "a//b"} }),
			[]wantErr{e("spec.functions[0].output.cluster", "not a valid name"), e("spec.functions[0].output.topic", `namespace "" is empty`)}},
		{"output loops back", fn(func(f *meshfedv1.FunctionSpec) {
			f.Output = &meshfedv1.FunctionOutput{Cluster: "a", Topic: "public/default/other"}
		}),
			[]wantErr{e("spec.functions[0].output.topic", "is also an input of the function")}},
		{"same topic other cluster", fn(func(f *meshfedv1.FunctionSpec) { f.Output.Topic = "other" }), nil},
		{"placement", fn(func(f *meshfedv1.FunctionSpec) { f.Placement.Cluster = "A" }), []wantErr{e("spec.functions[0].placement.cluster", "not a valid name")}},
		{"placement selector and spread", fn(func(f *meshfedv1.FunctionSpec) {
			f.Placement.NodeSelector, f.Placement.Spread = map[string]string{"zone": "eu-1", "bad key!": "x"}, "zone"
		}), []wantErr{e("spec.functions[0].placement.nodeSelector[bad key!]", ""), e("spec.functions[0].placement.spread", `"zone" is not one of agent`)}},
		{"failover", fn(func(f *meshfedv1.FunctionSpec) {
			f.Failover = &meshfedv1.Failover{Clusters: []string{"c", "a", "c"}, Failback: "never"}
		}),
			[]wantErr{e("spec.functions[0].failover.clusters[2]", `cluster "c" is already listed at spec.functions[0].failover.clusters[0]`),
				e("spec.functions[0].failover.clusters[1]", `"a" is the cluster the function is placed in`),
				e("spec.functions[0].failover.failback", `"never" is not one of auto, manual`)}},
		{"failover to input cluster", fn(func(f *meshfedv1.FunctionSpec) { f.Placement = nil; f.Failover.Clusters = []string{"a"} }),
			[]wantErr{e("spec.functions[0].failover.clusters[0]", "placed in")}},
		{"failover to input cluster when placed elsewhere", fn(func(f *meshfedv1.FunctionSpec) { f.Placement.Cluster = "b"; f.Failover.Clusters = []string{"a"} }), nil},
		{"topics and retries", fn(func(f *meshfedv1.FunctionSpec) { f.DeadLetterTopic, f.LogTopic, f.MaxMessageRetry = "a/b", "x y", -1 }),
			[]wantErr{e("spec.functions[0].deadLetterTopic", "invalid topic"), e("spec.functions[0].maxMessageRetry", "must not be negative"), e("spec.functions[0].logTopic", "invalid topic")}},
		{"timeout", fn(func(f *meshfedv1.FunctionSpec) { f.Timeout = "30" }), []wantErr{e("spec.functions[0].timeout", `"30" is not a duration such as 30s`)}},
		{"zero timeout", fn(func(f *meshfedv1.FunctionSpec) { f.Timeout = "0s" }), []wantErr{e("spec.functions[0].timeout", "must be greater than zero")}},
		{"resources", fn(func(f *meshfedv1.FunctionSpec) { f.Resources = &meshfedv1.Resources{Cpu: "half", Memory: "128m"} }),
			[]wantErr{e("spec.functions[0].resources.cpu", `invalid cpu quantity "half"`), e("spec.functions[0].resources.memory", "did you mean 128Mi?")}},
	})
}

func TestValidateSystemKinds(t *testing.T) {
	runValidate(t, []vcase{
		{"agent", &meshfedv1.Agent{ApiVersion: APIVersion, Kind: KindAgent, Metadata: &meshfedv1.ObjectMeta{Name: "a-1"},
			Spec: &meshfedv1.AgentSpec{Cluster: "a", Capacity: 8}}, nil},
		{"bad agent", &meshfedv1.Agent{ApiVersion: APIVersion, Kind: KindAgent, Metadata: &meshfedv1.ObjectMeta{Name: "a-1"},
			Spec: &meshfedv1.AgentSpec{Capacity: -1}}, []wantErr{e("spec.cluster", "required"), e("spec.capacity", "negative")}},
		{"assignment", &meshfedv1.Assignment{ApiVersion: APIVersion, Kind: KindAssignment,
			Metadata: &meshfedv1.ObjectMeta{Name: "wc-split-0", Tenant: "public", Namespace: "default"},
			Spec:     &meshfedv1.AssignmentSpec{Mesh: "wc", Function: "split", Agent: "a-1", Cluster: "a", Index: -1}},
			[]wantErr{e("spec.index", "negative")}},
	})
}

func TestValidateRefs(t *testing.T) {
	st := memLookup{}
	for _, k := range []string{Key(KindCluster, "", "", "a"), Key(KindCluster, "", "", "b"), Key(KindCluster, "", "", "c"), Key(KindCluster, "", "", "d"),
		Key(KindTenant, "", "", "public"), Key(KindNamespace, "public", "", "default"), Key(KindTenant, "", "", "hospital")} {
		st[k] = true
	}
	second := validFunction()
	second.Name = "count"
	second.Output.Cluster = "eu-west"
	second.Failover.Clusters = []string{"c", "x"}
	second.Placement.Cluster = "y"
	grant := validGrant()
	grant.Metadata.Tenant = "public"
	grant.Metadata.Namespace = "default"
	ns := validNamespace()
	ns.Metadata.Tenant = "acme"
	ns.Spec.Flows = []*meshfedv1.FlowRule{{From: "a", To: "z"}, {From: "*", To: "*"}}
	tn := validTenant()
	tn.Spec.AllowedClusters = []string{"a", "q"}
	otherNS := validMesh()
	otherNS.Metadata.Namespace = "prod"
	otherTenant := validMesh()
	otherTenant.Metadata.Tenant = "acme"
	tests := []vcase{
		{"cluster", validCluster(), nil},
		{"mesh ok", validMesh(), nil},
		{"mesh", validMesh(validFunction(), second), []wantErr{
			e("spec.functions[1].output.cluster", `unknown cluster "eu-west"`),
			e("spec.functions[1].placement.cluster", `unknown cluster "y"`),
			e("spec.functions[1].failover.clusters[1]", `unknown cluster "x"`)}},
		{"mesh in unknown namespace", otherNS, []wantErr{e("metadata.namespace", `unknown namespace "prod" in tenant "public"`)}},
		{"mesh in unknown tenant", otherTenant, []wantErr{e("metadata.tenant", `unknown tenant "acme"`)}},
		{"namespace", ns, []wantErr{e("metadata.tenant", `unknown tenant "acme"`), e("spec.flows[0].to", `unknown cluster "z"`)}},
		{"tenant", tn, []wantErr{e("spec.allowedClusters[1]", `unknown cluster "q"`)}},
		{"grant", grant, []wantErr{e("spec.grantee.namespace", `unknown namespace "training" in tenant "hospital"`)}},
		{"agent", &meshfedv1.Agent{Metadata: &meshfedv1.ObjectMeta{Name: "x"}, Spec: &meshfedv1.AgentSpec{Cluster: "z"}},
			[]wantErr{e("spec.cluster", `unknown cluster "z"`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrs(t, ValidateRefs(Wrap(tc.obj), st), "", tc.want)
		})
	}
	// The error as a user sees it, once placed in its file and document.
	err := ValidateRefs(Wrap(validMesh(validFunction(), second)), st)
	got := AsFieldErrors(err).In("mesh.yaml", 2)[0].Error()
	if want := `mesh.yaml: doc 2: spec.functions[1].output.cluster: unknown cluster "eu-west"`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestCheck(t *testing.T) {
	data := clusterDoc + "---\n" + docWith(clusterDoc, "name: a", "name: B") + "---\n" +
		docWith(meshDoc, "output: {cluster: b,", "output: {cluster: eu-west,")
	objs, err := Decode("mesh.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	st := lookupOf(objs)
	st[Key(KindTenant, "", "", "public")] = true
	st[Key(KindNamespace, "public", "", "default")] = true
	st[Key(KindCluster, "", "", "b")] = true
	st[Key(KindCluster, "", "", "c")] = true
	checkErrs(t, Check("mesh.yaml", objs, st), "mesh.yaml", []wantErr{
		{2, "metadata.name", `"B" is not a valid name`},
		{3, "spec.functions[0].output.cluster", `unknown cluster "eu-west"`},
	})
	if err := Check("mesh.yaml", objs[:1], nil); err != nil {
		t.Errorf("Check without lookup: %v", err)
	}
}
