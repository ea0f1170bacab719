package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/pgtest"
	"github.com/trailhq/trail/internal/store/postgres"
)

// TestBatchesInsertedAndCopied: batches small enough to be inserted from
// arrays and large enough to be copied follow on from each other, and the
// log verifies.
func TestBatchesInsertedAndCopied(t *testing.T) {
	defer postgres.SetCopyAbove(100)()
	ctx := context.Background()
	url, dir := newDatabase(t)
	l := openLog(t, url, dir)
	defer l.Close(ctx)
	next := 0
	for _, n := range []int{1, 150, 7, 101, 100, 3} {
		evs := make([]trail.Event, n)
		for i := range evs {
			evs[i] = trail.Event{ID: fmt.Sprintf("b-%d", next), Stream: fmt.Sprintf("patient/%d", next%5),
				Type: "patient-record.read", Action: "R", Actor: trail.Actor{ID: "dr-1"}}
			if next%2 == 0 {
				evs[i].Patient = fmt.Sprint(next % 5)
			}
			next++
		}
		rs, err := l.AppendBatch(ctx, evs)
		if err != nil {
			t.Fatalf("a batch of %d: %v", n, err)
		}
		if first := uint64(next - n); rs[0].Index != first || rs[n-1].Index != first+uint64(n-1) {
			t.Fatalf("a batch of %d: indexes %d..%d, want from %d", n, rs[0].Index, rs[n-1].Index, first)
		}
	}
	if r, err := l.Append(ctx, trail.Event{ID: "b-120", Stream: "patient/0", Type: "patient-record.read",
		Action: "R", Actor: trail.Actor{ID: "dr-1"}, Patient: "0"}); err != nil || r.Index != 120 {
		t.Fatalf("a copied event's id again: %+v, %v; want index 120", r, err)
	}
	res, err := l.Query(ctx, trail.Query{Patient: "3", Limit: 1000})
	if err != nil || len(res.Events) != 36 {
		t.Fatalf("query: %d events, %v; want 36", len(res.Events), err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := postgres.Verify(ctx, url, postgres.VerifyOptions{})
	if err != nil || rep.Events != uint64(next) {
		t.Fatalf("verify: %+v, %v; want %d events", rep, err, next)
	}
}

// TestSessionSettings: the store's connections commit synchronously (no
// receipt before the WAL is flushed, whatever the database's defaults) and
// plan every statement for its parameters — a generic plan made while the
// log was small looked ids up with a sequential scan for as long as the
// process ran (4k events/s instead of 10k at 64 producers over HTTP).
func TestSessionSettings(t *testing.T) {
	ctx := context.Background()
	url, dir := newDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var db string
	conn.QueryRow(ctx, "SELECT current_database()").Scan(&db)
	// Defaults a careless administrator might set, which the store must override.
	for _, q := range []string{"ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " SET synchronous_commit = off",
		"ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " SET plan_cache_mode = force_generic_plan"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	signer, vkey, err := pgtest.KeyFor(dir, "trail/settings-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, postgres.Options{URL: url, Signer: signer, VerifierKey: vkey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, want := range map[string]string{"synchronous_commit": "on", "plan_cache_mode": "force_custom_plan"} {
		if got, err := st.Setting(ctx, name); err != nil || got != want {
			t.Errorf("%s on the store's connections: %q, %v; want %q", name, got, err, want)
		}
	}
}
