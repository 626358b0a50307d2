package execconn

import (
	"errors"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/connector"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		// wantKeys are the config keys the errors name; none: valid.
		wantKeys []string
	}{
		{"minimal", map[string]any{"command": []any{"python3", "s.py"}}, nil},
		{"full", map[string]any{"command": []any{"./s"}, "env": map[string]any{"A": "1"}, "dir": "/tmp",
			"maxBatch": 10.0, "timeout": "5s", "stopGrace": "1s", "config": map[string]any{"every": 0.1}}, nil},
		{"one string", map[string]any{"command": "./s"}, nil},
		{"no command", map[string]any{}, []string{"command"}},
		{"empty program", map[string]any{"command": []any{""}}, []string{"command[0]"}},
		{"bad command", map[string]any{"command": 3.0}, []string{"command"}},
		{"bad env name", map[string]any{"command": "x", "env": map[string]any{"A=B": "1"}}, []string{"env.A=B"}},
		{"bad env value", map[string]any{"command": "x", "env": map[string]any{"A": 1.0}}, []string{"env.A"}},
		{"batch range", map[string]any{"command": "x", "maxBatch": 0.0}, []string{"maxBatch"}},
		{"bad timeout", map[string]any{"command": "x", "timeout": "soon"}, []string{"timeout"}},
		{"zero timeout", map[string]any{"command": "x", "timeout": "0s"}, []string{"timeout"}},
		{"process config not a map", map[string]any{"command": "x", "config": "a=b"}, []string{"config"}},
		{"typo", map[string]any{"command": "x", "comand": "y"}, []string{"comand"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []string
			for _, ce := range connector.ConfigErrors(validate(tc.values)) {
				keys = append(keys, ce.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tc.wantKeys, ",") {
				t.Fatalf("errors name %q, want %q (%v)", keys, tc.wantKeys, validate(tc.values))
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	src, err := connector.LookupSource("exec")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := connector.LookupSink("exec")
	if err != nil {
		t.Fatal(err)
	}
	var ce *connector.ConfigError
	if err := src.Validate(map[string]any{}); !errors.As(err, &ce) || ce.Key != "command" {
		t.Errorf("source Validate: %v", err)
	}
	if err := sink.Validate(map[string]any{"command": "x"}); err != nil {
		t.Errorf("sink Validate: %v", err)
	}
}

// FuzzConfig decodes configs built from fuzzed values: it never panics,
// and every error names a key.
func FuzzConfig(f *testing.F) {
	f.Add("python3", "A", "1", "10s", 5.0, true)
	f.Add("", "=", "", "-1s", -1.0, false)
	f.Fuzz(func(t *testing.T, prog, envKey, envVal, timeout string, batch float64, asList bool) {
		values := map[string]any{"env": map[string]any{envKey: envVal}, "timeout": timeout, "maxBatch": batch}
		if asList {
			values["command"] = []any{prog, envVal}
		} else {
			values["command"] = prog
		}
		c, err := decodeConfig(values)
		for _, ce := range connector.ConfigErrors(err) {
			if ce.Key == "" {
				t.Fatalf("error without a key: %v", ce)
			}
		}
		if err == nil && (len(c.command) == 0 || c.command[0] == "" || c.timeout <= 0) {
			t.Fatalf("accepted a bad config: %+v", c)
		}
	})
}

// TestCheckConfigAtApply goes through the check apply runs: secrets in env
// are references, never clear, and errors name their keys.
func TestCheckConfigAtApply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		values   map[string]any
		wantKeys string
	}{
		{"secret reference", map[string]any{"command": "x", "env": map[string]any{"API_TOKEN": map[string]any{"secret": map[string]any{"env": "T"}}}}, ""},
		{"secret in clear", map[string]any{"command": "x", "env": map[string]any{"API_TOKEN": "hunter2"}}, "env.API_TOKEN"},
		{"secret in the process config", map[string]any{"command": "x", "config": map[string]any{"password": "p"}}, "config.password"},
		{"missing command", map[string]any{"env": map[string]any{"A": "1"}}, "command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kind := range []string{"source", "sink"} {
				typeErr, errs := connector.CheckConfig(kind, "exec", tc.values)
				if typeErr != nil {
					t.Fatal(typeErr)
				}
				var keys []string
				for _, e := range errs {
					keys = append(keys, e.Key)
				}
				if got := strings.Join(keys, ","); got != tc.wantKeys {
					t.Fatalf("%s: errors name %q, want %q (%v)", kind, got, tc.wantKeys, errs)
				}
			}
		})
	}
}
