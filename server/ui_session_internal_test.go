package server

import (
	"testing"
	"time"
)

// TestSessionTable: idle and maximum age end a session, whose reason is
// kept (without its credential) for keepEnded; lookups that do not touch
// do not extend it; one principal holds at most maxSessionsPerPrincipal
// live sessions; a full table refuses a new one until ended ones go.
func TestSessionTable(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	tb := newSessionTable(ConsoleConfig{Idle: 15 * time.Minute, MaxAge: 8 * time.Hour, MaxSessions: 40})
	tb.now = func() time.Time { return now }
	cred := tokenCredential{tok: "trail_x"}

	id, _, err := tb.add("officer", cred)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(14 * time.Minute)
	if s, c, why := tb.get(id, false); s == nil || c == nil || why != "" {
		t.Fatalf("after 14 min: %v %q", s, why)
	}
	now = now.Add(2 * time.Minute) // 16 min without a page: background lookups did not count
	if s, c, why := tb.get(id, true); s != nil || c != nil || why != "idle" {
		t.Fatalf("after 16 min idle: %v %v %q, want idle", s, c, why)
	}
	if _, _, why := tb.get(id, true); why != "idle" {
		t.Errorf("the reason is forgotten: %q", why)
	}
	now = now.Add(keepEnded + time.Minute)
	if _, _, why := tb.get(id, true); why != "unknown" {
		t.Errorf("an ended session is kept past keepEnded: %q", why)
	}

	id, _, _ = tb.add("officer", cred)
	for range 36 { // a page every 14 min for 8.4 h: never idle, but 8 h at most
		now = now.Add(14 * time.Minute)
		tb.get(id, true)
	}
	if _, _, why := tb.get(id, true); why != "expired" {
		t.Errorf("after 8 h of use: %q, want expired", why)
	}

	var ids []string
	for range maxSessionsPerPrincipal + 1 {
		id, _, err := tb.add("dr-house", cred)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		now = now.Add(time.Second)
	}
	if s, _, _ := tb.get(ids[0], false); s != nil {
		t.Errorf("the oldest of %d sessions of one principal is kept", maxSessionsPerPrincipal+1)
	}
	for range 40 - maxSessionsPerPrincipal - 1 { // the expired officer session still counts until the table is full
		if _, _, err := tb.add("p", cred); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	if _, _, err := tb.add("q", cred); err != nil {
		t.Errorf("a full table with an ended session in it refused a sign-in: %v", err)
	}
	if _, _, err := tb.add("r", cred); err != errTooManySessions {
		t.Errorf("a table full of live sessions: %v, want errTooManySessions", err)
	}
}

func TestInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15 minutes", 8 * time.Hour: "8 hours", time.Hour: "1 hour",
		90 * time.Minute: "90 minutes", 2 * time.Second: "2 seconds", 1500 * time.Millisecond: "1 second",
	} {
		if got := inWords(d); got != want {
			t.Errorf("inWords(%s) = %q, want %q", d, got, want)
		}
	}
}
