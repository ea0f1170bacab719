package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// TestAppendListsEveryProblem: a refused event's problem+json lists every
// problem in errors, each with its field (a dotted path) and detail, for a
// single append and for a batch line (with line), and stores nothing.
func TestAppendListsEveryProblem(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.appendOne(t, event("seed", "patient/1"))
	good := string(encode(t, event("", "patient/5")))
	bad := `{"type":"t","action":"read","actor":{"id":"a","badge":7},"foo":1,"details":{"n":"\u0000"}}`
	want := []string{"action", "actor.badge", "details.n", "foo", "stream"}

	check := func(t *testing.T, p problemDoc) {
		t.Helper()
		var fields []string
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
			if e.Detail == "" || !strings.Contains(p.Detail, e.Field+": "+e.Detail) {
				t.Errorf("errors entry %+v is not in the detail %q", e, p.Detail)
			}
		}
		slices.Sort(fields)
		if !slices.Equal(fields, want) {
			t.Errorf("errors name %v, want %v: %+v", fields, want, p)
		}
	}
	t.Run("single", func(t *testing.T) {
		size := s.l.Size()
		check(t, wantProblem(t, s.post(t, "/v1/events", []byte(bad)), http.StatusBadRequest, "foo", "stream", "action"))
		s.wantUnchanged(t, size)
	})
	t.Run("batch", func(t *testing.T) {
		size := s.l.Size()
		p := wantProblem(t, s.post(t, "/v1/batch", []byte(good+"\n\n"+bad+"\n"+good)), http.StatusBadRequest, "line 3")
		if p.Line != 3 {
			t.Errorf("line %d, want 3", p.Line)
		}
		check(t, p)
		s.wantUnchanged(t, size)
	})
	t.Run("found by the engine", func(t *testing.T) {
		// This event decodes; the engine's validation finds the problems.
		size := s.l.Size()
		p := wantProblem(t, s.post(t, "/v1/events", []byte(`{"id":"a_b","stream":"p//1","type":"t","action":"R","actor":{"id":"a"},"entities":[{"name":"x"}]}`)), http.StatusBadRequest)
		var fields []string
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
		}
		if !slices.Equal(fields, []string{"id", "stream", "entities[0].id"}) {
			t.Errorf("errors name %v, want id, stream, entities[0].id: %+v", fields, p)
		}
		p = wantProblem(t, s.post(t, "/v1/batch", []byte(good+"\n"+`{"stream":"p/1","type":"t","action":"X","actor":{"id":""}}`)), http.StatusBadRequest, "line 2")
		if p.Line != 2 || len(p.Errors) != 2 {
			t.Errorf("batch: line %d, errors %+v; want line 2 with action and actor.id", p.Line, p.Errors)
		}
		s.wantUnchanged(t, size)
	})
}

// TestAppendSizeAsSent: the 64 KiB limit counts the event as sent, however
// much the server adds (id, outcome, time, salt…): exactly 64 KiB is stored,
// alone (201) or as a batch line (200); one byte more is 413 alone and 400
// naming the line in a batch.
func TestAppendSizeAsSent(t *testing.T) {
	t.Parallel()
	s := start(t)
	sized := func(n int) []byte {
		const head, tail = `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"dr"},"outcome_desc":"`, `"}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	exact, over := sized(trail.MaxEventSize), sized(trail.MaxEventSize+1)
	good := string(encode(t, event("", "patient/5")))

	r := wantReceipt(t, s.post(t, "/v1/events", exact), http.StatusCreated)
	if rec := s.stored(t, r.Index); len(rec) <= trail.MaxEventSize || len(rec) > trail.MaxStoredSize {
		t.Errorf("stored record of %d bytes; want over 64 KiB (the server's fields) and at most %d", len(rec), trail.MaxStoredSize)
	}
	wantReceipt(t, s.post(t, "/v1/events", append(append([]byte(" \n"), sized(trail.MaxEventSize-1)...), "\r\n"...)), http.StatusCreated)
	if rcs := wantReceipts(t, s.post(t, "/v1/batch", []byte(good+"\n"+string(exact)+"\n"))); len(rcs) != 2 {
		t.Errorf("batch with a line of exactly 64 KiB: %d receipts", len(rcs))
	}

	size := s.l.Size()
	wantProblem(t, s.post(t, "/v1/events", over), http.StatusRequestEntityTooLarge, "64 KiB")
	p := wantProblem(t, s.post(t, "/v1/batch", []byte(good+"\n"+string(over)+"\n")), http.StatusBadRequest, "line 2", "64 KiB")
	if p.Line != 2 {
		t.Errorf("line %d, want 2", p.Line)
	}
	s.wantUnchanged(t, size)
}
