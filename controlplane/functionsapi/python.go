package functionsapi

import (
	"context"
	"errors"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	execrt "github.com/meshfed/meshfed/agent/runtime/exec"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Python functions (runtime PYTHON, or py set) run as Function Mesh's
// python runtime does under meshfed apply: the uploaded .py file, .zip or
// .whl is packed with meshfed's Python SDK and its Pulsar Functions wrapper
// into an exec bundle, run with python3 by the exec runtime.

// isPython says whether c registers a Python function.
func isPython(c *utils.FunctionConfig) bool {
	return c != nil && (strings.EqualFold(c.Runtime, utils.PythonRuntime) || c.Py != nil && *c.Py != "")
}

// pythonRuntime bundles Python code and pushes the bundle.
func (h *Handler) pythonRuntime(ctx context.Context, form *Form, f fn, c *utils.FunctionConfig, code []byte) (*meshfedv1.Runtime, error) {
	name := pythonFileName(form, c)
	if name == "" {
		return nil, badRequest("data: name the Python code's file (a .py, .zip or .whl file name in the data part, or py)")
	}
	bundle, command, err := execrt.PythonBundle(name, code, c.ClassName)
	switch {
	case err != nil && c.ClassName == "":
		return nil, badRequest("className: required for a Python function: MODULE.NAME of its function or pulsar.Function class")
	case errors.Is(err, execrt.ErrBadBundle):
		return nil, unsupported("data", err.Error())
	case err != nil:
		return nil, err
	}
	digest, err := h.b.PushPackage(ctx, f.tenant+"/"+f.namespace+"/"+f.name, bundle)
	if err != nil {
		return nil, err
	}
	return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: command, Package: digest}}}, nil
}

// pythonFileName is the name the code is bundled under: the data part's
// file name, else py's base name, else the url's.
func pythonFileName(form *Form, c *utils.FunctionConfig) string {
	for _, n := range []string{form.DataName, deref(c.Py), urlBase(form.URL)} {
		if b := path.Base(strings.ReplaceAll(n, "\\", "/")); n != "" && b != "." && b != "/" {
			return b
		}
	}
	return ""
}

func urlBase(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return ""
	}
	return p.Path
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// pythonCommand is the command of a Python function's exec runtime, with
// className as the class it calls; ok false when rt is not one.
func pythonCommand(rt *meshfedv1.Runtime, className string) (*meshfedv1.Runtime, bool) {
	cmd := rt.GetExec().GetCommand()
	if len(cmd) != 4 || cmd[0] != "python3" || cmd[1] != execrt.PythonShimFile {
		return nil, false
	}
	out := &meshfedv1.ExecRuntime{Command: slices.Clone(cmd), Env: rt.GetExec().GetEnv(), Package: rt.GetExec().GetPackage()}
	if className != "" {
		out.Command[3] = className
	}
	return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: out}}, true
}

// pythonConfig fills the Python fields of a FunctionConfig from a Python
// function's command.
func pythonConfig(c *utils.FunctionConfig, rt *meshfedv1.Runtime) {
	if _, ok := pythonCommand(rt, ""); !ok {
		return
	}
	cmd := rt.GetExec().GetCommand()
	py := cmd[2]
	c.Runtime, c.Py, c.ClassName = utils.PythonRuntime, &py, cmd[3]
}
