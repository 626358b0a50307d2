// Package sdk is meshfed's public Go SDK for functions: write a Func,
// register it under a name, and reference it from a FunctionMesh as
// `runtime: {builtin: NAME}`. A custom agent binary that imports the
// packages registering its functions runs them like meshfed's own.
package sdk

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/meshfed/meshfed/agent/runtime"
)

type (
	// Message is one input message.
	Message = runtime.Message
	// Output is one output message.
	Output = runtime.Output
	// Context gives access to state, configuration and logging.
	Context = runtime.Context
)

// Func processes one message into zero or more outputs.
type Func func(ctx context.Context, fctx Context, msg *Message) ([]Output, error)

var (
	// mu guards funcs.
	mu    sync.RWMutex
	funcs = map[string]Func{}
)

// Register makes f available as `builtin: name`. It panics if name is
// taken: two functions with one name is a build error, not a runtime one.
func Register(name string, f Func) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := funcs[name]; dup {
		panic(fmt.Sprintf("sdk: function %q registered twice", name))
	}
	funcs[name] = f
}

// Lookup returns the function registered under name.
func Lookup(name string) (Func, bool) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := funcs[name]
	return f, ok
}

// Names lists the registered functions, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(funcs))
	for n := range funcs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
