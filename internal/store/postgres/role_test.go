package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/pgtest"
	"github.com/trailhq/trail/internal/store/postgres"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// newDatabase makes a database of its own on the shared test server and
// returns its URL and a directory for its key.
func newDatabase(t *testing.T) (url, dir string) {
	t.Helper()
	if err := pgtest.Installed(); err != nil {
		t.Fatalf("PostgreSQL is not installed: %v", err)
	}
	dir = t.TempDir()
	url, err := pgtest.DatabaseFor(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return url, dir
}

// openLog opens the engine on the database at url with dir's key.
func openLog(t testing.TB, url, dir string) *trail.Log {
	t.Helper()
	signer, vkey, err := pgtest.KeyFor(dir, "trail/role-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), postgres.Options{URL: url, Signer: signer, VerifierKey: vkey})
	if err != nil {
		t.Fatalf("open as %s: %v", url, err)
	}
	cfg := trail.DefaultConfig()
	cfg.CheckpointInterval = 50 * time.Millisecond
	l, err := trail.OpenStore(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestServingRoleInsertsAndSelectsOnly: the database's owner runs the
// migrations; Trail then serves as a role that may only SELECT and INSERT.
// It appends, signs checkpoints, queries, proves and verifies, while that
// role can neither change nor remove a row: what it wrote cannot be
// rewritten by whoever holds its password.
func TestServingRoleInsertsAndSelectsOnly(t *testing.T) {
	if err := pgtest.Installed(); err != nil {
		t.Fatalf("PostgreSQL is not installed: %v", err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	owner, err := pgtest.DatabaseFor(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The owner migrates (a first start) and closes.
	l := openLog(t, owner, dir)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP ROLE IF EXISTS trail_serve",
		"CREATE ROLE trail_serve LOGIN",
		"GRANT CONNECT ON DATABASE " + pgx.Identifier{db}.Sanitize() + " TO trail_serve",
		"GRANT USAGE ON SCHEMA public TO trail_serve",
		"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO trail_serve",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	serving := strings.Replace(owner, "bench@", "trail_serve@", 1)

	l = openLog(t, serving, dir)
	var evs []trail.Event
	for i := range 50 {
		evs = append(evs, trail.Event{ID: fmt.Sprintf("r-%d", i), Stream: fmt.Sprintf("patient/%d", i%4),
			Type: "patient-record.read", Action: "R", Actor: trail.Actor{ID: "dr-1"}, Patient: fmt.Sprint(i % 4)})
	}
	rs, err := l.AppendBatch(ctx, evs)
	if err != nil {
		t.Fatalf("append as the serving role: %v", err)
	}
	if r, err := l.Append(ctx, evs[3]); err != nil || r != rs[3] {
		t.Fatalf("a repeated id as the serving role: %+v, %v; want the first receipt %+v", r, err, rs[3])
	}
	res, err := l.Query(ctx, trail.Query{Patient: "2", Limit: 100})
	if err != nil || len(res.Events) != 12 {
		t.Fatalf("query as the serving role: %d events, %v; want 12", len(res.Events), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Checkpoint().Size < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of the 50 events signed as the serving role: %+v", l.Checkpoint())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := l.InclusionProof(7, 50); err != nil {
		t.Fatalf("proof as the serving role: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}

	sconn, err := pgx.Connect(ctx, serving)
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close(ctx)
	for _, q := range []string{
		"UPDATE trail_events SET record = record WHERE idx = 0",
		"DELETE FROM trail_events WHERE idx = 49",
		"TRUNCATE trail_events",
		"UPDATE trail_tree SET hash = hash",
		"DELETE FROM trail_checkpoints",
		"UPDATE trail_log SET verifier_key = ''",
	} {
		_, err := sconn.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s as the serving role: %v, want permission denied (42501)", q, err)
		}
	}
	rep, err := postgres.Verify(ctx, owner, postgres.VerifyOptions{})
	if err != nil || rep.Events != 50 || rep.Checkpoints == 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
