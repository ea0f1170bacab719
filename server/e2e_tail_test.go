package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
)

// sse is one server-sent event.
type sse struct {
	id   string
	data string
}

// tailConn is an open GET /v1/tail.
type tailConn struct {
	events chan sse // closed when the stream ends
	mu     sync.Mutex
	err    error // why the stream ended
}

// openTail connects to /v1/tail with the query; once it returns, the server
// has chosen where the tail starts.
func (s *testServer) openTail(t testing.TB, query string) *tailConn {
	t.Helper()
	return s.openTailAs(t, string(s.tok), query)
}

// openTailAs is openTail with a token.
func (s *testServer) openTailAs(t testing.TB, token, query string) *tailConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ts.URL+"/v1/tail"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("tail %s: %v", query, err)
	}
	t.Cleanup(func() {
		// The tail ends, and is recorded once more, after the client hung
		// up: wait for that record, so that it falls in no later window.
		live := s.srv.LiveTails()
		cancel()
		resp.Body.Close()
		deadline := time.Now().Add(10 * time.Second)
		for live > 0 && s.srv.LiveTails() >= live && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	})
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("tail %s: status %d: %s", query, resp.StatusCode, b)
	}
	if mt := mediaType(resp.Header); mt != "text/event-stream" {
		t.Errorf("tail Content-Type %q, want text/event-stream", mt)
	}
	c := &tailConn{events: make(chan sse, 10000)}
	go c.read(resp.Body)
	return c
}

// waitTailsEnded waits until no tail is live, that is until every tail's
// closing record is stored.
func (s *testServer) waitTailsEnded(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.srv.LiveTails() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d tails still live 10s after their clients went away", s.srv.LiveTails())
		}
	}
}

// read parses the event stream (the subset the server writes: id and data
// fields, comments, blank-line separators).
func (c *tailConn) read(body io.Reader) {
	defer close(c.events)
	br := bufio.NewReader(body)
	var cur sse
	fields := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if fields > 0 {
				c.events <- cur
			}
			cur, fields = sse{}, 0
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			cur.id = value
		case "data":
			if fields > 0 && cur.data != "" {
				cur.data += "\n"
			}
			cur.data += value
		}
		fields++
	}
}

// next returns the next event, failing the test when none comes in time.
func (c *tailConn) next(t testing.TB) sse {
	t.Helper()
	select {
	case e, ok := <-c.events:
		if !ok {
			t.Fatalf("tail ended: %v", c.error())
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("no tail event in 10s")
	}
	return sse{}
}

func (c *tailConn) error() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// wantEvents reads len(want) events and checks that they are the events at
// the indexes, each the stored bytes.
func (s *testServer) wantEvents(t testing.TB, c *tailConn, want ...uint64) {
	t.Helper()
	for _, i := range want {
		e := c.next(t)
		if e.id != strconv.FormatUint(i, 10) {
			t.Fatalf("tail event id %q, want %d (data %s)", e.id, i, truncate([]byte(e.data), 200))
		}
		if rec := s.stored(t, i); e.data != string(rec) {
			t.Errorf("tail event %d data\n%s\nwant the stored bytes\n%s", i, e.data, rec)
		}
	}
}

// TestTail reads as the admin, who may read trail/: a tail carries the
// records of reads (its own included, stored after the tail began) like any
// other event.
func TestTail(t *testing.T) {
	t.Parallel()
	s := start(t, withTailRecordEvery(time.Hour))
	// span returns the indexes from from to to, to excluded.
	span := func(from, to uint64) []uint64 {
		var out []uint64
		for i := from; i < to; i++ {
			out = append(out, i)
		}
		return out
	}
	var sent []trail.Receipt // every event appended, in order
	add := func(t *testing.T, evs ...trail.Event) []trail.Receipt {
		t.Helper()
		var rcs []trail.Receipt
		if len(evs) == 1 {
			rcs = []trail.Receipt{s.appendOne(t, evs[0])}
		} else {
			rcs = s.appendBatch(t, evs...)
		}
		sent = append(sent, rcs...)
		return rcs
	}
	// in returns the indexes of the events appended to stream after index
	// after.
	in := func(stream string, after uint64) []uint64 {
		var out []uint64
		for _, r := range sent {
			if r.Stream == stream && r.Index > after {
				out = append(out, r.Index)
			}
		}
		return out
	}
	// tailRead checks that the tail just opened is recorded from index from
	// on with its parameters, and returns the record's index.
	tailRead := func(t *testing.T, from uint64, params map[string]string) uint64 {
		t.Helper()
		rec := s.wantRead(t, from, "admin", "success", "GET /v1/tail")
		if d := cmp.Diff(params, rec.Details.Params, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("tail record params (-want +got):\n%s", d)
		}
		return rec.Index
	}
	var old []trail.Receipt
	for i := range 3 {
		old = append(old, add(t, event(fmt.Sprintf("old-%d", i), "patient/a"))...)
	}

	t.Run("new events only", func(t *testing.T) {
		before := s.l.Size()
		c := s.openTail(t, "")
		own := tailRead(t, before, nil)
		b := add(t, event("n-1", "patient/a"), event("n-2", "patient/b"))
		r := add(t, event("n-3", "patient/b"))
		s.wantEvents(t, c, own, b[0].Index, b[1].Index, r[0].Index)
	})
	t.Run("after replays first", func(t *testing.T) {
		before := s.l.Size()
		c := s.openTail(t, fmt.Sprintf("?after=%d", old[1].Index))
		own := tailRead(t, before, map[string]string{"after": strconv.FormatUint(old[1].Index, 10)})
		s.wantEvents(t, c, span(old[1].Index+1, own+1)...)
		r := add(t, event("n-4", "patient/a"))
		s.wantEvents(t, c, r[0].Index)
	})
	t.Run("after=-1 replays from the first event", func(t *testing.T) {
		before := s.l.Size()
		c := s.openTail(t, "?after=-1")
		own := tailRead(t, before, map[string]string{"after": "-1"})
		s.wantEvents(t, c, span(0, own+1)...)
	})
	t.Run("stream", func(t *testing.T) {
		before := s.l.Size()
		c := s.openTail(t, "?stream=patient/b")
		tailRead(t, before, map[string]string{"stream": "patient/b"})
		after := s.l.Size()
		for i, st := range []string{"patient/a", "patient/b", "patient/ab", "patient/b/1", "patient/b"} {
			add(t, event(fmt.Sprintf("st-%d", i), st))
		}
		want := in("patient/b", after)
		if len(want) != 2 {
			t.Fatalf("%d events appended to patient/b, want 2", len(want))
		}
		s.wantEvents(t, c, want...)
	})
	t.Run("stream and after", func(t *testing.T) {
		before := s.l.Size()
		c := s.openTail(t, fmt.Sprintf("?stream=patient/a&after=%d", old[0].Index))
		tailRead(t, before, map[string]string{"stream": "patient/a", "after": strconv.FormatUint(old[0].Index, 10)})
		s.wantEvents(t, c, in("patient/a", old[0].Index)...)
		add(t, event("sa-1", "patient/b"))
		r := add(t, event("sa-2", "patient/a"))
		s.wantEvents(t, c, r[0].Index)
	})
	t.Run("every event once, in order, under concurrent appends", func(t *testing.T) {
		before := s.l.Size()
		c := s.openTail(t, "")
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for k := range 15 {
					r, err := s.try(http.MethodPost, "/v1/events", admin, encode(t, event(fmt.Sprintf("cc-%d-%d", w, k), fmt.Sprintf("ward/%d", w))))
					if err != nil || r.Status != http.StatusCreated {
						t.Errorf("append: %v %v", r, err)
						return
					}
				}
			})
		}
		wg.Wait()
		// The tail's own record, then the 60 events.
		end := s.l.Size()
		if end-before != 61 {
			t.Errorf("log grew by %d, want the tail's record and 60 events", end-before)
		}
		tailRead(t, before, nil)
		s.wantEvents(t, c, span(before, end)...)
	})

	t.Run("after the largest index replays nothing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.ts.URL+"/v1/tail?after=18446744073709551615", nil)
		req.Header.Set("Authorization", "Bearer "+string(s.tok))
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			return // refusing a cursor past every index is fine too
		}
		c := &tailConn{events: make(chan sse, 10000)}
		c.read(resp.Body) // until the context ends
		for e := range c.events {
			t.Errorf("after=18446744073709551615 sent event %s: no index is after it", e.id)
			break
		}
		s.waitTailsEnded(t)
	})

	for _, tt := range []struct {
		query  string
		token  string
		status int
	}{
		{"?after=x", admin, 400},
		{"?after=-2", admin, 400},
		{"?stream=bad%20name", admin, 400},
		{"?stream=trail/../x", admin, 400},
		{"?since=2026-01-01T00:00:00Z", admin, 400},
		{"", "", 401},
	} {
		t.Run("refused "+tt.query, func(t *testing.T) {
			size := s.l.Size()
			wantProblem(t, s.do(t, http.MethodGet, "/v1/tail"+tt.query, tt.token, nil), tt.status)
			s.wantUnchanged(t, size) // 400s and 401s are not recorded
		})
	}
}

// TestTailShutdown: Shutdown ends live tails, so that the HTTP server can
// stop.
func TestTailShutdown(t *testing.T) {
	t.Parallel()
	s := start(t)
	before := s.l.Size()
	all := s.openTail(t, "")
	one := s.openTail(t, "?stream=patient/quiet")
	r := s.appendOne(t, event("before-stop", "patient/1"))
	// The admin's tail carries the records of both tails, then the event.
	var want []uint64
	for _, rec := range s.readsFrom(t, before) {
		want = append(want, rec.Index)
	}
	if len(want) != 2 {
		t.Fatalf("%d read records, want one for each tail", len(want))
	}
	s.wantEvents(t, all, append(want, r.Index)...)

	s.srv.Shutdown()
	for name, c := range map[string]*tailConn{"tail": all, "tail?stream=": one} {
		deadline := time.After(5 * time.Second)
	drain:
		for {
			select {
			case e, ok := <-c.events:
				if !ok {
					break drain
				}
				// The other tail's closing record may be stored while
				// this one ends, and the admin may see it; nothing else.
				if name != "tail" || !strings.Contains(e.data, `"stream":"trail/access"`) || !strings.Contains(e.data, `"endpoint":"GET /v1/tail"`) {
					t.Errorf("%s: event %v after Shutdown, want the end", name, e)
				}
			case <-deadline:
				t.Fatalf("%s: still open 5s after Shutdown", name)
			}
		}
	}
	// The engine still works; only live tails end.
	if _, err := s.l.Append(context.Background(), event("after-stop", "patient/1")); err != nil {
		t.Errorf("engine append after Shutdown: %v", err)
	}
}

// TestTailFilters: a tail takes the filters of GET /v1/events (patient,
// actor, type, action, outcome) and sends only the events matching them
// all; a bad filter is refused with 400 before anything is recorded.
func TestTailFilters(t *testing.T) {
	t.Parallel()
	s := start(t, withTailRecordEvery(time.Hour))
	c := s.openTail(t, "?patient=123&actor=dr-house&type=patient-record.update&action=U&outcome=minor-failure")
	mk := func(id, patient, actor, typ, action, outcome string) trail.Event {
		e := event(id, "patient/"+patient)
		e.Patient, e.Actor.ID, e.Type, e.Action, e.Outcome = patient, actor, typ, action, outcome
		return e
	}
	rcs := s.appendBatch(t,
		mk("f-1", "123", "dr-house", "patient-record.update", "U", "minor-failure"),
		mk("f-2", "456", "dr-house", "patient-record.update", "U", "minor-failure"),
		mk("f-3", "123", "dr-cuddy", "patient-record.update", "U", "minor-failure"),
		mk("f-4", "123", "dr-house", "patient-record.read", "U", "minor-failure"),
		mk("f-5", "123", "dr-house", "patient-record.update", "R", "minor-failure"),
		mk("f-6", "123", "dr-house", "patient-record.update", "U", "success"),
		mk("f-7", "123", "dr-house", "patient-record.update", "U", "minor-failure"))
	s.wantEvents(t, c, rcs[0].Index, rcs[6].Index)
	for _, q := range []string{"?action=X", "?outcome=fine", "?patient=", "?since=2026-01-01T00:00:00Z"} {
		if r := s.get(t, "/v1/tail"+q); r.Status != http.StatusBadRequest {
			t.Errorf("tail%s: %s; want 400", q, r)
		}
	}
}
