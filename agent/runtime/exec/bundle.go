package exec

// Exec bundles for Pulsar Functions code (Function Mesh golang and python
// runtimes). A bundle is the tar archive an exec function's package holds,
// unpacked as its working directory; see docs/migration.md.

import (
	"archive/tar"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	pysdk "github.com/meshfed/meshfed/sdk/python"
)

// PythonShimFile is the file name of the Pulsar Functions Python wrapper in
// a Python bundle.
const PythonShimFile = "meshfed_pulsar_function.py"

// pythonShim runs a Pulsar-Functions-style Python function (process(input)
// or a pulsar.Function class) over the exec protocol.
//
//go:embed pulsarpy/meshfed_pulsar_function.py
var pythonShim []byte

// bundleTime is the modification time of every bundle entry, so a bundle's
// digest depends on its content only.
var bundleTime = time.Unix(0, 0).UTC()

// bundleFile is one file of a bundle.
type bundleFile struct {
	name string
	mode int64
	data []byte
}

// GoBundle packs a Go executable (any executable speaking the exec
// protocol) under name, and returns the bundle and the command running it.
func GoBundle(name string, exe []byte) (bundle []byte, command []string, err error) {
	base, err := bundleName(name)
	if err != nil {
		return nil, nil, err
	}
	b, err := writeBundle([]bundleFile{{base, 0o755, exe}})
	if err != nil {
		return nil, nil, err
	}
	return b, []string{"./" + base}, nil
}

// PythonBundle packs Pulsar Functions Python code (a .py file, a .zip or a
// .whl, named name) with meshfed's Python SDK and the wrapper that calls
// className, and returns the bundle and the command running it with python3.
func PythonBundle(name string, code []byte, className string) (bundle []byte, command []string, err error) {
	base, err := bundleName(name)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !strings.HasSuffix(base, ".py") && !strings.HasSuffix(base, ".zip") && !strings.HasSuffix(base, ".whl"):
		return nil, nil, fmt.Errorf("%q: python code must be a .py file, a .zip or a .whl: %w", name, ErrBadBundle)
	case base == PythonShimFile || base == pysdk.SDKFile:
		return nil, nil, fmt.Errorf("%q: the name is taken by meshfed's wrapper: %w", name, ErrBadBundle)
	case className == "":
		return nil, nil, fmt.Errorf("a python function needs className (MODULE.NAME): %w", ErrBadBundle)
	}
	b, err := writeBundle([]bundleFile{
		{base, 0o644, code},
		{pysdk.SDKFile, 0o644, pysdk.SDK},
		{PythonShimFile, 0o644, pythonShim},
	})
	if err != nil {
		return nil, nil, err
	}
	return b, []string{"python3", PythonShimFile, base, className}, nil
}

// bundleName is the file name a bundle keeps of name: its last element.
func bundleName(name string) (string, error) {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	if base == "" || base == "." || base == "/" || base == ".." {
		return "", fmt.Errorf("%q: not a file name: %w", name, ErrBadBundle)
	}
	return base, nil
}

func writeBundle(files []bundleFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: bundleTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return buf.Bytes(), nil
}

// BundleFile returns the content of file name in a bundle made by
// PythonBundle (or any uncompressed tar bundle).
func BundleFile(bundle []byte, name string) ([]byte, error) {
	tr := tar.NewReader(bytes.NewReader(bundle))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("bundle has no file %q: %w", name, ErrBadBundle)
		}
		if err != nil {
			return nil, fmt.Errorf("read bundle: %w", err)
		}
		if h.Name == name && h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}
