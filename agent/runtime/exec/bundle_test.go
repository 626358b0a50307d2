package exec

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unpackBundle extracts a bundle into a new directory, as the agent does.
func unpackBundle(t *testing.T, b []byte) string {
	t.Helper()
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, h.Name), data, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPythonBundle runs Pulsar-Functions-style Python code from a bundle
// with raw protocol frames: a plain process(input) function, a
// pulsar.Function class in a zip reading its user config, the input's
// properties forwarded, and a className that names nothing.
func TestPythonBundle(t *testing.T) {
	if _, err := osexec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	const classCode = "from pulsar import Function\n" +
		"class Shout(Function):\n" +
		"    def process(self, input, context):\n" +
		"        context.get_logger().info('got %s', input)\n" +
		"        return input.upper() + context.get_user_config_value('suffix') + context.get_message_key()\n"
	tests := []struct {
		name, file string
		code       []byte
		className  string
		env        []string
		// wantPayload is the output for input "hi" (key k); empty: the
		// process must exit with wantStderr.
		wantPayload string
		wantProps   map[string]string
		wantStderr  string
	}{
		{"plain function", "plain.py", []byte("def process(input):\n    return input + '!'\n"), "plain.process", nil, "hi!", map[string]string{}, ""},
		{"short className", "plain.py", []byte("def process(input):\n    return input + '?'\n"), "process", nil, "hi?", map[string]string{}, ""},
		{"class in a zip", "shout.zip", zipOf(t, map[string]string{"shout.py": classCode}), "shout.Shout", nil, "HI.k", map[string]string{}, "got hi"},
		{"forwarded properties", "plain.py", []byte("def process(input):\n    return input\n"), "plain.process",
			[]string{"MESHFED_FORWARD_SOURCE_PROPERTIES=true"}, "hi", map[string]string{"p": "1"}, ""},
		{"missing class", "plain.py", []byte("x = 1\n"), "plain.Nope", nil, "", nil, "module 'plain' has no 'Nope'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, cmdline, err := PythonBundle("dir/"+tc.file, tc.code, tc.className)
			if err != nil {
				t.Fatal(err)
			}
			if want := "python3 " + PythonShimFile + " " + tc.file + " " + tc.className; strings.Join(cmdline, " ") != want {
				t.Errorf("command = %q, want %q", cmdline, want)
			}
			var stdin bytes.Buffer
			for _, f := range []frame{
				&helloFrame{Version: 1, Tenant: "public", Namespace: "default", Mesh: "m", Function: "f", MaxFrameSize: DefaultMaxFrameSize, Config: []byte(`{"suffix": "."}`)},
				&messageFrame{ID: 1, Topic: "t", Key: "k", Payload: []byte("hi"), Properties: map[string]string{"p": "1"}},
			} {
				enc, err := encodeFrame(f, DefaultMaxFrameSize)
				if err != nil {
					t.Fatal(err)
				}
				stdin.Write(enc)
			}
			cmd := osexec.Command(cmdline[0], cmdline[1:]...)
			cmd.Dir = unpackBundle(t, b)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			cmd.Stdin = &stdin
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
			if tc.wantPayload == "" {
				if runErr == nil {
					t.Errorf("the process exited 0; want a failure")
				}
				return
			}
			var got []frame
			r := bufio.NewReader(&stdout)
			for {
				typ, body, err := readFrame(r, DefaultMaxFrameSize)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("read frames: %v (stderr %s)", err, stderr.String())
				}
				f, err := decodeFrame(typ, body)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, f)
			}
			if len(got) != 3 {
				t.Fatalf("frames = %#v, want READY, OUTPUT, DONE (stderr %s)", got, stderr.String())
			}
			out, ok := got[1].(*outputFrame)
			if !ok || string(out.Payload) != tc.wantPayload || out.Key != "k" || len(out.Properties) != len(tc.wantProps) || out.Properties["p"] != tc.wantProps["p"] {
				t.Errorf("output = %#v, want payload %q key k properties %v", got[1], tc.wantPayload, tc.wantProps)
			}
			if d, ok := got[2].(*doneFrame); !ok || d.ID != 1 {
				t.Errorf("last frame = %#v, want DONE 1", got[2])
			}
		})
	}
}

func TestBundleRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"go", func() error { _, _, err := GoBundle("..", []byte("x")); return err }()},
		{"python extension", func() error { _, _, err := PythonBundle("f.jar", []byte("x"), "a.B"); return err }()},
		{"python shim name", func() error { _, _, err := PythonBundle(PythonShimFile, []byte("x"), "a.B"); return err }()},
		{"python className", func() error { _, _, err := PythonBundle("f.py", []byte("x"), ""); return err }()},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), ErrBadBundle.Error()) {
			t.Errorf("%s: error %v, want ErrBadBundle", tc.name, tc.err)
		}
	}
	a, _, _ := GoBundle("/tmp/x/f", []byte("exe"))
	b, cmd, _ := GoBundle("f", []byte("exe"))
	if !bytes.Equal(a, b) || strings.Join(cmd, " ") != "./f" {
		t.Errorf("bundles of one executable differ, or command %q is not ./f", cmd)
	}
}
