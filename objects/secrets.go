package objects

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Function secrets (FunctionSpec.secrets) map the name a function reads a
// secret under to a reference the agent resolves: env:NAME or
// file:///path. Objects hold references only, never values.

// ParseFunctionSecret parses one function secret reference, as agents
// resolve it: env:NAME or file:///absolute/path (file:/absolute/path too).
// A value in clear is refused.
func ParseFunctionSecret(ref string) (SecretRef, error) {
	var e errs
	r := functionSecret(&e, "", ref)
	if len(e.list) > 0 {
		return SecretRef{}, fmt.Errorf("%w: %s", ErrInvalid, e.list[0].Reason)
	}
	return r, nil
}

func functionSecret(e *errs, path, ref string) SecretRef {
	if strings.HasPrefix(ref, "file:") || strings.HasPrefix(ref, "env:") {
		return parseSecretRef(e, path, ref, AuthInObject, "a secret")
	}
	if ref == "" {
		e.add(path, "empty: give the secret's location, file:///path or env:NAME")
	} else {
		e.add(path, "a secret in clear is not accepted: %s", secretAdvice)
	}
	return SecretRef{}
}

// validateSecrets checks a function's secrets: names are environment
// variable names not also set in exec.env, references parse, and the
// runtime is exec (the one that receives them).
func validateSecrets(e *errs, p string, f *meshfedv1.FunctionSpec) {
	secrets := f.GetSecrets()
	if len(secrets) == 0 {
		return
	}
	sp := join(p, "secrets")
	exec := f.GetRuntime().GetExec()
	if exec == nil {
		e.add(sp, "only exec functions receive secrets (as environment variables); builtin and wasm functions take none")
	}
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		kp := mapKey(sp, name)
		switch {
		case !envName.MatchString(name):
			e.add(kp, "%q is not an environment variable name (letters, digits and '_', not starting with a digit): the function reads the secret under it", truncate(name))
		case slices.Contains(slices.Sorted(maps.Keys(exec.GetEnv())), name):
			e.add(kp, "%q is also set in runtime.exec.env: give it one source", name)
		}
		functionSecret(e, kp, secrets[name])
	}
}
