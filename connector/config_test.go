package connector

import (
	"errors"
	"strings"
	"testing"
)

func TestSecrets(t *testing.T) {
	values := map[string]any{
		"broker":   "tcp://h:1883",
		"password": map[string]any{"secret": map[string]any{"env": "PW"}},
		"tls":      map[string]any{"privateKey": map[string]any{"secret": map[string]any{"file": "/k.pem"}}},
		"headers":  []any{map[string]any{"secret": map[string]any{"env": "MISSING"}}},
	}
	if errs := CheckSecrets(values); len(errs) != 0 {
		t.Fatalf("references refused: %v", errs)
	}
	got, err := ResolveSecrets(values, func(n string) (string, bool) { return "pw-" + n, n == "PW" },
		func(p string) ([]byte, error) { return []byte("key of " + p + "\n"), nil })
	if got["password"] != "pw-PW" || got["tls"].(map[string]any)["privateKey"] != "key of /k.pem" || got["broker"] != "tcp://h:1883" {
		t.Fatalf("resolved %v", got)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "headers[0]" || !strings.Contains(ce.Reason, "MISSING is not set") {
		t.Fatalf("missing variable: %v", err)
	}
	clear := CheckSecrets(map[string]any{"password": "hunter2", "auth": map[string]any{"apiKey": "k"}, "user": "bob"})
	if len(clear) != 2 || clear[0].Key != "auth.apiKey" || clear[1].Key != "password" {
		t.Fatalf("secrets in clear: %v", clear)
	}
}

func TestValuesRefusesUnknownAndMistyped(t *testing.T) {
	v := NewValues(map[string]any{"n": 1.5, "s": true, "extra": 1.0, "d": "soon"})
	v.Int("n", 0, 0, 10)
	v.String("s", "")
	v.Duration("d", 0)
	var keys []string
	for _, ce := range ConfigErrors(v.Err()) {
		keys = append(keys, ce.Key)
	}
	if strings.Join(keys, ",") != "n,s,d,extra" {
		t.Fatalf("errors for %v", keys)
	}
}
