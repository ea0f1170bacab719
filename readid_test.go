package trail_test

import (
	"context"
	"errors"
	"testing"

	"github.com/trailhq/trail"
)

// TestReadID: an event is found by its id, whether the client chose it or
// Trail assigned it, right after its receipt and after a restart; an id
// nobody stored, or one in the assigned form naming another event, is
// ErrNotFound.
func TestReadID(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := trail.OpenTest(t, dir, trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "a"}}
	given := ev
	given.ID = "client-chosen.1"
	var rs []trail.Receipt
	for _, e := range []trail.Event{ev, given, ev} {
		r, err := l.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	check := func(l *trail.Log) {
		t.Helper()
		for _, r := range rs {
			i, rec, err := l.ReadID(ctx, r.ID)
			if err != nil || i != r.Index || trail.LeafHash(rec) != r.LeafHash {
				t.Fatalf("ReadID(%q) = %d, %v; want index %d and its record", r.ID, i, err, r.Index)
			}
		}
		// Assigned form, but naming event 0 with another id; and unknown ids.
		other := []byte(rs[0].ID)
		other[0] ^= 1
		for _, id := range []string{string(other), "nobody", "", "bad id"} {
			if _, _, err := l.ReadID(ctx, id); !errors.Is(err, trail.ErrNotFound) {
				t.Errorf("ReadID(%q): %v, want ErrNotFound", id, err)
			}
		}
	}
	check(l)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err = trail.OpenTest(t, dir, trail.Config{}); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	check(l)
}
