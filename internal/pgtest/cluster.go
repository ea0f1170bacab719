// Package pgtest starts throwaway PostgreSQL servers for tests and
// benchmarks: initdb into a temporary directory, postgres on a free loopback
// port with durable settings, stopped (or crashed, and started again on the
// same data) on demand.
package pgtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/store/postgres"
	"golang.org/x/mod/sumdb/note"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClusterConfig says where and how a throwaway cluster runs. The zero value
// works where PostgreSQL's binaries are installed.
type ClusterConfig struct {
	// BinDir holds initdb and postgres. Default: "pg_config --bindir", then
	// /usr/lib/postgresql/15/bin, then the directories of $PATH.
	BinDir string
	// BaseDir is where the cluster's temporary directory is made (default
	// os.TempDir()). It must be reachable by RunAs.
	BaseDir string
	// RunAs is the unprivileged user that runs initdb and postgres when this
	// process is root, since PostgreSQL refuses to run as root. Default: the
	// first of "postgres" and "nobody" that exists.
	RunAs string
	// MaxConnections is PostgreSQL's max_connections (default 100).
	MaxConnections int
}

// DurableSettings are the settings the cluster runs with: every commit
// returns only after its WAL is flushed with fdatasync, and a torn page is
// repaired from the WAL after a crash. These are PostgreSQL's defaults; they
// are given explicitly so that no configuration file can weaken them.
func DurableSettings() []string {
	return []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on", "wal_sync_method=fdatasync"}
}

// Cluster is a PostgreSQL server started from initdb in a temporary
// directory, listening on a free loopback TCP port. Stop it to remove it.
type Cluster struct {
	// Version is what "postgres --version" printed.
	Version string
	// RunAs is the user the server runs as ("" when not switched).
	RunAs string

	dir      string
	port     int
	bin      string
	cred     *syscall.Credential
	maxConns int
	mu       sync.Mutex // guards cmd and exited
	cmd      *exec.Cmd
	exited   chan struct{}
	once     sync.Once
	err      error
}

// StartCluster runs initdb into a new temporary directory and starts postgres
// on it, returning once it accepts connections. On error nothing is left
// running and the directory is removed.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	bin, err := findBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	cred, runAs, err := credential(cfg.RunAs)
	if err != nil {
		return nil, err
	}
	c := &Cluster{RunAs: runAs, bin: bin, cred: cred, maxConns: max(cfg.MaxConnections, 100)}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("postgres --version in %s: %w", bin, err)
	}
	c.Version = strings.TrimSpace(string(out))
	if c.dir, err = makeDir(cfg.BaseDir, cred); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx, bin, cred); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	c.port = port
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Crash stops the server as a power cut or pg_ctl -m immediate would: SIGQUIT
// to the postmaster, which exits without a checkpoint, leaving recovery to
// the next start. The data stay; Start runs the server on them again.
func (c *Cluster) Crash() error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	c.mu.Lock()
	c.cmd = nil
	c.mu.Unlock()
	return nil
}

// Start starts the server again on its data after Crash, on the same port.
func (c *Cluster) Start(ctx context.Context) error {
	return c.start(ctx)
}

// Dir is the cluster's temporary directory (data and log).
func (c *Cluster) Dir() string { return c.dir }

// Installed reports why PostgreSQL's binaries cannot be found, or nil.
func Installed() error {
	_, err := findBinDir("")
	return err
}

// Port is the server's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// ConnString is a pgx connection string for the cluster's superuser "bench"
// over loopback TCP (the same path Trail's client takes).
func (c *Cluster) ConnString() string {
	return fmt.Sprintf("postgres://bench@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Stop shuts the server down (fast shutdown: SIGINT, then SIGQUIT, then
// SIGKILL if it lingers) and removes the cluster's directory. It is safe to
// call more than once and from several goroutines.
func (c *Cluster) Stop() error {
	c.once.Do(func() {
		c.mu.Lock()
		running := c.cmd != nil && c.cmd.Process != nil
		c.mu.Unlock()
		if running {
			c.err = c.signalUntilExit()
		}
		if err := os.RemoveAll(c.dir); err != nil && c.err == nil {
			c.err = fmt.Errorf("remove cluster directory: %w", err)
		}
	})
	return c.err
}

func (c *Cluster) signalUntilExit() error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 20 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}}
	for _, s := range steps {
		select {
		case <-exited:
			return nil
		default:
		}
		cmd.Process.Signal(s.sig)
		select {
		case <-exited:
			return nil
		case <-time.After(s.wait):
		}
	}
	return fmt.Errorf("postgres (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
}

func (c *Cluster) initdb(ctx context.Context, bin string, cred *syscall.Credential) error {
	// --no-sync skips syncing the bootstrap files only; the server's commits
	// are durable whatever initdb did.
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", c.dataDir(),
		"-U", "bench", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", c.dataDir(), err, out.Bytes())
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	bin, cred, maxConns, port := c.bin, c.cred, c.maxConns, c.port
	args := []string{"-D", c.dataDir(), "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + c.dir,
		"-c", "max_connections=" + strconv.Itoa(maxConns)}
	for _, s := range DurableSettings() {
		args = append(args, "-c", s)
	}
	logf, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Not CommandContext: the server is stopped by Stop, in order, and a
	// new process group keeps a terminal's Ctrl-C from reaching it first.
	// Pdeathsig stops it (immediate shutdown) should this process die.
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()
	return c.waitReady(ctx)
}

// waitReady polls until a connection succeeds, the server exits, or 60s pass.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.ConnString())
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		c.mu.Lock()
		exited := c.exited
		c.mu.Unlock()
		select {
		case <-exited:
			return fmt.Errorf("postgres exited during start-up:\n%s", c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after 60s: %w\n%s", err, c.logTail())
		}
	}
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logPath() string { return filepath.Join(c.dir, "postgres.log") }

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(c.logPath())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// findBinDir returns the first directory holding both initdb and postgres.
func findBinDir(dir string) (string, error) {
	var dirs []string
	if dir != "" {
		dirs = []string{dir}
	} else {
		if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
			dirs = append(dirs, strings.TrimSpace(string(out)))
		}
		dirs = append(dirs, "/usr/lib/postgresql/15/bin")
		dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL binaries (initdb and postgres) in %s: install PostgreSQL 15 (Debian: apt-get install postgresql-15) or give the directory", strings.Join(dirs, ", "))
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// credential returns who to run PostgreSQL as: nil (this process's user)
// unless running as root, which initdb and postgres refuse.
func credential(name string) (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	names := []string{name}
	if name == "" {
		names = []string{"postgres", "nobody"}
	}
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, n, nil
	}
	return nil, "", fmt.Errorf("running as root and none of the users %s exists to run PostgreSQL as: create one or run as another user", strings.Join(names, ", "))
}

// makeDir makes the cluster's temporary directory, owned by the user the
// server runs as.
func makeDir(base string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp(base, "trail-vspg-")
	if err != nil {
		return "", fmt.Errorf("make cluster directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("give %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	return dir, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shared is the server the tests of one process share (Shared).
var shared struct {
	once sync.Once
	c    *Cluster
	err  error
	mu   sync.Mutex // serialises CREATE DATABASE
}

// Shared returns the PostgreSQL server this test process shares, started on
// first use; StopShared stops it (call it from TestMain).
func Shared() (*Cluster, error) {
	shared.once.Do(func() { shared.c, shared.err = StartCluster(context.Background(), ClusterConfig{}) })
	return shared.c, shared.err
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared.c != nil {
		shared.c.Stop()
	}
}

// DatabaseFor returns the connection string of a database of the shared
// server that belongs to dir (a test's data directory), creating it on first
// use, so that reopening dir reopens the same database.
func DatabaseFor(ctx context.Context, dir string) (string, error) {
	c, err := Shared()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(dir))
	name := "t" + hex.EncodeToString(sum[:10])
	shared.mu.Lock()
	defer shared.mu.Unlock()
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", err
		}
	}
	return strings.Replace(c.ConnString(), "/postgres?", "/"+name+"?", 1), nil
}

// KeyFor returns the signing key of the log a test keeps for dir, creating
// it (in dir/postgres.key, for origin) on first use, and writes its verifier
// key to dir/checkpoint.vkey, where a data directory keeps it, for the tests
// that read it there.
func KeyFor(dir, origin string) (note.Signer, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	keyFile := filepath.Join(dir, "postgres.key")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		if origin == "" {
			origin = "trail/test"
		}
		if err := checkpoint.CreateKeyFile(keyFile, origin); err != nil {
			return nil, "", err
		}
	}
	signer, vkey, err := checkpoint.LoadKey(keyFile)
	if err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.VerifierFile), []byte(vkey+"\n"), 0o644); err != nil {
		return nil, "", err
	}
	return signer, vkey, nil
}

// TB is what Start needs of a test.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start starts a cluster of the test's own, stopped when the test ends. A
// machine without PostgreSQL's binaries fails the test (it is never
// skipped).
func Start(t TB) *Cluster {
	t.Helper()
	if err := Installed(); err != nil {
		t.Fatalf("PostgreSQL is not installed: %v", err)
	}
	c, err := StartCluster(context.Background(), ClusterConfig{})
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// StoreFor opens the PostgreSQL store of a test's data directory dir: its
// database on the shared server (DatabaseFor) and its key (KeyFor).
func StoreFor(ctx context.Context, dir, origin string, logger *slog.Logger) (*postgres.Store, error) {
	url, err := DatabaseFor(ctx, dir)
	if err != nil {
		return nil, err
	}
	signer, vkey, err := KeyFor(dir, origin)
	if err != nil {
		return nil, err
	}
	return postgres.Open(ctx, postgres.Options{URL: url, Signer: signer, VerifierKey: vkey, Logger: logger})
}
