package trail

import (
	"context"
	"crypto/rand"
	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/store"
	"strings"
	"testing"
	"time"
)

// TestSaltedLeafHashes: two events with the same content, even stored at
// the same recorded time with the same index in two logs, get different
// salts and so different leaf hashes; the salt is 32 lower-case hex digits
// after recorded, and ParseStored and parseHeader read it.
func TestSaltedLeafHashes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ev := Event{ID: "fixed-id", Stream: "patient/1", Type: "patient-record.read", Action: "R", Actor: Actor{ID: "dr"}}
	seen := map[Hash]bool{}
	salts := map[string]bool{}
	for i := range 3 {
		l := openTest(t, t.TempDir(), Config{Now: clock})
		r, err := l.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatal(err)
		}
		st, err := ParseStored(rec)
		if err != nil {
			t.Fatalf("ParseStored(%s): %v", rec, err)
		}
		h, err := event.ParseHeader(rec)
		if err != nil || h.Salt != st.Salt {
			t.Fatalf("ParseHeader(%s) = salt %q, %v; ParseStored salt %q", rec, h.Salt, err, st.Salt)
		}
		// ParseHeader refuses a salt that is not 32 lower-case hex digits.
		if !strings.Contains(string(rec), `"recorded":"`+st.Recorded+`","salt":"`+st.Salt+`",`) {
			t.Fatalf("record %d of log %d: salt %q not after recorded: %s", r.Index, i, st.Salt, rec)
		}
		if seen[r.LeafHash] || salts[st.Salt] {
			t.Fatalf("log %d: the same event got a leaf hash or salt already seen: %s", i, rec)
		}
		seen[r.LeafHash], salts[st.Salt] = true, true
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSaltsDiffer: the salts of many records in one log are all different
// (they come from a buffer refilled from crypto/rand).
func TestSaltsDiffer(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), Config{})
	defer l.Close(ctx)
	evs := make([]Event, 2*saltBlock/saltBytes+3)
	for i := range evs {
		evs[i] = Event{Stream: "patient/1", Type: "t", Action: "R", Actor: Actor{ID: "dr"}}
	}
	rs, err := l.AppendBatch(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	salts := map[string]bool{}
	for _, r := range rs {
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatal(err)
		}
		h, err := event.ParseHeader(rec)
		if err != nil {
			t.Fatal(err)
		}
		if salts[h.Salt] {
			t.Fatalf("salt %s used twice", h.Salt)
		}
		salts[h.Salt] = true
	}
}

// TestAssignedIDsAreValid: the ids Trail assigns (UUIDv7) pass the id rule
// clients are held to, at every index.
func TestAssignedIDsAreValid(t *testing.T) {
	now := time.Now()
	for _, i := range []uint64{0, 1, 1 << 32, 1<<62 - 1} {
		id := store.GeneratedID(now, i)
		if !event.ValidID(id) {
			t.Fatalf("store.GeneratedID(%d) = %q: not a valid event id", i, id)
		}
		if got, ok := store.DecodeGeneratedID(id); !ok || got != i {
			t.Fatalf("store.DecodeGeneratedID(%q) = %d, %v; want %d", id, got, ok, i)
		}
	}
}

// BenchmarkSalt compares the sequencer's salts, taken from a buffer refilled
// 256 at a time, with a call to crypto/rand per record.
func BenchmarkSalt(b *testing.B) {
	b.Run("buffered", func(b *testing.B) {
		s := &sequencer{}
		for b.Loop() {
			s.salt()
		}
	})
	b.Run("per-record", func(b *testing.B) {
		var salt [saltBytes]byte
		for b.Loop() {
			rand.Read(salt[:])
		}
	})
}
