package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trailhq/trail/auth"
)

// Sign-in through OpenID Connect (OIDCConfig): GET /ui/signin/oidc starts
// a flow (ui_oidc_flow.go) and sends the browser to the provider; the
// provider sends it back to the callback, which checks the state against
// the flow the browser's cookie names, exchanges the code with the PKCE
// verifier, verifies the ID token (signature, issuer, audience, expiry)
// and its nonce, and maps its claims to a principal.
//
// The callback is reached from the provider's site, so the browser will
// not send the SameSite=Strict session cookie set there on a redirect that
// continues that navigation: the callback answers with a page of this
// site that moves on by itself (meta refresh, and a link), a navigation
// that starts here and so carries the cookie.

// oidcCredential is a sign-in through OpenID Connect: a principal of the
// tokens file by name, looked up again on every request (revoked or
// expired, the session ends), or a patient's own principal, valid for the
// session's life.
type oidcCredential struct {
	host    string     // the issuer's host
	name    string     // the principal named by the claim, or ""
	patient *Principal // the patient's own principal, or nil
}

func (o oidcCredential) via() string { return "OpenID Connect (" + o.host + ")" }

func (o oidcCredential) stored() (auth.SessionCredential, []byte) {
	if o.patient != nil {
		return auth.CredentialOIDCPatient, []byte(o.patient.Patient)
	}
	return auth.CredentialOIDC, []byte(o.name)
}

// oidcHost is the OpenID Connect provider's host, or "" without one.
func (c *console) oidcHost() string {
	if c.oidc == nil {
		return ""
	}
	return c.oidc.host
}

func (o oidcCredential) authenticate(a Authenticator, _ *http.Request) (*Principal, error) {
	if o.patient != nil {
		return o.patient, nil
	}
	if err := auth.CheckName(o.name); err != nil { // never admin or trail…
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	pn, ok := a.(Principals)
	if !ok {
		return nil, fmt.Errorf("%w: the server's authenticator cannot find principals by name", ErrUnauthenticated)
	}
	return pn.PrincipalByName(o.name)
}

// oidcRefusal is why a callback did not sign anyone in: msg for the person,
// err for the log (never a code or a token).
type oidcRefusal struct {
	status int
	msg    string
	err    error
}

func refuse(status int, msg string, err error) *oidcRefusal {
	return &oidcRefusal{status: status, msg: msg, err: err}
}

// signinOIDC starts a sign-in: a flow kept here, its cookie, and a
// redirect to the provider with the state, the nonce and the PKCE
// challenge.
func (c *console) signinOIDC(w http.ResponseWriter, r *http.Request) {
	oc, _, err := c.oidc.ready(r.Context())
	if err != nil {
		c.renderSignin(w, r, http.StatusServiceUnavailable, "", "The identity provider "+c.oidc.host+
			" cannot be reached right now. Try again in a minute, or sign in with a token; if it goes on, tell the operator.")
		return
	}
	next := r.URL.Query().Get("next")
	if safeNext(next) != next {
		next = "" // the principal's first page
	}
	sealed, fl := c.oidcFlows.add(next)
	c.setOIDCCookie(w, r, sealed, int(oidcFlowLifetime.Seconds()))
	http.Redirect(w, r, oc.AuthCodeURL(fl.State, oidc.Nonce(fl.Nonce), oauth2.S256ChallengeOption(fl.Verifier)), http.StatusSeeOther)
}

// oidcCallback finishes a sign-in. A refused one counts against the client
// address like a bad token; past the limit the answer is 429.
func (c *console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	p, cred, next, no := c.oidcFinish(w, r)
	if no == nil {
		if s := c.openSession(w, r, p, cred); s != nil {
			c.render(w, r, http.StatusOK, "continue", &pageData{Title: "Signed in", Session: s, Page: landing(next, p)})
		}
		return
	}
	c.refuseSignin(w, r, "OpenID Connect", no.err, no.status, no.msg)
}

// oidcFinish checks a callback and returns who signs in and where to go.
func (c *console) oidcFinish(w http.ResponseWriter, r *http.Request) (*Principal, uiCredential, string, *oidcRefusal) {
	fl, mismatch := c.takeOIDCFlow(w, r)
	q := r.URL.Query()
	switch {
	case mismatch:
		return nil, nil, "", refuse(http.StatusBadRequest, "The identity provider's answer does not belong to the sign-in this browser started. "+
			"If you are signing in, go back to the provider's page and finish there.", errors.New("state does not match the flow's"))
	case fl == nil:
		return nil, nil, "", refuse(http.StatusBadRequest, "No sign-in through the identity provider is in progress in this browser: "+
			"it took over 10 minutes, was already completed, or was started elsewhere. Start again.", errors.New("no sign-in in progress for this browser"))
	case q.Get("error") != "":
		e, d := clip(q.Get("error"), 200), clip(q.Get("error_description"), 300)
		msg := "The identity provider did not sign you in: " + e
		if d != "" {
			msg += " (" + d + ")"
		}
		return nil, nil, "", refuse(http.StatusUnauthorized, msg+".", fmt.Errorf("provider answered error %q", e))
	case q.Get("code") == "":
		return nil, nil, "", refuse(http.StatusBadRequest, "The identity provider's answer carries no code. Start again.", errors.New("no code"))
	}
	claims, no := c.oidcClaims(r.Context(), q.Get("code"), fl)
	if no != nil {
		return nil, nil, "", no
	}
	// The flow serves once: its cookie and callback brought again (by
	// whoever copied them) are refused.
	ctx, cancel := context.WithTimeout(r.Context(), sessionStoreTimeout)
	first, err := c.sessions.Claim(ctx, sha256.Sum256(fl.ID), time.Now())
	cancel()
	switch {
	case err != nil:
		return nil, nil, "", refuse(http.StatusServiceUnavailable, "Sessions cannot be opened right now: the server cannot reach where it keeps them. "+
			"Try again in a minute; if it goes on, tell the operator.", err)
	case !first:
		return nil, nil, "", refuse(http.StatusBadRequest, "This sign-in through the identity provider was already completed. Start again.",
			errors.New("a completed sign-in's callback brought again"))
	}
	p, cred, no := c.oidcPrincipal(claims)
	return p, cred, fl.Next, no
}

// takeOIDCFlow takes the flow of r's cookie when r carries its state, and
// clears the cookie; mismatch reports a state that is not the flow's (the
// flow and the cookie are left as they were).
func (c *console) takeOIDCFlow(w http.ResponseWriter, r *http.Request) (*oidcFlow, bool) {
	name, _ := c.oidcCookieName(r)
	ck, err := r.Cookie(name)
	if err != nil || ck.Value == "" {
		return nil, false
	}
	fl, mismatch := c.oidcFlows.open(ck.Value, r.URL.Query().Get("state"))
	if !mismatch {
		c.setOIDCCookie(w, r, "", -1)
	}
	return fl, mismatch
}

// oidcClaims exchanges the code (with the PKCE verifier) and returns the
// claims of the verified ID token, once its nonce is the flow's.
func (c *console) oidcClaims(ctx context.Context, code string, fl *oidcFlow) (map[string]json.RawMessage, *oidcRefusal) {
	oc, verifier, err := c.oidc.ready(ctx)
	if err != nil {
		return nil, refuse(http.StatusServiceUnavailable, "The identity provider "+c.oidc.host+" cannot be reached right now. Try again in a minute.", err)
	}
	ctx, cancel := context.WithTimeout(c.oidc.ctx(ctx), oidcTimeout)
	defer cancel()
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(fl.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) { // its body may repeat the code: log the error code only
			err = fmt.Errorf("token endpoint answered %s: %s", re.Response.Status, re.ErrorCode)
		}
		return nil, refuse(http.StatusBadGateway, "The identity provider did not accept this sign-in's code (it may have expired or been used already). Start again.",
			fmt.Errorf("exchange the code: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refuse(http.StatusBadGateway, "The identity provider sent no ID token. Ask the operator to check that the openid scope is allowed for the console's client.",
			errors.New("no id_token in the token response"))
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "The identity provider's ID token was not accepted: "+err.Error()+". Start again.", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(fl.Nonce)) != 1 {
		return nil, refuse(http.StatusUnauthorized, "The identity provider's ID token was not made for this sign-in (its nonce differs). Start again.",
			errors.New("nonce does not match the flow's"))
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return nil, refuse(http.StatusBadGateway, "The identity provider's ID token could not be read.", err)
	}
	return claims, nil
}

// oidcPrincipal maps an ID token's claims to a principal: the active
// principal PrincipalClaim names, else the patient PatientClaim names.
// Reserved names (admin, trail…) never sign in this way.
func (c *console) oidcPrincipal(claims map[string]json.RawMessage) (*Principal, uiCredential, *oidcRefusal) {
	cfg := c.oidc.cfg
	var why []string
	if pc := cfg.PrincipalClaim; pc != "" {
		name, ok := claimString(claims, pc)
		cred := oidcCredential{host: c.oidc.host, name: name}
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("your identity carries no claim %q naming a principal", pc))
		case auth.CheckName(name) != nil:
			why = append(why, fmt.Sprintf("claim %q is %q, a name that may not sign in here", pc, name))
		default:
			p, err := cred.authenticate(c.s.auth, nil)
			if err == nil {
				return p, cred, nil
			}
			why = append(why, fmt.Sprintf("claim %q names %q, who is not an active principal of this server", pc, name))
		}
	}
	if pc := cfg.PatientClaim; pc != "" {
		id, ok := claimString(claims, pc)
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("your identity carries no claim %q naming a patient", pc))
		default:
			name, err := auth.PatientName(id)
			if err != nil {
				why = append(why, fmt.Sprintf("claim %q is %q, which is not a patient identifier", pc, id))
				break
			}
			p := &Principal{Name: name, Patient: id}
			return p, oidcCredential{host: c.oidc.host, patient: p}, nil
		}
	}
	msg := "You are signed in at the identity provider, but not here: " + strings.Join(why, "; ") +
		". Ask the operator to create your principal (trail token create --name NAME) or to check the claims configured."
	return nil, nil, refuse(http.StatusForbidden, msg, errors.New(strings.Join(why, "; ")))
}

// claimString returns a claim that is a string, or an integer (a patient
// number), as text.
func claimString(claims map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := claims[name]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, s != ""
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && !strings.ContainsAny(n.String(), ".eE-+") {
		return n.String(), true
	}
	return "", false
}
