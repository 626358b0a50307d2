package meshui

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// View is what /ui/api/meshes answers: the federation as the page draws it.
type View struct {
	// Time is when the view was built; the page divides counter changes
	// by the time between two views to show rates.
	Time     time.Time `json:"time"`
	Clusters []Cluster `json:"clusters"`
	Agents   []Agent   `json:"agents"`
	Meshes   []Mesh    `json:"meshes"`
	// Hidden names the lists the caller may not read ("clusters",
	// "agents"), left empty in the view. Empty: none hidden.
	Hidden []string `json:"hidden,omitempty"`
}

// Cluster is one Pulsar cluster and its health.
type Cluster struct {
	Name   string `json:"name"`
	Region string `json:"region,omitempty"`
	// Health is Healthy, Suspect, Degraded, Down or Cordoned; empty
	// before the control plane first judged it.
	Health      string `json:"health"`
	Reason      string `json:"reason,omitempty"`
	ReadyAgents int32  `json:"readyAgents"`
	Cordoned    bool   `json:"cordoned,omitempty"`
}

// Agent is one registered agent.
type Agent struct {
	Name    string `json:"name"`
	Cluster string `json:"cluster"`
	// State is Ready or Down.
	State         string     `json:"state"`
	LastHeartbeat *time.Time `json:"lastHeartbeat,omitempty"`
}

// Mesh is one FunctionMesh.
type Mesh struct {
	Tenant    string `json:"tenant"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Health is Ready, Progressing or Degraded (from the mesh's
	// conditions; Degraded wins over Progressing), or Unknown before the
	// control plane wrote a status.
	Health string `json:"health"`
	// Message says why the mesh is not Ready. Empty when it is.
	Message string `json:"message,omitempty"`
	// FailedOver is set while some function runs in a fallback cluster.
	FailedOver bool       `json:"failedOver,omitempty"`
	Functions  []Function `json:"functions"`
}

// Function is one function of a mesh, with the clusters it effectively
// reads from, runs in and writes to (failover moves them).
type Function struct {
	Name string `json:"name"`
	// Runtime is "builtin:NAME", "exec:COMMAND" or "wasm:PACKAGE".
	Runtime   string `json:"runtime"`
	Guarantee string `json:"guarantee"`
	Replicas  int    `json:"replicas"`
	Ready     int32  `json:"readyReplicas"`
	// Home is the cluster the function runs in when all is well; RunsIn
	// is where its instances run now (Home when none is placed).
	Home   string `json:"home"`
	RunsIn string `json:"runsIn"`
	// InputCluster and Inputs: the topics read, and the cluster read from.
	InputCluster string   `json:"inputCluster"`
	Inputs       []string `json:"inputs"`
	// OutputCluster and Output: the topic written and its cluster; Output
	// is empty for a function that writes nothing.
	OutputCluster string     `json:"outputCluster"`
	Output        string     `json:"output,omitempty"`
	Failover      []string   `json:"failover,omitempty"`
	Instances     []Instance `json:"instances"`
	// Received, Processed and Failed add up the instances' counters.
	Received  uint64 `json:"received"`
	Processed uint64 `json:"processed"`
	Failed    uint64 `json:"failed"`
}

// Instance is one instance of a function and where it runs.
type Instance struct {
	Index   int32  `json:"index"`
	Agent   string `json:"agent,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	// State is Pending, Starting, Running, Failed or Stopped.
	State     string     `json:"state"`
	Since     *time.Time `json:"since,omitempty"`
	Received  uint64     `json:"received"`
	Processed uint64     `json:"processed"`
	Failed    uint64     `json:"failed"`
	LastError string     `json:"lastError,omitempty"`
}

// Build makes the view of the given objects at now. Objects of other kinds
// are ignored. Lists are sorted by name so that the page stays still.
func Build(now time.Time, clusters []*meshfedv1.Cluster, agents []*meshfedv1.Agent, meshes []*meshfedv1.FunctionMesh) View {
	v := View{Time: now, Clusters: []Cluster{}, Agents: []Agent{}, Meshes: []Mesh{}}
	health := map[string]federation.ClusterView{}
	for _, c := range clusters {
		st := c.GetStatus()
		health[c.GetMetadata().GetName()] = federation.ClusterView{Health: st.GetHealth()}
		v.Clusters = append(v.Clusters, Cluster{
			Name: c.GetMetadata().GetName(), Region: c.GetSpec().GetRegion(),
			Health: st.GetHealth(), Reason: st.GetReason(), ReadyAgents: st.GetReadyAgents(),
			Cordoned: c.GetSpec().GetCordoned(),
		})
	}
	slices.SortFunc(v.Clusters, func(a, b Cluster) int { return cmp.Compare(a.Name, b.Name) })
	for _, a := range agents {
		ag := Agent{Name: a.GetMetadata().GetName(), Cluster: a.GetSpec().GetCluster(), State: a.GetStatus().GetState()}
		if hb := a.GetStatus().GetLastHeartbeat(); hb != nil {
			t := hb.AsTime()
			ag.LastHeartbeat = &t
		}
		v.Agents = append(v.Agents, ag)
	}
	slices.SortFunc(v.Agents, func(a, b Agent) int { return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Name, b.Name)) })
	for _, m := range meshes {
		v.Meshes = append(v.Meshes, meshView(m, health))
	}
	slices.SortFunc(v.Meshes, func(a, b Mesh) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return v
}

func meshView(m *meshfedv1.FunctionMesh, health map[string]federation.ClusterView) Mesh {
	md := m.GetMetadata()
	out := Mesh{Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName(), Health: "Unknown", Functions: []Function{}}
	conds := map[string]*meshfedv1.Condition{}
	for _, c := range m.GetStatus().GetConditions() {
		conds[c.GetType()] = c
	}
	isTrue := func(t string) bool { return conds[t].GetStatus() == "True" }
	switch {
	case isTrue(federation.ConditionDegraded):
		out.Health, out.Message = "Degraded", conds[federation.ConditionDegraded].GetMessage()
	case isTrue(federation.ConditionProgressing):
		out.Health, out.Message = "Progressing", conds[federation.ConditionProgressing].GetMessage()
	case isTrue(federation.ConditionReady):
		out.Health = "Ready"
	}
	out.FailedOver = isTrue(federation.ConditionFailedOver)
	statuses := map[string]*meshfedv1.FunctionStatus{}
	for _, fs := range m.GetStatus().GetFunctions() {
		statuses[fs.GetName()] = fs
	}
	for _, f := range m.GetSpec().GetFunctions() {
		out.Functions = append(out.Functions, functionView(f, statuses[f.GetName()], health))
	}
	return out
}

func functionView(f *meshfedv1.FunctionSpec, st *meshfedv1.FunctionStatus, health map[string]federation.ClusterView) Function {
	home := federation.PlacementCluster(f)
	fv := Function{
		Name: f.GetName(), Runtime: runtimeOf(f.GetRuntime()), Guarantee: cmp.Or(f.GetProcessingGuarantee(), "atleast_once"),
		Replicas: federation.Replicas(f), Ready: st.GetReadyReplicas(), Home: home,
		Failover: f.GetFailover().GetClusters(), Instances: []Instance{},
	}
	runs := map[string]int{}
	for _, in := range st.GetInstances() {
		iv := Instance{
			Index: in.GetIndex(), Agent: in.GetAgent(), Cluster: in.GetCluster(), State: in.GetState(),
			Received: in.GetReceived(), Processed: in.GetProcessed(), Failed: in.GetFailed(), LastError: in.GetLastError(),
		}
		if s := in.GetSince(); s != nil {
			t := s.AsTime()
			iv.Since = &t
		}
		if iv.Cluster != "" {
			runs[iv.Cluster]++
		}
		fv.Received += iv.Received
		fv.Processed += iv.Processed
		fv.Failed += iv.Failed
		fv.Instances = append(fv.Instances, iv)
	}
	slices.SortFunc(fv.Instances, func(a, b Instance) int { return cmp.Compare(a.Index, b.Index) })
	// The function runs where most of its instances do: home on a tie,
	// else the first such cluster by name.
	fv.RunsIn = home
	for _, c := range slices.Sorted(maps.Keys(runs)) {
		if runs[c] > runs[fv.RunsIn] {
			fv.RunsIn = c
		}
	}
	eff := federation.EffectiveSpec(f, fv.RunsIn, health)
	fv.InputCluster = eff.GetInput().GetCluster()
	fv.Inputs = append([]string{}, eff.GetInput().GetTopics()...)
	fv.OutputCluster = cmp.Or(eff.GetOutput().GetCluster(), fv.RunsIn)
	fv.Output = eff.GetOutput().GetTopic()
	return fv
}

// runtimeOf names a runtime in a few words.
func runtimeOf(r *meshfedv1.Runtime) string {
	switch k := r.GetKind().(type) {
	case *meshfedv1.Runtime_Builtin:
		return "builtin:" + k.Builtin
	case *meshfedv1.Runtime_Exec:
		if cmd := k.Exec.GetCommand(); len(cmd) > 0 {
			return "exec:" + cmd[0]
		}
		return "exec"
	case *meshfedv1.Runtime_Wasm:
		return "wasm:" + k.Wasm.GetPackage()
	}
	return "unknown"
}
