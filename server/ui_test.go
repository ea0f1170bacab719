package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// uiRecord is a read record as the console's tests look at it.
type uiRecord struct {
	Index   uint64 `json:"index"`
	Time    string `json:"time"`
	Outcome string `json:"outcome"`
	Patient string `json:"patient"`
	Purpose string `json:"purpose"`
	Actor   struct {
		ID        string `json:"id"`
		Role      string `json:"role"`
		Address   string `json:"address"`
		UserAgent string `json:"user_agent"`
	} `json:"actor"`
	Details struct {
		Endpoint string            `json:"endpoint"`
		Params   map[string]string `json:"params"`
		Count    int               `json:"count"`
		Reason   string            `json:"reason"`
	} `json:"details"`
}

func parseUIRecord(t testing.TB, b []byte) uiRecord {
	t.Helper()
	var r uiRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("read record %s: %v", b, err)
	}
	return r
}

// TestConsoleHeaders: every console answer (pages, denied pages, static
// files, unknown pages, the sign-in form) carries the contract's CSP word
// for word, no-store, no-referrer and nosniff; the session cookie on plain
// HTTP loopback is trail-session, HttpOnly and SameSite=Strict.
func TestConsoleHeaders(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, trail.Event{Stream: "patient/123", Type: "patient-record.read", Action: "R", Actor: trail.Actor{ID: "nurse-1"}, Patient: "123"})
	b := e.browser(t)
	check := func(p uiPage) {
		t.Helper()
		for h, want := range map[string]string{
			"Content-Security-Policy": consoleCSP, "Cache-Control": "no-store",
			"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
		} {
			if got := p.header.Get(h); got != want {
				t.Errorf("%s (%d): %s = %q, want %q", p.url.Path, p.status, h, got, want)
			}
		}
	}
	check(b.get("/ui/signin"))
	login := b.get("/ui/signin")
	signin := b.post("/ui/signin", url.Values{"csrf": {csrf(t, login)}, "token": {e.tokens["billing"]}})
	check(signin)
	var sess *http.Cookie
	for _, c := range b.c.Jar.Cookies(signin.url) {
		if c.Name == "trail-session" {
			sess = c
		}
	}
	if sess == nil {
		t.Fatalf("no trail-session cookie after sign-in")
	}
	// The jar does not keep attributes: look at a Set-Cookie header itself.
	req, _ := http.NewRequest(http.MethodPost, e.url+"/ui/signin", strings.NewReader(url.Values{"csrf": {"n"}, "token": {e.tokens["billing"]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "trail-signin", Value: "n"})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"trail-session=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie at sign-in lacks %q: %s", want, set)
		}
	}
	if strings.Contains(set, "Secure") || strings.Contains(set, "__Host-") {
		t.Errorf("plain HTTP loopback sets a Secure or __Host- cookie the browser would drop: %s", set)
	}
	for _, path := range []string{"/ui/search", "/ui/search?stream=patient/123", "/ui/events/0", "/ui/patient?patient=123",
		"/ui/patient/access.csv?patient=123", "/ui/static/verify.js", "/ui/no-such-page", "/ui/"} {
		check(b.get(path))
	}
}

// TestConsoleCSRF: a POST without the form's token, or with another one,
// is refused with 403 and changes nothing (the session stays); sign-in
// needs the token of its own form (double-submit cookie).
func TestConsoleCSRF(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	b := e.browser(t)
	page := b.signIn(e.tokens["officer"])
	for _, form := range []url.Values{{}, {"csrf": {"forged"}}, {"csrf": {""}}} {
		if p := b.post("/ui/signout", form); p.status != http.StatusForbidden || !strings.Contains(p.body, "security token") {
			t.Errorf("sign-out with csrf=%q answered %d at %s, want 403 saying why", form.Get("csrf"), p.status, p.url)
		}
	}
	if p := b.get("/ui/search"); p.status != http.StatusOK || p.url.Path != "/ui/search" {
		t.Fatalf("session ended by a refused POST: %d at %s", p.status, p.url)
	}
	// Sign-in: the token of another browser's form does not do.
	other := e.browser(t)
	theirs := csrf(t, other.get("/ui/signin"))
	b2 := e.browser(t)
	b2.get("/ui/signin")
	if p := b2.post("/ui/signin", url.Values{"csrf": {theirs}, "token": {e.tokens["officer"]}}); p.status != http.StatusForbidden {
		t.Errorf("sign-in with another form's CSRF token answered %d at %s, want 403", p.status, p.url)
	}
	if p := b2.post("/ui/signin", url.Values{"token": {e.tokens["officer"]}}); p.status != http.StatusForbidden {
		t.Errorf("sign-in without a CSRF token answered %d, want 403", p.status)
	}
	// With its token, sign-out works.
	if p := b.post("/ui/signout", url.Values{"csrf": {csrf(t, page)}}); !signedOut(p, "signout") {
		t.Errorf("sign-out ended at %s", p.url)
	}
}

// TestConsoleSessionLifetime: a session ends after Idle without a page
// asked for, even while the page's scripts keep calling (automatic
// requests do not extend it); and after MaxAge however busy it is.
func TestConsoleSessionLifetime(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		e := startUI(t, server.ConsoleConfig{Idle: 1500 * time.Millisecond})
		mxAppend(t, e.l, trail.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "a"}})
		e.waitCheckpoint(t)
		b := e.browser(t)
		b.signIn(e.tokens["officer"])
		for range 4 { // background calls for 2 s
			time.Sleep(500 * time.Millisecond)
			req, _ := http.NewRequest(http.MethodGet, e.url+"/ui/events/0/proof", nil)
			req.Header.Set("X-Trail-Background", "1")
			b.do(req)
		}
		if p := b.get("/ui/search"); !signedOut(p, "idle") || !strings.Contains(p.body, "without activity") {
			t.Errorf("after 2s of background calls only, a page answered %d at %s; want the sign-in page saying the session was idle", p.status, p.url)
		}
	})
	t.Run("max age", func(t *testing.T) {
		e := startUI(t, server.ConsoleConfig{MaxAge: 1500 * time.Millisecond})
		b := e.browser(t)
		b.signIn(e.tokens["officer"])
		for range 3 {
			time.Sleep(400 * time.Millisecond)
			if p := b.get("/ui/search"); p.url.Path != "/ui/search" {
				t.Fatalf("session ended early, at %s", p.url)
			}
		}
		time.Sleep(500 * time.Millisecond)
		if p := b.get("/ui/search"); !signedOut(p, "expired") || !strings.Contains(p.body, "maximum length") {
			t.Errorf("after MaxAge a page answered %d at %s, want the sign-in page saying the session expired", p.status, p.url)
		}
	})
}

// TestConsoleSignOutAndRevoke: after sign-out the session cookie (sent
// again as it was) opens nothing; a revoked token's session ends on its
// next request, and so does a session whose token was revoked while the
// server had not yet seen it used.
func TestConsoleSignOutAndRevoke(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	b := e.browser(t)
	page := b.signIn(e.tokens["officer"])
	u, _ := url.Parse(e.url)
	old := b.c.Jar.Cookies(u)
	if p := b.post("/ui/signout", url.Values{"csrf": {csrf(t, page)}}); !signedOut(p, "signout") {
		t.Fatalf("sign-out ended at %s", p.url)
	}
	replay := e.browser(t)
	replay.c.Jar.SetCookies(u, old)
	if p := replay.get("/ui/search"); p.url.Path != "/ui/signin" {
		t.Errorf("the cookie of a signed-out session still opens %s", p.url)
	}

	b = e.browser(t)
	b.signIn(e.tokens["dr-house"])
	if err := auth.Revoke(e.dir, "dr-house", time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		p := b.get("/ui/search")
		if signedOut(p, "revoked") {
			if !strings.Contains(p.body, "no longer valid") {
				t.Errorf("the sign-in page after revocation does not say why: %.400s", p.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3s after revocation the session still opens %s", p.url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p := b.get("/ui/search"); p.url.Path != "/ui/signin" {
		t.Errorf("the revoked session came back at %s", p.url)
	}
	if p := b.post("/ui/signin", url.Values{"csrf": {csrf(t, b.get("/ui/signin"))}, "token": {e.tokens["dr-house"]}}); p.status != http.StatusUnauthorized {
		t.Errorf("sign-in with a revoked token answered %d, want 401", p.status)
	}
}

// TestConsoleTransport: plain HTTP from another host is refused with a page
// that says why; through a trusted proxy that says the browser used HTTPS
// it is served, with the __Host- cookie marked Secure.
func TestConsoleTransport(t *testing.T) {
	ecfg := mxFast()
	s := mxStart(t, ecfg, uiPrincipals)
	proxies, _ := server.ParseProxies([]string{"192.0.2.10"})
	srv, err := server.New(s.l, server.Config{Auth: s.auth, TrustedProxies: proxies})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	h := srv.Handler()

	req := httptest.NewRequest(http.MethodGet, "/ui/signin", nil)
	req.RemoteAddr = "198.51.100.7:5555"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "HTTPS") || w.Header().Get("Set-Cookie") != "" {
		t.Errorf("plain HTTP from another host: %d, cookie %q, body %.300s; want 403 explaining HTTPS, no cookie", w.Code, w.Header().Get("Set-Cookie"), w.Body)
	}
	if got := w.Header().Get("Content-Security-Policy"); got != consoleCSP {
		t.Errorf("refusal page CSP %q", got)
	}

	req = httptest.NewRequest(http.MethodGet, "/ui/signin", nil)
	req.RemoteAddr = "192.0.2.10:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("X-Forwarded-Proto", "https")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	set := w.Header().Get("Set-Cookie")
	if w.Code != http.StatusOK || !strings.HasPrefix(set, "__Host-trail-signin=") || !strings.Contains(set, "Secure") {
		t.Errorf("through a trusted TLS proxy: %d, Set-Cookie %q; want 200 and a Secure __Host- cookie", w.Code, set)
	}
	req.Header.Set("X-Forwarded-Proto", "http")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Errorf("through a trusted proxy over plain HTTP for a remote client: %d, want 403", w.Code)
	}
}

// TestConsoleClientCertificate: over mTLS the sign-in page offers to
// continue as the certificate's CN; doing so (with the form's CSRF token)
// opens a session in a Secure __Host- cookie whose reads are that
// principal's, recorded as such.
func TestConsoleClientCertificate(t *testing.T) {
	s := mxStart(t, mxFast(), uiPrincipals)
	m := mxServeTLS(t, s)
	mxAppend(t, s.l, trail.Event{Stream: "patient/9", Type: "t", Action: "R", Actor: trail.Actor{ID: "a"}, Patient: "9"})
	leaf := m.ca.issue(t, "officer", false)
	c := m.client(t, m.clientConf(&leaf.tls, false))
	b := &uiBrowser{t: t, base: m.url, c: c}
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := b.get("/ui/signin")
	if !strings.Contains(p.body, "Continue as officer") {
		t.Fatalf("the sign-in page over mTLS does not offer the certificate's principal: %.600s", p.body)
	}
	form := url.Values{"csrf": {csrf(t, p)}}
	req, _ := http.NewRequest(http.MethodPost, m.url+"/ui/signin/certificate", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "__Host-trail-signin="+csrf(t, p))
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-trail-session" && ck.Value != "" {
			sess = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Fatalf("certificate sign-in: %d, cookies %v; want 303 and a Secure HttpOnly SameSite=Strict __Host-trail-session", resp.StatusCode, resp.Cookies())
	}
	// Another connection without the certificate, with the cookie: the
	// session's principal reads.
	plain := m.client(t, m.clientConf(nil, false))
	req, _ = http.NewRequest(http.MethodGet, m.url+"/ui/patient?patient=9", nil)
	req.AddCookie(sess)
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("patient page in the certificate's session: %d", resp.StatusCode)
	}
	recs := (&uiEnv{mxServer: s}).accessRecords(t, "9")
	if len(recs) == 0 || recs[0].Actor.ID != "officer" {
		t.Errorf("the console's read is not recorded as the certificate's principal: %+v", recs)
	}
}

// TestConsoleReadAudit: a console search leaves the API's read record:
// endpoint GET /v1/events, the filters as parameters, the principal, the
// browser's address and user agent, the patient named; a refused one is
// recorded as refused, and the page names the missing grant.
func TestConsoleReadAudit(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, trail.Event{Stream: "patient/55", Type: "t", Action: "R", Actor: trail.Actor{ID: "a"}, Patient: "55"})
	b := e.browser(t)
	b.signIn(e.tokens["dr-house"])
	req, _ := http.NewRequest(http.MethodGet, e.url+"/ui/search?patient=55&actor=&stream=&type=&action=R&outcome=&since=&until=", nil)
	req.Header.Set("User-Agent", "console-test/1")
	if p := b.do(req); p.status != http.StatusOK || !strings.Contains(p.body, `href="/ui/events/0"`) {
		t.Fatalf("search: %d %.500s", p.status, p.body)
	}
	recs := e.accessRecords(t, "55")
	if len(recs) != 1 {
		t.Fatalf("%d read records name patient 55, want 1", len(recs))
	}
	r := recs[0]
	wantParams := map[string]string{"patient": "55", "action": "R", "limit": "50", "order": "desc"}
	if r.Details.Endpoint != "GET /v1/events" || r.Actor.ID != "dr-house" || r.Actor.Role != "physician" || r.Actor.UserAgent != "console-test/1" ||
		r.Actor.Address != "127.0.0.1" || r.Outcome != "success" || r.Details.Count != 1 || !equalMaps(r.Details.Params, wantParams) {
		t.Errorf("read record %+v; want the API's record of GET /v1/events with %v by dr-house, physician", r, wantParams)
	}

	b = e.browser(t)
	b.signIn(e.tokens["billing"])
	p := b.get("/ui/search?stream=patient/55")
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "Access denied") ||
		!strings.Contains(p.body, `principal &#34;billing&#34; has no read grant for stream &#34;patient/55&#34;`) {
		t.Errorf("denied search: %d %.1500s", p.status, p.body)
	}
	recs = e.accessRecords(t, "55")
	if len(recs) != 2 || recs[0].Actor.ID != "billing" || recs[0].Outcome != "minor-failure" {
		t.Errorf("the refused console read is not recorded as refused: %+v", recs)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestConsoleSessionTableBounded: past MaxSessions live sessions a sign-in
// gets 503 and a page saying so; one principal's many sign-ins replace its
// own oldest sessions instead of filling the table.
func TestConsoleSessionTableBounded(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{MaxSessions: 40})
	first := e.browser(t)
	first.signIn(e.tokens["officer"])
	for range 40 { // more than one principal may hold (32)
		e.browser(t).signIn(e.tokens["officer"])
	}
	if p := first.get("/ui/search"); p.url.Path != "/ui/signin" {
		t.Errorf("a principal's oldest session outlived 40 newer ones of its own (at most 32 are kept)")
	}
	for range 8 {
		e.browser(t).signIn(e.tokens["dr-house"])
	}
	b := e.browser(t)
	p := b.get("/ui/signin")
	p = b.post("/ui/signin", url.Values{"csrf": {csrf(t, p)}, "token": {e.tokens["billing"]}})
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "too many open sessions") {
		t.Errorf("sign-in with a full table: %d %.300s; want 503 saying why", p.status, p.body)
	}
}

// TestConsoleSignInFailures: a wrong token is refused with 401 and a page
// that says so; failed sign-ins count against the address as failed API
// requests do, so guessing tokens through the form is slowed down (429),
// while a valid token still signs in from that address.
func TestConsoleSignInFailures(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	b := e.browser(t)
	p := b.get("/ui/signin")
	p = b.post("/ui/signin", url.Values{"csrf": {csrf(t, p)}, "token": {"trail_wrong"}})
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "That token was not accepted") {
		t.Fatalf("wrong token: %d %.300s", p.status, p.body)
	}
	limited := false
	for range 30 {
		p = b.post("/ui/signin", url.Values{"csrf": {csrf(t, p)}, "token": {"trail_wrong"}})
		if p.status == http.StatusTooManyRequests {
			limited = strings.Contains(p.body, "Too many failed sign-ins")
			break
		}
	}
	if !limited {
		t.Errorf("30 wrong tokens in a row were never limited (last: %d)", p.status)
	}
	b.signIn(e.tokens["officer"]) // fails the test unless it lands on the search page
}

// TestConsoleDisabled: with the console disabled /ui/ is the API's 404.
func TestConsoleDisabled(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{Disabled: true})
	p := e.browser(t).get("/ui/signin")
	if p.status != http.StatusNotFound || p.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("disabled console: %d %s", p.status, p.header.Get("Content-Type"))
	}
}
