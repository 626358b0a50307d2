package agent

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/meshfed/meshfed/objects"
)

// resolveSecrets reads a function's secrets (name -> env:NAME or
// file:///path) on this agent's host, for the function's environment.
// A file's content loses one trailing newline (as files written with echo
// end). Errors name the secret and its reference, never a value.
func resolveSecrets(secrets map[string]string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (map[string]string, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(secrets))
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		ref, err := objects.ParseFunctionSecret(secrets[name])
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		switch ref.Source {
		case objects.SecretEnv:
			v, ok := lookupEnv(ref.Value)
			if !ok {
				return nil, fmt.Errorf("secret %s: %s is not set in the agent's environment", name, ref)
			}
			out[name] = v
		case objects.SecretFile:
			b, err := readFile(ref.Value)
			if err != nil {
				return nil, fmt.Errorf("secret %s: read %s: %w", name, ref, err)
			}
			v := strings.TrimSuffix(string(b), "\n")
			out[name] = strings.TrimSuffix(v, "\r")
		default:
			return nil, fmt.Errorf("secret %s: %s cannot be resolved", name, ref)
		}
	}
	return out, nil
}

// execEnv is an exec function's environment: its env with its secrets
// resolved on top.
func execEnv(env, secrets map[string]string) (map[string]string, error) {
	values, err := resolveSecrets(secrets, os.LookupEnv, os.ReadFile)
	if err != nil || len(values) == 0 {
		return env, err
	}
	out := maps.Clone(env)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, values)
	return out, nil
}
