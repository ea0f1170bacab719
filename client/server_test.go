package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/server"
)

// testServer is a real engine and HTTP server on loopback, with a hook in
// front of the handler to inject failures.
type testServer struct {
	t    testing.TB
	dir  string
	addr string
	tok  server.Token
	cfg  server.Config
	auth server.Authenticator

	log  *trail.Log
	srv  *server.Server
	hs   *httptest.Server
	hook atomic.Pointer[hook]
}

// hook sees every request before the server; it calls next to pass it on.
type hook func(w http.ResponseWriter, r *http.Request, next http.Handler)

func newTestServer(t testing.TB, configure ...func(*server.Config)) *testServer {
	t.Helper()
	s := &testServer{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	tok, _, err := server.EnsureAdminToken(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.tok = tok
	s.cfg = server.Config{AdminToken: tok}
	for _, f := range configure {
		f(&s.cfg)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start opens the engine and serves it on s.addr (the same address after a
// restart).
func (s *testServer) start() {
	s.t.Helper()
	cfg := trail.DefaultConfig()
	cfg.CheckpointInterval = 20 * time.Millisecond
	l, err := trail.Open(s.dir, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	srv, err := server.New(l, s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", s.addr)
		if err == nil {
			break
		}
		if i == 50 {
			s.t.Fatalf("listen again on %s: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := srv.Handler()
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := s.hook.Load(); f != nil {
			(*f)(w, r, h)
			return
		}
		h.ServeHTTP(w, r)
	})}}
	hs.Start()
	s.log, s.srv, s.hs, s.addr = l, srv, hs, ln.Addr().String()
}

// stop closes the HTTP server, then the engine.
func (s *testServer) stop() {
	if s.hs == nil {
		return
	}
	s.srv.Shutdown()
	s.hs.CloseClientConnections()
	s.hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.log.Close(ctx); err != nil {
		s.t.Errorf("close engine: %v", err)
	}
	s.hs = nil
}

func (s *testServer) url() string { return "http://" + s.addr }

func (s *testServer) setHook(h hook) {
	if h == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&h)
}

// client returns a client of s with the admin token, closed at the end.
func (s *testServer) client(opts ...client.Option) *client.Client {
	s.t.Helper()
	c, err := client.New(s.url(), append([]client.Option{client.WithToken(string(s.tok))}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// stored returns the stored events of the application's streams (not
// trail/…), read from the engine.
func (s *testServer) stored() []trail.StoredEvent {
	s.t.Helper()
	var out []trail.StoredEvent
	for i := uint64(0); i < s.log.Size(); i++ {
		rec, err := s.log.Read(i)
		if err != nil {
			s.t.Fatal(err)
		}
		se, err := trail.ParseStored(rec)
		if err != nil {
			s.t.Fatal(err)
		}
		if !trail.IsReservedStream(se.Stream) {
			out = append(out, se)
		}
	}
	return out
}

// checkExactlyOnce checks that the log holds each of ids exactly once and
// nothing else of the application's.
func (s *testServer) checkExactlyOnce(ids map[string]bool) {
	s.t.Helper()
	seen := map[string]int{}
	for _, se := range s.stored() {
		seen[se.ID]++
	}
	for id, n := range seen {
		if n != 1 {
			s.t.Errorf("id %s stored %d times", id, n)
		}
		if !ids[id] {
			s.t.Errorf("id %s stored but not acknowledged", id)
		}
	}
	if len(seen) != len(ids) {
		s.t.Errorf("%d distinct events stored, %d acknowledged", len(seen), len(ids))
	}
}

// event returns a valid event of stream, numbered for order checks.
func event(stream string, producer, i int) trail.Event {
	return trail.Event{
		Stream:  stream,
		Type:    "patient-record.read",
		Action:  "R",
		Actor:   trail.Actor{ID: fmt.Sprintf("dr-%d", producer), Role: "physician"},
		Details: json.RawMessage(fmt.Sprintf(`{"producer":%d,"i":%d}`, producer, i)),
	}
}

// waitAll waits for every Pending and returns the receipts; any error fails
// the test.
func waitAll(t testing.TB, ps []*trail.Pending) []trail.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rs := make([]trail.Receipt, len(ps))
	for i, p := range ps {
		r, err := p.Wait(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		rs[i] = r
	}
	return rs
}

// gate holds batch requests until opened.
type gate struct {
	mu      sync.Mutex
	open    chan struct{}
	waiting atomic.Int32
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) hook(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if r.URL.Path == "/v1/batch" {
		g.waiting.Add(1)
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
	}
	next.ServeHTTP(w, r)
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
