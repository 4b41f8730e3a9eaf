// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb into
// a temporary directory, a postgres server on a free loopback port and a
// socket in that directory, fsync off, and one fresh database per caller.
//
// initdb refuses to run as root, so when the tests run as root (as CI does)
// the cluster runs as the unprivileged "postgres" user that Debian's
// postgresql package creates. Without PostgreSQL binaries the caller is told
// to skip, except when LATCHKEY_PG=1, where a missing server is a failure.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"latchkey/internal/procstat"
)

// ErrUnavailable is returned by Start when no PostgreSQL binaries are found.
var ErrUnavailable = errors.New("pgtest: no PostgreSQL server binaries (install Debian's postgresql package)")

// Required reports whether a missing PostgreSQL is a failure rather than a
// reason to skip: LATCHKEY_PG=1, as .ci/run sets it.
func Required() bool { return os.Getenv("LATCHKEY_PG") == "1" }

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir      string
	port     int
	bin      string
	cred     *syscall.Credential
	n        atomic.Int64
	cmd      *exec.Cmd
	done     chan struct{}
	keep     bool     // Options.Dir: Close leaves the files
	settings []string // Options.Settings
}

// Options tune a cluster started by StartWith.
type Options struct {
	// Dir, when set, holds the cluster instead of a temporary directory:
	// a cluster already there is started again rather than created, and
	// Close leaves it, so a benchmark's filled database outlives one run.
	Dir string
	// Settings are extra server settings ("shared_buffers=1GB"), passed
	// as -c after the defaults so that they win.
	Settings []string
}

// BinDir finds the directory holding initdb and postgres: $LATCHKEY_PG_BIN,
// the newest /usr/lib/postgresql/*/bin, or the directory of initdb on PATH.
func BinDir() (string, error) {
	if d := os.Getenv("LATCHKEY_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		p, _ = filepath.EvalSymlinks(p)
		return filepath.Dir(p), nil
	}
	return "", ErrUnavailable
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start creates and starts a cluster. Close stops it and removes its files.
func Start(ctx context.Context) (*Cluster, error) { return StartWith(ctx, Options{}) }

// StartWith starts a cluster as Start does, tuned by o.
func StartWith(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "latchkey-pg-")
	} else {
		dir, err = filepath.Abs(dir)
		if err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, done: make(chan struct{}), keep: o.Dir != "", settings: o.Settings}
	// removeDir undoes a failed start, but never a kept cluster's files.
	removeDir := func() {
		if !c.keep {
			os.RemoveAll(dir)
		}
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			removeDir()
			return nil, fmt.Errorf("pgtest: running as root needs a 'postgres' user for initdb: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			removeDir()
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		// The temporary directory's parents must be searchable by postgres.
		if err := os.Chmod(dir, 0o755); err != nil {
			removeDir()
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil || !c.keep {
		initdb := c.command(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
		if out, err := initdb.CombinedOutput(); err != nil {
			removeDir()
			return nil, fmt.Errorf("pgtest: initdb: %v: %s", err, out)
		}
	}
	for attempt := 0; ; attempt++ {
		c.port, err = freePort()
		if err != nil {
			removeDir()
			return nil, err
		}
		err = c.startServer(ctx, data)
		if err == nil {
			return c, nil
		}
		if attempt == 4 {
			removeDir()
			return nil, err
		}
	}
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *Cluster) startServer(ctx context.Context, data string) error {
	// The server outlives ctx (it is stopped by Close), so it gets its own.
	cmd := c.command(context.Background(), "postgres", "-D", data,
		"-p", strconv.Itoa(c.port), "-k", c.dir, "-h", "127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB")
	for _, kv := range c.settings {
		cmd.Args = append(cmd.Args, "-c", kv)
	}
	logf, err := os.Create(filepath.Join(c.dir, "server.log"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	c.cmd = cmd
	c.done = make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(c.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
			return fmt.Errorf("pgtest: postgres exited: %s", strings.TrimSpace(string(log)))
		case <-ctx.Done():
			c.stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
	}
	c.stop()
	return errors.New("pgtest: postgres did not accept connections within 30 s")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Pid is the process ID of the postmaster, the parent of every backend:
// a benchmark sums the CPU time of it and its children.
func (c *Cluster) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// CPUTime is the CPU time (user and system) the cluster has used so far:
// the postmaster, its live children (backends, background workers) and
// the children it has reaped. Benchmarks report it beside their own.
func (c *Cluster) CPUTime() time.Duration { return procstat.TreeCPU(c.Pid()) }

// Port is the loopback TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

var dbNames sync.Mutex

// NewDatabase creates an empty database and returns its connection URL.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	dbNames.Lock()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	dbNames.Unlock()
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return c.dsn(name), nil
}

// NewDatabaseFrom creates a database as a copy of the one at templateURL
// (a URL from NewDatabase, with no connection open to it) and returns its
// connection URL. Copying a database that already holds a schema is much
// faster than building the schema again.
func (c *Cluster) NewDatabaseFrom(ctx context.Context, templateURL string) (string, error) {
	u, err := url.Parse(templateURL)
	if err != nil {
		return "", fmt.Errorf("pgtest: template URL: %w", err)
	}
	tmpl := strings.TrimPrefix(u.Path, "/")
	dbNames.Lock()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	dbNames.Unlock()
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database from %s: %w", tmpl, err)
	}
	return c.dsn(name), nil
}

func (c *Cluster) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	// SIGQUIT is PostgreSQL's immediate shutdown: nothing here is worth
	// keeping. A kept cluster gets SIGINT, the fast shutdown that writes
	// a checkpoint (commits are asynchronous here, fsync off).
	sig, wait := syscall.SIGQUIT, 10*time.Second
	if c.keep {
		sig, wait = syscall.SIGINT, 2*time.Minute
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(wait):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// Close stops the server and removes the cluster's files (unless it was
// started in Options.Dir).
func (c *Cluster) Close() error {
	c.stop()
	if c.keep {
		return nil
	}
	return os.RemoveAll(c.dir)
}

// URL returns the connection URL of the named database (which must exist;
// "postgres" always does).
func (c *Cluster) URL(db string) string { return c.dsn(db) }

// EnsureDatabase creates the named database unless it exists, and returns
// its URL: a kept cluster's benchmark database is found again by name.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if n == 0 {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("pgtest: create database: %w", err)
		}
	}
	return c.dsn(name), nil
}
