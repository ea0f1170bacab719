package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/internal/pgtest"
)

// TestBackupPostgres: a server whose log is in PostgreSQL answers trail
// backup --server with 501 naming pg_dump (exit 1); the backup the README
// gives instead — pg_dump, pg_restore into an empty database — verifies
// with trail verify --store, and trail serve on it with the same signing
// key serves the original's checkpoint, honours the original's admin token
// (the principals are in the database) and goes on appending.
func TestBackupPostgres(t *testing.T) {
	c := pgtest.Start(t)
	base := t.TempDir()
	keyFile := filepath.Join(base, "signing.key")
	p := pgServe(t, c, keyFile, filepath.Join(base, "a"), "")
	for i := range 50 {
		ev := fmt.Sprintf(`{"stream":"patient/%d","type":"patient-record.read","action":"R","actor":{"id":"dr"}}`, i%5)
		if code, body := p.call(t, "POST", "/v1/events", p.token, ev); code != http.StatusCreated {
			t.Fatalf("append: %d %s", code, body)
		}
	}
	out, errOut, code := runTrailEnv(t, []string{"TRAIL_SERVER=" + p.url, "TRAIL_TOKEN=" + p.token}, "backup", "--to", filepath.Join(base, "b"))
	if code != 1 || !strings.Contains(errOut, "501") || !strings.Contains(errOut, "pg_dump") {
		t.Fatalf("trail backup --server of a PostgreSQL-backed server: exit %d\n%s%s", code, out, errOut)
	}
	for checkpointSize(t, p) < 50 {
		time.Sleep(50 * time.Millisecond)
	}
	_, want := p.call(t, "GET", "/v1/checkpoint", "", "")

	dump := filepath.Join(base, "trail.dump")
	restored := strings.Replace(c.ConnString(), "/postgres?", "/restored?", 1)
	for _, cmd := range [][]string{
		{"pg_dump", "--format=custom", "--file", dump, c.ConnString()},
		{"psql", c.ConnString(), "-c", "CREATE DATABASE restored"},
		{"pg_restore", "--exit-on-error", "--dbname", restored, dump},
	} {
		if b, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, b)
		}
	}
	if got := verifyStore(t, restored, keyFile); !strings.Contains(got, " 50 events") {
		t.Errorf("trail verify --store on the restored database: %s", got)
	}
	q := startServeCmd(t, exec.Command(trailBin, "serve", "--data", filepath.Join(base, "r"), "--store", restored,
		"--signing-key", keyFile, "--listen", "127.0.0.1:0"), filepath.Join(base, "r"))
	if _, got := q.call(t, "GET", "/v1/checkpoint", "", ""); got != want {
		t.Fatalf("the restored server's checkpoint:\n%s\nthe original's:\n%s", got, want)
	}
	code, body := q.call(t, "POST", "/v1/events", p.token, `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"after"}}`)
	if code != http.StatusCreated || !strings.Contains(body, `"index":50`) {
		t.Fatalf("append to the restored database: %d %s", code, body)
	}
}
