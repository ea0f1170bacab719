package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// Fixed tokens, so that a fuzz corpus means the same on every run.
const (
	mxFuzzToken = "trail_fuzz-reader-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	mxFuzzAdmin = "trail_fuzz-admin-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

// mxFuzzServer is an engine with events in patient/1 (index 0) and
// patient/2 (index 1), served by a TokenAuth that admits mxFuzzAdmin as the
// admin, mxFuzzToken as "fuzz-reader" (reads patient/1), and the principals
// of mxStart.
func mxFuzzServer(f *testing.F, principals ...auth.Entry) (*mxServer, http.Handler) {
	f.Helper()
	s := mxStart(f, mxFast(), principals)
	mxAppend(f, s.l, mxEvent("patient/1", "1", "dr-one"), mxEvent("patient/2", "2", "dr-two"))
	err := auth.Update(s.dir, func(p *auth.Policy) error {
		h := auth.HashToken(mxFuzzToken)
		p.Principals = append(p.Principals, auth.Entry{Name: "fuzz-reader", TokenSHA256: hex.EncodeToString(h[:]),
			Read: []string{"patient/1"}, Created: time.Now()})
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	ta, err := server.NewTokenAuth(s.dir, mxFuzzAdmin, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(ta.Close)
	srv, err := server.New(s.l, server.Config{Auth: ta})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Shutdown)
	return s, srv.Handler()
}

// mxBearer is the token an Authorization value carries as the server reads
// it: the scheme "Bearer" in any case, one space, and the token with
// surrounding white space trimmed.
func mxBearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// FuzzAuthorizationHeader: no Authorization value panics the server or
// authenticates, unless it is "Bearer <a valid token>" (scheme in any case,
// spaces around the token); any other value is 401 with a Bearer challenge
// (or 429), and stores nothing.
func FuzzAuthorizationHeader(f *testing.F) {
	s, h := mxFuzzServer(f)
	for _, seed := range []string{
		"", "Bearer", "Bearer ", "Bearer  ", "Bearer " + mxFuzzToken, "bearer " + mxFuzzToken, "BEARER   " + mxFuzzToken + " \t",
		"Bearer\t" + mxFuzzToken, " Bearer " + mxFuzzToken, "Bearer " + mxFuzzToken + "x", "Bearer " + mxFuzzToken[:len(mxFuzzToken)-1],
		"Bearer " + mxFuzzToken + " " + mxFuzzToken, "Bearer " + strings.ToUpper(mxFuzzToken), "Bearer " + mxFuzzAdmin,
		"Bearer " + mxFuzzToken + "\x00", "Bearer \u00a0" + mxFuzzToken, "Bearer " + mxFuzzToken + "\r\n", mxFuzzToken,
		"Token " + mxFuzzToken, "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+mxFuzzAdmin)),
		"Bearer trail_", "Bearer " + strings.Repeat("A", 5000), "Bearer=" + mxFuzzToken, "Bearer: " + mxFuzzToken,
		"Bearer " + hex.EncodeToString([]byte(mxFuzzToken)), "Bearer " + base64.StdEncoding.EncodeToString([]byte(mxFuzzToken)),
		"Bearer \xff\xfe", "Bearer " + mxFuzzAdmin + "\n" + mxFuzzToken,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		h := checkAPI(t, h)
		req := httptest.NewRequest(http.MethodGet, "/v1/streams/patient/1", nil)
		req.RemoteAddr = mxAddr()
		req.Header["Authorization"] = []string{value}
		before := s.l.Size()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		r := mxReply{status: w.Code, header: w.Result().Header, body: w.Body.Bytes()}
		stored := mxSince(t, s.l, before)

		wantName := map[string]string{mxFuzzToken: "fuzz-reader", mxFuzzAdmin: "admin"}[mxBearer(value)]
		switch {
		case wantName != "":
			if r.status != http.StatusOK {
				t.Fatalf("Authorization %q carries a valid token: got %v, want 200", value, r)
			}
			if len(stored) != 1 || stored[0].Actor.ID != wantName {
				t.Fatalf("Authorization %q: stored %+v, want one read record of %s", value, stored, wantName)
			}
		case r.status == http.StatusTooManyRequests:
			mxProblem(t, r, r.status)
		default:
			if r.status != http.StatusUnauthorized {
				t.Fatalf("Authorization %q AUTHENTICATED or failed otherwise: got %v, want 401 (stored %+v)", value, r, stored)
			}
			mxUnauthorized(t, r)
		}
		if wantName == "" && len(stored) != 0 {
			t.Fatalf("Authorization %q: a refused request stored %+v", value, stored)
		}
	})
}

// mxFuzzEndpoints are the read endpoints FuzzQueryParams sends queries to,
// with the public ones.
var mxFuzzEndpoints = []string{
	"/v1/events", "/v1/events/0", "/v1/events/1", "/v1/events/0/proof", "/v1/events/1/proof", "/v1/tail",
	"/v1/streams/patient/1", "/v1/streams/patient/2", "/v1/proof/consistency", "/v1/checkpoint",
}

// mxFuzzWho are the callers of FuzzQueryParams.
var mxFuzzWho = []mxWho{
	{label: "admin", name: "admin", token: mxFuzzAdmin, admin: true},
	{label: "reader", name: "fuzz-reader", token: mxFuzzToken, read: []string{"patient/1"}},
	{label: "break-glass", name: "er-doc", glass: true},
	{label: "writer", name: "writer", append: []string{"patient/*"}},
}

// FuzzQueryParams: no raw query string on a read endpoint panics the server
// or answers 5xx; every 4xx is problem+json with a detail; a 400 stores
// nothing; and no answer carries an event of a stream the caller may not
// read (break-glass callers: only with purpose=emergency and a reason).
func FuzzQueryParams(f *testing.F) {
	s, h := mxFuzzServer(f, auth.Entry{Name: "er-doc", BreakGlass: true}, auth.Entry{Name: "writer", Append: []string{"patient/*"}})
	who := append([]mxWho(nil), mxFuzzWho...)
	who[2].token, who[3].token = s.tokens["er-doc"], s.tokens["writer"]
	seeds := []string{
		"", "stream=patient/1", "stream=patient/2", "patient=1", "patient=2", "actor=dr-two", "limit=0", "limit=1000",
		"limit=1001", "limit=-1", "limit=99999999999999999999", "after=-1", "after=18446744073709551615", "order=desc&after=1",
		"since=2026-01-01T00:00:00Z&until=2025-01-01T00:00:00Z", "since=yesterday", "purpose=emergency",
		"purpose=emergency&reason=", "purpose=emergency&reason=%20", "purpose=emergency&reason=x", "reason=x",
		"purpose=treatment", "stream=trail/access", "stream=trail/access&purpose=emergency&reason=x", "stream=../patient/2",
		"stream=patient//2", "%zz", "a;b", "stream=%ff", "size=1", "size=0", "size=2", "size=99", "from=0&to=1", "from=2&to=1",
		"x=1", "stream=patient/1&stream=patient/2", "action=r", "outcome=bad", "type=", "patient=",
		"patient=2&purpose=emergency&reason=code+blue", "stream=patient/2&after=-1&purpose=emergency&reason=x",
	}
	for i, q := range seeds {
		for e := range mxFuzzEndpoints {
			f.Add(uint8(e), uint8(i+e), q)
		}
	}
	f.Fuzz(func(t *testing.T, endpoint, caller uint8, raw string) {
		h := checkAPI(t, h)
		path := mxFuzzEndpoints[int(endpoint)%len(mxFuzzEndpoints)]
		w := who[int(caller)%len(who)]
		before := s.l.Size()
		r := mxServeRaw(h, path, raw, w.token)
		if r.status >= 500 {
			t.Fatalf("%s GET %s?%s: %v", w.label, path, raw, r)
		}
		if r.status >= 400 {
			mxProblem(t, r, r.status)
		}
		if r.status == http.StatusBadRequest && s.l.Size() != before {
			t.Fatalf("GET %s?%s: a 400 stored %+v (refused requests are not recorded)", path, raw, mxSince(t, s.l, before))
		}
		if r.status != http.StatusOK {
			return
		}
		// What the answer carries must be readable by the caller.
		v, _ := url.ParseQuery(raw)
		w.glass = w.glass && v.Get("purpose") == "emergency" && strings.TrimSpace(v.Get("reason")) != ""
		for _, st := range mxStreamsIn(t, path, r) {
			if !w.mayRead(st) {
				t.Fatalf("LEAK: %s GET %s?%s answered an event of %s: %s", w.label, path, raw, st, r)
			}
		}
	})
}

// mxStreamsIn returns the stream of every event an answer carries.
func mxStreamsIn(t *testing.T, path string, r mxReply) []string {
	var events [][]byte
	switch {
	case path == "/v1/events":
		var page struct{ Events []json.RawMessage }
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatalf("query answer %s: %v", r, err)
		}
		for _, e := range page.Events {
			events = append(events, e)
		}
	case path == "/v1/tail":
		if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "text/event-stream" {
			t.Fatalf("tail answered %v", r)
		}
		sc := bufio.NewScanner(bytes.NewReader(r.body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events = append(events, []byte(d))
			}
		}
	case strings.HasPrefix(path, "/v1/events/") && !strings.HasSuffix(path, "/proof"):
		events = append(events, r.body)
	case strings.HasPrefix(path, "/v1/streams/"):
		return []string{strings.TrimPrefix(path, "/v1/streams/")}
	case strings.HasSuffix(path, "/proof"):
		return []string{map[string]string{"/v1/events/0/proof": "patient/1", "/v1/events/1/proof": "patient/2"}[path]}
	}
	var out []string
	for _, e := range events {
		out = append(out, mxParse(t, e).Stream)
	}
	return out
}

// mxServeRaw sends GET path?raw to h (raw exactly as given, even when no
// client could send it) and returns the answer. A tail is read until it has
// sent what it had, then hung up.
func mxServeRaw(h http.Handler, path, raw, token string) mxReply {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	req.URL.RawQuery = raw
	req.RemoteAddr = mxAddr()
	req.Header.Set("Authorization", "Bearer "+token)
	w := &mxFlushWatch{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, req)
	}()
	select {
	case <-done:
	case <-w.flushed: // a live tail: take what it has sent so far
		time.Sleep(5 * time.Millisecond)
		cancel()
		<-done
	}
	return mxReply{status: w.Code, header: w.Result().Header, body: w.Body.Bytes()}
}

// mxFlushWatch is a recorder that tells when the handler first flushes.
type mxFlushWatch struct {
	*httptest.ResponseRecorder
	flushed chan struct{}
}

func (w *mxFlushWatch) Flush() {
	w.ResponseRecorder.Flush()
	select {
	case w.flushed <- struct{}{}:
	default:
	}
}
