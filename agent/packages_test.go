package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestUnpackConcurrently: instances of several functions sharing one
// bundle unpack it at the same time; each gets a complete directory.
func TestUnpackConcurrently(t *testing.T) {
	files := map[string]string{}
	for _, n := range []string{"a.py", "b.py", "c.py", "d.py", "lib.py"} {
		files[n] = string(bytes.Repeat([]byte(n), 400000))
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	hexSum := hex.EncodeToString(sum[:])
	c := &packageCache{dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(c.dir, hexSum), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir, err := c.unpack(context.Background(), "sha256:"+hexSum)
			if err != nil {
				t.Error(err)
				return
			}
			for n, body := range files {
				if got, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(got) != body {
					t.Errorf("%s after unpack: %v", n, err)
				}
			}
		}()
	}
	wg.Wait()
}
