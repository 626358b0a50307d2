package objects

import (
	"strconv"

	"github.com/meshfed/meshfed/connector"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// Connector kinds, the kind of a ConnectorRuntime.
const (
	ConnectorSource = "source"
	ConnectorSink   = "sink"
)

// MeshFunctions returns what runs of a mesh: its functions, then one
// function entry per source and per sink (spec.sources, then spec.sinks),
// whose runtime is a ConnectorRuntime. Placement, failover, fencing,
// policies and status treat the entries as functions; MeshFunctionPath
// names the field each one came from. The entries are built fresh on every
// call and may be kept.
func MeshFunctions(s *meshfedv1.FunctionMeshSpec) []*meshfedv1.FunctionSpec {
	if len(s.GetSources()) == 0 && len(s.GetSinks()) == 0 {
		return s.GetFunctions()
	}
	out := make([]*meshfedv1.FunctionSpec, 0, len(s.GetFunctions())+len(s.GetSources())+len(s.GetSinks()))
	out = append(out, s.GetFunctions()...)
	for _, c := range s.GetSources() {
		out = append(out, ConnectorFunction(ConnectorSource, c))
	}
	for _, c := range s.GetSinks() {
		out = append(out, ConnectorFunction(ConnectorSink, c))
	}
	return out
}

// MeshFunctionPath is the field path of MeshFunctions(s)[i]:
// spec.functions[i], spec.sources[j] or spec.sinks[k].
func MeshFunctionPath(s *meshfedv1.FunctionMeshSpec, i int) string {
	nf, ns := len(s.GetFunctions()), len(s.GetSources())
	switch {
	case i < nf:
		return "spec.functions[" + strconv.Itoa(i) + "]"
	case i < nf+ns:
		return "spec.sources[" + strconv.Itoa(i-nf) + "]"
	default:
		return "spec.sinks[" + strconv.Itoa(i-nf-ns) + "]"
	}
}

// ConnectorFunction is the function entry of a source or sink: a source
// has an output and no input, a sink an input and no output, and both run
// in their placement cluster or else in the cluster of their topic.
func ConnectorFunction(kind string, c *meshfedv1.ConnectorSpec) *meshfedv1.FunctionSpec {
	f := &meshfedv1.FunctionSpec{
		Name:                c.GetName(),
		Runtime:             &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Connector{Connector: &meshfedv1.ConnectorRuntime{Kind: kind, Type: c.GetType(), Config: c.GetConfig()}}},
		Replicas:            c.GetReplicas(),
		ProcessingGuarantee: c.GetProcessingGuarantee(),
		Placement:           c.GetPlacement(),
		Failover:            c.GetFailover(),
		Resources:           c.GetResources(),
		StoppedInstances:    c.GetStoppedInstances(),
		InstanceRestarts:    c.GetInstanceRestarts(),
	}
	switch kind {
	case ConnectorSource:
		f.Output = c.GetOutput()
		if f.GetPlacement().GetCluster() == "" && c.GetOutput().GetCluster() != "" {
			f.Placement = &meshfedv1.Placement{Cluster: c.GetOutput().GetCluster()}
			if p := c.GetPlacement(); p != nil {
				f.Placement = proto.CloneOf(p)
				f.Placement.Cluster = c.GetOutput().GetCluster()
			}
		}
	case ConnectorSink:
		f.Input = c.GetInput()
	}
	return f
}

// ConnectorOf returns the connector runtime of a function entry, nil for a
// function.
func ConnectorOf(f *meshfedv1.FunctionSpec) *meshfedv1.ConnectorRuntime {
	return f.GetRuntime().GetConnector()
}

// validateConnectors checks spec.sources or spec.sinks (kind says which);
// seen holds the names of the mesh's functions and connectors so far.
func validateConnectors(e *errs, kind string, list []*meshfedv1.ConnectorSpec, seen map[string]string) {
	field := "spec.sources"
	if kind == ConnectorSink {
		field = "spec.sinks"
	}
	for i, c := range list {
		p := index(field, i)
		if prev, dup := seen[c.GetName()]; dup && c.GetName() != "" {
			e.add(join(p, "name"), "%q is already defined at %s", c.GetName(), prev)
		} else {
			seen[c.GetName()] = p
		}
		switch {
		case c.GetType() == "":
			e.add(join(p, "type"), "required: the connector type, such as mqtt, http or postgres")
		case checkDNSLabel(c.GetType()) != "":
			e.add(join(p, "type"), "%q is not a connector type name (lower-case letters, digits and '-')", truncate(c.GetType()))
		}
		for _, ce := range connector.CheckSecrets(c.GetConfig().AsMap()) {
			e.add(join(join(p, "config"), ce.Key), "%s", ce.Reason)
		}
		switch kind {
		case ConnectorSource:
			if c.GetInput() != nil {
				e.add(join(p, "input"), "a source reads an outside system: set output (the topic it writes), not input")
			}
			if c.GetOutput() == nil {
				e.add(join(p, "output"), "required: the cluster and topic the source writes")
			} else {
				clusterName(e, join(p, "output.cluster"), c.GetOutput().GetCluster(), true)
				if c.GetOutput().GetTopic() == "" {
					e.add(join(p, "output.topic"), "required: the topic the source writes")
				}
			}
		case ConnectorSink:
			if c.GetOutput() != nil {
				e.add(join(p, "output"), "a sink writes to an outside system: set input (the topics it reads), not output")
			}
		}
		validateFunction(e, p, ConnectorFunction(kind, c))
	}
}
