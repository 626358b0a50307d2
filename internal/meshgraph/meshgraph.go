// Package meshgraph turns a FunctionMesh into a graph of clusters, topics and
// functions (with where each instance runs), and draws it as Graphviz dot.
// The CLI's `describe mesh -o dot` and the server's mesh page share it.
package meshgraph

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Graph is one mesh: its nodes grouped by cluster, and the edges between
// them in the direction messages flow.
type Graph struct {
	Mesh     string     `json:"mesh"`
	Clusters []*Cluster `json:"clusters"`
	Edges    []Edge     `json:"edges"`
}

// Cluster holds the topics and functions that live in one cluster.
type Cluster struct {
	Name      string      `json:"name"`
	Topics    []*Topic    `json:"topics"`
	Functions []*Function `json:"functions"`
}

// Topic is a topic of one cluster that a function reads or writes.
type Topic struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Function is one function with its instances as the status reports them.
type Function struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Replicas  int         `json:"replicas"`
	Running   int         `json:"running"`
	Instances []*Instance `json:"instances"`
}

// Instance is where one instance runs and what it has done.
type Instance struct {
	Index     int32  `json:"index"`
	Agent     string `json:"agent"`
	Cluster   string `json:"cluster"`
	State     string `json:"state"`
	Received  uint64 `json:"received"`
	Processed uint64 `json:"processed"`
	Failed    uint64 `json:"failed"`
	LastError string `json:"lastError,omitempty"`
}

// Edge is a flow from one node (topic or function) to another.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Build makes the graph of a FunctionMesh object.
func Build(o *meshfedv1.Object) (*Graph, error) {
	fm := o.GetFunctionMesh()
	if fm == nil {
		return nil, fmt.Errorf("meshgraph: %s is not a FunctionMesh", objects.DisplayName(o))
	}
	g := &Graph{Mesh: objects.DisplayName(o)}
	clusters := map[string]*Cluster{}
	cluster := func(name string) *Cluster {
		if c := clusters[name]; c != nil {
			return c
		}
		c := &Cluster{Name: name}
		clusters[name] = c
		return c
	}
	topics := map[string]bool{}
	topic := func(clusterName, name string) string {
		id := "topic:" + clusterName + ":" + name
		if !topics[id] {
			topics[id] = true
			c := cluster(clusterName)
			c.Topics = append(c.Topics, &Topic{ID: id, Name: name})
		}
		return id
	}
	statuses := map[string]*meshfedv1.FunctionStatus{}
	for _, fs := range fm.GetStatus().GetFunctions() {
		statuses[fs.GetName()] = fs
	}
	for _, f := range objects.MeshFunctions(fm.GetSpec()) {
		fn := &Function{ID: "function:" + f.GetName(), Name: f.GetName(), Replicas: federation.Replicas(f)}
		for _, in := range statuses[f.GetName()].GetInstances() {
			fn.Instances = append(fn.Instances, &Instance{Index: in.GetIndex(), Agent: in.GetAgent(), Cluster: in.GetCluster(),
				State: in.GetState(), Received: in.GetReceived(), Processed: in.GetProcessed(), Failed: in.GetFailed(), LastError: in.GetLastError()})
			if in.GetState() == federation.StateRunning {
				fn.Running++
			}
		}
		sort.Slice(fn.Instances, func(i, j int) bool { return fn.Instances[i].Index < fn.Instances[j].Index })
		c := cluster(federation.PlacementCluster(f))
		c.Functions = append(c.Functions, fn)
		for _, t := range f.GetInput().GetTopics() {
			g.Edges = append(g.Edges, Edge{From: topic(f.GetInput().GetCluster(), t), To: fn.ID})
		}
		if t := f.GetOutput().GetTopic(); t != "" {
			g.Edges = append(g.Edges, Edge{From: fn.ID, To: topic(f.GetOutput().GetCluster(), t)})
		}
	}
	for _, c := range clusters {
		sort.Slice(c.Topics, func(i, j int) bool { return c.Topics[i].Name < c.Topics[j].Name })
		g.Clusters = append(g.Clusters, c)
	}
	sort.Slice(g.Clusters, func(i, j int) bool { return g.Clusters[i].Name < g.Clusters[j].Name })
	return g, nil
}

// WriteDot draws the graph in Graphviz's dot language: one box per cluster,
// topics as ellipses, functions as boxes labelled with their instances.
func WriteDot(w io.Writer, g *Graph) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", quote(g.Mesh))
	b.WriteString("  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n")
	for i, c := range g.Clusters {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n    style=rounded;\n", i, quote("cluster "+c.Name))
		for _, t := range c.Topics {
			fmt.Fprintf(&b, "    %s [shape=ellipse, label=%s];\n", quote(t.ID), quote(t.Name))
		}
		for _, f := range c.Functions {
			lines := []string{f.Name, fmt.Sprintf("%d/%d running", f.Running, f.Replicas)}
			for _, in := range f.Instances {
				lines = append(lines, fmt.Sprintf("#%d %s on %s", in.Index, in.State, in.Agent))
			}
			color := "black"
			if f.Running < f.Replicas {
				color = "orange"
			}
			fmt.Fprintf(&b, "    %s [shape=box, color=%s, label=%s];\n", quote(f.ID), color, quote(strings.Join(lines, "\n")))
		}
		b.WriteString("  }\n")
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -> %s;\n", quote(e.From), quote(e.To))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// quote makes s a dot string: backslashes and quotes escaped, newlines as
// dot's centred line break.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}
