package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// background makes a request as the console's scripts do.
func (b *uiBrowser) background(path string) uiPage {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	req.Header.Set("X-Trail-Background", "1")
	return b.do(req)
}

// systemStatus is the part of GET /ui/system/status the tests read.
type systemStatus struct {
	LogSize    uint64 `json:"log_size"`
	Checkpoint struct {
		Size   uint64 `json:"size"`
		Root   string `json:"root"`
		Signed string `json:"signed"`
	} `json:"checkpoint"`
	VerifierKey string          `json:"verifier_key"`
	Ready       bool            `json:"ready"`
	Operational bool            `json:"operational"`
	Ingest      json.RawMessage `json:"ingest"`
	Disk        *struct {
		Free, Total uint64
		Error       string
	} `json:"disk"`
	Store *struct {
		Kind, Where, Replication string
	} `json:"store"`
}

// TestConsoleSystem: the System page and its refreshes carry the console's
// headers; every signed-in principal sees the checkpoint and readiness,
// only the admin disk space and the ingest rate; the consistency proof is
// the API's; refreshes do not extend the session, and answer 401 once it
// has ended.
func TestConsoleSystem(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, uiEvent("123", "patient-record.read", "R", "nurse-jane", "", "", ""))
	e.waitCheckpoint(t)

	officer := e.browser(t)
	officer.signIn(e.tokens["officer"])
	for _, path := range []string{"/ui/system", "/ui/system/status", "/ui/system/consistency?from=0", "/ui/static/system.js", "/ui/static/live.js"} {
		p := officer.background(path)
		if p.status != http.StatusOK {
			t.Errorf("%s: %d %.300s", path, p.status, p.body)
		}
		for h, want := range map[string]string{"Content-Security-Policy": consoleCSP, "Cache-Control": "no-store",
			"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
			if got := p.header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
	}
	page := officer.get("/ui/system")
	for _, want := range []string{"<h1>System</h1>", `aria-current="page">System</a>`, "Ready: the server acknowledges new events.",
		"shown to administrators only", e.l.VerifierKey()} {
		if !strings.Contains(html.UnescapeString(page.body), want) {
			t.Errorf("the officer's System page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "Disk space</dt>") || strings.Contains(page.body, "Store</dt>") {
		t.Errorf("the officer's System page shows disk space or the store")
	}
	var st systemStatus
	if err := json.Unmarshal([]byte(officer.background("/ui/system/status").body), &st); err != nil {
		t.Fatal(err)
	}
	cp := e.l.Checkpoint()
	if st.Checkpoint.Size != cp.Size || st.Checkpoint.Signed != string(cp.Signed) || !st.Ready || st.VerifierKey != e.l.VerifierKey() {
		t.Errorf("officer's status %+v; want the checkpoint of %d events, ready, the verifier key", st, cp.Size)
	}
	if st.Operational || st.Disk != nil || st.Ingest != nil || st.Store != nil {
		t.Errorf("the officer is shown operations figures: %+v", st)
	}

	admin := e.browser(t)
	admin.signIn(string(e.admin))
	want := "Disk space</dt>" // a data directory's; a database's replication instead
	if *storeFlag == "postgres" {
		want = "Replication</dt>"
	}
	if p := admin.get("/ui/system"); !strings.Contains(p.body, want) || !strings.Contains(p.body, "Ingest rate</dt>") || !strings.Contains(p.body, "Store</dt>") {
		t.Errorf("the admin's System page lacks the store, %s or the ingest rate", want)
	}
	admin.background("/ui/system/status")
	time.Sleep(2100 * time.Millisecond) // past the ingest sampler's step
	mxAppend(t, e.l, uiEvent("123", "patient-record.read", "R", "nurse-jane", "", "", ""))
	st = systemStatus{}
	json.Unmarshal([]byte(admin.background("/ui/system/status").body), &st)
	var ingest struct{ PerSecond, OverSeconds float64 }
	json.Unmarshal(st.Ingest, &ingest)
	switch {
	case !st.Operational || st.Store == nil:
		t.Errorf("admin's status: no store: %+v", st)
	case *storeFlag == "postgres":
		if st.Store.Kind != "postgres" || st.Disk != nil || !strings.HasPrefix(st.Store.Replication, "none: no standby") {
			t.Errorf("admin's status on PostgreSQL: store %+v, disk %+v", st.Store, st.Disk)
		}
	case st.Store.Kind != "files" || st.Disk == nil || st.Disk.Total == 0 || st.Disk.Free > st.Disk.Total || st.Disk.Error != "":
		t.Errorf("admin's status: store %+v, disk %+v", st.Store, st.Disk)
	}
	if err := json.Unmarshal(st.Ingest, &struct {
		PerSecond   *float64 `json:"per_second"`
		OverSeconds *float64 `json:"over_seconds"`
	}{&ingest.PerSecond, &ingest.OverSeconds}); err != nil || ingest.OverSeconds < 2 || ingest.PerSecond <= 0 {
		t.Errorf("admin's ingest rate %s; want a positive rate over at least 2s", st.Ingest)
	}

	// The consistency proof is the API's, errors included.
	if p := officer.background("/ui/system/consistency?from=0&to=1"); p.status != http.StatusOK || !strings.Contains(p.body, `"hashes":[]`) {
		t.Errorf("consistency 0→1: %d %s", p.status, p.body)
	}
	if p := officer.background("/ui/system/consistency?from=5&to=1"); p.status != http.StatusBadRequest ||
		p.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(p.body, "need from ≤ to") {
		t.Errorf("consistency 5→1: %d %s %s", p.status, p.header.Get("Content-Type"), p.body)
	}

	// Refreshes do not extend the session: past the idle time it ends,
	// and the refresh says so with 401.
	e = startUI(t, server.ConsoleConfig{Idle: 1500 * time.Millisecond})
	fresh := e.browser(t)
	fresh.signIn(e.tokens["officer"])
	deadline := time.Now().Add(3 * time.Second)
	for {
		p := fresh.background("/ui/system/status")
		if p.status == http.StatusUnauthorized {
			if !strings.Contains(p.body, "without activity") {
				t.Errorf("the refresh after the session ended says %s", p.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refreshes every 100ms kept a session with 1.5s idle time alive for 3s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p := fresh.get("/ui/system"); !signedOut(p, "idle") {
		t.Errorf("after refreshes only, the page opens %s", p.url)
	}
	if p := e.browser(t).background("/ui/system/status"); p.status != http.StatusUnauthorized {
		t.Errorf("a refresh without a session answered %d", p.status)
	}
}

// liveStream is an open /ui/live answer.
type liveStream struct {
	t     testing.TB
	resp  *http.Response
	lines chan string
}

// live opens the live view with the page's query.
func (b *uiBrowser) live(query string) (*liveStream, uiPage) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+"/ui/live?"+query, nil)
	req.Header.Set("X-Trail-Background", "1")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("live: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, uiPage{status: resp.StatusCode, header: resp.Header, body: string(body), url: resp.Request.URL}
	}
	ls := &liveStream{t: b.t, resp: resp, lines: make(chan string, 100)}
	b.t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(ls.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if sc.Text() != "" {
				ls.lines <- sc.Text()
			}
		}
	}()
	return ls, uiPage{status: resp.StatusCode, header: resp.Header}
}

// next returns the next line, "" when the stream ended, failing after d.
func (ls *liveStream) next(d time.Duration) (string, bool) {
	select {
	case l, ok := <-ls.lines:
		return l, ok
	case <-time.After(d):
		return "", true
	}
}

// TestConsoleLive: the live view carries the events matching the page's
// filters that the principal may read, never Trail's own records; a
// stream the principal may not read is refused with the API's 403; the
// tail is recorded in trail/access; the stream does not extend the session
// and ends, saying why, at sign-out and when the token is revoked.
func TestConsoleLive(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{Idle: 3 * time.Second})
	mxAppend(t, e.l, uiEvent("123", "patient-record.read", "R", "nurse-jane", "", "", ""))
	b := e.browser(t)
	page := b.signIn(e.tokens["officer"])
	ls, p := b.live("patient=123&type=patient-record.update")
	if p.status != http.StatusOK || p.header.Get("Content-Type") != "application/x-ndjson; charset=utf-8" || p.header.Get("Content-Security-Policy") != consoleCSP {
		t.Fatalf("live: %d %v %s", p.status, p.header, p.body)
	}
	time.Sleep(100 * time.Millisecond)
	want := mxAppend(t, e.l,
		uiEvent("123", "patient-record.update", "U", "dr-house", "", "", ""),
		uiEvent("456", "patient-record.update", "U", "dr-house", "", "", ""),
		uiEvent("123", "patient-record.read", "R", "dr-house", "", "", ""),
		uiEvent("123", "patient-record.update", "U", "dr-cuddy", "", "", ""))
	for _, i := range []uint64{want[0], want[3]} {
		line, _ := ls.next(5 * time.Second)
		var ev struct {
			Index  uint64 `json:"index"`
			Stream string `json:"stream"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Index != i {
			t.Fatalf("live line %q; want event %d", line, i)
		}
	}
	// A second's read records name patient 123: the officer may read
	// them, and the live view leaves them out.
	time.Sleep(1500 * time.Millisecond)
	if line, _ := ls.next(200 * time.Millisecond); line != "" {
		t.Errorf("live view carried %s; want nothing more", line)
	}
	var tails []uiRecord
	for _, r := range e.accessRecords(t, "123") {
		if r.Details.Endpoint == "GET /v1/tail" && r.Actor.ID == "officer" {
			tails = append(tails, r)
		}
	}
	if len(tails) < 2 || tails[len(tails)-1].Details.Params["type"] != "patient-record.update" || tails[0].Details.Count != 2 {
		t.Errorf("tail read records %+v; want its start and its delivery of 2 events, naming its filters", tails)
	}

	// Sign-out ends the stream, saying so.
	b.post("/ui/signout", url.Values{"csrf": {csrf(t, page)}})
	if line, _ := ls.next(3 * time.Second); !strings.Contains(line, `"end":"session"`) || !strings.Contains(line, `"why":"signout"`) {
		t.Errorf("after sign-out the live view says %q", line)
	}
	if line, open := ls.next(3 * time.Second); open {
		t.Errorf("after sign-out the live view is still open (%q)", line)
	}

	// Denied: the API's 403.
	billing := e.browser(t)
	billing.signIn(e.tokens["billing"])
	if _, p := billing.live("stream=patient/123"); p.status != http.StatusForbidden || !strings.Contains(p.body, `principal \"billing\" has no read grant for stream \"patient/123\"`) {
		t.Errorf("billing's live view of patient/123: %d %s", p.status, p.body)
	}

	// The stream does not extend the session: it ends at the idle time.
	idle := e.browser(t)
	idle.signIn(e.tokens["officer"])
	ls, _ = idle.live("patient=123")
	if line, _ := ls.next(6 * time.Second); !strings.Contains(line, `"why":"idle"`) {
		t.Errorf("a live view past the session's idle time says %q", line)
	}
	if p := idle.get("/ui/search"); !signedOut(p, "idle") {
		t.Errorf("after a live view only, the session opens %s", p.url)
	}
}

// TestConsoleLiveRevoked: revoking the token ends its session's live view.
func TestConsoleLiveRevoked(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	b := e.browser(t)
	b.signIn(e.tokens["dr-house"])
	ls, p := b.live("patient=123")
	if ls == nil {
		t.Fatalf("live: %d %s", p.status, p.body)
	}
	for deadline := time.Now().Add(3 * time.Second); e.srv.LiveTails() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no live tail after 3s")
		}
	}
	if err := auth.Revoke(e.dir, "dr-house", time.Now()); err != nil {
		t.Fatal(err)
	}
	if line, _ := ls.next(2*server.PolicyReload + 3*time.Second); !strings.Contains(line, `"why":"revoked"`) {
		t.Errorf("after revocation the live view says %q", line)
	}
	for deadline := time.Now().Add(3 * time.Second); e.srv.LiveTails() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tail is still live 3s after the stream ended")
		}
	}
	res, err := e.l.Query(context.Background(), trail.Query{Stream: "trail/access", Actor: "dr-house", Desc: true, Limit: 10})
	if err != nil || len(res.Events) == 0 || !bytes.Contains(res.Events[0], []byte(`"GET /v1/tail"`)) {
		t.Errorf("the tail's closing read record is not the last of dr-house: %s", res.Events)
	}
}
