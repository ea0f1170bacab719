package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trailhq/trail/auth"
)

// Sign-in and sign-out. Every form carries a CSRF token: the sign-in
// forms one that must match a cookie set with the form (double submit),
// the others the session's own.

// safeNext is where to go after sign-in: a console page, never elsewhere.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/ui/") && !strings.HasPrefix(next, "/ui/signin") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/ui/search"
}

// landing is where p goes after sign-in: the page it asked for, else its
// first page (startPage).
func landing(next string, p *Principal) string {
	if n := safeNext(next); n != "/ui/search" || next == n {
		return n
	}
	return startPage(p)
}

// signinData is the sign-in page's own data.
type signinData struct {
	Idle, MaxAge string // the session limits, in words
	Next         string
	Certificate  string // the CN of a verified client certificate, if any
	OIDC         string // the OpenID Connect provider's host, when configured
	Nonce        string // the sign-in forms' CSRF token
}

// signinPage shows the sign-in forms. They carry a CSRF token that must
// match a cookie set here (double submit): nobody can sign a browser in
// under their own account from another site.
func (c *console) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, p, ok := c.current(r); ok && r.URL.Query().Get(endedParam) == "" {
		http.Redirect(w, r, landing(r.URL.Query().Get("next"), p), http.StatusSeeOther)
		return
	}
	c.renderSignin(w, r, http.StatusOK, endedNotice[r.URL.Query().Get(endedParam)], "")
}

func (c *console) renderSignin(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	_, signin, secure := c.cookieNames(r)
	nonce := randomString(24)
	setCookie(w, signin, nonce, secure, signinCookieSeconds)
	next := r.FormValue("next")
	if safeNext(next) != next {
		next = "" // the principal's first page
	}
	d := &signinData{Next: next, Nonce: nonce,
		Idle: inWords(c.cfg.Idle), MaxAge: inWords(c.cfg.MaxAge)}
	if c.oidc != nil {
		d.OIDC = c.oidc.host
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		d.Certificate = r.TLS.VerifiedChains[0][0].Subject.CommonName
	}
	c.render(w, r, status, "signin", &pageData{Title: "Sign in", Notice: notice, Error: errMsg, Page: d})
}

// signinChecked checks a sign-in form's CSRF token against its cookie.
func (c *console) signinChecked(w http.ResponseWriter, r *http.Request) bool {
	_, signin, _ := c.cookieNames(r)
	ck, err := r.Cookie(signin)
	if err != nil || !sameString(ck.Value, r.PostFormValue(csrfField)) {
		c.forbidden(w, r)
		return false
	}
	return true
}

func (c *console) forbidden(w http.ResponseWriter, r *http.Request) {
	s, _, _ := c.current(r)
	c.render(w, r, http.StatusForbidden, "error", &pageData{Title: "Form expired", Session: s,
		Error: "This form could not be accepted: its security token is missing or does not match your session " +
			"(the page may be old, or the form came from another site). Go back, reload the page and try again."})
}

func sameString(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// signinToken signs in with a token typed into the form. Failed attempts
// count against the client address like failed API requests, and past the
// limit they get 429; a valid token is never refused for others' failures.
func (c *console) signinToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenFormLength)
	if !c.signinChecked(w, r) {
		return
	}
	tok := Token(strings.TrimSpace(r.PostFormValue("token")))
	p, err := authenticateToken(c.s.auth, r, tok)
	if err == nil && tok != "" {
		c.startSession(w, r, p, tokenCredential{hash: auth.HashToken(tok)})
		return
	}
	c.refuseSignin(w, r, "token", err, http.StatusUnauthorized, "That token was not accepted: it is unknown, revoked or expired. Check it and try again.")
}

// refuseSignin answers a failed sign-in with the sign-in page saying why.
// It counts against the client address like a failed API request; past the
// limit the answer is 429 whatever went wrong.
func (c *console) refuseSignin(w http.ResponseWriter, r *http.Request, via string, err error, status int, msg string) {
	addr := c.s.cfg.TrustedProxies.ClientAddr(r)
	key := auth.LimitKey(addr)
	if blocked, _ := c.s.failures.Blocked(key); blocked {
		c.renderSignin(w, r, http.StatusTooManyRequests, "", "Too many failed sign-ins from your address. Wait a minute and try again.")
		return
	}
	c.s.failures.Spend(key)
	c.log.Info("console sign-in refused", "via", via, "client", addr, "err", err)
	c.renderSignin(w, r, status, "", msg)
}

// signinCertificate signs in as the principal a verified client
// certificate names.
func (c *console) signinCertificate(w http.ResponseWriter, r *http.Request) {
	if !c.signinChecked(w, r) {
		return
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		c.renderSignin(w, r, http.StatusUnauthorized, "", "Your browser presented no client certificate that this server trusts.")
		return
	}
	cred := certCredential{cert: r.TLS.VerifiedChains[0][0]}
	p, err := cred.authenticate(c.s.auth, r)
	if err != nil {
		c.renderSignin(w, r, http.StatusUnauthorized, "", "Your client certificate was not accepted: "+err.Error())
		return
	}
	c.startSession(w, r, p, cred)
}

func (c *console) startSession(w http.ResponseWriter, r *http.Request, p *Principal, cred uiCredential) {
	if c.openSession(w, r, p, cred) != nil {
		http.Redirect(w, r, landing(r.PostFormValue("next"), p), http.StatusSeeOther)
	}
}

// openSession makes a session for p and sets its cookie; when it cannot, it
// answers with the sign-in page and returns nil.
func (c *console) openSession(w http.ResponseWriter, r *http.Request, p *Principal, cred uiCredential) *session {
	if s, _, ok := c.current(r); ok {
		c.endSession(r.Context(), s.key, "signout") // a new id at every sign-in
	}
	id, s, err := c.newSession(r.Context(), p, cred)
	if err != nil {
		c.log.Warn("console sign-in refused", "principal", p.Name, "err", err)
		msg := err.Error()
		if !errors.Is(err, auth.ErrTooManySessions) {
			msg = "Sessions cannot be opened right now: the server cannot reach where it keeps them. Try again in a minute; if it goes on, tell the operator."
		}
		c.renderSignin(w, r, http.StatusServiceUnavailable, "", msg)
		return nil
	}
	name, signin, secure := c.cookieNames(r)
	setCookie(w, name, id, secure, 0)
	setCookie(w, signin, "", secure, -1)
	c.log.Info("console sign-in", "principal", p.Name, "via", cred.via(), "client", c.s.cfg.TrustedProxies.ClientAddr(r))
	return s
}

// signout ends the session (its CSRF token required) and clears the cookie.
func (c *console) signout(w http.ResponseWriter, r *http.Request) {
	s, _, why := c.currentWhy(r, false)
	if s == nil {
		c.toSignin(w, r, why)
		return
	}
	if !sameString(s.csrf, r.PostFormValue(csrfField)) {
		c.forbidden(w, r)
		return
	}
	c.endSession(r.Context(), s.key, "signout") // kept, so that a live view of the session's other pages can say why it ended
	name, _, secure := c.cookieNames(r)
	setCookie(w, name, "", secure, -1)
	http.Redirect(w, r, "/ui/signin?"+endedParam+"=signout", http.StatusSeeOther)
}

// inWords writes a session limit for people: "15 minutes", "8 hours".
func inWords(d time.Duration) string {
	n, unit := int64(d/time.Second), "second"
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d >= time.Minute && d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
