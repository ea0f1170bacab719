package trail_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// TestSetTimeText: a time given as text is stored exactly as written, as a
// client's JSON time is; setting Time to another instant afterwards stores
// that instant instead; text that is not RFC 3339 is refused for time.
func TestSetTimeText(t *testing.T) {
	ctx := context.Background()
	l, err := trail.Open(t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	base := trail.Event{Stream: "p/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "a"}}
	stored := func(ev trail.Event) []byte {
		t.Helper()
		r, err := l.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}

	ev := base
	if err := ev.SetTimeText("2026-12-07T08:03:00.500+00:00"); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 7, 8, 3, 0, 5e8, time.UTC); !ev.Time.Equal(want) {
		t.Fatalf("Time = %v, want %v", ev.Time, want)
	}
	if rec := stored(ev); !bytes.Contains(rec, []byte(`"time":"2026-12-07T08:03:00.500+00:00"`)) {
		t.Fatalf("stored %s: want the time as written", rec)
	}
	if b, _ := ev.MarshalJSON(); !bytes.Contains(b, []byte(`"time":"2026-12-07T08:03:00.500+00:00"`)) {
		t.Fatalf("MarshalJSON %s: want the time as written", b)
	}

	ev.Time = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if rec := stored(ev); !bytes.Contains(rec, []byte(`"time":"2025-01-02T03:04:05Z"`)) {
		t.Fatalf("stored %s: want the instant set after the text", rec)
	}

	for _, bad := range []string{"", "2026-12-07", "2026-12-07T08:03:00", "2026-12-07 08:03:00Z", "2026-12-07T08:03:00,5Z", `2026-12-07T08:03:00Z"`, "2026-12-07T8:03:00Z", "2026-12-07T8:03:00.5+01:00"} {
		e := base
		var ve *trail.ValidationError
		if err := e.SetTimeText(bad); !errors.As(err, &ve) || ve.Field != "time" {
			t.Errorf("SetTimeText(%q) = %v, want a problem with time", bad, err)
		}
		if !e.Time.IsZero() {
			t.Errorf("SetTimeText(%q) failed but set Time %v", bad, e.Time)
		}
	}
}
