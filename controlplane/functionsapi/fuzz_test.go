package functionsapi

import (
	"bytes"
	"mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"
)

// seeds adds every file of testdata/<dir> to f.
func seeds(f *testing.F, dir string, add func(b []byte)) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzFunctionConfig decodes FunctionConfig JSON and maps it: neither may
// panic, and an accepted config maps to a spec or to a 400 naming fields.
func FuzzFunctionConfig(f *testing.F) {
	seeds(f, "config", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeConfig(data)
		if err != nil {
			if code, _ := httpStatus(err); code != 400 {
				t.Fatalf("decode error answered %d, want 400: %v", code, err)
			}
			return
		}
		spec, err := ToSpec(c, exclamation, "a")
		if err != nil {
			if code, _ := httpStatus(err); code != 400 {
				t.Fatalf("mapping error answered %d, want 400: %v", code, err)
			}
			return
		}
		back := FromSpec(c.Tenant, c.Namespace, spec)
		if back.Parallelism != max(int(spec.GetReplicas()), 1) {
			t.Fatalf("parallelism %d maps back to %d", spec.GetReplicas(), back.Parallelism)
		}
	})
}

// FuzzForm decodes multipart bodies: it may refuse, never panic, and what
// it accepts holds only the known parts.
func FuzzForm(f *testing.F) {
	seeds(f, "form", func(b []byte) { f.Add("multipart/form-data; boundary=B", b) })
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.SetBoundary("B")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="functionConfig" `)
	p, _ := w.CreatePart(h)
	p.Write([]byte(`{"tenant":"public"}`))
	fw, _ := w.CreateFormFile("data", "f.wasm")
	fw.Write([]byte("\x00asm\x01\x00\x00\x00"))
	w.Close()
	f.Add(w.FormDataContentType(), buf.Bytes())
	f.Add("text/plain", []byte("x"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		form, err := DecodeForm(contentType, bytes.NewReader(body))
		if err != nil {
			if code, _ := httpStatus(err); code != 400 {
				t.Fatalf("form error answered %d, want 400: %v", code, err)
			}
			return
		}
		if len(form.Data) > MaxPackageSize || len(form.Config) > maxFieldSize {
			t.Fatalf("accepted a part over its bound")
		}
	})
}
