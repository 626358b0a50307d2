package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/streams"
	"google.golang.org/grpc"
)

// packageCache fetches content-addressed packages from the control plane
// and keeps them under <data-dir>/packages, verified by digest.
type packageCache struct {
	a   *Agent
	dir string

	// mu serializes fetches.
	mu sync.Mutex
	// unpackMu serializes unpacking: instances of two functions sharing a
	// bundle start at once, and must not extract into (or replace) the
	// same directory together.
	unpackMu sync.Mutex
}

func newPackageCache(a *Agent) *packageCache {
	return &packageCache{a: a, dir: filepath.Join(a.cfg.DataDir, "packages")}
}

// get returns the bytes of the package with the given digest ("sha256:<hex>").
func (c *packageCache) get(ctx context.Context, digest string) ([]byte, error) {
	hexSum, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexSum) != 64 {
		return nil, fmt.Errorf("package %q: want sha256:<64 hex digits>", digest)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	path := filepath.Join(c.dir, hexSum)
	if data, err := os.ReadFile(path); err == nil && verify(data, hexSum) {
		return data, nil
	}
	var buf bytes.Buffer
	err := c.a.cp.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		buf.Reset()
		stream, err := meshfedv1.NewPackageServiceClient(conn).GetPackage(ctx, &meshfedv1.GetPackageRequest{Digest: digest})
		if err != nil {
			return err
		}
		return streams.Each(stream, func(msg *meshfedv1.GetPackageResponse) error {
			buf.Write(msg.GetChunk())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("fetch package %s: %w", digest, err)
	}
	data := buf.Bytes()
	if !verify(data, hexSum) {
		return nil, fmt.Errorf("package %s: content does not match its digest", digest)
	}
	if err := os.MkdirAll(c.dir, 0o700); err == nil {
		tmp := path + ".tmp"
		if os.WriteFile(tmp, data, 0o600) == nil {
			_ = os.Rename(tmp, path)
		}
	}
	return data, nil
}

func verify(data []byte, hexSum string) bool {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) == hexSum
}

// unpack fetches an exec bundle (a tar archive, optionally gzip-compressed)
// and extracts it once into its own directory, returned as the function's
// working directory.
func (c *packageCache) unpack(ctx context.Context, digest string) (string, error) {
	data, err := c.get(ctx, digest)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(c.dir, strings.TrimPrefix(digest, "sha256:")+".d")
	c.unpackMu.Lock()
	defer c.unpackMu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := extractTar(data, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack exec bundle %s: %w", digest, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o600); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("unpack exec bundle %s: %w", digest, err)
	}
	return dir, nil
}

func extractTar(data []byte, dir string) error {
	var r io.Reader = bytes.NewReader(data)
	if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar archive: %w", err)
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q escapes the bundle directory", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, io.LimitReader(tr, 1<<30)); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q: only files and directories are allowed", h.Name)
		}
	}
}
