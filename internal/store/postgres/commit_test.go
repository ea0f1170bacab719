package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/store/postgres"
)

// TestCommitFailureGivesNoReceipt: a batch whose session ends after Write
// and before its COMMIT (its backend terminated while its rows wait for a
// table lock) is not in the log and its caller gets ErrUnavailable, not a
// receipt, and the next batch
// follows on from the log as it is: the retry with the same id is stored
// once, at the index the failed batch would have taken.
func TestCommitFailureGivesNoReceipt(t *testing.T) {
	ctx := context.Background()
	url, dir := newDatabase(t)
	l := openLog(t, url, dir)
	defer l.Close(ctx)
	ev := func(i int) trail.Event {
		return trail.Event{ID: fmt.Sprintf("c-%d", i), Stream: "patient/1", Type: "patient-record.read",
			Action: "R", Actor: trail.Actor{ID: "dr-1"}, Patient: "1"}
	}
	for i := range 3 {
		if _, err := l.Append(ctx, ev(i)); err != nil {
			t.Fatal(err)
		}
	}

	blocker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Readers go on; the batch's INSERT waits.
	if _, err := tx.Exec(ctx, "LOCK TABLE trail_events IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   trail.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := l.Append(ctx, ev(3))
		done <- result{r, err}
	}()
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := blocker.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND wait_event = 'relation' AND pid <> pg_backend_pid()`).Scan(&pid)
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited for the table lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ok bool
	if err := blocker.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the batch's backend: %v, %v", ok, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if !errors.Is(res.err, trail.ErrUnavailable) {
			t.Fatalf("append whose COMMIT never ran: %+v, %v; want ErrUnavailable", res.r, res.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the append whose session was terminated never returned")
	}

	var n int
	if err := blocker.QueryRow(ctx, "SELECT count(*) FROM trail_events").Scan(&n); err != nil || n != 3 {
		t.Fatalf("events in the log after the failed COMMIT: %d, %v; want 3", n, err)
	}
	r, err := l.Append(ctx, ev(3))
	if err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if r.Index != 3 || r.StreamSeq != 4 {
		t.Fatalf("the retry: index %d, stream_seq %d; want 3 and 4 (the log as it is)", r.Index, r.StreamSeq)
	}
	if r2, err := l.Append(ctx, ev(3)); err != nil || r2 != r {
		t.Fatalf("the id again: %+v, %v; want %+v", r2, err, r)
	}
	if _, err := l.Append(ctx, ev(4)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := postgres.Verify(ctx, url, postgres.VerifyOptions{})
	if err != nil || rep.Events != 5 {
		t.Fatalf("verify: %+v, %v; want 5 events", rep, err)
	}
}
