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
	t.Cleanup(func() { cancel(); resp.Body.Close() })
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

func TestTail(t *testing.T) {
	t.Parallel()
	s := start(t)
	for i := range 3 {
		s.appendOne(t, event(fmt.Sprintf("old-%d", i), "patient/a"))
	}

	t.Run("new events only", func(t *testing.T) {
		c := s.openTail(t, "")
		s.appendBatch(t, event("n-1", "patient/a"), event("n-2", "patient/b"))
		r := s.appendOne(t, event("n-3", "patient/b"))
		s.wantEvents(t, c, 3, 4, 5)
		if r.Index != 5 {
			t.Errorf("receipt index %d, want 5", r.Index)
		}
	})
	t.Run("after replays first", func(t *testing.T) {
		c := s.openTail(t, "?after=1")
		s.wantEvents(t, c, 2, 3, 4, 5)
		s.appendOne(t, event("n-4", "patient/a"))
		s.wantEvents(t, c, 6)
	})
	t.Run("after=-1 replays from the first event", func(t *testing.T) {
		c := s.openTail(t, "?after=-1")
		s.wantEvents(t, c, 0, 1, 2, 3, 4, 5, 6)
	})
	t.Run("stream", func(t *testing.T) {
		c := s.openTail(t, "?stream=patient/b")
		for i, st := range []string{"patient/a", "patient/b", "patient/ab", "patient/b/1", "patient/b"} {
			s.appendOne(t, event(fmt.Sprintf("st-%d", i), st))
		}
		s.wantEvents(t, c, 8, 11)
	})
	t.Run("stream and after", func(t *testing.T) {
		c := s.openTail(t, "?stream=patient/a&after=0")
		s.wantEvents(t, c, 1, 2, 3, 6, 7)
		s.appendOne(t, event("sa-1", "patient/b"))
		s.appendOne(t, event("sa-2", "patient/a"))
		s.wantEvents(t, c, 13)
	})
	t.Run("every event once, in order, under concurrent appends", func(t *testing.T) {
		c := s.openTail(t, "")
		from := s.l.Size()
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
		var want []uint64
		for i := from; i < from+60; i++ {
			want = append(want, i)
		}
		s.wantEvents(t, c, want...)
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
			wantProblem(t, s.do(t, http.MethodGet, "/v1/tail"+tt.query, tt.token, nil), tt.status)
		})
	}
}

// TestTailShutdown: Shutdown ends live tails, so that the HTTP server can
// stop.
func TestTailShutdown(t *testing.T) {
	t.Parallel()
	s := start(t)
	all := s.openTail(t, "")
	one := s.openTail(t, "?stream=patient/quiet")
	r := s.appendOne(t, event("before-stop", "patient/1"))
	s.wantEvents(t, all, r.Index)

	s.srv.Shutdown()
	for name, c := range map[string]*tailConn{"tail": all, "tail?stream=": one} {
		select {
		case e, ok := <-c.events:
			if ok {
				t.Errorf("%s: event %v after Shutdown, want the end", name, e)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still open 5s after Shutdown", name)
		}
	}
	// The engine still works; only live tails end.
	if _, err := s.l.Append(context.Background(), event("after-stop", "patient/1")); err != nil {
		t.Errorf("engine append after Shutdown: %v", err)
	}
}
