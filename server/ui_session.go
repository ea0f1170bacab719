package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Console sessions are kept on the server; the browser holds only a random
// session id in an HttpOnly, SameSite=Strict cookie (__Host- prefixed and
// Secure over TLS). The table keeps the SHA-256 of each id, never the id.
// A session ends after ConsoleConfig.Idle without a page asked for, after
// ConsoleConfig.MaxAge whatever its use, at sign-out, and as soon as its
// credential stops authenticating: every request authenticates the stored
// credential again against the policy in force, so a revoked or expired
// token or principal ends its sessions on their next request.

// Cookie names: the __Host- prefix (RFC 6265bis) makes the browser refuse
// the cookie unless it is Secure, host-only and for path /; it needs
// HTTPS, so plain HTTP on loopback uses the unprefixed name.
const (
	sessionCookie       = "__Host-trail-session"
	sessionCookiePlain  = "trail-session"
	signinCookie        = "__Host-trail-signin"
	signinCookiePlain   = "trail-signin"
	csrfField           = "csrf"
	sessionIDBytes      = 32
	backgroundHeader    = "X-Trail-Background" // set by the console's own scripts: does not extend the session
	endedParam          = "ended"
	maxTokenFormLength  = 4 << 10
	signinCookieSeconds = 3600
)

// uiCredential is what a session signed in with, authenticated again on
// every request. An OpenID Connect sign-in adds a kind that maps the
// provider's claim to a principal name.
type uiCredential interface {
	// authenticate returns the principal the credential names under the
	// policy in force now.
	authenticate(a Authenticator, r *http.Request) (*Principal, error)
	// via names the kind of credential for people.
	via() string
}

// tokenCredential is a bearer token typed into the sign-in form.
type tokenCredential struct{ tok Token }

func (t tokenCredential) via() string { return "token" }

func (t tokenCredential) authenticate(a Authenticator, r *http.Request) (*Principal, error) {
	req := credentialRequest(r)
	req.Header.Set("Authorization", "Bearer "+string(t.tok))
	return a.Authenticate(req)
}

// certCredential is a verified TLS client certificate: its subject CN names
// the principal, as for the API.
type certCredential struct{ cert *x509.Certificate }

func (c certCredential) via() string { return "client certificate" }

func (c certCredential) authenticate(a Authenticator, r *http.Request) (*Principal, error) {
	now := time.Now()
	if now.After(c.cert.NotAfter) {
		return nil, fmt.Errorf("%w: the client certificate expired at %s", ErrUnauthenticated, c.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	req := credentialRequest(r)
	chain := []*x509.Certificate{c.cert}
	req.TLS = &tls.ConnectionState{PeerCertificates: chain, VerifiedChains: [][]*x509.Certificate{chain}}
	return a.Authenticate(req)
}

// credentialRequest is a copy of r that carries no credentials of its own
// (no cookies, no Authorization, no TLS state) for an Authenticator to
// judge a stored credential by.
func credentialRequest(r *http.Request) *http.Request {
	req := r.Clone(r.Context())
	req.Header = http.Header{}
	req.TLS = nil
	return req
}

// session is one signed-in browser.
type session struct {
	key     [32]byte // SHA-256 of the cookie's id
	csrf    string   // the token every form of the session carries
	cred    uiCredential
	Name    string // the principal signed in
	Via     string // how it signed in
	created time.Time
	last    time.Time // the last page asked for
	// why the session ended, once it has: it is kept (without its
	// credential) for a while, so that the sign-in page can say why even
	// when a background request or a pruning found out first.
	why     string
	endedAt time.Time
}

// keepEnded is how long an ended session is remembered, to say why.
const keepEnded = time.Hour

// sessionTable holds the sessions, bounded in number.
type sessionTable struct {
	mu     sync.Mutex
	cfg    ConsoleConfig
	byKey  map[[32]byte]*session
	now    func() time.Time
	pruned time.Time // when ended sessions were last dropped
}

// pruneEvery is how often a lookup also drops ended sessions, so that the
// credentials of sessions nobody comes back to leave memory.
const pruneEvery = time.Minute

func newSessionTable(cfg ConsoleConfig) *sessionTable {
	return &sessionTable{cfg: cfg, byKey: map[[32]byte]*session{}, now: time.Now}
}

// errTooManySessions: the table is full of live sessions.
var errTooManySessions = errors.New("the console has too many open sessions; try again later, or ask the operator")

// add makes a session for cred's principal and returns its cookie value.
func (t *sessionTable) add(name string, cred uiCredential) (string, *session, error) {
	id := randomString(sessionIDBytes)
	now := t.now()
	s := &session{key: sha256.Sum256([]byte(id)), csrf: randomString(32), cred: cred, Name: name, Via: cred.via(),
		created: now, last: now}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune(now, len(t.byKey) >= t.cfg.MaxSessions)
	var mine []*session
	for _, o := range t.byKey {
		if o.Name == name && o.why == "" {
			mine = append(mine, o)
		}
	}
	if len(mine) >= maxSessionsPerPrincipal {
		oldest := mine[0]
		for _, o := range mine {
			if o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(t.byKey, oldest.key)
	}
	if len(t.byKey) >= t.cfg.MaxSessions {
		return "", nil, errTooManySessions
	}
	t.byKey[s.key] = s
	return id, s, nil
}

// prune forgets the credentials of ended sessions, and drops the sessions
// that ended over keepEnded ago, or (when full) all ended ones; t.mu is
// held.
func (t *sessionTable) prune(now time.Time, full bool) {
	t.pruned = now
	for k, s := range t.byKey {
		why := t.ended(s, now)
		switch {
		case why == "":
		case full || s.why != "" && now.Sub(s.endedAt) >= keepEnded:
			delete(t.byKey, k)
		case s.why == "":
			t.endLocked(s, why, now)
		}
	}
}

// endLocked ends s for why; t.mu is held.
func (t *sessionTable) endLocked(s *session, why string, now time.Time) {
	s.why, s.cred, s.endedAt = why, nil, now
}

// ended says why s has ended at now, or "".
func (t *sessionTable) ended(s *session, now time.Time) string {
	switch {
	case s.why != "":
		return s.why
	case now.Sub(s.created) >= t.cfg.MaxAge:
		return "expired"
	case now.Sub(s.last) >= t.cfg.Idle:
		return "idle"
	}
	return ""
}

// get finds the live session of a cookie value; touch marks a page asked
// for (automatic requests do not extend a session). When the session has
// ended it is removed and why is returned.
func (t *sessionTable) get(id string, touch bool) (*session, uiCredential, string) {
	key := sha256.Sum256([]byte(id))
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.pruned) >= pruneEvery {
		t.prune(now, false)
	}
	s, ok := t.byKey[key]
	if !ok {
		return nil, nil, "unknown"
	}
	if why := t.ended(s, now); why != "" {
		if s.why == "" {
			t.endLocked(s, why, now)
		}
		return nil, nil, why
	}
	if touch {
		s.last = now
	}
	return s, s.cred, ""
}

func (t *sessionTable) remove(s *session) {
	t.mu.Lock()
	delete(t.byKey, s.key)
	t.mu.Unlock()
}

// end ends s for why, keeping why for the sign-in page.
func (t *sessionTable) end(s *session, why string) {
	t.mu.Lock()
	t.endLocked(s, why, t.now())
	t.mu.Unlock()
}

// len is the number of sessions held.
func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookieNames returns the session and sign-in cookie names for r's
// transport.
func (c *console) cookieNames(r *http.Request) (sess, signin string, secure bool) {
	if secure, _ := c.transport(r); secure {
		return sessionCookie, signinCookie, true
	}
	return sessionCookiePlain, signinCookiePlain, false
}

func setCookie(w http.ResponseWriter, name, value string, secure bool, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

// current returns r's session and its principal, authenticated again now.
// A session whose credential no longer authenticates is ended. why says
// why there is none ("" when r has no session cookie).
func (c *console) current(r *http.Request) (*session, *Principal, bool) {
	s, p, _ := c.currentWhy(r, false)
	return s, p, s != nil
}

func (c *console) currentWhy(r *http.Request, touch bool) (*session, *Principal, string) {
	name, _, _ := c.cookieNames(r)
	ck, err := r.Cookie(name)
	if err != nil || ck.Value == "" {
		return nil, nil, ""
	}
	s, cred, why := c.sessions.get(ck.Value, touch)
	if s == nil {
		return nil, nil, why
	}
	p, err := cred.authenticate(c.s.auth, r)
	if err != nil {
		c.sessions.end(s, "revoked")
		c.log.Info("console session ended: its credential no longer authenticates", "principal", s.Name, "err", err)
		return nil, nil, "revoked"
	}
	return s, p, ""
}

// endedNotice is what the sign-in page says after a session ended.
var endedNotice = map[string]string{
	"idle":    "Your session ended after a period without activity. Sign in again.",
	"expired": "Your session reached its maximum length. Sign in again.",
	"revoked": "Your session ended: its credential is no longer valid (revoked, expired or removed).",
	"unknown": "Your session is no longer known to the server (it may have restarted). Sign in again.",
	"signout": "You have signed out.",
}

// page wraps a page handler: it needs a live session, which the request
// extends; without one the browser goes to the sign-in page, which says
// why.
func (c *console) page(h func(http.ResponseWriter, *http.Request, *session, *Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, p, why := c.currentWhy(r, r.Header.Get(backgroundHeader) == "")
		if s == nil {
			c.toSignin(w, r, why)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), s, p)
	})
}

// background wraps an endpoint the console's scripts call: it needs a live
// session but does not extend it; without one it answers 401.
func (c *console) background(h func(http.ResponseWriter, *http.Request, *session, *Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, p, why := c.currentWhy(r, false)
		if s == nil {
			msg := "sign in again: your session has ended"
			if n, ok := endedNotice[why]; ok {
				msg = n
			}
			c.s.writeProblem(w, r, newProblem(http.StatusUnauthorized, "console_session", msg))
			return
		}
		h(w, r, s, p)
	})
}

func (c *console) toSignin(w http.ResponseWriter, r *http.Request, why string) {
	q := url.Values{}
	if why != "" {
		q.Set(endedParam, why)
	}
	if r.Method == http.MethodGet {
		q.Set("next", r.URL.RequestURI())
	}
	u := "/ui/signin"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}
