// Package sessiontest holds console session stores (auth.SessionStore) to
// what the console relies on; each store's tests run it.
package sessiontest

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/trailhq/trail/auth"
)

// Run holds st to what the console relies on: idle time and maximum age end
// a session; touches extend it; an end is kept with its first reason; one
// principal holds at most PerPrincipal live sessions (its oldest is
// replaced); Max live sessions refuse another; a claim is first once.
// clock moves the store's time where it has one of its own.
func Run(t *testing.T, st auth.SessionStore, clock func(time.Time)) {
	ctx := context.Background()
	lim := auth.SessionLimits{Idle: 15 * time.Minute, MaxAge: 8 * time.Hour, Max: 40, PerPrincipal: 32}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time {
		now = now.Add(d)
		clock(now)
		return now
	}
	clock(now)
	newSession := func(name string) *auth.Session {
		var key [32]byte
		rand.Read(key[:])
		h := auth.HashToken(auth.Token("trail_" + name))
		return &auth.Session{Key: key, Principal: name, Kind: auth.CredentialToken, Credential: h[:], Via: "token", Created: now}
	}
	ended := func(key [32]byte) string {
		t.Helper()
		s, state, err := st.Lookup(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if s == nil {
			return "unknown"
		}
		return lim.Ended(s, state, now)
	}

	a := newSession("officer")
	if err := st.Create(ctx, a, lim); err != nil {
		t.Fatal(err)
	}
	got, state, err := st.Lookup(ctx, a.Key)
	if err != nil || got == nil {
		t.Fatalf("lookup of a new session: %v %v", got, err)
	}
	if got.Principal != "officer" || got.Kind != auth.CredentialToken || string(got.Credential) != string(a.Credential) ||
		got.Via != "token" || !got.Created.Equal(a.Created) || !state.Last.Equal(a.Created) || state.Ended != "" {
		t.Fatalf("lookup gave %+v %+v, want %+v", got, state, a)
	}
	at(14 * time.Minute)
	if why := ended(a.Key); why != "" {
		t.Fatalf("after 14 min: %q", why)
	}
	if err := st.Touch(ctx, a.Key, now); err != nil {
		t.Fatal(err)
	}
	at(14 * time.Minute)
	if why := ended(a.Key); why != "" {
		t.Fatalf("14 min after a touch: %q", why)
	}
	at(2 * time.Minute)
	if why := ended(a.Key); why != "idle" {
		t.Fatalf("16 min after the last touch: %q, want idle", why)
	}

	b := newSession("officer")
	if err := st.Create(ctx, b, lim); err != nil {
		t.Fatal(err)
	}
	for range 36 { // a page every 14 min for 8.4 h: never idle, but 8 h at most
		st.Touch(ctx, b.Key, at(14*time.Minute))
	}
	if why := ended(b.Key); why != "expired" {
		t.Errorf("after 8 h of use: %q, want expired", why)
	}

	c := newSession("nurse")
	st.Create(ctx, c, lim)
	if err := st.End(ctx, c.Key, "signout", at(time.Second)); err != nil {
		t.Fatal(err)
	}
	st.End(ctx, c.Key, "revoked", at(time.Second))
	if why := ended(c.Key); why != "signout" {
		t.Errorf("a session signed out, then ended again: %q, want the first reason", why)
	}

	var keys [][32]byte
	for range 33 {
		s := newSession("dr-house")
		if err := st.Create(ctx, s, lim); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Key)
		at(time.Second)
	}
	if why := ended(keys[0]); why != "replaced" {
		t.Errorf("the oldest of 33 sessions of one principal: %q, want replaced", why)
	}
	if why := ended(keys[1]); why != "" {
		t.Errorf("the second oldest of 33 sessions of one principal: %q, want live", why)
	}
	for i := range 40 - 32 { // dr-house holds 32 live sessions
		if err := st.Create(ctx, newSession("p"+string(rune('a'+i))), lim); err != nil {
			t.Fatalf("live session %d of 40: %v", 33+i, err)
		}
	}
	if err := st.Create(ctx, newSession("q"), lim); !errors.Is(err, auth.ErrTooManySessions) {
		t.Errorf("a 41st live session: %v, want auth.ErrTooManySessions", err)
	}
	if err := st.End(ctx, keys[5], "signout", at(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, newSession("q"), lim); err != nil {
		t.Errorf("a sign-in once a live session ended: %v", err)
	}
	var claim [32]byte
	rand.Read(claim[:])
	for i, want := range []bool{true, false, false} {
		first, err := st.Claim(ctx, claim, at(time.Second))
		if err != nil || first != want {
			t.Errorf("claim %d of one key: %v %v, want %v", i+1, first, err, want)
		}
	}
	if first, err := st.Claim(ctx, [32]byte{2}, now); !first || err != nil {
		t.Errorf("the first claim of another key: %v %v", first, err)
	}
	if s, _, err := st.Lookup(ctx, [32]byte{1}); s != nil || err != nil {
		t.Errorf("lookup of an unknown key: %v %v", s, err)
	}
}
