package trail_test

// The engine holds events to the schema and its size limit: a refused event
// (alone, logged, or in a batch) says which field is wrong, and nothing of a
// batch holding it is stored. The schema's own cases are in package event.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func detailsOf(n int) json.RawMessage {
	const pre, post = `{"note":"`, `"}`
	return raw(pre + strings.Repeat("d", n-len(pre)-len(post)) + post)
}

// TestValidateEngine: the engine refuses invalid and oversized events,
// alone and in batches, and stores nothing of them.
func TestValidateEngine(t *testing.T) {
	ctx := context.Background()
	l, err := trail.OpenTest(t, t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	ok := trail.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "dr"}}
	if _, err := l.Append(ctx, ok); err != nil {
		t.Fatal(err)
	}
	size := l.Size()

	big := func(mod func(*trail.Event)) trail.Event {
		ev := ok
		mod(&ev)
		return ev
	}
	x := func(n int) string { return strings.Repeat("x", n) }
	tooLarge := []struct {
		name string
		ev   trail.Event
	}{
		{"several fields", big(func(e *trail.Event) {
			e.OutcomeDesc, e.Actor.Name, e.Actor.UserAgent, e.Patient, e.Purpose = x(15<<10), x(15<<10), x(15<<10), x(15<<10), x(5<<10)
		})},
		{"many entities", big(func(e *trail.Event) {
			for i := range 3000 {
				e.Entities = append(e.Entities, trail.Entity{Type: "Observation", ID: fmt.Sprint("obs/", i)})
			}
		})},
		{"details and fields", big(func(e *trail.Event) {
			e.Details = detailsOf(16 << 10)
			e.OutcomeDesc, e.Actor.Name, e.Actor.UserAgent = x(16<<10), x(16<<10), x(16<<10)
		})},
		{"one field over 64 KiB", big(func(e *trail.Event) { e.OutcomeDesc = x(65 << 10) })},
		{"one field far over 64 KiB", big(func(e *trail.Event) { e.Actor.Name = x(1 << 20) })},
	}
	for _, tc := range tooLarge {
		t.Run("too large: "+tc.name, func(t *testing.T) {
			if b, err := tc.ev.MarshalJSON(); err == nil && len(b) <= trail.MaxEventSize {
				t.Fatalf("test event is only %d bytes", len(b))
			}
			if _, err := l.Append(ctx, tc.ev); !errors.Is(err, trail.ErrTooLarge) {
				t.Errorf("Append: %v, want ErrTooLarge", err)
			}
			p := l.Log(tc.ev)
			if _, err := p.Wait(ctx); !errors.Is(err, trail.ErrTooLarge) {
				t.Errorf("Log: %v, want ErrTooLarge", err)
			}
			_, err := l.AppendBatch(ctx, []trail.Event{ok, tc.ev})
			var be *trail.BatchError
			if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, trail.ErrTooLarge) {
				t.Errorf("AppendBatch: %v, want a BatchError for event 1 matching ErrTooLarge", err)
			}
			if l.Size() != size {
				t.Fatalf("size %d after refusals, want %d", l.Size(), size)
			}
		})
	}

	t.Run("just under 64 KiB", func(t *testing.T) {
		ev := big(func(e *trail.Event) {
			e.OutcomeDesc, e.Actor.Name, e.Actor.UserAgent, e.Patient = x(15<<10), x(15<<10), x(15<<10), x(15<<10)
		})
		r, err := l.Append(ctx, ev)
		if err != nil {
			t.Fatalf("an event of about 60 KiB: %v", err)
		}
		rec, err := l.Read(r.Index)
		if err != nil || trail.LeafHash(rec) != r.LeafHash {
			t.Fatalf("Read(%d): %v", r.Index, err)
		}
		size = l.Size()
	})

	t.Run("invalid", func(t *testing.T) {
		for _, tc := range []struct {
			mod   func(*trail.Event)
			field string
		}{
			{func(e *trail.Event) { e.Stream = "trail/access" }, "stream"},
			{func(e *trail.Event) { e.Stream = "a/../b" }, "stream"},
			{func(e *trail.Event) { e.Action = "r" }, "action"},
			{func(e *trail.Event) { e.ID = strings.Repeat("i", 65) }, "id"},
			{func(e *trail.Event) { e.ID = "a:b" }, "id"},
			{func(e *trail.Event) { e.Details = raw(`[]`) }, "details"},
			{func(e *trail.Event) { e.Actor.ID = "" }, "actor.id"},
		} {
			ev := big(tc.mod)
			var ve *trail.ValidationError
			if _, err := l.Append(ctx, ev); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("Append of an event with a bad %s: %v", tc.field, err)
			}
			p := l.Log(ev)
			if _, err := p.Wait(ctx); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("Log of an event with a bad %s: %v", tc.field, err)
			}
			_, err := l.AppendBatch(ctx, []trail.Event{ok, ok, ev, ok})
			var be *trail.BatchError
			if !errors.As(err, &be) || be.Index != 2 || !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("AppendBatch with an event with a bad %s at 2: %v", tc.field, err)
			}
		}
		if l.Size() != size {
			t.Fatalf("size %d after refusals, want %d", l.Size(), size)
		}
	})
}

// TestValidateSizeAsSent: the 64 KiB limit counts the event as sent:
// exactly 64 KiB is accepted, by ParseEvent and by the engine, however
// much the stored record adds; one byte more is ErrTooLarge.
func TestValidateSizeAsSent(t *testing.T) {
	ctx := context.Background()
	l, err := trail.OpenTest(t, t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	for _, tc := range []struct {
		name string
		json func(pad int) string // an event whose JSON grows with pad
	}{
		{"no id, no outcome, no time", func(pad int) string {
			return `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"dr"},"outcome_desc":"` + strings.Repeat("x", pad) + `"}`
		}},
		{"escapes", func(pad int) string {
			return `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"dr"},"outcome_desc":"` + strings.Repeat(`\b`, pad/2) + strings.Repeat("x", pad%2) + `"}`
		}},
		{"details", func(pad int) string {
			return `{"id":"x","stream":"patient/1","type":"t","action":"R","actor":{"id":"dr"},"patient":"p` + strings.Repeat("p", pad) + `","details":` + string(detailsOf(16<<10)) + `}`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fixed := len(tc.json(0))
			exact := []byte(tc.json(trail.MaxEventSize - fixed))
			over := []byte(tc.json(trail.MaxEventSize - fixed + 1))
			if len(exact) != trail.MaxEventSize || len(over) != trail.MaxEventSize+1 {
				t.Fatalf("test events are %d and %d bytes", len(exact), len(over))
			}
			ev, err := trail.ParseEvent(exact)
			if err != nil {
				t.Fatalf("ParseEvent of exactly 64 KiB: %v", err)
			}
			r, err := l.Append(ctx, ev)
			if err != nil {
				t.Fatalf("Append of exactly 64 KiB as sent: %v", err)
			}
			rec, err := l.Read(r.Index)
			if err != nil || len(rec) <= trail.MaxEventSize-64 || len(rec) > trail.MaxStoredSize {
				t.Fatalf("stored record of %d bytes (%v); want about 64 KiB and at most %d", len(rec), err, trail.MaxStoredSize)
			}
			if b, err := ev.MarshalJSON(); err != nil || len(b) > trail.MaxEventSize {
				t.Fatalf("MarshalJSON of an event sent in 64 KiB is %d bytes (%v)", len(b), err)
			}
			if _, err := trail.ParseEvent(over); !errors.Is(err, trail.ErrTooLarge) {
				t.Fatalf("ParseEvent of 64 KiB + 1: %v, want ErrTooLarge", err)
			}
		})
	}
	// A Go event is measured by its MarshalJSON encoding.
	ev := trail.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "dr"}}
	b, _ := ev.MarshalJSON()
	ev.OutcomeDesc = strings.Repeat("x", trail.MaxEventSize-len(b)-len(`,"outcome_desc":""`))
	if b, _ := ev.MarshalJSON(); len(b) != trail.MaxEventSize {
		t.Fatalf("Go event is %d bytes", len(b))
	}
	if _, err := l.Append(ctx, ev); err != nil {
		t.Fatalf("Append of a Go event of exactly 64 KiB: %v", err)
	}
	ev.OutcomeDesc += "x"
	if _, err := l.Append(ctx, ev); !errors.Is(err, trail.ErrTooLarge) {
		t.Fatalf("Append of a Go event of 64 KiB + 1: %v, want ErrTooLarge", err)
	}
}
