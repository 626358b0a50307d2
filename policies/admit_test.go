package policies

import (
	"errors"
	"slices"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
)

// world is the clusters and tenants every admission case starts from.
func world() []*meshfedv1.Object {
	return []*meshfedv1.Object{
		testkit.Cluster("a", "region", "eu", "site", "a"),
		testkit.Cluster("b", "region", "eu"),
		testkit.Cluster("eu-1", "region", "eu", "tier", "gold"),
		testkit.Cluster("us-east", "region", "us"),
		testkit.Cluster("c"),
		testkit.Tenant("acme"),
		testkit.Tenant("hospital-a"),
		testkit.Tenant("lab-b"),
		testkit.Tenant("public"),
		testkit.Namespace("acme", "dev", nil),
		testkit.Namespace("acme", "other", nil),
		testkit.Namespace("hospital-a", "training", nil),
		testkit.Namespace("lab-b", "models", nil),
		testkit.Namespace("public", "default", nil),
	}
}

const (
	records = "persistent://hospital-a/training/records"
	updates = "persistent://lab-b/models/updates"
)

// flMesh is the federated-learning mesh: hospital-a trains on its records
// in cluster a and writes model updates to lab-b's namespace in cluster b.
func flMesh() *meshfedv1.FunctionMesh {
	return testkit.MeshOf("hospital-a", "training", "train", fnSpec("train", "a", []string{records}, "b", updates))
}

type admitCase struct {
	name string
	objs []*meshfedv1.Object // added to world()
	mesh *meshfedv1.FunctionMesh
	want []string
}

func runAdmitCases(t *testing.T, cases []admitCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewStatic(append(world(), tc.objs...)...)
			err := AdmitMesh(tc.mesh, v)
			got := errLines(err)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("AdmitMesh:\n got %q\nwant %q", got, tc.want)
			}
			for _, vi := range AsViolations(err) {
				if vi.Code != vi.Rule.Code() {
					t.Errorf("%s: code %v, want %v", vi.Rule, vi.Code, vi.Rule.Code())
				}
				if !strings.HasPrefix(vi.Path, "spec.") && vi.Path != "metadata.name" {
					t.Errorf("path %q is not a field path", vi.Path)
				}
			}
		})
	}
}

func TestAdmitAllowedClusters(t *testing.T) {
	m := testkit.MeshOf("acme", "dev", "m", with(fnSpec("f", "a", []string{"persistent://acme/dev/in"}, "us-east", "persistent://acme/dev/out"), func(f *meshfedv1.FunctionSpec) {
		f.Placement = &meshfedv1.Placement{Cluster: "c"}
		f.Failover = &meshfedv1.Failover{Clusters: []string{"b", "us-east"}}
	}))
	runAdmitCases(t, []admitCase{
		{name: "every cluster allowed", objs: []*meshfedv1.Object{testkit.Tenant("acme", "a", "b", "c", "us-east")}, mesh: m},
		{name: "empty list allows all", mesh: m},
		{name: "denied per field", objs: []*meshfedv1.Object{testkit.Tenant("acme", "a", "b")}, mesh: m, want: []string{
			`spec.functions[0].output.cluster "us-east" is not one of the clusters tenant acme may use (a, b) (tenant.allowedClusters)`,
			`spec.functions[0].placement.cluster "c" is not one of the clusters tenant acme may use (a, b) (tenant.allowedClusters)`,
			`spec.functions[0].failover.clusters[1] "us-east" is not one of the clusters tenant acme may use (a, b) (tenant.allowedClusters)`,
		}},
		{name: "input cluster", objs: []*meshfedv1.Object{testkit.Tenant("acme", "b", "c", "us-east")}, mesh: m, want: []string{
			`spec.functions[0].input.cluster "a" is not one of the clusters tenant acme may use (b, c, us-east) (tenant.allowedClusters)`,
		}},
	})
}

func TestAdmitRuntimes(t *testing.T) {
	exec := with(fnSpec("e", "a", []string{"persistent://acme/dev/in"}, "", ""), func(f *meshfedv1.FunctionSpec) {
		f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{"python3"}}}}
	})
	wasm := with(fnSpec("w", "a", []string{"persistent://acme/dev/in"}, "", ""), func(f *meshfedv1.FunctionSpec) {
		f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: "sha256:00"}}}
	})
	none := with(fnSpec("n", "a", []string{"persistent://acme/dev/in"}, "", ""), func(f *meshfedv1.FunctionSpec) { f.Runtime = nil })
	builtin := fnSpec("b", "a", []string{"persistent://acme/dev/in"}, "", "")
	m := testkit.MeshOf("acme", "dev", "m", builtin, exec, wasm, none)
	runAdmitCases(t, []admitCase{
		{name: "empty list allows all", mesh: m},
		{name: "exec off", objs: []*meshfedv1.Object{testkit.Namespace("acme", "dev", &meshfedv1.NamespaceSpec{AllowedRuntimes: []string{"builtin", "wasm"}})}, mesh: m, want: []string{
			`spec.functions[1].runtime exec is not allowed in namespace acme/dev, which allows builtin, wasm (namespace.allowedRuntimes)`,
		}},
		{name: "only exec", objs: []*meshfedv1.Object{testkit.Namespace("acme", "dev", &meshfedv1.NamespaceSpec{AllowedRuntimes: []string{"exec"}})}, mesh: m, want: []string{
			`spec.functions[0].runtime builtin is not allowed in namespace acme/dev, which allows exec (namespace.allowedRuntimes)`,
			`spec.functions[2].runtime wasm is not allowed in namespace acme/dev, which allows exec (namespace.allowedRuntimes)`,
		}},
	})
}

func TestAdmitResidency(t *testing.T) {
	eu := testkit.Namespace("acme", "eu-analytics", &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "eu"}})
	gold := testkit.Namespace("acme", "eu-analytics", &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "eu", "tier": "gold"}})
	in := []string{"persistent://acme/eu-analytics/in"}
	out := "persistent://acme/eu-analytics/out"
	runAdmitCases(t, []admitCase{
		{name: "all eu", objs: []*meshfedv1.Object{eu}, mesh: testkit.MeshOf("acme", "eu-analytics", "m", with(fnSpec("f", "a", in, "b", out), func(f *meshfedv1.FunctionSpec) {
			f.Placement = &meshfedv1.Placement{Cluster: "eu-1"}
			f.Failover = &meshfedv1.Failover{Clusters: []string{"b"}}
		}))},
		{name: "output outside", objs: []*meshfedv1.Object{eu}, mesh: testkit.MeshOf("acme", "eu-analytics", "m", fnSpec("f", "a", in, "us-east", out)), want: []string{
			`spec.functions[0].output.cluster "us-east" is outside residency region=eu of namespace acme/eu-analytics (namespace.residency)`,
		}},
		{name: "input placement failover and unknown cluster", objs: []*meshfedv1.Object{eu}, mesh: testkit.MeshOf("acme", "eu-analytics", "m", with(fnSpec("f", "us-east", in, "", out), func(f *meshfedv1.FunctionSpec) {
			f.Placement = &meshfedv1.Placement{Cluster: "c"}
			f.Failover = &meshfedv1.Failover{Clusters: []string{"a", "nowhere"}}
		})), want: []string{
			`spec.functions[0].input.cluster "us-east" is outside residency region=eu of namespace acme/eu-analytics (namespace.residency)`,
			`spec.functions[0].placement.cluster "c" is outside residency region=eu of namespace acme/eu-analytics (namespace.residency)`,
			`spec.functions[0].failover.clusters[1] "nowhere" is outside residency region=eu of namespace acme/eu-analytics (namespace.residency)`,
		}},
		{name: "every label needed", objs: []*meshfedv1.Object{gold}, mesh: testkit.MeshOf("acme", "eu-analytics", "m", fnSpec("f", "eu-1", in, "a", out)), want: []string{
			`spec.functions[0].output.cluster "a" is outside residency region=eu,tier=gold of namespace acme/eu-analytics (namespace.residency)`,
		}},
		{name: "no residency", mesh: testkit.MeshOf("acme", "dev", "m", fnSpec("f", "us-east", []string{"persistent://acme/dev/in"}, "c", "persistent://acme/dev/out"))},
	})
}

func TestAdmitFlows(t *testing.T) {
	rules := func(pairs ...string) *meshfedv1.Object {
		spec := &meshfedv1.NamespaceSpec{}
		for i := 0; i+1 < len(pairs); i += 2 {
			spec.Flows = append(spec.Flows, &meshfedv1.FlowRule{From: pairs[i], To: pairs[i+1]})
		}
		return testkit.Namespace("acme", "dev", spec)
	}
	in := []string{"persistent://acme/dev/in"}
	out := "persistent://acme/dev/out"
	aToB := fnSpec("ab", "a", in, "b", out)
	viaC := with(fnSpec("via", "a", in, "b", out), func(f *meshfedv1.FunctionSpec) { f.Placement = &meshfedv1.Placement{Cluster: "c"} })
	bToA := fnSpec("ba", "b", in, "a", out)
	local := fnSpec("local", "us-east", in, "us-east", out)
	implicit := fnSpec("implicit", "us-east", in, "", out)
	runAdmitCases(t, []admitCase{
		{name: "no rules allow every flow", mesh: testkit.MeshOf("acme", "dev", "m", aToB, viaC, bToA)},
		{name: "one rule", objs: []*meshfedv1.Object{rules("a", "b")}, mesh: testkit.MeshOf("acme", "dev", "m", aToB, viaC, bToA, local, implicit), want: []string{
			`spec.functions[1].placement.cluster "c" receives data from input cluster "a", and no flow rule of namespace acme/dev allows a -> c (namespace.flows)`,
			`spec.functions[1].output.cluster "b" receives data from placement cluster "c", and no flow rule of namespace acme/dev allows c -> b (namespace.flows)`,
			`spec.functions[2].output.cluster "a" receives data from placement cluster "b", and no flow rule of namespace acme/dev allows b -> a (namespace.flows)`,
		}},
		{name: "wildcard to", objs: []*meshfedv1.Object{rules("a", "*", "c", "b")}, mesh: testkit.MeshOf("acme", "dev", "m", aToB, viaC)},
		{name: "wildcard from", objs: []*meshfedv1.Object{rules("*", "b", "a", "c")}, mesh: testkit.MeshOf("acme", "dev", "m", aToB, viaC)},
		{name: "any to any", objs: []*meshfedv1.Object{rules("*", "*")}, mesh: testkit.MeshOf("acme", "dev", "m", aToB, viaC, bToA)},
		{name: "placement hops but not input to output", objs: []*meshfedv1.Object{rules("a", "c", "c", "b")}, mesh: testkit.MeshOf("acme", "dev", "m", viaC), want: []string{
			`spec.functions[0].output.cluster "b" receives data from input cluster "a", and no flow rule of namespace acme/dev allows a -> b (namespace.flows)`,
		}},
	})
}

func TestAdmitGrants(t *testing.T) {
	produce := grantObj("lab-b", "models", "hospital-a-updates", "hospital-a", "training", "produce")
	consume := grantObj("lab-b", "models", "hospital-a-read", "hospital-a", "training", "consume")
	noUpdates := `spec.functions[0].output.topic "persistent://lab-b/models/updates" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training produce (grant.produce)`
	readModels := testkit.MeshOf("hospital-a", "training", "eval", fnSpec("eval", "b", []string{records, updates}, "a", "persistent://hospital-a/training/scores"))
	sideTopics := testkit.MeshOf("hospital-a", "training", "train", with(fnSpec("train", "a", []string{records}, "b", updates), func(f *meshfedv1.FunctionSpec) {
		f.DeadLetterTopic = "persistent://lab-b/models/dlq"
		f.LogTopic = "persistent://lab-b/models/log"
	}))
	runAdmitCases(t, []admitCase{
		{name: "federated learning without grant", mesh: flMesh(), want: []string{noUpdates}},
		{name: "federated learning with grant", objs: []*meshfedv1.Object{produce}, mesh: flMesh()},
		{name: "produce and consume in one grant", objs: []*meshfedv1.Object{grantObj("lab-b", "models", "g", "hospital-a", "training", "consume", "produce")}, mesh: flMesh()},
		{name: "consume does not allow produce", objs: []*meshfedv1.Object{consume}, mesh: flMesh(), want: []string{noUpdates}},
		{name: "grant for another namespace", objs: []*meshfedv1.Object{grantObj("lab-b", "models", "g", "hospital-a", "other", "produce")}, mesh: flMesh(), want: []string{noUpdates}},
		{name: "grant for another tenant", objs: []*meshfedv1.Object{grantObj("lab-b", "models", "g", "acme", "training", "produce")}, mesh: flMesh(), want: []string{noUpdates}},
		{name: "grant in another namespace of the owner", objs: []*meshfedv1.Object{testkit.Namespace("lab-b", "other", nil), grantObj("lab-b", "other", "g", "hospital-a", "training", "produce")}, mesh: flMesh(), want: []string{noUpdates}},
		{name: "consume without grant", objs: []*meshfedv1.Object{produce}, mesh: readModels, want: []string{
			`spec.functions[0].input.topics[1] "persistent://lab-b/models/updates" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training consume (grant.consume)`,
		}},
		{name: "consume with grant", objs: []*meshfedv1.Object{consume}, mesh: readModels},
		{name: "same tenant other namespace needs none", mesh: testkit.MeshOf("acme", "dev", "m", fnSpec("f", "a", []string{"persistent://acme/other/in"}, "b", "acme/other/out"))},
		{name: "short name is public/default", mesh: testkit.MeshOf("acme", "dev", "m", fnSpec("f", "a", []string{"sentences"}, "", "")), want: []string{
			`spec.functions[0].input.topics[0] "sentences" is in tenant public: no Grant in public/default lets acme/dev consume (grant.consume)`,
		}},
		{name: "dead letter and log topics are produced to", objs: []*meshfedv1.Object{consume}, mesh: sideTopics, want: []string{
			noUpdates,
			`spec.functions[0].deadLetterTopic "persistent://lab-b/models/dlq" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training produce (grant.produce)`,
			`spec.functions[0].logTopic "persistent://lab-b/models/log" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training produce (grant.produce)`,
		}},
		{name: "dead letter and log topics under the grant", objs: []*meshfedv1.Object{produce}, mesh: sideTopics},
		{name: "unparsable topic left to Validate", mesh: testkit.MeshOf("acme", "dev", "m", fnSpec("f", "a", []string{"bad://x"}, "", ""))},
	})
}

func TestAdmitOwnerResidency(t *testing.T) {
	euModels := testkit.Namespace("lab-b", "models", &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "eu"}})
	produce := grantObj("lab-b", "models", "g", "hospital-a", "training", "produce", "consume")
	runAdmitCases(t, []admitCase{
		{name: "owner residency kept", objs: []*meshfedv1.Object{euModels, produce}, mesh: flMesh()},
		{name: "written outside owner residency", objs: []*meshfedv1.Object{euModels, produce},
			mesh: testkit.MeshOf("hospital-a", "training", "train", fnSpec("train", "a", []string{records}, "us-east", updates)), want: []string{
				`spec.functions[0].output.topic "persistent://lab-b/models/updates" on cluster "us-east" is outside residency region=eu of namespace lab-b/models, which owns the topic (namespace.residency)`,
			}},
		{name: "read outside owner residency, no grant either", objs: []*meshfedv1.Object{euModels},
			mesh: testkit.MeshOf("hospital-a", "training", "eval", fnSpec("eval", "us-east", []string{updates}, "", "")), want: []string{
				`spec.functions[0].input.topics[0] "persistent://lab-b/models/updates" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training consume (grant.consume)`,
				`spec.functions[0].input.topics[0] "persistent://lab-b/models/updates" on cluster "us-east" is outside residency region=eu of namespace lab-b/models, which owns the topic (namespace.residency)`,
			}},
		{name: "same tenant other namespace", objs: []*meshfedv1.Object{testkit.Namespace("acme", "other", &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "us"}})},
			mesh: testkit.MeshOf("acme", "dev", "m", fnSpec("f", "a", []string{"persistent://acme/other/in"}, "", "")), want: []string{
				`spec.functions[0].input.topics[0] "persistent://acme/other/in" on cluster "a" is outside residency region=us of namespace acme/other, which owns the topic (namespace.residency)`,
			}},
	})
}

func TestAdmitQuotas(t *testing.T) {
	in := []string{"persistent://acme/dev/in"}
	fn := func(name string, replicas int32) *meshfedv1.FunctionSpec {
		return with(fnSpec(name, "a", in, "", ""), func(f *meshfedv1.FunctionSpec) { f.Replicas = replicas })
	}
	quota := func(q *meshfedv1.NamespaceQuotas) *meshfedv1.Object {
		return testkit.Namespace("acme", "dev", &meshfedv1.NamespaceSpec{Quotas: q})
	}
	m1 := testkit.MeshOf("acme", "dev", "m1", fn("f", 3), fn("g", 0))
	m2 := testkit.MeshOf("acme", "dev", "m2", fn("f", 1))
	stored := []*meshfedv1.Object{objects.Wrap(m1), objects.Wrap(m2)} // 2 meshes, 3 functions, 5 instances
	runAdmitCases(t, []admitCase{
		{name: "meshes: new one over", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Meshes: 2})), mesh: testkit.MeshOf("acme", "dev", "m3", fn("f", 1)), want: []string{
			`metadata.name "m3" would be mesh 3 of namespace acme/dev, over its quota of 2 meshes (namespace.quotas.meshes)`,
		}},
		{name: "meshes: update at the quota", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Meshes: 2})), mesh: testkit.MeshOf("acme", "dev", "m2", fn("f", 1), fn("g", 1))},
		{name: "meshes: update over a lowered quota", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Meshes: 1})), mesh: testkit.MeshOf("acme", "dev", "m2", fn("f", 2))},
		{name: "meshes: new one under", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Meshes: 3})), mesh: testkit.MeshOf("acme", "dev", "m3", fn("f", 1))},
		{name: "functions: over", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Functions: 4})), mesh: testkit.MeshOf("acme", "dev", "m3", fn("f", 1), fn("g", 1)), want: []string{
			`spec.functions 2 functions would bring namespace acme/dev to 5, over its quota of 4 functions (namespace.quotas.functions)`,
		}},
		{name: "functions: replacing counts once", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Functions: 4})), mesh: testkit.MeshOf("acme", "dev", "m2", fn("f", 1), fn("g", 1))},
		{name: "functions: no growth over a lowered quota", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Functions: 2})), mesh: testkit.MeshOf("acme", "dev", "m2", fn("renamed", 1))},
		{name: "functions: growth over a lowered quota", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Functions: 2})), mesh: testkit.MeshOf("acme", "dev", "m2", fn("f", 1), fn("g", 1)), want: []string{
			`spec.functions 2 functions would bring namespace acme/dev to 4, over its quota of 2 functions (namespace.quotas.functions)`,
		}},
		{name: "instances: zero replicas count one", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Instances: 6})), mesh: testkit.MeshOf("acme", "dev", "m3", fn("f", 0), fn("g", 0)), want: []string{
			`spec.functions 2 instances would bring namespace acme/dev to 7, over its quota of 6 instances (namespace.quotas.instances)`,
		}},
		{name: "instances: scale up of a stored mesh", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Instances: 6})), mesh: testkit.MeshOf("acme", "dev", "m2", fn("f", 3)), want: []string{
			`spec.functions 3 instances would bring namespace acme/dev to 7, over its quota of 6 instances (namespace.quotas.instances)`,
		}},
		{name: "instances: at the quota", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Instances: 7})), mesh: testkit.MeshOf("acme", "dev", "m2", fn("f", 3))},
		{name: "replicas per function", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{ReplicasPerFunction: 3})), mesh: testkit.MeshOf("acme", "dev", "m3", fn("f", 3), fn("g", 4),
			with(fn("h", 2), func(f *meshfedv1.FunctionSpec) { f.MaxReplicas = 5 })), want: []string{
			`spec.functions[1].replicas 4 is over the quota of 3 replicas per function of namespace acme/dev (namespace.quotas.replicasPerFunction)`,
			`spec.functions[2].maxReplicas 5 is over the quota of 3 replicas per function of namespace acme/dev (namespace.quotas.replicasPerFunction)`,
		}},
		{name: "replicas per function: lowered quota, no growth", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{ReplicasPerFunction: 2})), mesh: testkit.MeshOf("acme", "dev", "m1", fn("f", 3), fn("g", 2))},
		{name: "replicas per function: lowered quota, growth", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{ReplicasPerFunction: 2})), mesh: testkit.MeshOf("acme", "dev", "m1", fn("f", 4), fn("g", 3)), want: []string{
			`spec.functions[0].replicas 4 is over the quota of 2 replicas per function of namespace acme/dev (namespace.quotas.replicasPerFunction)`,
			`spec.functions[1].replicas 3 is over the quota of 2 replicas per function of namespace acme/dev (namespace.quotas.replicasPerFunction)`,
		}},
		{name: "every quota at once, in order", objs: append(stored, quota(&meshfedv1.NamespaceQuotas{Meshes: 2, Functions: 3, Instances: 5, ReplicasPerFunction: 1})),
			mesh: testkit.MeshOf("acme", "dev", "m3", fn("f", 2)), want: []string{
				`metadata.name "m3" would be mesh 3 of namespace acme/dev, over its quota of 2 meshes (namespace.quotas.meshes)`,
				`spec.functions 1 functions would bring namespace acme/dev to 4, over its quota of 3 functions (namespace.quotas.functions)`,
				`spec.functions 2 instances would bring namespace acme/dev to 7, over its quota of 5 instances (namespace.quotas.instances)`,
				`spec.functions[0].replicas 2 is over the quota of 1 replicas per function of namespace acme/dev (namespace.quotas.replicasPerFunction)`,
			}},
	})
}

// TestAdmitOrder checks the documented evaluation order over every rule.
func TestAdmitOrder(t *testing.T) {
	objs := []*meshfedv1.Object{
		testkit.Tenant("hospital-a", "a", "b", "us-east"),
		testkit.Namespace("hospital-a", "training", &meshfedv1.NamespaceSpec{
			Quotas:          &meshfedv1.NamespaceQuotas{Meshes: 1, ReplicasPerFunction: 1},
			AllowedRuntimes: []string{"wasm"},
			Flows:           []*meshfedv1.FlowRule{{From: "a", To: "a"}},
			Residency:       map[string]string{"region": "eu"},
		}),
		objects.Wrap(testkit.MeshOf("hospital-a", "training", "old", fnSpec("f", "a", []string{records}, "", ""))),
	}
	m := testkit.MeshOf("hospital-a", "training", "train",
		with(fnSpec("train", "a", []string{records, "persistent://lab-b/models/base"}, "us-east", updates), func(f *meshfedv1.FunctionSpec) {
			f.Replicas = 2
			f.Failover = &meshfedv1.Failover{Clusters: []string{"c"}}
		}))
	runAdmitCases(t, []admitCase{{name: "all rules", objs: objs, mesh: m, want: []string{
		`metadata.name "train" would be mesh 2 of namespace hospital-a/training, over its quota of 1 meshes (namespace.quotas.meshes)`,
		`spec.functions[0].runtime builtin is not allowed in namespace hospital-a/training, which allows wasm (namespace.allowedRuntimes)`,
		`spec.functions[0].replicas 2 is over the quota of 1 replicas per function of namespace hospital-a/training (namespace.quotas.replicasPerFunction)`,
		`spec.functions[0].output.cluster "us-east" is outside residency region=eu of namespace hospital-a/training (namespace.residency)`,
		`spec.functions[0].failover.clusters[0] "c" is not one of the clusters tenant hospital-a may use (a, b, us-east) (tenant.allowedClusters)`,
		`spec.functions[0].failover.clusters[0] "c" is outside residency region=eu of namespace hospital-a/training (namespace.residency)`,
		`spec.functions[0].output.cluster "us-east" receives data from placement cluster "a", and no flow rule of namespace hospital-a/training allows a -> us-east (namespace.flows)`,
		`spec.functions[0].input.topics[1] "persistent://lab-b/models/base" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training consume (grant.consume)`,
		`spec.functions[0].output.topic "persistent://lab-b/models/updates" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training produce (grant.produce)`,
	}}})
}

func TestCodes(t *testing.T) {
	for _, r := range Rules() {
		want := PermissionDenied
		if strings.HasPrefix(string(r), "namespace.quotas.") {
			want = FailedPrecondition
		}
		if r.Code() != want {
			t.Errorf("%s: code %v, want %v", r, r.Code(), want)
		}
	}
	if n := len(Rules()); n != 10 {
		t.Errorf("%d rules, want 10", n)
	}
	pd := &Violation{Rule: RuleFlows, Code: PermissionDenied}
	fp := &Violation{Rule: RuleQuotaMeshes, Code: FailedPrecondition}
	if !errors.Is(pd, ErrPermissionDenied) || errors.Is(pd, ErrFailedPrecondition) {
		t.Error("PermissionDenied violation matches the wrong sentinel")
	}
	if !errors.Is(fp, ErrFailedPrecondition) || errors.Is(fp, ErrPermissionDenied) {
		t.Error("FailedPrecondition violation matches the wrong sentinel")
	}
	for _, tc := range []struct {
		l      Violations
		code   Code
		pd, fp bool
	}{
		{Violations{fp}, FailedPrecondition, false, true},
		{Violations{pd}, PermissionDenied, true, false},
		{Violations{fp, pd}, PermissionDenied, true, true},
		{nil, 0, false, false},
	} {
		if tc.l.Code() != tc.code || errors.Is(tc.l, ErrPermissionDenied) != tc.pd || errors.Is(tc.l, ErrFailedPrecondition) != tc.fp {
			t.Errorf("%v: code %v pd %v fp %v", tc.l, tc.l.Code(), errors.Is(tc.l, ErrPermissionDenied), errors.Is(tc.l, ErrFailedPrecondition))
		}
	}
	if got := (&Violation{Rule: RuleGrantProduce, Reason: "why"}).Error(); got != "why (grant.produce)" {
		t.Errorf("pathless violation: %q", got)
	}
	if s := PermissionDenied.String() + FailedPrecondition.String() + Code(0).String(); s != "PermissionDeniedFailedPreconditionUnknown" {
		t.Errorf("code names %q", s)
	}
}

// TestLongInputClipped: absurd names do not make absurd messages.
func TestLongInputClipped(t *testing.T) {
	long := "persistent://lab-b/models/" + strings.Repeat("é", 5000)
	m := testkit.MeshOf("hospital-a", "training", "m", fnSpec("f", "a", []string{records}, "b", long))
	l := AsViolations(AdmitMesh(m, NewStatic(world()...)))
	if len(l) != 1 || l[0].Rule != RuleGrantProduce {
		t.Fatalf("got %v", l)
	}
	if len(l[0].Reason) > maxReason || !strings.Contains(l[0].Reason, `..."`) || !strings.HasSuffix(l[0].Reason, "lets hospital-a/training produce") {
		t.Errorf("reason of %d bytes: %.200s", len(l[0].Reason), l[0].Reason)
	}
}
