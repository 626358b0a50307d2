// Package builtin is the runtime of functions compiled into meshfed (and
// registered through the sdk package), plus meshfed's own library of them:
// identity, exclamation, word-split, word-count, filter and route.
package builtin

import (
	"context"
	"fmt"
	"strings"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/sdk"
)

// Runtime runs functions from the sdk registry.
type Runtime struct{}

var _ runtime.Runtime = Runtime{}

// Name implements runtime.Runtime.
func (Runtime) Name() string { return "builtin" }

// Start implements runtime.Runtime.
func (Runtime) Start(_ context.Context, spec runtime.Spec) (runtime.Function, error) {
	f, ok := sdk.Lookup(spec.Builtin)
	if !ok {
		return nil, fmt.Errorf("%w %q (available: %s)", runtime.ErrUnknownFunction, spec.Builtin, strings.Join(sdk.Names(), ", "))
	}
	return function(f), nil
}

type function sdk.Func

func (f function) Process(ctx context.Context, fctx runtime.Context, msg *runtime.Message) ([]runtime.Output, error) {
	return f(ctx, fctx, msg)
}

func (function) Close() error { return nil }
