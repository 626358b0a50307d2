// Package pgtest starts a real PostgreSQL server for tests: the Debian
// package's initdb and postgres binaries, run as the test's own child
// process on a free loopback port, with its data directory under the test's
// temporary directory and wal_level=logical so logical replication works.
//
// PostgreSQL refuses to run as root; when the test runs as root the server
// runs as the "postgres" user (or "nobody" where there is none), set on the
// child process itself so no su, sudo or PAM is involved.
//
// When the binaries are absent a test skips, unless MESHFED_REQUIRE_POSTGRES
// is set (CI sets it), in which case it fails: CI never skips silently.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshfed/meshfed/internal/testkit"
)

// ErrNotInstalled is returned by Launch when no PostgreSQL binaries are found.
var ErrNotInstalled = errors.New("postgresql binaries not found (install the Debian package postgresql, or set MESHFED_POSTGRES_BIN)")

// RequireEnv names the variable that turns a missing PostgreSQL from a skip
// into a failure.
const RequireEnv = "MESHFED_REQUIRE_POSTGRES"

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 60 * time.Second

// Server is one running PostgreSQL server.
type Server struct {
	// Port is the loopback TCP port it listens on.
	Port int
	// Dir holds the data directory and the server's log.
	Dir string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	logPath string

	mu sync.Mutex // guards dbs
	// dbs counts databases made by NewDatabase, for unique names.
	dbs int
}

// Start starts a server for t, stopped when t ends. It skips t when
// PostgreSQL is not installed and RequireEnv is unset.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch(t.TempDir())
	if errors.Is(err, ErrNotInstalled) {
		Skip(t)
	}
	if err != nil {
		t.Fatalf("start postgresql: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop postgresql: %v", err)
		}
	})
	return s
}

// Skip skips t because PostgreSQL is not installed, or fails it when
// RequireEnv is set.
func Skip(t testing.TB) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%v, and %s is set", ErrNotInstalled, RequireEnv)
	}
	t.Skip(ErrNotInstalled)
}

// Installed reports whether the PostgreSQL binaries can be found.
func Installed() bool {
	_, err := binDir()
	return err == nil
}

// Launch initialises a data directory under dir and starts a server on it.
// The caller stops it with Stop; TestMain uses this to share one server
// among a package's tests.
func Launch(dir string) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, uid, gid, err := runAs()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(data, uid, gid); err != nil {
			return nil, err
		}
		if err := openPath(dir); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	initdb := command(filepath.Join(bin, "initdb"), cred, logFile,
		"-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if err := initdb.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, tail(logPath))
	}
	// A free port can be taken by someone else between our probe and the
	// server's bind: try a few.
	for attempt := 0; ; attempt++ {
		ports, err := testkit.FreePorts(1)
		if err != nil {
			return nil, err
		}
		port := ports[0]
		s := &Server{Port: port, Dir: dir, done: make(chan struct{}), logPath: logPath}
		s.cmd = command(filepath.Join(bin, "postgres"), cred, logFile,
			"-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=",
			"-c", "wal_level=logical",
			"-c", "max_wal_senders=20",
			"-c", "max_replication_slots=20",
			"-c", "max_connections=100",
			"-c", "fsync=off",
			"-c", "full_page_writes=off",
			"-c", "shared_buffers=32MB",
		)
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		go func() {
			s.waitErr = s.cmd.Wait()
			close(s.done)
		}()
		err = s.waitReady()
		if err == nil {
			return s, nil
		}
		_ = s.Stop()
		if attempt == 2 || !strings.Contains(tail(logPath), "in use") {
			return nil, err
		}
	}
}

// waitReady polls until the server accepts a connection or exits.
func (s *Server) waitReady() error {
	return testkit.Poll(startTimeout, func() error {
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited: %v\n%s", s.waitErr, tail(s.logPath))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
}

// URL is a connection string for database db as the superuser postgres.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDatabase creates an empty database named after t and returns its
// connection string.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.dbs++
	n := s.dbs
	s.mu.Unlock()
	name := fmt.Sprintf("%s_%d", strings.ToLower(nonWord.ReplaceAllString(t.Name(), "_")), n)
	if len(name) > 60 {
		name = fmt.Sprintf("t_%d", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to postgresql: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.URL(name)
}

var nonWord = regexp.MustCompile(`\W+`)

// Stop shuts the server down (fast shutdown, then a kill after 30s) and
// waits for it to exit.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("postgres did not stop within 30s; killed")
	}
}

// command builds a command that runs as cred (nil: as ourselves), with its
// output going to log, killed if the test process dies.
func command(path string, cred *syscall.Credential, log *os.File, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	return cmd
}

// binDir finds the directory of initdb and postgres: MESHFED_POSTGRES_BIN,
// else the newest /usr/lib/postgresql/*/bin, else the PATH.
func binDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("MESHFED_POSTGRES_BIN"); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%w: MESHFED_POSTGRES_BIN=%s has no initdb and postgres", ErrNotInstalled, dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNotInstalled
}

// version is the major version in a /usr/lib/postgresql/N/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// runAs returns the credential to run the server with: nil when we are not
// root, else the postgres user's or nobody's.
func runAs() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, 0, 0, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, uid, gid, nil
	}
	return nil, 0, 0, errors.New("running as root and no postgres or nobody user to run postgresql as")
}

// openPath lets other users traverse dir and its ancestors inside the
// temporary directory (t.TempDir makes its parent 0700), so the server's
// user can reach its data directory.
func openPath(dir string) error {
	tmp := filepath.Clean(os.TempDir())
	for p := filepath.Clean(dir); p != tmp && p != "/" && p != "."; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				return err
			}
		}
		if !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
			break
		}
	}
	return nil
}

// tail returns the last lines of the server's log, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
