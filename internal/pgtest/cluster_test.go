package pgtest

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestClusterCrashStartStop: a cluster keeps a committed row across a crash
// (SIGQUIT, no shutdown checkpoint) and a start on the same data; Stop ends
// the server and removes its directory, and may be called again.
func TestClusterCrashStartStop(t *testing.T) {
	if err := Installed(); err != nil {
		t.Fatalf("PostgreSQL is not installed: %v", err)
	}
	ctx := context.Background()
	c, err := StartCluster(ctx, ClusterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.Crash(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, c.ConnString()); err == nil {
		t.Fatal("connected to a crashed cluster")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after crash and start: %d, %v; want 42", v, err)
	}
	conn.Close(ctx)
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still there: %v", c.Dir(), err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err == nil {
		t.Errorf("postgres (pid %d) still running", cmd.Process.Pid)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
