package server_test

// A record forged on disk is never served (DESIGN.md, Hardening: "Integrity
// on read"; issue 8, "A forged record is served as genuine"): with the
// server stopped, an event's bytes are changed and its frame checksum fixed;
// after a restart every read that would carry it (by index, by query, its
// proof, a tail) answers 500 or ends, is logged naming the index and counted
// in trail_integrity_failures_total, while appends and other reads go on.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/tamper"
	"github.com/trailhq/trail/server"
)

// forgeOnDisk changes one letter of event i's type in dir's log and fixes
// the frame checksum, as someone with the disk but not the key would.
func forgeOnDisk(t *testing.T, dir string, i uint64) {
	t.Helper()
	if _, err := tamper.Record(vfs.Default, dir, i); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveDir serves the engine in dir until the test ends.
func serveDir(t *testing.T, dir string, logs *syncBuffer) *testServer {
	t.Helper()
	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	tok, _, err := server.EnsureAdminToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(l, server.Config{AdminToken: tok, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(checkAPI(t, srv.Handler()))
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Shutdown)
	return &testServer{dir: dir, l: l, srv: srv, ts: ts, tok: tok, client: ts.Client()}
}

func TestForgedRecordIsNotServed(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, err := l.Append(ctx, event(fmt.Sprintf("id-%d", i), fmt.Sprintf("patient/%d", i%3))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	const forged = 13 // patient/1
	forgeOnDisk(t, dir, forged)

	var logs syncBuffer
	s := serveDir(t, dir, &logs)
	path := fmt.Sprint("/v1/events/", forged)
	wantProblem(t, s.get(t, path), http.StatusInternalServerError, fmt.Sprint("event ", forged))
	wantProblem(t, s.get(t, "/v1/events?stream=patient/1"), http.StatusInternalServerError, fmt.Sprint("event ", forged))
	wantProblem(t, s.get(t, "/v1/events?limit=1000"), http.StatusInternalServerError, fmt.Sprint("event ", forged))
	wantProblem(t, s.get(t, path+"/proof"), http.StatusInternalServerError, fmt.Sprint("event ", forged))

	// A tail replaying from the start ends before the forged event.
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(tctx, http.MethodGet, s.ts.URL+"/v1/tail?after=-1", nil)
	req.Header.Set("Authorization", "Bearer "+string(s.tok))
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	resp.Body.Close()
	if tctx.Err() != nil || len(ids) != forged {
		t.Errorf("tail from the start: sent ids %v (ended by timeout: %v); want 0-%d and the end of the stream", ids, tctx.Err() != nil, forged-1)
	}

	// The rest of the log is served and appends go on.
	if r := s.get(t, "/v1/events/12"); r.Status != http.StatusOK {
		t.Errorf("GET /v1/events/12 beside the forged event: %v", r)
	}
	if r := s.get(t, "/v1/events?stream=patient/0"); r.Status != http.StatusOK {
		t.Errorf("query of another stream: %v", r)
	}
	rc := s.appendOne(t, event("after-forgery", "patient/1"))
	if r := s.get(t, fmt.Sprint("/v1/events/", rc.Index)); r.Status != http.StatusOK {
		t.Errorf("GET of the event appended after: %v", r)
	}

	m := s.do(t, http.MethodGet, "/metrics", "", nil)
	if !bytes.Contains(m.Body, []byte("\ntrail_integrity_failures_total 5\n")) {
		t.Errorf("/metrics does not count the 5 refused reads (get, 2 queries, proof, tail):\n%s", grepLines(m.Body, "trail_integrity"))
	}
	if out := logs.String(); !strings.Contains(out, fmt.Sprint("index=", forged)) || !strings.Contains(out, "tampering") {
		t.Errorf("the server's log does not name the tampering at index %d:\n%s", forged, out)
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
