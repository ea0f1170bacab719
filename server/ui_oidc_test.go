package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// The console's OpenID Connect sign-in, against mockoidc: a real provider
// (discovery, JWKS, signed ID tokens, PKCE checked at the token endpoint)
// that approves every authorization request at once. The provider runs on
// 127.0.0.1 and the console on localhost, two sites, as a provider and a
// hospital's server are: browsers then treat the callback as cross-site.

// oidcUser is a provider's user with the claims a test gives.
type oidcUser struct {
	sub    string
	claims map[string]any
}

func (u oidcUser) ID() string                        { return u.sub }
func (u oidcUser) Userinfo([]string) ([]byte, error) { return []byte(`{"sub":"` + u.sub + `"}`), nil }

func (u oidcUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c := jwt.MapClaims{"iss": base.Issuer, "sub": base.Subject, "aud": base.Audience, "exp": base.ExpiresAt,
		"iat": base.IssuedAt, "nbf": base.NotBefore, "jti": base.ID, "nonce": base.Nonce}
	for k, v := range u.claims {
		c[k] = v
	}
	return c, nil
}

// named is a user whose preferred_username is name.
func named(name string) oidcUser {
	return oidcUser{sub: "sub-" + name, claims: map[string]any{"preferred_username": name}}
}

// oidcEnv is the console configured for the mock provider.
type oidcEnv struct {
	*uiEnv
	m    *mockoidc.MockOIDC
	logs *syncBuffer

	mu        sync.Mutex
	authorize []url.Values // the authorization requests, as the provider got them
	token     []url.Values // the token requests

	badNonce atomic.Bool  // the provider signs another nonce than the one asked
	deny     atomic.Value // a string: the provider answers error=access_denied with it
	denied   atomic.Bool  // whether deny is set
	consent  atomic.Bool  // the provider shows a page to approve on first
}

// startOIDC starts the mock provider and a console that signs in through
// it with claims principal (preferred_username) and patient (patient_id).
func startOIDC(t *testing.T) *oidcEnv {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &oidcEnv{m: m, logs: &syncBuffer{}}
	m.AddMiddleware(o.middleware)
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(pln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	o.uiEnv = startOIDCConsole(t, o.logs, func(base string) *server.OIDCConfig {
		return &server.OIDCConfig{Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret,
			RedirectURL: base + server.OIDCCallbackPath, PrincipalClaim: "preferred_username", PatientClaim: "patient_id"}
	})
	return o
}

// startOIDCConsole serves a console at http://localhost:PORT with the
// OpenID Connect configuration oidc makes for that address.
func startOIDCConsole(t *testing.T, logs *syncBuffer, oidc func(base string) *server.OIDCConfig) *uiEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
	ecfg := mxFast()
	s := mxStart(t, ecfg, uiPrincipals)
	srv, err := server.New(s.l, server.Config{Auth: s.auth, ReadRate: unlimitedReads, AdminReadRate: unlimitedReads,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Console: server.ConsoleConfig{OIDC: oidc(base)}})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	s.srv, s.h = srv, checkAPI(t, srv.Handler())
	ts := httptest.NewUnstartedServer(s.h)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Shutdown)
	s.url = base
	return &uiEnv{mxServer: s, ts: ts}
}

// middleware records the provider's requests and plays the provider's
// misbehaviours a test asks for.
func (o *oidcEnv) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		o.mu.Lock()
		switch r.URL.Path {
		case mockoidc.AuthorizationEndpoint:
			o.authorize = append(o.authorize, r.Form)
		case mockoidc.TokenEndpoint:
			if r.Form.Get("code") != "" {
				o.token = append(o.token, r.Form)
			}
		}
		o.mu.Unlock()
		if r.URL.Path == mockoidc.AuthorizationEndpoint {
			if o.consent.Load() && r.Form.Get("approved") == "" {
				consentPage(w, r.Form)
				return
			}
			if o.badNonce.Load() {
				r.Form.Set("nonce", "another-nonce")
			}
			if o.denied.Load() {
				q := url.Values{"error": {"access_denied"}, "error_description": {o.deny.Load().(string)}, "state": {r.Form.Get("state")}}
				http.Redirect(w, r, r.Form.Get("redirect_uri")+"?"+q.Encode(), http.StatusFound)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// consentPage is the provider's page where its user approves: a form
// that asks the authorization endpoint again, so that the navigation to
// the callback starts on the provider's site, as it does at real ones.
func consentPage(w http.ResponseWriter, form url.Values) {
	var b strings.Builder
	b.WriteString(`<!doctype html><title>Approve</title><form method="get" action="` + mockoidc.AuthorizationEndpoint + `">`)
	for k, vs := range form {
		for _, v := range vs {
			b.WriteString(`<input type="hidden" name="` + html.EscapeString(k) + `" value="` + html.EscapeString(v) + `">`)
		}
	}
	b.WriteString(`<input type="hidden" name="approved" value="1"><button id="approve">Approve</button></form>`)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(b.String()))
}

// signInOIDC signs in through the provider as user, following every
// redirect, and returns the page the callback answered with.
func (o *oidcEnv) signInOIDC(b *uiBrowser, user oidcUser) uiPage {
	b.t.Helper()
	o.m.QueueUser(user)
	return b.get("/ui/signin/oidc")
}

// toCallback goes to the provider and stops at the callback: its URL, not
// yet visited.
func (o *oidcEnv) toCallback(b *uiBrowser, user oidcUser) *url.URL {
	b.t.Helper()
	o.m.QueueUser(user)
	c := *b.c
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == server.OIDCCallbackPath {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(b.base + "/ui/signin/oidc")
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	u, err := resp.Location()
	if err != nil || u.Path != server.OIDCCallbackPath {
		b.t.Fatalf("the provider did not send the browser to the callback: %d %v %v", resp.StatusCode, u, err)
	}
	return u
}

// signedInAs asserts that the browser's session is name's.
func signedInAs(t *testing.T, b *uiBrowser, name, via string) {
	t.Helper()
	p := b.get("/ui/search")
	if p.status != http.StatusOK || p.url.Path != "/ui/search" || !strings.Contains(p.body, "Signed in as <strong>"+name+"</strong>") ||
		!strings.Contains(p.body, "via "+via) {
		t.Fatalf("after sign-in, /ui/search is %s (%d), want signed in as %s via %s: %.400s", p.url, p.status, name, via, p.body)
	}
}

// TestOIDCSignIn: the whole flow signs in the principal the claim names;
// the provider got a PKCE S256 challenge, a state and a nonce, and the
// token request carried the verifier; the callback answers with a page of
// this site that goes on to the page asked for; the log names the
// principal, never the code or the tokens.
func TestOIDCSignIn(t *testing.T) {
	o := startOIDC(t)
	b := o.browser(t)
	start := b.get("/ui/signin?next=/ui/patient")
	if !strings.Contains(start.body, `href="/ui/signin/oidc?next=%2fui%2fpatient"`) || !strings.Contains(start.body, "Sign in with OpenID Connect") {
		t.Fatalf("the sign-in page has no OpenID Connect link keeping next: %.2000s", start.body)
	}
	o.m.QueueUser(named("officer"))
	p := b.get("/ui/signin/oidc?next=/ui/patient")
	if p.status != http.StatusOK || p.url.Path != server.OIDCCallbackPath ||
		!strings.Contains(p.body, `<meta http-equiv="refresh" content="0;url=/ui/patient">`) || !strings.Contains(p.body, `href="/ui/patient"`) {
		t.Fatalf("callback answered %d at %s, want the continue page to /ui/patient: %.1500s", p.status, p.url, p.body)
	}
	host := strings.TrimPrefix(o.m.Addr(), "http://")
	signedInAs(t, b, "officer", "OpenID Connect ("+host+")")

	o.mu.Lock()
	az, tr := o.authorize[0], o.token[0]
	o.mu.Unlock()
	if az.Get("code_challenge_method") != "S256" || len(az.Get("state")) < 32 || len(az.Get("nonce")) < 32 ||
		az.Get("redirect_uri") != o.url+server.OIDCCallbackPath || !strings.Contains(az.Get("scope"), "openid") {
		t.Errorf("authorization request %v: want S256, a long state and nonce, the configured redirect and openid", az)
	}
	sum := sha256.Sum256([]byte(tr.Get("code_verifier")))
	if v := tr.Get("code_verifier"); len(v) < 43 || base64.RawURLEncoding.EncodeToString(sum[:]) != az.Get("code_challenge") {
		t.Errorf("token request's code_verifier %q does not hash to the challenge %q", v, az.Get("code_challenge"))
	}
	logs := o.logs.String()
	if !strings.Contains(logs, `msg="console sign-in" principal=officer via="OpenID Connect (`+host+`)" client=127.0.0.1`) {
		t.Errorf("no sign-in line naming the principal, via and client in the log:\n%s", logs)
	}
	for _, secret := range []string{tr.Get("code"), o.m.ClientSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a secret (%q):\n%s", secret, logs)
		}
	}
}

// TestOIDCFlowCookie: the flow's cookie is HttpOnly, SameSite=Lax (the
// callback arrives from the provider's site) and short-lived; the session
// cookie stays SameSite=Strict.
func TestOIDCFlowCookie(t *testing.T) {
	o := startOIDC(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(o.url + "/ui/signin/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), o.m.AuthorizationEndpoint()+"?") {
		t.Fatalf("GET /ui/signin/oidc: %d to %v, want a redirect to the provider", resp.StatusCode, loc)
	}
	var flow *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "trail-oidc" {
			flow = ck
		}
	}
	if flow == nil || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.MaxAge != 600 || flow.Path != "/" {
		t.Fatalf("flow cookie %+v: want trail-oidc, HttpOnly, SameSite=Lax, Max-Age=600, Path=/", flow)
	}
	o.m.QueueUser(named("officer"))
	resp, err = o.browser(t).c.Get(o.url + "/ui/signin/oidc") // the last answer is the callback's
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := map[string]*http.Cookie{}
	for _, ck := range resp.Cookies() {
		set[ck.Name] = ck
	}
	if ck := set["trail-session"]; ck == nil || ck.SameSite != http.SameSiteStrictMode || !ck.HttpOnly {
		t.Errorf("session cookie set by the callback: %+v, want HttpOnly and SameSite=Strict", ck)
	}
	if ck := set["trail-oidc"]; ck == nil || ck.MaxAge >= 0 {
		t.Errorf("the callback does not clear the flow cookie: %+v", ck)
	}
}

// TestOIDCRefused: callbacks that must not sign anyone in, each with the
// page saying why.
func TestOIDCRefused(t *testing.T) {
	o := startOIDC(t)
	cases := []struct {
		name   string
		run    func(b *uiBrowser) uiPage
		status int
		says   string
	}{
		{"state mismatch", func(b *uiBrowser) uiPage {
			u := o.toCallback(b, named("officer"))
			q := u.Query()
			q.Set("state", "forged"+q.Get("state"))
			u.RawQuery = q.Encode()
			return b.get(u.RequestURI())
		}, http.StatusBadRequest, "does not belong to the sign-in this browser started"},
		{"callback in another browser (login CSRF)", func(b *uiBrowser) uiPage {
			u := o.toCallback(b, named("officer"))
			return o.browser(t).get(u.RequestURI())
		}, http.StatusBadRequest, "No sign-in through the identity provider is in progress in this browser"},
		{"replayed callback", func(b *uiBrowser) uiPage {
			u := o.toCallback(b, named("officer"))
			if p := b.get(u.RequestURI()); p.status != http.StatusOK {
				t.Fatalf("first callback: %d: %.300s", p.status, p.body)
			}
			return b.get(u.RequestURI())
		}, http.StatusBadRequest, "was already completed"},
		{"replayed callback with the flow cookie copied", func(b *uiBrowser) uiPage {
			u := o.toCallback(b, named("officer"))
			base, _ := url.Parse(b.base)
			kept := b.c.Jar.Cookies(base)
			if p := b.get(u.RequestURI()); p.status != http.StatusOK {
				t.Fatalf("first callback: %d: %.300s", p.status, p.body)
			}
			thief := o.browser(t)
			thief.c.Jar.SetCookies(base, kept)
			p := thief.get(u.RequestURI())
			if q := thief.get("/ui/search"); q.url.Path != "/ui/signin" {
				t.Errorf("a copied flow cookie and callback signed another browser in: /ui/search is %s", q.url)
			}
			return p
		}, http.StatusBadGateway, "did not accept this sign-in&#39;s code"}, // the provider's codes serve once; so do the flows (Claim)
		{"wrong nonce", func(b *uiBrowser) uiPage {
			o.badNonce.Store(true)
			defer o.badNonce.Store(false)
			return o.signInOIDC(b, named("officer"))
		}, http.StatusUnauthorized, "its nonce differs"},
		{"unknown principal", func(b *uiBrowser) uiPage { return o.signInOIDC(b, named("nobody")) },
			http.StatusForbidden, `claim &#34;preferred_username&#34; names &#34;nobody&#34;, who is not an active principal`},
		{"no claim", func(b *uiBrowser) uiPage { return o.signInOIDC(b, oidcUser{sub: "x"}) },
			http.StatusForbidden, `your identity carries no claim &#34;preferred_username&#34;`},
		{"admin", func(b *uiBrowser) uiPage { return o.signInOIDC(b, named("admin")) },
			http.StatusForbidden, `is &#34;admin&#34;, a name that may not sign in here`},
		{"trail name", func(b *uiBrowser) uiPage { return o.signInOIDC(b, named("trail-syslog")) },
			http.StatusForbidden, `is &#34;trail-syslog&#34;, a name that may not sign in here`},
		{"bad patient id", func(b *uiBrowser) uiPage {
			return o.signInOIDC(b, oidcUser{sub: "p", claims: map[string]any{"patient_id": "12/../34"}})
		}, http.StatusForbidden, `claim &#34;patient_id&#34; is &#34;12/../34&#34;, which is not a patient identifier`},
		{"provider error", func(b *uiBrowser) uiPage {
			o.deny.Store(`<script>alert("x")</script> user said no`)
			o.denied.Store(true)
			defer o.denied.Store(false)
			return o.signInOIDC(b, named("officer"))
		}, http.StatusUnauthorized, `did not sign you in: access_denied (&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; user said no)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := o.browser(t)
			p := tc.run(b)
			if p.status != tc.status || !strings.Contains(p.body, tc.says) {
				t.Fatalf("callback answered %d, want %d saying %q: %.3000s", p.status, tc.status, tc.says, p.body)
			}
			if strings.Contains(p.body, "<script>alert") {
				t.Errorf("the page holds the provider's text unescaped")
			}
			kept := strings.HasPrefix(tc.name, "replayed callback") // the first callback's session stays
			if p := b.get("/ui/search"); !kept && p.url.Path != "/ui/signin" {
				t.Errorf("after a refused callback, /ui/search is %s, want the sign-in page", p.url)
			}
		})
	}
}

// TestOIDCPatient: a patient claim, with no principal of that name, signs
// in the patient's own principal.
func TestOIDCPatient(t *testing.T) {
	o := startOIDC(t)
	b := o.browser(t)
	u := oidcUser{sub: "p-123", claims: map[string]any{"preferred_username": "jane", "patient_id": "123"}}
	if p := o.signInOIDC(b, u); p.status != http.StatusOK {
		t.Fatalf("callback: %d: %.500s", p.status, p.body)
	}
	signedInAs(t, b, "patient:123", "OpenID Connect")
	// A number is an identifier too.
	b = o.browser(t)
	if p := o.signInOIDC(b, oidcUser{sub: "p-456", claims: map[string]any{"patient_id": 456}}); p.status != http.StatusOK {
		t.Fatalf("callback with a numeric patient id: %d: %.500s", p.status, p.body)
	}
	signedInAs(t, b, "patient:456", "OpenID Connect")
}

// TestOIDCRevoked: a principal signed in through the provider loses its
// session on the next request once revoked in the tokens file.
func TestOIDCRevoked(t *testing.T) {
	o := startOIDC(t)
	b := o.browser(t)
	if p := o.signInOIDC(b, named("dr-house")); p.status != http.StatusOK {
		t.Fatalf("callback: %d: %.500s", p.status, p.body)
	}
	signedInAs(t, b, "dr-house", "OpenID Connect")
	if err := auth.Revoke(o.dir, "dr-house", time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := b.get("/ui/search")
		if signedOut(p, "revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after revocation, /ui/search is still %s (%d)", p.url, p.status)
		}
		time.Sleep(server.PolicyReload / 2)
	}
	if p := o.signInOIDC(o.browser(t), named("dr-house")); p.status != http.StatusForbidden {
		t.Errorf("sign-in of a revoked principal: %d, want 403", p.status)
	}
}

// TestOIDCFailuresLimited: refused callbacks count against the client
// address like bad tokens: past the burst they get 429.
func TestOIDCFailuresLimited(t *testing.T) {
	o := startOIDC(t)
	b := o.browser(t)
	var last int
	for range 40 {
		last = b.get(server.OIDCCallbackPath + "?state=x&code=y").status
		if last == http.StatusTooManyRequests {
			break
		}
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("40 forged callbacks: the last answered %d, want 429", last)
	}
}

// TestOIDCFlowsNotExhausted: anyone may start sign-ins without signing in;
// the server keeps nothing of them (they travel sealed in their cookies),
// so a flood of started sign-ins never stops the next person from signing
// in.
func TestOIDCFlowsNotExhausted(t *testing.T) {
	o := startOIDC(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 10001; i += 4 {
				resp, err := c.Get(o.url + "/ui/signin/oidc")
				if err != nil {
					bad.Add(1)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of 10,001 started sign-ins were refused", n)
	}
	b := o.browser(t)
	if p := o.signInOIDC(b, named("officer")); p.status != http.StatusOK || p.url.Path != server.OIDCCallbackPath {
		t.Fatalf("after a flood of started sign-ins, a sign-in answered %d at %s: %.600s", p.status, p.url, p.body)
	}
	signedInAs(t, b, "officer", "OpenID Connect ("+strings.TrimPrefix(o.m.Addr(), "http://")+")")
}

// TestOIDCProviderDown: a provider that cannot be reached leaves the
// server and the other sign-ins working; its sign-in says so.
func TestOIDCProviderDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String() + "/oidc"
	ln.Close()
	logs := &syncBuffer{}
	e := startOIDCConsole(t, logs, func(base string) *server.OIDCConfig {
		return &server.OIDCConfig{Issuer: issuer, ClientID: "c", RedirectURL: base + server.OIDCCallbackPath, PrincipalClaim: "sub"}
	})
	b := e.browser(t)
	if p := b.get("/ui/signin/oidc"); p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "cannot be reached right now") ||
		!strings.Contains(p.body, strings.TrimPrefix(issuer, "http://")[:9]) {
		t.Errorf("sign-in with the provider down: %d: %.1500s", p.status, p.body)
	}
	b.signIn(e.tokens["officer"])
	if !strings.Contains(logs.String(), "OpenID Connect discovery failed") || !strings.Contains(logs.String(), issuer) {
		t.Errorf("the log does not say discovery failed, naming the issuer:\n%s", logs)
	}
}

// TestOIDCConfig: configurations that would not work, or not safely, are
// refused by server.New with what to fix.
func TestOIDCConfig(t *testing.T) {
	good := server.OIDCConfig{Issuer: "https://idp.example.org/realms/h", ClientID: "trail",
		RedirectURL: "https://trail.example.org" + server.OIDCCallbackPath, PrincipalClaim: "sub"}
	cases := []struct {
		name string
		edit func(c *server.OIDCConfig)
		says string
	}{
		{"plain http issuer", func(c *server.OIDCConfig) { c.Issuer = "http://idp.example.org" }, "want https"},
		{"relative issuer", func(c *server.OIDCConfig) { c.Issuer = "/idp" }, "absolute https URL"},
		{"no client", func(c *server.OIDCConfig) { c.ClientID = "" }, "no client id"},
		{"no redirect", func(c *server.OIDCConfig) { c.RedirectURL = "" }, "no redirect URL"},
		{"redirect elsewhere", func(c *server.OIDCConfig) { c.RedirectURL = "https://trail.example.org/cb" }, "its path must be " + server.OIDCCallbackPath},
		{"plain http redirect", func(c *server.OIDCConfig) { c.RedirectURL = "http://trail.example.org" + server.OIDCCallbackPath }, "want https"},
		{"no claim", func(c *server.OIDCConfig) { c.PrincipalClaim = "" }, "nobody could sign in"},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid configuration refused: %v", err)
	}
	loop := good
	loop.Issuer, loop.RedirectURL = "http://127.0.0.1:5556/dex", "http://localhost:7070"+server.OIDCCallbackPath
	if err := loop.Validate(); err != nil {
		t.Errorf("plain http on loopback refused: %v", err)
	}
	for _, tc := range cases {
		c := good
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: Validate() = %v, want an error saying %q", tc.name, err, tc.says)
		}
	}
	s := mxStart(t, mxFast(), nil)
	_, err := server.New(s.l, server.Config{AdminToken: server.NewToken(), Console: server.ConsoleConfig{OIDC: &good}})
	if err == nil || !strings.Contains(err.Error(), "principal claim needs principals found by name") {
		t.Errorf("New with the admin token only and a principal claim: %v", err)
	}
	bad := good
	bad.ClientID = ""
	if _, err := server.New(s.l, server.Config{Auth: s.auth, Console: server.ConsoleConfig{OIDC: &bad}}); err == nil || !strings.Contains(err.Error(), "no client id") {
		t.Errorf("New with an invalid OpenID Connect configuration: %v", err)
	}
}

// TestConsoleBrowserOIDC: in a real browser, "Sign in with OpenID Connect"
// goes to the provider (another site) and back, and the browser lands on
// the search page signed in as the principal the claim names, whether the
// provider approves at once or after its user clicks on its own page. In
// the second case the navigation to the callback starts on the provider's
// site, so the browser would not send the SameSite=Strict session cookie
// on a redirect from the callback: the console's own continue page makes
// the next navigation start on the console's site.
func TestConsoleBrowserOIDC(t *testing.T) {
	br := chromium(t)
	o := startOIDC(t)
	for _, consent := range []bool{false, true} {
		name := map[bool]string{false: "auto-approve", true: "consent-page"}[consent]
		t.Run(name, func(t *testing.T) {
			o.consent.Store(consent)
			tb := o.tab(t, br)
			tb.open("/ui/signin")
			tb.shot("signin-oidc")
			o.m.QueueUser(named("officer"))
			tb.run(chromedp.Click(chromedp.ID("signin-oidc")))
			if consent {
				tb.expect("/favicon.ico") // the provider's page has none
				tb.run(chromedp.WaitVisible(chromedp.ID("approve")), chromedp.Click(chromedp.ID("approve")))
			}
			ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("form.filters"))); err != nil {
				t.Fatalf("after sign-in the browser is at %s, not on the search page: %v", tb.location(), err)
			}
			tb.checkPage()
			if who := tb.text(".who strong"); who != "officer" {
				t.Errorf("the header names %q, want officer", who)
			}
			if via := tb.text(".who .via"); !strings.HasPrefix(via, "via OpenID Connect (127.0.0.1:") {
				t.Errorf("the header says %q, want via OpenID Connect (127.0.0.1:…)", via)
			}
			tb.shot("oidc-signed-in-" + name)
			tb.clean()
		})
	}
}

// TestConsoleBrowserOIDCPatient: a clinician reads two patients' records; a
// patient signs in through the hospital's provider, whose ID token names
// them by a patient claim, lands on their own record and sees that
// clinician's read of it, and nothing of the other patient.
func TestConsoleBrowserOIDCPatient(t *testing.T) {
	br := chromium(t)
	o := startOIDC(t)
	mxAppend(t, o.l,
		uiEvent("7", "lab-result.create", "C", "lab-system", "", "", ""),
		uiEvent("70", "prescription.create", "C", "dr-wilson", "James Wilson", "oncologist", ""))
	for _, path := range []string{"/v1/events?patient=7&purpose=treatment", "/v1/events?patient=70&purpose=treatment"} {
		if st := o.apiRead(t, "dr-house", path); st != http.StatusOK {
			t.Fatalf("clinician's read %s: %d", path, st)
		}
	}
	tb := o.tab(t, br)
	tb.open("/ui/signin")
	o.m.QueueUser(oidcUser{sub: "portal-user-1", claims: map[string]any{"patient_id": "7"}})
	tb.run(chromedp.Click(chromedp.ID("signin-oidc")))
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("table.access"))); err != nil {
		t.Fatalf("after sign-in the browser is at %s, not on the patient's record: %v", tb.location(), err)
	}
	tb.checkPage()
	if loc, who := tb.location(), tb.text(".who strong"); loc != "/ui/me" || who != "patient:7" {
		t.Errorf("signed in at %s as %q, want /ui/me as patient:7", loc, who)
	}
	rows := tb.rows("table.access")
	seen := false
	for _, r := range rows {
		seen = seen || strings.Contains(r, "dr-house") && strings.Contains(r, "patient=7")
		if strings.Contains(r, "=70") || strings.Contains(r, "patient/70") {
			t.Errorf("patient 7 sees a read of patient 70: %q", r)
		}
	}
	if !seen {
		t.Errorf("patient 7 does not see dr-house's read of their record: %q", rows)
	}
	if body := tb.text("main"); strings.Contains(body, "prescription.create") || strings.Contains(body, "dr-wilson") {
		t.Errorf("patient 7's record shows patient 70's event")
	}
	tb.shot("oidc-patient-my-record")
	tb.clean()
}
