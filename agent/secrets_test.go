package agent

import (
	"errors"
	"io/fs"
	"maps"
	"strings"
	"testing"
)

func TestResolveSecrets(t *testing.T) {
	env := map[string]string{"PG_PASSWORD": "s3cret"}
	files := map[string]string{"/etc/key": "k3y\n", "/etc/crlf": "v\r\n"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
	got, err := resolveSecrets(map[string]string{"DB": "env:PG_PASSWORD", "KEY": "file:///etc/key", "CRLF": "file:/etc/crlf"}, lookup, read)
	if err != nil || !maps.Equal(got, map[string]string{"DB": "s3cret", "KEY": "k3y", "CRLF": "v"}) {
		t.Fatalf("resolved %v, %v", got, err)
	}
	for _, tc := range []struct {
		name, ref, want string
	}{
		{"unset variable", "env:NOPE", "secret S: env:NOPE is not set in the agent's environment"},
		{"missing file", "file:///etc/nope", "secret S: read file:///etc/nope:"},
		{"value in clear", "hunter2", "secret S: invalid object: a secret in clear is not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolveSecrets(map[string]string{"S": tc.ref}, lookup, read)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want one starting %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows a secret: %v", err)
			}
			if tc.name == "missing file" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v does not wrap fs.ErrNotExist", err)
			}
		})
	}
}
