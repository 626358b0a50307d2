package connector

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ConfigError is a problem with one key of a connector's config. Validate
// functions return it (or several joined with errors.Join) so that the
// control plane can name the field: spec.sources[0].config.<Key>.
type ConfigError struct {
	// Key is the config key, dotted for nested keys ("tls.ca").
	Key string
	// Reason says what is wrong and what would be right.
	Reason string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Reason }

// Invalid returns a *ConfigError for key.
func Invalid(key, format string, args ...any) error {
	return &ConfigError{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// ConfigErrors flattens an error a Validate returned into its config
// errors; an error that is not a *ConfigError (nor joins some) becomes one
// without a key.
func ConfigErrors(err error) []*ConfigError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*ConfigError
		for _, e := range j.Unwrap() {
			out = append(out, ConfigErrors(e)...)
		}
		return out
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return []*ConfigError{ce}
	}
	return []*ConfigError{{Reason: err.Error()}}
}

// A secret in a connector's config is written as a reference resolved on
// the agent's host when the connector starts, never in clear:
//
//	password: {secret: {env: MQTT_PASSWORD}}
//	token:    {secret: {file: /etc/meshfed/webhook-token}}
const secretKey = "secret"

// SecretRef reads the secret reference v holds. ok is false when v is not
// a reference ({secret: ...}); err says what is wrong with a malformed one.
func SecretRef(v any) (kind, name string, ok bool, err error) {
	m, isMap := v.(map[string]any)
	if !isMap {
		return "", "", false, nil
	}
	ref, has := m[secretKey]
	if !has {
		return "", "", false, nil
	}
	if len(m) != 1 {
		return "", "", true, errors.New("a secret reference holds only the key secret")
	}
	r, isMap := ref.(map[string]any)
	if !isMap || len(r) != 1 {
		return "", "", true, errors.New("a secret reference is {secret: {env: NAME}} or {secret: {file: /path}}")
	}
	for k, v := range r {
		s, isStr := v.(string)
		switch {
		case k != "env" && k != "file":
			return "", "", true, fmt.Errorf("secret source %q is not env or file", k)
		case !isStr || s == "":
			return "", "", true, fmt.Errorf("secret %s: required: a non-empty string", k)
		}
		return k, s, true, nil
	}
	return "", "", true, nil
}

// secretWords are config key parts whose values are secrets: such a key
// holding a plain string is refused, so no secret is stored in clear.
var secretWords = []string{"password", "passwd", "secret", "token", "apikey", "api_key", "privatekey", "private_key", "credential", "authorization"}

// IsSecretKey reports whether a config key names a secret.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// CheckSecrets returns a *ConfigError for every secret in values written in
// clear (a plain string under a key IsSecretKey names) and every malformed
// reference, with dotted keys for nested maps.
func CheckSecrets(values map[string]any) []*ConfigError {
	var out []*ConfigError
	walkConfig("", values, func(key string, v any) {
		if _, _, ok, err := SecretRef(v); ok {
			if err != nil {
				out = append(out, &ConfigError{Key: key, Reason: err.Error()})
			}
			return
		}
		if s, isStr := v.(string); isStr && s != "" && IsSecretKey(lastKey(key)) {
			out = append(out, &ConfigError{Key: key, Reason: "a secret is never stored in clear: write {secret: {env: NAME}} or {secret: {file: /path}}, resolved on the agent"})
		}
	})
	return out
}

// ResolveSecrets returns a copy of values with every secret reference
// replaced by the secret: an environment variable of the agent (getenv) or
// a file on its host (readFile; a trailing newline is dropped). Nil
// functions mean os.LookupEnv and os.ReadFile.
func ResolveSecrets(values map[string]any, getenv func(string) (string, bool), readFile func(string) ([]byte, error)) (map[string]any, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	var errs []error
	var resolve func(key string, v any) any
	resolve = func(key string, v any) any {
		kind, name, ok, err := SecretRef(v)
		switch {
		case ok && err != nil:
			errs = append(errs, &ConfigError{Key: key, Reason: err.Error()})
			return nil
		case ok && kind == "env":
			s, found := getenv(name)
			if !found {
				errs = append(errs, &ConfigError{Key: key, Reason: fmt.Sprintf("environment variable %s is not set on the agent", name)})
			}
			return s
		case ok:
			b, err := readFile(name)
			if err != nil {
				errs = append(errs, &ConfigError{Key: key, Reason: fmt.Sprintf("read secret file: %v", err)})
			}
			return strings.TrimRight(string(b), "\r\n")
		}
		switch t := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, x := range t {
				out[k] = resolve(joinKey(key, k), x)
			}
			return out
		case []any:
			out := make([]any, len(t))
			for i, x := range t {
				out[i] = resolve(fmt.Sprintf("%s[%d]", key, i), x)
			}
			return out
		}
		return v
	}
	out, _ := resolve("", values).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out, errors.Join(errs...)
}

func walkConfig(prefix string, v any, fn func(key string, v any)) {
	switch t := v.(type) {
	case map[string]any:
		if prefix != "" {
			if _, _, ok, _ := SecretRef(t); ok {
				fn(prefix, t)
				return
			}
		}
		ks := make([]string, 0, len(t))
		for k := range t {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			walkConfig(joinKey(prefix, k), t[k], fn)
		}
	case []any:
		for i, x := range t {
			walkConfig(fmt.Sprintf("%s[%d]", prefix, i), x, fn)
		}
	default:
		fn(prefix, v)
	}
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func lastKey(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// CheckConfig validates the config of a source ("source") or sink
// ("sink") of type typ: secrets first, then the type's own Validate. An
// unknown type or kind is typeErr (wrapping ErrUnknownType); problems with
// the config are in errs.
func CheckConfig(kind, typ string, values map[string]any) (typeErr error, errs []*ConfigError) {
	var validate func(map[string]any) error
	switch kind {
	case "source":
		f, err := LookupSource(typ)
		if err != nil {
			return err, nil
		}
		validate = f.Validate
	case "sink":
		f, err := LookupSink(typ)
		if err != nil {
			return err, nil
		}
		validate = f.Validate
	default:
		return fmt.Errorf("connector kind %q is not source or sink", kind), nil
	}
	if errs = CheckSecrets(values); validate == nil || len(errs) > 0 {
		return nil, errs
	}
	// Validate sees references as placeholders: the secret itself lives
	// on the agent.
	placeholders, _ := ResolveSecrets(values, func(string) (string, bool) { return "secret", true }, func(string) ([]byte, error) { return []byte("secret"), nil })
	return nil, ConfigErrors(validate(placeholders))
}
