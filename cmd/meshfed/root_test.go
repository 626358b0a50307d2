package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/security"
)

func TestBearerToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("mft1.from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		flag, fl  string
		env       map[string]string
		want, err string
	}{
		{name: "none"},
		{name: "flag", flag: " mft1.flag ", want: "mft1.flag"},
		{name: "file, trimmed", fl: file, want: "mft1.from-file"},
		{name: "env", env: map[string]string{"MESHFED_TOKEN": "mft1.env"}, want: "mft1.env"},
		{name: "env file", env: map[string]string{"MESHFED_TOKEN_FILE": file}, want: "mft1.from-file"},
		{name: "flag beats env", flag: "mft1.flag", env: map[string]string{"MESHFED_TOKEN": "mft1.env"}, want: "mft1.flag"},
		{name: "file flag beats env", fl: file, env: map[string]string{"MESHFED_TOKEN": "mft1.env"}, want: "mft1.from-file"},
		{name: "both flags", flag: "mft1.flag", fl: file, err: "--token and --token-file are both set"},
		{name: "both env", env: map[string]string{"MESHFED_TOKEN": "x", "MESHFED_TOKEN_FILE": file}, err: "MESHFED_TOKEN and MESHFED_TOKEN_FILE are both set"},
		{name: "missing file", fl: filepath.Join(dir, "nope"), err: "--token-file: open"},
		{name: "empty file", fl: empty, err: "--token-file " + empty + " is empty"},
		{name: "two words", flag: "Bearer mft1.x", err: "--token holds more than one word"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bearerToken(globalFlags{token: tc.flag, tokenFile: tc.fl}, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestTokenNeedsTLS checks that a token is never sent in clear: without the
// --tls flags the CLI refuses before dialling, saying what to add.
func TestTokenNeedsTLS(t *testing.T) {
	if _, err := dialOptions(security.Files{}, "mft1.x"); err == nil || !strings.Contains(err.Error(), "--tls-cert, --tls-key and --tls-ca") {
		t.Fatalf("dialOptions with a token and no TLS: %v", err)
	}
	_, errOut, code := cli(t, "", "--server", "127.0.0.1:1", "--token", "mft1.x", "get", "clusters")
	if code != 2 || !strings.Contains(errOut, "needs mutual TLS") {
		t.Fatalf("exit %d, stderr %q; want 2 and an error asking for --tls-*", code, errOut)
	}
}

// TestLogFormat checks the format a component logs in: --log-format, else
// MESHFED_LOG_FORMAT, else the component's default; and that a bad value
// is a usage error naming where it came from.
func TestLogFormat(t *testing.T) {
	defer func(f string) { global.logFormat = f }(global.logFormat)
	for _, tc := range []struct {
		name, flag, env, def string
		json                 bool
		err                  string
	}{
		{name: "default json", def: "json", json: true},
		{name: "default text", def: "text"},
		{name: "env beats default", env: "json", def: "text", json: true},
		{name: "flag beats env", flag: "text", env: "json", def: "json"},
		{name: "bad flag", flag: "yaml", def: "json", err: "--log-format"},
		{name: "bad env", env: "logfmt", def: "json", err: "MESHFED_LOG_FORMAT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			global.logFormat = tc.flag
			t.Setenv("MESHFED_LOG_FORMAT", tc.env)
			var buf strings.Builder
			l, err := newLoggerTo(&buf, tc.def, "info")
			if tc.err != "" {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "json or text") {
					t.Fatalf("err %v; want a usage error naming %s and the formats", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Info("started", "node", "n1")
			if got := strings.HasPrefix(buf.String(), "{"); got != tc.json {
				t.Fatalf("logged %q; want JSON %v", buf.String(), tc.json)
			}
		})
	}
}

func TestLogFormatFlagOnEveryComponent(t *testing.T) {
	for _, args := range [][]string{
		{"server", "--node-id", "n1", "--data-dir", t.TempDir(), "--log-format", "yaml"},
		{"agent", "--cluster", "a", "--server", "127.0.0.1:1", "--data-dir", t.TempDir(), "--log-format", "yaml"},
		{"broker", "--data-dir", t.TempDir(), "--log-format", "yaml"},
		{"dev", "--data-dir", t.TempDir(), "--log-format", "yaml"},
	} {
		if _, errOut, code := cli(t, "", args...); code != 2 || !strings.Contains(errOut, "--log-format") {
			t.Errorf("meshfed %v: exit %d, want 2 naming --log-format (%s)", args, code, errOut)
		}
	}
}
