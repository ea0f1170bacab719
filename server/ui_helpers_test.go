package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// consoleCSP is the Content-Security-Policy the contract fixes, word for
// word.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// uiEnv is a server with a tokens file (so tokens can be revoked while it
// runs), served on loopback, for the console's tests.
type uiEnv struct {
	*mxServer
	ts *httptest.Server
}

// The principals of the console's tests.
var uiPrincipals = []auth.Entry{
	{Name: "officer", Read: []string{"patient/*", "trail/access"}},
	{Name: "dr-house", Read: []string{"patient/*"}, Role: "physician"},
	{Name: "billing", Read: []string{"billing/*"}},
	{Name: "er-doc", BreakGlass: true},
	{Name: "patient-7", Patient: "7"},
	{Name: "reviewer", Review: true},
	{Name: "er-reviewer", BreakGlass: true, Review: true},
}

// startUI starts a server whose checkpoints follow the log closely, with
// the console configured by cfg.
func startUI(t testing.TB, cfg server.ConsoleConfig) *uiEnv {
	t.Helper()
	return startUIWith(t, server.Config{Console: cfg})
}

// startUIWith is startUI with more of the server's configuration: its
// principals, read rates and console are the tests' own.
func startUIWith(t testing.TB, scfg server.Config) *uiEnv {
	t.Helper()
	ecfg := mxFast()
	ecfg.CheckpointInterval = 50 * time.Millisecond
	s := mxStart(t, ecfg, uiPrincipals)
	scfg.Auth, scfg.ReadRate, scfg.AdminReadRate = s.auth, unlimitedReads, unlimitedReads
	srv, err := server.New(s.l, scfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	s.srv, s.h = srv, checkAPI(t, srv.Handler())
	ts := httptest.NewServer(s.h)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Shutdown)
	s.url = ts.URL
	return &uiEnv{mxServer: s, ts: ts}
}

// waitCheckpoint waits until a signed checkpoint covers the whole log.
func (e *uiEnv) waitCheckpoint(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.l.Checkpoint().Size < e.l.Size() {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers the log's %d events after 10s", e.l.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiRead makes an API read with a principal's token (the admin's for
// auth.AdminName) and returns the status.
func (e *uiEnv) apiRead(t testing.TB, name, path string) int {
	t.Helper()
	tok := e.tokens[name]
	if name == auth.AdminName {
		tok = string(e.admin)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// accessRecords returns the records of trail/access that name patient,
// newest first, read from the engine.
func (e *uiEnv) accessRecords(t testing.TB, patient string) []uiRecord {
	t.Helper()
	res, err := e.l.Query(context.Background(), trail.Query{Stream: "trail/access", Patient: patient, Desc: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]uiRecord, len(res.Events))
	for i, b := range res.Events {
		out[i] = parseUIRecord(t, b)
	}
	return out
}

// systemReads counts the records of trail/access of reads with
// purpose=system, read from the engine.
func (e *uiEnv) systemReads(t testing.TB) int {
	t.Helper()
	res, err := e.l.Query(context.Background(), trail.Query{Stream: "trail/access", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range res.Events {
		if r := parseUIRecord(t, b); r.Purpose == "system" && r.Actor.ID == auth.AdminName {
			n++
		}
	}
	return n
}

// uiBrowser is an HTTP client that keeps cookies and follows redirects,
// like a browser without scripts.
type uiBrowser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func (e *uiEnv) browser(t testing.TB) *uiBrowser {
	jar, _ := cookiejar.New(nil)
	return &uiBrowser{t: t, base: e.url, c: &http.Client{Jar: jar}}
}

// uiPage is an answer of the console, read whole.
type uiPage struct {
	status int
	url    *url.URL // after redirects
	header http.Header
	body   string
}

func (b *uiBrowser) do(req *http.Request) uiPage {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return uiPage{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
}

func (b *uiBrowser) get(path string) uiPage {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *uiBrowser) post(path string, form url.Values) uiPage {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of a page's first form.
func csrf(t testing.TB, p uiPage) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page %s (status %d)", p.url, p.status)
	}
	return m[1]
}

// signIn signs in with a token through the form and returns the search page.
func (b *uiBrowser) signIn(token string) uiPage {
	b.t.Helper()
	return b.signInTo(token, "/ui/search")
}

// signInTo signs in with a token through the form and returns the page it
// lands on, which must be path.
func (b *uiBrowser) signInTo(token, path string) uiPage {
	b.t.Helper()
	p := b.get("/ui/signin")
	p = b.post("/ui/signin", url.Values{"csrf": {csrf(b.t, p)}, "token": {token}})
	if p.status != http.StatusOK || p.url.Path != path {
		b.t.Fatalf("sign-in ended at %s with %d: %.300s", p.url, p.status, p.body)
	}
	return p
}

// signedOut reports whether p is the sign-in page after a session ended
// for the reason given (the ended parameter).
func signedOut(p uiPage, why string) bool {
	return p.url.Path == "/ui/signin" && p.url.Query().Get("ended") == why
}
