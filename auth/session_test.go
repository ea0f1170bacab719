package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/auth/sessiontest"
)

func TestMemorySessions(t *testing.T) {
	m := auth.NewMemorySessions()
	sessiontest.Run(t, m, func(now time.Time) { m.SetClock(func() time.Time { return now }) })
}

// TestMemorySessionsForget: an ended session loses its credential at once
// and is forgotten keepEnded later.
func TestMemorySessionsForget(t *testing.T) {
	ctx := context.Background()
	m := auth.NewMemorySessions()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	m.SetClock(func() time.Time { return now })
	lim := auth.SessionLimits{Idle: 15 * time.Minute, MaxAge: 8 * time.Hour, Max: 10, PerPrincipal: 5}
	s := &auth.Session{Key: [32]byte{7}, Principal: "officer", Kind: auth.CredentialOIDC, Credential: []byte("officer"), Created: now}
	m.Create(ctx, s, lim)
	m.End(ctx, s.Key, "signout", now)
	got, state, _ := m.Lookup(ctx, s.Key)
	if got == nil || got.Credential != nil || state.Ended != "signout" {
		t.Fatalf("after sign-out: %+v %+v; want the session, without its credential", got, state)
	}
	now = now.Add(auth.KeepEnded + auth.PruneEvery)
	if got, _, _ := m.Lookup(ctx, s.Key); got != nil {
		t.Errorf("an ended session is kept past keepEnded")
	}
}
