package controlplane

import (
	"github.com/meshfed/meshfed/connector"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// checkConnectors runs each source's and sink's own config check (the
// factory's Validate of its registered type) on a mesh being applied, so a
// bad config is refused at apply with its field path, as
// spec.sources[0].config.broker. Which types exist depends on the
// connectors linked into the server (connector/all in the binary).
func checkConnectors(o *meshfedv1.Object) error {
	spec := o.GetFunctionMesh().GetSpec()
	var out objects.FieldErrors
	for i, f := range objects.MeshFunctions(spec) {
		c := objects.ConnectorOf(f)
		if c == nil || c.GetType() == "" {
			continue
		}
		p := objects.MeshFunctionPath(spec, i)
		typeErr, errs := connector.CheckConfig(c.GetKind(), c.GetType(), c.GetConfig().AsMap())
		if typeErr != nil {
			out = append(out, &objects.FieldError{Path: p + ".type", Reason: typeErr.Error()})
		}
		for _, ce := range errs {
			path := p + ".config"
			if ce.Key != "" {
				path += "." + ce.Key
			}
			out = append(out, &objects.FieldError{Path: path, Reason: ce.Reason})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
