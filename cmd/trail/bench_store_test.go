package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/internal/bench"
	"github.com/trailhq/trail/internal/pgtest"
)

// TestBenchStore: trail bench --store runs the workload through two trail
// serve processes on one database, both taking appends, with PostgreSQL's
// own INSERT beside it; afterwards the log holds exactly the events,
// verifies, and its final checkpoint covers them, the INSERT table is gone,
// and no trail serve is left running. A second run on the same database is
// refused.
func TestBenchStore(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE bench"); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(c.ConnString(), "/postgres?", "/bench?", 1)
	keyFile := filepath.Join(t.TempDir(), "signing.key")

	bctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(bctx, trailBin, "bench", "--store", url, "--processes", "2", "--signing-key", keyFile,
		"--events", "2000", "--producers", "16", "--baseline", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("trail bench --store: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("trail bench --store took %v: %s", time.Since(start).Round(time.Millisecond), stdout.Bytes())
	if left := serveProcessesOf(t, url); len(left) > 0 {
		t.Errorf("trail serve processes left running: %v", left)
	}

	var rs []bench.Result
	if err := json.Unmarshal(stdout.Bytes(), &rs); err != nil {
		t.Fatalf("output: %v\n%s", err, stdout.Bytes())
	}
	if len(rs) != 2 {
		t.Fatalf("%d result rows, want trail's and PostgreSQL's: %s", len(rs), stdout.Bytes())
	}
	if r := rs[0]; r.Mode != "postgres, 2 processes, 16 producers" || r.Events != 2000 || r.EventsPerSec <= 0 || r.AckP50ms <= 0 || !r.Durable {
		t.Errorf("trail's row: %+v", r)
	}
	if r := rs[1]; !strings.HasPrefix(r.Mode, "postgres INSERT, 16 conns") || r.Events != 2000 || r.EventsPerSec <= 0 || r.AckP50ms <= 0 {
		t.Errorf("PostgreSQL's row: %+v", r)
	}
	var sum int64
	for i, n := range rs[0].ProcessEvents {
		if n <= 0 {
			t.Errorf("trail serve #%d acknowledged %d events", i+1, n)
		}
		sum += n
	}
	// Each event is at least its stored record in a row, one index entry
	// per index, and about one tree node (32 bytes of hash and its key).
	if st := rs[0].Storage; st == nil || st.Rows < 300 || st.Indexes < 40 || st.Tree < 32 {
		t.Errorf("trail's storage per event: %+v", st)
	}
	if st := rs[1].Storage; st == nil || st.Rows < 200 || st.Indexes < 20 || st.Tree != 0 {
		t.Errorf("the peer's storage per event: %+v", st)
	}
	// The peak RSS is the two trail serve processes', each at least a few
	// MB; PostgreSQL's is not the bench's to measure.
	if r := rs[0]; r.PeakRSSMB == nil || *r.PeakRSSMB < 10 || *r.PeakRSSMB > 4096 || !strings.Contains(r.PeakRSSOf, "2 trail serve processes") {
		t.Errorf("trail's peak RSS: %v MB of %q", r.PeakRSSMB, r.PeakRSSOf)
	}
	if r := rs[1]; r.PeakRSSMB != nil {
		t.Errorf("the peer's peak RSS: %v MB of %q, want none", *r.PeakRSSMB, r.PeakRSSOf)
	}
	if len(rs[0].ProcessEvents) != 2 || sum != 2000 {
		t.Errorf("events acknowledged per process: %v, want two adding up to 2000", rs[0].ProcessEvents)
	}

	var events, checkpoint int64
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := db.QueryRow(ctx, `SELECT count(*) FROM trail_events WHERE stream NOT LIKE 'trail/%'`).Scan(&events); err != nil || events != 2000 {
		t.Errorf("the log holds %d events of the workload, want 2000 (%v)", events, err)
	}
	if err := db.QueryRow(ctx, `SELECT coalesce(max(size), 0) FROM trail_checkpoints`).Scan(&checkpoint); err != nil || checkpoint < 2000 {
		t.Errorf("latest checkpoint size %d, want at least 2000 (%v)", checkpoint, err)
	}
	var tables []string
	rows, err := db.Query(ctx, `SELECT tablename FROM pg_tables WHERE tablename LIKE 'trail\_bench%'`)
	if err == nil {
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(tables) > 0 {
		t.Errorf("tables of the INSERT run left: %v (%v)", tables, err)
	}
	t.Log(verifyStore(t, url, keyFile))

	// The database now holds a log: a second run must not add to it.
	out, err := exec.CommandContext(bctx, trailBin, "bench", "--store", url, "--events", "10").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !bytes.Contains(out, []byte("already holds a Trail log")) {
		t.Errorf("second trail bench --store on the same database: %v\n%s", err, out)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM trail_events WHERE stream NOT LIKE 'trail/%'`).Scan(&events); err != nil || events != 2000 {
		t.Errorf("after the refused run the log holds %d events of the workload, want 2000 (%v)", events, err)
	}
}

// serveProcessesOf lists the pids of running processes whose command line
// names the database url.
func serveProcessesOf(t *testing.T, url string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(url)) || !bytes.Contains(b, []byte("serve")) {
			continue
		}
		// A zombie (exited, not yet reaped) has an empty command line.
		pids = append(pids, e.Name())
	}
	return pids
}
