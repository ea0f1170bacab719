package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// flakySessions is a session store that can be made unreachable.
type flakySessions struct {
	auth.SessionStore
	down atomic.Bool
}

var errDown = errors.New("connection refused")

func (f *flakySessions) Lookup(ctx context.Context, key [32]byte) (*auth.Session, auth.SessionState, error) {
	if f.down.Load() {
		return nil, auth.SessionState{}, errDown
	}
	return f.SessionStore.Lookup(ctx, key)
}

func (f *flakySessions) Create(ctx context.Context, s *auth.Session, lim auth.SessionLimits) error {
	if f.down.Load() {
		return errDown
	}
	return f.SessionStore.Create(ctx, s, lim)
}

// TestConsoleSessionStoreUnavailable: while the session store cannot be
// reached, pages answer 503 saying so (not a sign-in page: the session is
// not ended), background calls 503 with Retry-After, and a sign-in 503;
// once it is back the same session serves pages again.
func TestConsoleSessionStoreUnavailable(t *testing.T) {
	store := &flakySessions{SessionStore: auth.NewMemorySessions()}
	e := startUI(t, server.ConsoleConfig{Sessions: store})
	b := e.browser(t)
	b.signIn(e.tokens["officer"])
	store.down.Store(true)
	if p := b.get("/ui/search"); p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "Your session is kept") ||
		p.url.Path != "/ui/search" {
		t.Errorf("a page while sessions are unreachable: %d at %s: %.300s", p.status, p.url, p.body)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/ui/system/status", nil)
	req.Header.Set("X-Trail-Background", "1")
	if p := b.do(req); p.status != http.StatusServiceUnavailable || p.header.Get("Retry-After") == "" {
		t.Errorf("a background call while sessions are unreachable: %d, Retry-After %q", p.status, p.header.Get("Retry-After"))
	}
	other := e.browser(t)
	p := other.get("/ui/signin")
	if p := other.post("/ui/signin", url.Values{"csrf": {csrf(t, p)}, "token": {e.tokens["dr-house"]}}); p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "cannot reach") {
		t.Errorf("a sign-in while sessions are unreachable: %d at %s", p.status, p.url)
	}
	store.down.Store(false)
	if p := b.get("/ui/search"); p.status != http.StatusOK || p.url.Path != "/ui/search" {
		t.Errorf("the session once its store is back: %d at %s", p.status, p.url)
	}
}

// TestConsoleSessionStoreHoldsNoToken: what the console gives its session
// store for a token sign-in is the token's SHA-256, never the token.
func TestConsoleSessionStoreHoldsNoToken(t *testing.T) {
	rec := &recordingSessions{SessionStore: auth.NewMemorySessions()}
	e := startUI(t, server.ConsoleConfig{Sessions: rec})
	tok := e.tokens["officer"]
	e.browser(t).signIn(tok)
	if len(rec.created) != 1 {
		t.Fatalf("%d sessions created, want 1", len(rec.created))
	}
	s := rec.created[0]
	h := auth.HashToken(auth.Token(tok))
	if s.Kind != auth.CredentialToken || string(s.Credential) != string(h[:]) || strings.Contains(string(s.Credential), tok) ||
		s.Principal != "officer" || time.Since(s.Created) > time.Minute {
		t.Errorf("the store was given %+v", s)
	}
}

type recordingSessions struct {
	auth.SessionStore
	created []auth.Session
}

func (r *recordingSessions) Create(ctx context.Context, s *auth.Session, lim auth.SessionLimits) error {
	r.created = append(r.created, *s)
	return r.SessionStore.Create(ctx, s, lim)
}
