package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/trailhq/trail/auth"
)

// Console sessions are kept on the server, in ConsoleConfig.Sessions (the
// process's memory by default; the database with --store, so that every
// process serving the log honours them); the browser holds only a random
// session id in an HttpOnly, SameSite=Strict cookie (__Host- prefixed and
// Secure over TLS). The store keeps the SHA-256 of each id, never the id,
// and never a token (auth.SessionStore). A session ends after
// ConsoleConfig.Idle without a page asked for, after ConsoleConfig.MaxAge
// whatever its use, at sign-out, and as soon as its credential stops
// authenticating: every request authenticates the stored credential again
// against the policy in force, so a revoked or expired token or principal
// ends its sessions on their next request.

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
	// sessionStoreTimeout bounds one call to the session store.
	sessionStoreTimeout = 5 * time.Second
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
	// stored is the credential as a session store keeps it.
	stored() (auth.SessionCredential, []byte)
}

// tokenCredential is a bearer token typed into the sign-in form, kept as
// its SHA-256 only.
type tokenCredential struct{ hash [32]byte }

func (t tokenCredential) via() string { return "token" }

func (t tokenCredential) stored() (auth.SessionCredential, []byte) {
	return auth.CredentialToken, t.hash[:]
}

func (t tokenCredential) authenticate(a Authenticator, _ *http.Request) (*Principal, error) {
	ha, ok := a.(auth.TokenHashAuthenticator)
	if !ok {
		return nil, fmt.Errorf("%w: the server's authenticator cannot authenticate a session's token again", ErrUnauthenticated)
	}
	return ha.AuthenticateTokenHash(t.hash)
}

// authenticateToken authenticates a token typed into the sign-in form as
// the API would a bearer token.
func authenticateToken(a Authenticator, r *http.Request, tok Token) (*Principal, error) {
	req := credentialRequest(r)
	req.Header.Set("Authorization", "Bearer "+string(tok))
	return a.Authenticate(req)
}

// certCredential is a verified TLS client certificate: its subject CN names
// the principal, as for the API.
type certCredential struct{ cert *x509.Certificate }

func (c certCredential) via() string { return "client certificate" }

func (c certCredential) stored() (auth.SessionCredential, []byte) {
	return auth.CredentialCertificate, c.cert.Raw
}

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

// credentialOf turns a stored credential back into one to authenticate.
func (c *console) credentialOf(s *auth.Session) (uiCredential, error) {
	switch s.Kind {
	case auth.CredentialToken:
		if len(s.Credential) != sha256.Size {
			return nil, fmt.Errorf("a token session holds %d bytes, not a SHA-256", len(s.Credential))
		}
		return tokenCredential{hash: [32]byte(s.Credential)}, nil
	case auth.CredentialCertificate:
		cert, err := x509.ParseCertificate(s.Credential)
		if err != nil {
			return nil, err
		}
		return certCredential{cert: cert}, nil
	case auth.CredentialOIDC:
		return oidcCredential{host: c.oidcHost(), name: string(s.Credential)}, nil
	case auth.CredentialOIDCPatient:
		name, err := auth.PatientName(string(s.Credential))
		if err != nil {
			return nil, err
		}
		return oidcCredential{host: c.oidcHost(), patient: &Principal{Name: name, Patient: string(s.Credential)}}, nil
	}
	return nil, fmt.Errorf("a session signed in with %q, a kind of credential this server does not know", s.Kind)
}

// session is one signed-in browser, as a request finds it.
type session struct {
	key  [32]byte // SHA-256 of the cookie's id
	csrf string   // the token every form of the session carries
	Name string   // the principal signed in
	Via  string   // how it signed in
}

// csrfOf is the CSRF token of the session whose cookie holds id: derived
// from the id, so that it is the same in every process and kept nowhere.
func csrfOf(id string) string {
	h := sha256.Sum256([]byte("trail console csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// limits are the console's session limits.
func (c *console) limits() auth.SessionLimits {
	return auth.SessionLimits{Idle: c.cfg.Idle, MaxAge: c.cfg.MaxAge, Max: c.cfg.MaxSessions, PerPrincipal: maxSessionsPerPrincipal}
}

// newSession makes a session for p signed in with cred and returns its
// cookie value.
func (c *console) newSession(ctx context.Context, p *Principal, cred uiCredential) (string, *session, error) {
	id := randomString(sessionIDBytes)
	kind, b := cred.stored()
	rec := &auth.Session{Key: auth.SessionKey(id), Principal: p.Name, Kind: kind, Credential: b, Via: cred.via(), Created: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, sessionStoreTimeout)
	defer cancel()
	if err := c.sessions.Create(ctx, rec, c.limits()); err != nil {
		return "", nil, err
	}
	return id, &session{key: rec.Key, csrf: csrfOf(id), Name: rec.Principal, Via: rec.Via}, nil
}

// endSession records that the session of key ended for why.
func (c *console) endSession(ctx context.Context, key [32]byte, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionStoreTimeout)
	defer cancel()
	if err := c.sessions.End(ctx, key, why, time.Now()); err != nil {
		c.log.Warn("console session: its end could not be recorded", "why", why, "err", err)
	}
}

// whyUnavailable: the session store cannot be reached (the session is
// kept, not ended).
const whyUnavailable = "unavailable"

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
	ctx, cancel := context.WithTimeout(r.Context(), sessionStoreTimeout)
	defer cancel()
	key := auth.SessionKey(ck.Value)
	rec, st, err := c.sessions.Lookup(ctx, key)
	if err != nil {
		c.log.Warn("console session: the session store cannot be reached", "err", err)
		return nil, nil, whyUnavailable
	}
	if rec == nil {
		return nil, nil, "unknown"
	}
	now := time.Now()
	lim := c.limits()
	if why := lim.Ended(rec, st, now); why != "" {
		if st.Ended == "" {
			c.endSession(r.Context(), key, why)
		}
		return nil, nil, why
	}
	cred, err := c.credentialOf(rec)
	if err == nil {
		var p *Principal
		if p, err = cred.authenticate(c.s.auth, r); err == nil {
			if touch && now.Sub(st.Last) >= lim.TouchEvery() {
				if err := c.sessions.Touch(ctx, key, now); err != nil {
					c.log.Warn("console session: its use could not be recorded", "err", err)
				}
			}
			return &session{key: key, csrf: csrfOf(ck.Value), Name: rec.Principal, Via: rec.Via}, p, ""
		}
	}
	c.endSession(r.Context(), key, "revoked")
	c.log.Info("console session ended: its credential no longer authenticates", "principal", rec.Principal, "err", err)
	return nil, nil, "revoked"
}

// endedNotice is what the sign-in page says after a session ended.
var endedNotice = map[string]string{
	"idle":     "Your session ended after a period without activity. Sign in again.",
	"expired":  "Your session reached its maximum length. Sign in again.",
	"revoked":  "Your session ended: its credential is no longer valid (revoked, expired or removed).",
	"replaced": "Your session ended: you signed in again elsewhere more times than one person may keep sessions open.",
	"unknown":  "Your session is no longer known to the server (it may have restarted). Sign in again.",
	"signout":  "You have signed out.",
	// not an end: the store of sessions could not be asked
	whyUnavailable: "The server cannot reach where it keeps console sessions right now. Your session is kept: try again in a minute; if it goes on, tell the operator.",
}

// page wraps a page handler: it needs a live session, which the request
// extends; without one the browser goes to the sign-in page, which says
// why.
func (c *console) page(h func(http.ResponseWriter, *http.Request, *session, *Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, p, why := c.currentWhy(r, r.Header.Get(backgroundHeader) == "")
		if why == whyUnavailable {
			w.Header().Set("Retry-After", "5")
			c.render(w, r, http.StatusServiceUnavailable, "error", &pageData{Title: "Sessions unavailable",
				Error: endedNotice[whyUnavailable]})
			return
		}
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
			status := http.StatusUnauthorized
			if why == whyUnavailable {
				status = http.StatusServiceUnavailable
				w.Header().Set("Retry-After", "5")
			}
			c.s.writeProblem(w, r, newProblem(status, "console_session", msg))
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
