package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/store/postgres"
)

// TestTwoProcessesCatchUp: two engines on one database append in turn to
// the same streams, so each batch of one follows batches of the other. Each
// takes in what the other appended (the heads of the streams it moved, the
// tree's border grown by its leaves) instead of reading the log afresh; the
// log verifies — every stream's stream_seq runs without a gap, every prev
// is the stream's previous leaf — and the tree is the one the records make.
// With more than the catch-up bound appended by the other in between, the
// engine reads the log afresh, with the same result.
func TestTwoProcessesCatchUp(t *testing.T) {
	ctx := context.Background()
	url, dir := newDatabase(t)
	a := openLog(t, url, dir)
	b := openLog(t, url, dir)
	n := 0
	appendTo := func(l *trail.Log, k int) {
		t.Helper()
		evs := make([]trail.Event, k)
		for i := range evs {
			evs[i] = trail.Event{ID: fmt.Sprintf("e-%d", n), Stream: fmt.Sprintf("patient/%d", n%7),
				Type: "patient-record.read", Action: "R", Actor: trail.Actor{ID: "dr-1"}}
			n++
		}
		rs, err := l.AppendBatch(ctx, evs)
		if err != nil {
			t.Fatalf("append %d: %v", k, err)
		}
		if rs[k-1].Index != uint64(n-1) {
			t.Fatalf("the last of %d events at %d, want %d", k, rs[k-1].Index, n-1)
		}
	}
	for round := range 30 {
		appendTo(a, 1+round%4)
		appendTo(b, 1+round%3)
		appendTo(b, 2)
	}
	appendTo(a, 5000) // more than Begin reads to catch up
	appendTo(b, 3)
	appendTo(a, 3)
	for _, l := range []*trail.Log{a, b} {
		h, err := l.StreamHead(ctx, "patient/3")
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64((n-1-3)/7 + 1); h.Length != want {
			t.Errorf("patient/3's head: length %d, want %d", h.Length, want)
		}
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := postgres.Verify(ctx, url, postgres.VerifyOptions{})
	if err != nil || rep.Events != uint64(n) {
		t.Fatalf("verify: %+v, %v; want %d events", rep, err, n)
	}
}
