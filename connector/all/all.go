// Package all links every connector type meshfed ships into a binary: the
// server (to validate configs at apply) and the agent (to run them) import
// it for its side effects.
package all

import (
	// Registered in init.
	_ "github.com/meshfed/meshfed/connector/execconn"
	_ "github.com/meshfed/meshfed/connector/httpconn"
	_ "github.com/meshfed/meshfed/connector/mqtt"
	_ "github.com/meshfed/meshfed/connector/postgres"
)
