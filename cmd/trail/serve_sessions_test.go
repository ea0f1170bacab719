package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/trailhq/trail/internal/pgtest"
	"github.com/trailhq/trail/server"
)

// consoleBrowser is a cookie-keeping HTTP client of the console that
// follows no redirects, so that each answer can be looked at.
type consoleBrowser struct {
	t  *testing.T
	hc *http.Client
}

func newConsoleBrowser(t *testing.T) *consoleBrowser {
	jar, _ := cookiejar.New(nil)
	return &consoleBrowser{t: t, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do asks base+path and returns the status, the Location and the body.
func (b *consoleBrowser) do(method, base, path string, form url.Values) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	bb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(bb)
}

// The cookie jar keys cookies by host: every process listens on 127.0.0.1,
// so a cookie set by one is sent to the others, as a browser behind a load
// balancer would.
var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *consoleBrowser) signIn(base, token string) {
	b.t.Helper()
	_, _, page := b.do("GET", base, "/ui/signin", nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token on the sign-in page of %s", base)
	}
	code, loc, body := b.do("POST", base, "/ui/signin", url.Values{"csrf": {m[1]}, "token": {token}})
	if code != http.StatusSeeOther || strings.HasPrefix(loc, "/ui/signin") {
		b.t.Fatalf("sign-in at %s: %d %s %.300s", base, code, loc, body)
	}
}

// page asks for a console page and says whether it was served to a
// signed-in session (200) or sent to sign in, with why.
func (b *consoleBrowser) page(base, path string) (signedIn bool, ended string, body string) {
	b.t.Helper()
	code, loc, body := b.do("GET", base, path, nil)
	switch {
	case code == http.StatusOK:
		return true, "", body
	case code == http.StatusSeeOther && strings.HasPrefix(loc, "/ui/signin"):
		u, _ := url.Parse(loc)
		return false, u.Query().Get("ended"), body
	}
	b.t.Fatalf("GET %s%s: %d %s %.300s", base, path, code, loc, body)
	return false, "", ""
}

// TestServePostgresConsoleSessions: with --store, console sessions live in
// the database. A sign-in at one process is honoured by the other and
// survives a restart of the process that made it; a sign-out at either ends
// it at both; revoking the principal (trail token revoke --store) ends its
// sessions everywhere on their next request. The database holds no token
// and no cookie value: only their SHA-256.
func TestServePostgresConsoleSessions(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	base := t.TempDir()
	keyFile := filepath.Join(base, "signing.key")
	a := pgServe(t, c, keyFile, filepath.Join(base, "a"), "")
	b := pgServe(t, c, keyFile, filepath.Join(base, "b"), "")

	out, errOut, code := runTrail(t, "token", "create", "--store", c.ConnString(), "--name", "officer", "--read", "patient/*")
	if code != 0 {
		t.Fatalf("token create --store: exit %d: %s", code, errOut)
	}
	officer := strings.TrimSpace(out)
	waitStatus(t, 2*time.Second, "GET", "/v1/events?stream=patient/1", officer, "", http.StatusOK, a, b)

	br := newConsoleBrowser(t)
	br.signIn(a.url, officer)
	for _, p := range []*serveProc{a, b} {
		if in, why, body := br.page(p.url, "/ui/search"); !in {
			t.Fatalf("the session made at the first process, at %s: sent to sign in (%q)\n%.300s", p.url, why, body)
		} else if !strings.Contains(body, "officer") {
			t.Errorf("the search page at %s does not name the principal signed in", p.url)
		}
	}

	// The database holds the SHA-256 of the token and of the cookie's id,
	// never either of them.
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dump string
	if err := conn.QueryRow(ctx, `SELECT string_agg(concat_ws(' ', encode(key, 'hex'), principal, kind,
		encode(credential, 'hex'), encode(credential, 'escape'), via), E'\n') FROM trail_console_sessions`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte(officer))
	if strings.Contains(dump, officer) || !strings.Contains(dump, "token") || !strings.Contains(dump, hex.EncodeToString(hash[:])) {
		t.Errorf("the sessions table holds %q; want the token's SHA-256 and not the token", dump)
	}
	u, _ := url.Parse(a.url)
	for _, ck := range br.hc.Jar.Cookies(u) {
		if strings.Contains(dump, ck.Value) {
			t.Errorf("the sessions table holds cookie %s's value", ck.Name)
		}
	}

	// The process that made the session stops and starts again: the
	// session goes on.
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-a.exited; err != nil {
		t.Fatalf("trail serve after SIGTERM: %v\n%s", err, a.log())
	}
	a = pgServe(t, c, keyFile, filepath.Join(base, "a"), "")
	if in, why, _ := br.page(a.url, "/ui/search"); !in {
		t.Fatalf("the session after its process restarted: sent to sign in (%q)", why)
	}

	// Sign-out at b ends the session at a.
	_, _, page := br.do("GET", b.url, "/ui/search", nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-out form on the search page")
	}
	kept := br.hc.Jar.Cookies(u) // the cookie as one copied before sign-out would hold it
	if code, loc, _ := br.do("POST", b.url, "/ui/signout", url.Values{"csrf": {m[1]}}); code != http.StatusSeeOther || !strings.Contains(loc, "signout") {
		t.Fatalf("sign-out at the second process: %d %s", code, loc)
	}
	br.hc.Jar.SetCookies(u, kept)
	if in, why, _ := br.page(a.url, "/ui/search"); in || why != "signout" {
		t.Errorf("a session signed out at one process, at the other: signed in %v, ended %q; want ended signout", in, why)
	}

	// A session of a principal revoked at the database ends at both.
	br2 := newConsoleBrowser(t)
	br2.signIn(b.url, officer)
	br3 := newConsoleBrowser(t)
	br3.signIn(a.url, officer)
	if _, errOut, code := runTrail(t, "token", "revoke", "--store", c.ConnString(), "officer"); code != 0 {
		t.Fatalf("token revoke --store: exit %d: %s", code, errOut)
	}
	for _, tc := range []struct {
		br *consoleBrowser
		p  *serveProc
	}{{br2, a}, {br3, b}} {
		deadline := time.Now().Add(3 * time.Second)
		for {
			in, why, _ := tc.br.page(tc.p.url, "/ui/search")
			if !in {
				if why != "revoked" {
					t.Errorf("a revoked principal's session at %s ended with %q, want revoked", tc.p.url, why)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a revoked principal's session still serves pages at %s after 3 s", tc.p.url)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestServePostgresOIDCAcrossProcesses: with --store, an OpenID Connect
// sign-in started at one process finishes at another (the provider sends
// the browser to the second's callback, as a load balancer might): the
// sign-in in progress travels sealed in its cookie under a key both derive
// from the signing key file, and the session is the database's.
func TestServePostgresOIDCAcrossProcesses(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	c := pgtest.Start(t)
	base := t.TempDir()
	keyFile := filepath.Join(base, "signing.key")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrB := ln.Addr().String()
	ln.Close()
	oidc := []string{"--oidc-issuer", m.Issuer(), "--oidc-client-id", m.ClientID,
		"--oidc-client-secret-file", writeSecret(t, m.ClientSecret, 0o600),
		"--oidc-redirect-url", "http://" + addrB + server.OIDCCallbackPath}
	a := pgServe(t, c, keyFile, filepath.Join(base, "a"), "", oidc...)
	b := pgServe(t, c, keyFile, filepath.Join(base, "b"), "", append(oidc, "--listen", addrB)...)
	if _, errOut, code := runTrail(t, "token", "create", "--store", c.ConnString(), "--name", "officer", "--read", "patient/*"); code != 0 {
		t.Fatalf("token create --store: exit %d: %s", code, errOut)
	}
	time.Sleep(time.Second) // both processes see the new principal (policy polled every 250 ms)

	m.QueueUser(&mockoidc.MockUser{Subject: "officer"})
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := hc.Get(a.url + "/ui/signin/oidc")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Host != addrB || resp.StatusCode != http.StatusOK {
		t.Fatalf("the sign-in started at %s ended at %s with %d: %.500s\nlogs:\n%s\n%s", a.url, resp.Request.URL, resp.StatusCode, body, a.log(), b.log())
	}
	br := &consoleBrowser{t: t, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, p := range []*serveProc{a, b} {
		if in, why, body := br.page(p.url, "/ui/search"); !in || !strings.Contains(body, "Signed in as <strong>officer</strong>") {
			t.Errorf("after the sign-in, /ui/search at %s: signed in %v (%q): %.300s", p.url, in, why, body)
		}
	}
}
