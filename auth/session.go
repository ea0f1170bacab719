package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Console sessions. The browser holds a random id in a cookie; a
// SessionStore keeps, under the id's SHA-256, who signed in and with what
// credential, so that every request can authenticate that credential again
// against the policy in force (revocation and expiry end sessions at once).
// A store never holds the id, nor a token: a token sign-in is kept as the
// token's SHA-256, as the policy keeps tokens. Stores only add to what they
// hold (a session, its last use, its end), so one kept in a database that
// its serving role may only insert into works as well as one in memory.

// SessionCredential says what a session signed in with, and so what
// Session.Credential holds.
type SessionCredential string

const (
	// CredentialToken: Credential is the SHA-256 of the bearer token.
	CredentialToken SessionCredential = "token"
	// CredentialCertificate: Credential is the client certificate (DER).
	CredentialCertificate SessionCredential = "certificate"
	// CredentialOIDC: Credential is the name of the principal an OpenID
	// Connect claim named.
	CredentialOIDC SessionCredential = "oidc"
	// CredentialOIDCPatient: Credential is the patient identifier an
	// OpenID Connect claim named (the patient's own principal).
	CredentialOIDCPatient SessionCredential = "oidc-patient"
)

// Session is a signed-in console session as a SessionStore keeps it.
type Session struct {
	Key        [32]byte // SHA-256 of the cookie's id
	Principal  string   // the principal signed in
	Kind       SessionCredential
	Credential []byte
	Via        string // how it signed in, for people
	Created    time.Time
}

// SessionState is what has happened to a session since it was made.
type SessionState struct {
	Last    time.Time // the last page its user asked for, to within SessionLimits.TouchEvery
	Ended   string    // why it ended ("signout", "revoked", "replaced", …), or ""
	EndedAt time.Time
}

// SessionLimits bound sessions: their idle time, their length, their
// number, and one principal's share of them.
type SessionLimits struct {
	Idle, MaxAge time.Duration
	Max          int // live sessions in all
	PerPrincipal int // live sessions of one principal; past it the oldest is replaced
}

// TouchEvery is how stale a session's recorded last use may be: a store is
// told of a use only when the one it holds is this old. It is a fifteenth
// of the idle time, at most a minute.
func (l SessionLimits) TouchEvery() time.Duration {
	return min(l.Idle/15, time.Minute)
}

// Ended says why a session in state st has ended at now: its recorded end,
// "expired" past MaxAge, "idle" past Idle since its last use; "" while it
// lives.
func (l SessionLimits) Ended(s *Session, st SessionState, now time.Time) string {
	switch {
	case st.Ended != "":
		return st.Ended
	case now.Sub(s.Created) >= l.MaxAge:
		return "expired"
	case now.Sub(st.Last) >= l.Idle:
		return "idle"
	}
	return ""
}

// ErrTooManySessions refuses a session when Max live ones exist.
var ErrTooManySessions = errors.New("the console has too many open sessions; try again later, or ask the operator")

// SessionStore keeps console sessions. Every method is safe for
// concurrent use; errors other than ErrTooManySessions mean the store
// cannot be reached (the console answers 503 and keeps the session).
type SessionStore interface {
	// Create records a new session, whose Created is its first use. When
	// its principal already has lim.PerPrincipal live sessions, the oldest
	// ends ("replaced"); when lim.Max live sessions exist, it fails with
	// ErrTooManySessions.
	Create(ctx context.Context, s *Session, lim SessionLimits) error
	// Lookup returns the session of key and its state, or nil when the
	// store does not know it (never made, or forgotten).
	Lookup(ctx context.Context, key [32]byte) (*Session, SessionState, error)
	// Touch records a use of the session at at.
	Touch(ctx context.Context, key [32]byte, at time.Time) error
	// End records that the session ended for why; a session ends once
	// (a later End keeps the first reason).
	End(ctx context.Context, key [32]byte, why string, at time.Time) error
	// Claim records the one use of key (a completed OpenID Connect
	// sign-in) and reports whether it is the first. A store remembers a
	// claim for at least ClaimKept.
	Claim(ctx context.Context, key [32]byte, at time.Time) (first bool, err error)
}

// ClaimKept is how long a SessionStore remembers a claim at least: longer
// than a sign-in in progress lives.
const ClaimKept = time.Hour

// SessionKey is the key a store keeps the session of a cookie's id under.
func SessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// MemorySessions is a SessionStore in the process's memory: a restart
// signs everyone out. It forgets the credential of a session once it has
// ended, and the session itself keepEnded later, so that the sign-in page
// can still say why.
type MemorySessions struct {
	mu     sync.Mutex
	lim    SessionLimits // of the last Create, for pruning
	byKey  map[[32]byte]*memSession
	claims map[[32]byte]time.Time
	pruned time.Time
	now    func() time.Time
}

type memSession struct {
	s  Session
	st SessionState
}

const (
	// keepEnded is how long an ended session is remembered, to say why.
	keepEnded = time.Hour
	// pruneEvery is how often a lookup also forgets ended sessions.
	pruneEvery = time.Minute
)

// NewMemorySessions returns an empty MemorySessions.
func NewMemorySessions() *MemorySessions {
	return &MemorySessions{byKey: map[[32]byte]*memSession{}, claims: map[[32]byte]time.Time{}, now: time.Now}
}

// Create implements SessionStore.
func (m *MemorySessions) Create(_ context.Context, s *Session, lim SessionLimits) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lim = lim
	now := s.Created
	m.prune(now, len(m.byKey) >= lim.Max)
	var oldest *memSession
	mine := 0
	for _, o := range m.byKey {
		if o.s.Principal == s.Principal && lim.Ended(&o.s, o.st, now) == "" {
			mine++
			if oldest == nil || o.s.Created.Before(oldest.s.Created) {
				oldest = o
			}
		}
	}
	if mine >= lim.PerPrincipal && oldest != nil {
		m.endLocked(oldest, "replaced", now)
	}
	live := 0
	for _, o := range m.byKey {
		if lim.Ended(&o.s, o.st, now) == "" {
			live++
		}
	}
	if live >= lim.Max {
		return ErrTooManySessions
	}
	c := *s
	c.Credential = append([]byte(nil), s.Credential...)
	m.byKey[s.Key] = &memSession{s: c, st: SessionState{Last: s.Created}}
	return nil
}

// prune forgets the credentials of ended sessions, and the sessions that
// ended over keepEnded ago or (when full) all ended ones; m.mu is held.
func (m *MemorySessions) prune(now time.Time, full bool) {
	m.pruned = now
	for k, o := range m.byKey {
		why := m.lim.Ended(&o.s, o.st, now)
		switch {
		case why == "":
		case full || o.st.Ended != "" && now.Sub(o.st.EndedAt) >= keepEnded:
			delete(m.byKey, k)
		case o.st.Ended == "":
			m.endLocked(o, why, now)
		}
	}
}

func (m *MemorySessions) endLocked(o *memSession, why string, at time.Time) {
	if o.st.Ended == "" {
		o.st.Ended, o.st.EndedAt = why, at
	}
	o.s.Credential = nil
}

// Lookup implements SessionStore.
func (m *MemorySessions) Lookup(_ context.Context, key [32]byte) (*Session, SessionState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now := m.now(); m.lim.Max > 0 && now.Sub(m.pruned) >= pruneEvery {
		m.prune(now, false)
	}
	o, ok := m.byKey[key]
	if !ok {
		return nil, SessionState{}, nil
	}
	c := o.s
	c.Credential = append([]byte(nil), o.s.Credential...)
	return &c, o.st, nil
}

// Touch implements SessionStore.
func (m *MemorySessions) Touch(_ context.Context, key [32]byte, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.byKey[key]; ok && at.After(o.st.Last) {
		o.st.Last = at
	}
	return nil
}

// End implements SessionStore.
func (m *MemorySessions) End(_ context.Context, key [32]byte, why string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.byKey[key]; ok {
		m.endLocked(o, why, at)
	}
	return nil
}

// Claim implements SessionStore. Claims older than ClaimKept are
// forgotten as new ones come.
func (m *MemorySessions) Claim(_ context.Context, key [32]byte, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.claims[key]; ok {
		return false, nil
	}
	for k, t := range m.claims {
		if at.Sub(t) > ClaimKept {
			delete(m.claims, k)
		}
	}
	m.claims[key] = at
	return true, nil
}

// Len is the number of sessions held, ended ones included.
func (m *MemorySessions) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byKey)
}
