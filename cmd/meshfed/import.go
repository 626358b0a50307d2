package main

// meshfed import, and the package and cluster lookups Function Mesh custom
// resources need when applied or imported (docs/migration.md).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	execrt "github.com/meshfed/meshfed/agent/runtime/exec"
	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

func init() { register(newImportCmd) }

// maxCodeSize bounds the function code a Function Mesh resource may name.
const maxCodeSize = 256 << 20

// forwardPropertiesEnv tells golang and python functions to copy an input
// message's properties onto its outputs (forwardSourceMessageProperty).
const forwardPropertiesEnv = "MESHFED_FORWARD_SOURCE_PROPERTIES"

// crdPackages stores the code of Function Mesh golang and python runtimes
// as meshfed packages (objects.PackageResolver).
type crdPackages struct {
	// ctx bounds the pushes and downloads.
	ctx context.Context
	// dir is the directory relative code paths are read from.
	dir string
	// push uploads a package and returns its digest. Nil: packages are
	// written into saveDir (or, when that is empty too, only hashed: a dry
	// run).
	push    func(ctx context.Context, name string, data []byte) (string, error)
	saveDir string
	// get downloads a package the control plane holds, for
	// function://sha256:... locations. Nil: such locations are refused.
	get func(ctx context.Context, digest string) ([]byte, error)
	// http fetches http(s):// locations.
	http *http.Client
	// log receives one line per package stored.
	log io.Writer
}

func (p *crdPackages) ResolveCode(c objects.CRDCode) (*meshfedv1.Runtime, error) {
	data, err := p.fetch(c)
	if err != nil {
		return nil, err
	}
	if c.Language == "go" && strings.HasSuffix(c.File, ".wasm") {
		digest, err := p.store(c.File, data)
		if err != nil {
			return nil, err
		}
		return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: digest}}}, nil
	}
	var (
		bundle  []byte
		command []string
	)
	if c.Language == "go" {
		bundle, command, err = execrt.GoBundle(c.File, data)
	} else {
		bundle, command, err = execrt.PythonBundle(c.File, data, c.ClassName)
	}
	if err != nil {
		return nil, err
	}
	digest, err := p.store(filepath.Base(c.File)+".tar", bundle)
	if err != nil {
		return nil, err
	}
	ex := &meshfedv1.ExecRuntime{Command: command, Package: digest}
	if c.ForwardProperties {
		ex.Env = map[string]string{forwardPropertiesEnv: "true"}
	}
	return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: ex}}, nil
}

// fetch reads the code a runtime block names: a path next to the file
// (no location, or file://), an http(s):// URL, or a package the control
// plane holds (function://sha256:HEX).
func (p *crdPackages) fetch(c objects.CRDCode) ([]byte, error) {
	loc := c.Location
	switch {
	case strings.HasPrefix(loc, "function://sha256:"):
		digest := strings.TrimPrefix(loc, "function://")
		if p.get == nil {
			return nil, fmt.Errorf("location %q: a package of the control plane needs the control plane; run without --package-dir", loc)
		}
		data, err := p.get(p.ctx, digest)
		if err != nil {
			return nil, rpcError("get package "+digest, err)
		}
		sum := sha256.Sum256(data)
		if "sha256:"+hex.EncodeToString(sum[:]) != digest {
			return nil, fmt.Errorf("get package %s: the content does not match its digest", digest)
		}
		return data, nil
	case loc == "":
		path := c.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.dir, path)
		}
		return readCode(path)
	case strings.HasPrefix(loc, "file://"):
		return readCode(strings.TrimPrefix(loc, "file://"))
	case strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://"):
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
		if err != nil {
			return nil, fmt.Errorf("location %q: %w", loc, err)
		}
		resp, err := p.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", loc, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("download %s: %s", loc, resp.Status)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxCodeSize+1))
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", loc, err)
		}
		if len(data) > maxCodeSize {
			return nil, fmt.Errorf("download %s: more than %d bytes", loc, maxCodeSize)
		}
		return data, nil
	default:
		return nil, fmt.Errorf("location %q: meshfed holds packages by content, not by Pulsar package names (function://tenant/namespace/name@version, tenant/namespace/name); push it (meshfed package push) and give function://sha256:..., give an http(s):// URL, or leave the location unset and put %s next to this file", loc, c.File)
	}
}

func readCode(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read function code: %w", err)
	}
	if st.Size() > maxCodeSize {
		return nil, fmt.Errorf("read function code %s: %d bytes, more than %d", path, st.Size(), maxCodeSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read function code: %w", err)
	}
	return data, nil
}

// store uploads (or saves, or hashes) a package and returns its digest.
func (p *crdPackages) store(name string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	switch {
	case p.push != nil:
		got, err := p.push(p.ctx, name, data)
		if err != nil {
			return "", rpcError("push package "+name, err)
		}
		digest = got
		fmt.Fprintf(p.log, "package %s pushed as %s\n", name, digest)
	case p.saveDir != "":
		path := filepath.Join(p.saveDir, hex.EncodeToString(sum[:])+filepath.Ext(name))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return "", fmt.Errorf("save package: %w", err)
		}
		fmt.Fprintf(p.log, "package %s saved as %s (%s); push it with: meshfed package push %s\n", name, path, digest, path)
	}
	return digest, nil
}

// clusterLookup reads Cluster objects through c.
func clusterLookup(ctx context.Context, c *client.Client) objects.ClusterLookup {
	return func(name string) (*meshfedv1.ClusterSpec, error) {
		resp, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: "Cluster", Name: name})
		if err != nil {
			return nil, rpcError("get cluster "+name, err)
		}
		return resp.GetObject().GetCluster().GetSpec(), nil
	}
}

// skipReporter prints and counts the Kubernetes documents Decode skips.
type skipReporter struct {
	w    io.Writer
	file string
	n    int
}

func (s *skipReporter) skip(doc int, kind, name string) {
	s.n++
	fmt.Fprintf(s.w, "skipped %s %q (%s doc %d): a Kubernetes object, not a meshfed one; the Cluster holds its settings\n", kind, name, s.file, doc)
}

// crdDecodeOptions are the decode options of a file that may hold Function
// Mesh resources: their code is stored through pk, their pulsar blocks
// checked with clusters, Kubernetes documents reported to skips.
func crdDecodeOptions(cluster string, pk *crdPackages, clusters objects.ClusterLookup, skips *skipReporter) objects.DecodeOptions {
	return objects.DecodeOptions{Cluster: cluster, Packages: pk, Clusters: clusters, OnSkip: skips.skip}
}

func newImportCmd() *cobra.Command {
	var (
		file, output, cluster, worker, packageDir, workerToken string
		namespaces                                             []string
	)
	cmd := &cobra.Command{
		Use:   "import (-f FILE|DIR | --functions-worker URL)",
		Short: "Convert Function Mesh resources, or a Pulsar Functions worker's functions, into meshfed YAML",
		Long: `Convert Function Mesh custom resources (compute.functionmesh.io/v1alpha1
FunctionMesh, Function, and lists of them) into meshfed objects and write
them as meshfed YAML, one document per mesh. -f takes a file or a directory
(its .yaml, .yml and .json files, in name order). Kubernetes ConfigMap and
Secret documents are skipped and listed on standard error.

With --functions-worker, the functions of a running Pulsar Functions worker
are read through its REST API (/admin/v3/functions, one namespace per
--namespace) and converted the same way; each function's code is downloaded
from the worker.

The code of golang and python runtimes is packaged (docs/migration.md) and
pushed to the control plane (--server), or, with --package-dir, saved there
for a later "meshfed package push". Fields meshfed cannot honour are errors
naming the field; see docs/migration.md for the mapping.`,
		Example: `  meshfed import -f k8s/functions/ --cluster us-east -o meshes.yaml
  meshfed import --functions-worker http://pulsar:8080 --namespace public/default --cluster us-east`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (file == "") == (worker == "") {
				return usageError{errors.New("give exactly one of -f FILE|DIR and --functions-worker URL")}
			}
			ctx, cancel := requestContext(cmd)
			defer cancel()
			var c *client.Client
			connect := func() (*client.Client, error) {
				if c == nil {
					var err error
					if c, err = newClient(); err != nil {
						return nil, err
					}
				}
				return c, nil
			}
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			pk := &crdPackages{ctx: ctx, saveDir: packageDir, http: &http.Client{}, log: cmd.ErrOrStderr()}
			var clusters objects.ClusterLookup
			if packageDir == "" {
				pk.push = func(ctx context.Context, name string, data []byte) (string, error) {
					c, err := connect()
					if err != nil {
						return "", err
					}
					return pushPackage(ctx, c, name, data)
				}
				pk.get = func(ctx context.Context, digest string) ([]byte, error) {
					c, err := connect()
					if err != nil {
						return nil, err
					}
					return getPackage(ctx, c, digest)
				}
				clusters = func(name string) (*meshfedv1.ClusterSpec, error) {
					c, err := connect()
					if err != nil {
						return nil, err
					}
					return clusterLookup(ctx, c)(name)
				}
			} else if err := os.MkdirAll(packageDir, 0o755); err != nil {
				return fmt.Errorf("package dir: %w", err)
			}
			if worker != "" {
				dir, err := os.MkdirTemp("", "meshfed-import-")
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer os.RemoveAll(dir)
				if err := fetchWorkerFunctions(cmd, worker, workerToken, namespaces, dir); err != nil {
					return err
				}
				file = dir
			}
			files, err := importFiles(file)
			if err != nil {
				return err
			}
			var out []*meshfedv1.Object
			skips := &skipReporter{w: cmd.ErrOrStderr()}
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("read %s: %w", f, err)
				}
				pk.dir, skips.file = filepath.Dir(f), f
				objs, err := crdDecodeOptions(cluster, pk, clusters, skips).Decode(f, data)
				if err != nil {
					return err
				}
				if err := objects.Check(f, objs, nil); err != nil {
					return err
				}
				out = append(out, objs...)
			}
			return writeImport(cmd, output, out, len(files), skips.n)
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "Function Mesh file, or directory of files, to convert")
	cmd.Flags().StringVarP(&output, "output", "o", "-", "file to write the meshfed YAML to; - is standard output")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster the functions run in (else each function's clusterName)")
	cmd.Flags().StringVar(&worker, "functions-worker", "", "admin URL of a Pulsar Functions worker (or broker) to read functions from, e.g. http://pulsar:8080")
	cmd.Flags().StringVar(&workerToken, "functions-worker-token-file", "", "file holding a bearer token for --functions-worker")
	cmd.Flags().StringSliceVar(&namespaces, "namespace", []string{"public/default"}, "tenant/namespace to read functions from, with --functions-worker (repeatable)")
	cmd.Flags().StringVar(&packageDir, "package-dir", "", "save function packages here instead of pushing them to the control plane")
	return cmd
}

// importFiles lists the file, or a directory's YAML and JSON files.
func importFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var files []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("import: %s holds no .yaml, .yml or .json files", path)
	}
	return files, nil
}

func writeImport(cmd *cobra.Command, output string, objs []*meshfedv1.Object, files, skipped int) error {
	var b strings.Builder
	for i, o := range objs {
		data, err := objects.Encode(o, "yaml")
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	if output == "-" {
		fmt.Fprint(cmd.OutOrStdout(), b.String())
	} else if err := os.WriteFile(output, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "imported %d objects from %d files; skipped %d Kubernetes documents\n", len(objs), files, skipped)
	return nil
}
