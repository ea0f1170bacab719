package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// Tests of the second edition's hardening ("Hardening (contract, second
// edition)" in DESIGN.md): authentication limits, connections, every read
// recordable, every patient finds its reads.

// hdWith changes the server's configuration before it starts.
func hdWith(f func(*server.Config)) func(*setup) {
	return func(s *setup) { f(&s.server) }
}

// hdSend sends a request with c to the test server, with the bearer token
// (admin: the admin token, "": none) and extra headers, and reads the whole
// answer.
func hdSend(t testing.TB, s *testServer, c *http.Client, method, path, token string, body []byte, hdr map[string]string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token == admin {
		token = string(s.tok)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// hdRetryAfter checks that r carries a Retry-After of whole seconds, at
// least 1.
func hdRetryAfter(t testing.TB, r reply) {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Errorf("%d answer with Retry-After %q, want a number of seconds ≥ 1", r.Status, r.Header.Get("Retry-After"))
	}
}

// hdBadToken is a token nobody holds.
const hdBadToken = "trail_not-a-token-anybody-holds"

// hdUntilLimited sends requests with a bad token (through send) until one is
// refused with 429, and returns how many got 401 before it. It fails the
// test when none is refused in max attempts.
func hdUntilLimited(t testing.TB, max int, send func(i int) reply) int {
	t.Helper()
	unauthorized := 0
	for i := range max {
		r := send(i)
		switch r.Status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			wantProblem(t, r, http.StatusTooManyRequests)
			hdRetryAfter(t, r)
			return unauthorized
		default:
			t.Fatalf("bad token %d: %v, want 401 or 429", i, r)
		}
	}
	t.Fatalf("%d requests with a bad token, none refused with 429", max)
	return 0
}

// hdWantStillLimited checks that a bad token from send is refused with 429
// within a few attempts (the bucket refills one attempt a second, so a slow
// machine may see one 401 first).
func hdWantStillLimited(t testing.TB, what string, send func(i int) reply) {
	t.Helper()
	for i := range 3 {
		r := send(i)
		if r.Status == http.StatusTooManyRequests {
			hdRetryAfter(t, r)
			return
		}
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("%s: %v, want 429", what, r)
		}
	}
	t.Fatalf("%s: 3 bad tokens in a row answered 401, want 429: the limit is gone", what)
}

// TestHdLockoutNeverRefusesValidCredentials: bad tokens from an address end
// in 429 with Retry-After, but valid credentials from that same address
// still append and read, and another address is unaffected.
func TestHdLockoutNeverRefusesValidCredentials(t *testing.T) {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-app": {Name: "app", Append: []string{"app/*"}, Read: []string{"app/*"}},
	}))
	a, b := mxClientFrom(t, "127.0.0.2"), mxClientFrom(t, "127.0.0.3")
	began := time.Now()
	unauthorized, limited := 0, 0
	for i := range 60 {
		r := hdSend(t, s, a, http.MethodGet, "/v1/events", hdBadToken, nil, nil)
		switch r.Status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
			wantProblem(t, r, http.StatusTooManyRequests)
			hdRetryAfter(t, r)
		default:
			t.Fatalf("bad token %d: %v, want 401 or 429", i, r)
		}
	}
	if limited == 0 {
		t.Fatalf("60 bad tokens from one address: no 429")
	}
	if most := 20 + int(time.Since(began).Seconds()) + 1; unauthorized > most {
		t.Errorf("60 bad tokens in %v: %d answered 401, want at most %d (a burst of 20, then one a second)", time.Since(began), unauthorized, most)
	}
	size := s.l.Size()
	rc := hdSend(t, s, a, http.MethodPost, "/v1/events", "tok-app", encode(t, event("", "app/orders")), nil)
	wantReceipt(t, rc, http.StatusCreated)
	r := hdSend(t, s, a, http.MethodGet, "/v1/events?stream=app/orders", "tok-app", nil, nil)
	if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"app/orders"`)) {
		t.Fatalf("valid read from a limited address: %v, want 200 with the event", r)
	}
	if r := hdSend(t, s, a, http.MethodGet, "/v1/streams/app/orders", admin, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("admin read from a limited address: %v, want 200", r)
	}
	if got := s.l.Size(); got <= size {
		t.Errorf("log size %d after a valid append and reads, want more than %d", got, size)
	}
	hdWantStillLimited(t, "bad token from the limited address after valid requests", func(int) reply {
		return hdSend(t, s, a, http.MethodGet, "/v1/events", hdBadToken, nil, nil)
	})
	// Only failures count: many valid requests leave an address its whole
	// burst of failures.
	for i := range 30 {
		if r := hdSend(t, s, b, http.MethodGet, "/v1/streams/app/orders", "tok-app", nil, nil); r.Status != http.StatusOK {
			t.Fatalf("valid read %d from another address: %v", i, r)
		}
	}
	for i := range 15 {
		r = hdSend(t, s, b, http.MethodGet, "/v1/events", hdBadToken, nil, nil)
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("bad token %d from another address after 30 valid requests: %v, want 401 (valid requests are not failures)", i+1, r)
		}
	}
	mxUnauthorized(t, mxReply{status: r.Status, header: r.Header, body: r.Body})
}

// TestHdLockoutBehindProxy: behind a trusted proxy, clients are told apart
// by the rightmost untrusted X-Forwarded-For address: one client's failures
// leave another its whole burst; a forged leftmost entry does not escape
// the limit; IPv6 clients share a limit per /64; the read record names the
// client, not the proxy; an untrusted peer's X-Forwarded-For is ignored.
func TestHdLockoutBehindProxy(t *testing.T) {
	proxies, err := server.ParseProxies([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, hdWith(func(c *server.Config) { c.TrustedProxies = proxies }), withPrincipals(map[string]*server.Principal{
		"tok-app": {Name: "app", Read: []string{"app/*"}},
	}))
	viaProxy := func(xff string) func(int) reply {
		return func(int) reply {
			return hdSend(t, s, s.client, http.MethodGet, "/v1/events", hdBadToken, nil, map[string]string{"X-Forwarded-For": xff})
		}
	}
	if n := hdUntilLimited(t, 60, viaProxy("203.0.113.5")); n < 20 {
		t.Errorf("client 203.0.113.5 was limited after %d failures, want its burst of 20", n)
	}
	for i := range 3 {
		forged := fmt.Sprintf("198.51.100.%d, 203.0.113.5", i+1)
		hdWantStillLimited(t, "limited client with a forged leftmost X-Forwarded-For "+forged, viaProxy(forged))
	}
	if n := hdUntilLimited(t, 60, viaProxy("203.0.113.6")); n < 20 {
		t.Errorf("client 203.0.113.6 was limited after %d failures, want its own burst of 20 (another client's failures counted against it)", n)
	}

	// The read record names the client the proxy named.
	from := s.l.Size()
	r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?stream=app/x", "tok-app", nil,
		map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.5"})
	if r.Status != http.StatusOK {
		t.Fatalf("valid read of a limited client behind the proxy: %v, want 200", r)
	}
	recs := hdRecords(t, s, from)
	if len(recs) != 1 || recs[0].Actor.Address != "203.0.113.5" {
		t.Errorf("read record %+v, want one with actor.address 203.0.113.5 (the client the proxy named)", recs)
	}

	// IPv6: one /64 shares a limit; another /64 has its own.
	if n := hdUntilLimited(t, 60, viaProxy("2001:db8:1:2::1")); n < 20 {
		t.Errorf("client 2001:db8:1:2::1 limited after %d failures, want 20", n)
	}
	hdWantStillLimited(t, "another address of the same /64 (one /64 is one limit)", viaProxy("2001:db8:1:2:ffff:ffff:ffff:fffe"))
	if r := viaProxy("2001:db8:1:3::1")(0); r.Status != http.StatusUnauthorized {
		t.Errorf("an address of another /64: %v, want 401", r)
	}

	// An untrusted peer cannot pick its key with X-Forwarded-For.
	c := mxClientFrom(t, "127.0.0.4")
	began := time.Now()
	n := hdUntilLimited(t, 60, func(i int) reply {
		return hdSend(t, s, c, http.MethodGet, "/v1/events", hdBadToken, nil,
			map[string]string{"X-Forwarded-For": fmt.Sprintf("192.0.2.%d", i+1)})
	})
	if most := 20 + int(time.Since(began).Seconds()) + 1; n > most {
		t.Errorf("an untrusted peer varying X-Forwarded-For got %d 401s, want at most %d (its address's burst of 20, then one a second)", n, most)
	}
}

// hdRecord is a stored read record, with what the hardening adds.
type hdRecord struct {
	Index   uint64 `json:"index"`
	Stream  string `json:"stream"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Actor   struct {
		ID        string `json:"id"`
		Address   string `json:"address"`
		UserAgent string `json:"user_agent"`
	} `json:"actor"`
	Patient string `json:"patient"`
	Purpose string `json:"purpose"`
	Details struct {
		Endpoint     string            `json:"endpoint"`
		Params       map[string]string `json:"params"`
		Count        int               `json:"count"`
		Reason       string            `json:"reason"`
		Streams      []string          `json:"streams"`
		StreamsTotal int               `json:"streams_total"`
		ParamsCut    bool              `json:"params_cut"`
		PatientCut   bool              `json:"patient_cut"`
	} `json:"details"`
	raw     []byte
	details int // bytes of details as compact JSON
}

// hdRecords returns the events of trail/access and trail/break-glass stored
// at index from and after, from the engine.
func hdRecords(t testing.TB, s *testServer, from uint64) []hdRecord {
	t.Helper()
	var out []hdRecord
	for i, end := from, s.l.Size(); i < end; i++ {
		rec := s.stored(t, i)
		st, err := trail.RecordStream(rec)
		if err != nil {
			t.Fatalf("stored event %d: %v", i, err)
		}
		if st != server.AccessStream && st != server.BreakGlassStream {
			continue
		}
		var r hdRecord
		if err := json.Unmarshal(rec, &r); err != nil {
			t.Fatalf("event %d %s: %v", i, rec, err)
		}
		var d struct {
			Details json.RawMessage `json:"details"`
		}
		json.Unmarshal(rec, &d)
		var c bytes.Buffer
		if err := json.Compact(&c, d.Details); err != nil {
			t.Fatalf("event %d details: %v", i, err)
		}
		r.raw, r.details = rec, c.Len()
		if r.Type != "audit-log.read" || r.Action != "R" {
			t.Errorf("%s event %d: type %q action %q, want audit-log.read R", st, i, r.Type, r.Action)
		}
		out = append(out, r)
	}
	return out
}

// hdAccess keeps the records of trail/access.
func hdAccess(recs []hdRecord) []hdRecord {
	return slices.DeleteFunc(slices.Clone(recs), func(r hdRecord) bool { return r.Stream != server.AccessStream })
}

// hdRawPost sends the head of a POST over a connection of its own, then the
// first bytes of its body, and returns the connection.
func hdRawPost(t testing.TB, s *testServer, path, token string, length int, first []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: trail.test\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n", path, token, length)
	if _, err := conn.Write(append([]byte(head), first...)); err != nil {
		t.Fatalf("send the request head: %v", err)
	}
	return conn
}

// TestHdSlowBody: a body that trickles in slower than BodyTimeout ends the
// request (408, or the connection closes) without storing anything.
func TestHdSlowBody(t *testing.T) {
	s := start(t, hdWith(func(c *server.Config) { c.BodyTimeout = 500 * time.Millisecond }))
	body := encode(t, event("slow-1", "ward/icu"))
	size := s.l.Size()
	conn := hdRawPost(t, s, "/v1/events", string(s.tok), len(body), body[:1])
	done := make(chan struct{})
	defer close(done)
	go func() { // one byte every 200 ms: the body would take seconds
		for i := 1; i < len(body); i++ {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := conn.Write(body[i : i+1]); err != nil {
				return
			}
		}
	}()
	began := time.Now()
	conn.SetReadDeadline(began.Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("slow body: %d %s, want 408 or the connection ended", resp.StatusCode, b)
		}
		// The connection ends after the 408.
		if _, err := io.Copy(io.Discard, br); err != nil && isTimeout(err) {
			t.Fatalf("slow body: connection still open 5s after the 408")
		}
	} else if isTimeout(err) {
		t.Fatalf("slow body: no answer and the connection still open after %v (body timeout 500ms)", time.Since(began))
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("slow body ended after %v, want about the 500ms body timeout", d)
	}
	s.wantUnchanged(t, size)

	// A body that arrives at once is unaffected by the short timeout.
	wantReceipt(t, s.post(t, "/v1/events", encode(t, event("fast-1", "ward/icu"))), http.StatusCreated)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHdAppendRefusedBeforeBody: a principal without any append grant gets
// 403 on POST /v1/batch and /v1/events before its body is read: the answer
// arrives though only a few bytes of a 16 MiB body were sent.
func TestHdAppendRefusedBeforeBody(t *testing.T) {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-reader": {Name: "reader", Read: []string{"patient/*"}},
	}))
	size := s.l.Size()
	for _, path := range []string{"/v1/batch", "/v1/events"} {
		conn := hdRawPost(t, s, path, "tok-reader", 16<<20, []byte(`{"stream":"patient/1"`))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s with 16 MiB announced and a few bytes sent: %v, want a 403 before the body", path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		wantProblem(t, reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, http.StatusForbidden, "reader", "append")
	}
	s.wantUnchanged(t, size)
}

// hdTail is a live tail opened by a test.
type hdTail struct {
	resp   *http.Response
	cancel context.CancelFunc
}

// hdOpenTail opens GET /v1/tail with the query as token; the answer's status
// is in resp (the body stays open when it is 200, until close).
func hdOpenTail(t testing.TB, s *testServer, token, query string) (*hdTail, reply) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ts.URL+"/v1/tail"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("tail %s: %v", query, err)
	}
	if resp.StatusCode == http.StatusOK {
		tl := &hdTail{resp: resp, cancel: cancel}
		t.Cleanup(tl.close)
		return tl, reply{Status: resp.StatusCode, Header: resp.Header}
	}
	defer cancel()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return nil, reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (tl *hdTail) close() {
	tl.cancel()
	tl.resp.Body.Close()
}

// TestHdMaxTails: past MaxTails live tails of one principal the next gets
// 429; another principal is unaffected; ending a tail frees its slot.
func TestHdMaxTails(t *testing.T) {
	s := start(t, hdWith(func(c *server.Config) { c.MaxTails = 3 }), withPrincipals(map[string]*server.Principal{
		"tok-a": {Name: "clin-a", Read: []string{"patient/*"}},
		"tok-b": {Name: "clin-b", Read: []string{"patient/*"}},
	}))
	var tails []*hdTail
	for i := range 3 {
		tl, r := hdOpenTail(t, s, "tok-a", "")
		if tl == nil {
			t.Fatalf("tail %d of 3: %v, want 200", i+1, r)
		}
		tails = append(tails, tl)
	}
	_, r := hdOpenTail(t, s, "tok-a", "?stream=patient/1")
	wantProblem(t, r, http.StatusTooManyRequests, "clin-a")
	if tl, r := hdOpenTail(t, s, "tok-b", ""); tl == nil {
		t.Fatalf("another principal's tail while clin-a holds 3: %v, want 200", r)
	}
	tails[0].close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tl, r := hdOpenTail(t, s, "tok-a", "")
		if tl != nil {
			break
		}
		if r.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("tail after one of 3 ended: %v, want 200 (within 5s)", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Back at 3: the next is refused again.
	if _, r := hdOpenTail(t, s, "tok-a", ""); r.Status != http.StatusTooManyRequests {
		t.Fatalf("a 4th tail again: %v, want 429", r)
	}
}

// TestHdReadRate: a principal past its read rate gets 429 with Retry-After,
// and that read leaves no record; another principal and the admin have
// rates of their own.
func TestHdReadRate(t *testing.T) {
	s := start(t, hdWith(func(c *server.Config) {
		c.ReadRate = server.Rate{PerSecond: 10, Burst: 5}
		c.AdminReadRate = server.Rate{PerSecond: 10, Burst: 8}
	}), withPrincipals(map[string]*server.Principal{
		"tok-a": {Name: "clin-a", Read: []string{"patient/*"}},
		"tok-b": {Name: "clin-b", Read: []string{"patient/*"}},
	}))
	untilLimited := func(who, token string, burst int) {
		t.Helper()
		began := time.Now()
		for ok := 0; ok < 100; ok++ {
			size := s.l.Size()
			r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?stream=patient/1", token, nil, nil)
			if r.Status == http.StatusOK {
				continue
			}
			wantProblem(t, r, http.StatusTooManyRequests, who)
			hdRetryAfter(t, r)
			s.wantUnchanged(t, size) // a refused read leaves no record
			if ok < burst {
				t.Errorf("%s: 429 after %d reads, want its burst of %d first", who, ok, burst)
			}
			if most := burst + int(10*time.Since(began).Seconds()) + 1; ok > most {
				t.Errorf("%s: %d reads in %v before a 429, want at most %d", who, ok, time.Since(began), most)
			}
			return
		}
		t.Fatalf("%s: 100 reads, none refused", who)
	}
	untilLimited("clin-a", "tok-a", 5)
	if r := hdSend(t, s, s.client, http.MethodGet, "/v1/events", "tok-b", nil, nil); r.Status != http.StatusOK {
		t.Errorf("another principal while clin-a is limited: %v, want 200", r)
	}
	untilLimited("admin", string(s.tok), 8)

	// Tails are reads too: past the rate a tail is refused (a token may
	// come back between attempts on a slow machine, so allow a few).
	for i := 0; ; i++ {
		_, r := hdOpenTail(t, s, "tok-b", "")
		if r.Status == http.StatusTooManyRequests {
			wantProblem(t, r, http.StatusTooManyRequests, "clin-b")
			hdRetryAfter(t, r)
			break
		}
		if r.Status != http.StatusOK || i == 20 {
			t.Fatalf("tail %d of clin-b: %v, want 429 past its burst of 5", i+1, r)
		}
	}
}

// hdLab is a lab result of a patient in a stream.
func hdLab(stream, patient string) trail.Event {
	return trail.Event{Stream: stream, Type: "lab.result", Action: "C",
		Actor: trail.Actor{ID: "lab-system"}, Patient: patient}
}

// hdBALPServer has events of patients p1 (two, in its stream), p2 (one),
// p3 (one, named only by its stream), p4 (one in a ward stream), and p5 (one
// in a ward the clinician may not read).
func hdBALPServer(t *testing.T) *testServer {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-clin": {Name: "clin", Read: []string{"patient/*", "ward/icu"}},
		"tok-p2":   {Name: "patient-p2", Read: []string{"patient/p2", "patient/p2/*", server.AccessStream}},
	}))
	mxAppend(t, s.l,
		hdLab("patient/p1", "p1"), hdLab("patient/p2", "p2"), hdLab("patient/p1/labs", "p1"),
		hdLab("patient/p3", ""), hdLab("ward/icu", "p4"), hdLab("ward/er", "p5"))
	return s
}

// hdByPatient indexes records by patient; each patient must have one.
func hdByPatient(t testing.TB, recs []hdRecord) map[string]hdRecord {
	t.Helper()
	m := map[string]hdRecord{}
	for _, r := range recs {
		if _, dup := m[r.Patient]; dup {
			t.Errorf("two records for patient %q: %s", r.Patient, r.raw)
		}
		m[r.Patient] = r
	}
	return m
}

// TestHdReadRecordPerPatient: a query that returns events of several
// patients appends one record per patient (IHE BALP) with that patient's
// count and streams, which the patient's view finds; the patient sees no
// other patient's data; reads of trail/ do not fan out; purpose=system is
// the admin's, leaves one record, and stays out of every patient's view.
func TestHdReadRecordPerPatient(t *testing.T) {
	s := hdBALPServer(t)
	from := s.l.Size()
	r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?type=lab.result", "tok-clin", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("query by type: %v", r)
	}
	recs := hdAccess(hdRecords(t, s, from))
	by := hdByPatient(t, recs)
	type want struct {
		count   int
		streams []string
	}
	wants := map[string]want{
		"":   {5, []string{"patient/p1", "patient/p1/labs", "patient/p2", "patient/p3", "ward/icu"}},
		"p1": {2, []string{"patient/p1", "patient/p1/labs"}},
		"p2": {1, []string{"patient/p2"}},
		"p3": {1, []string{"patient/p3"}},
		"p4": {1, []string{"ward/icu"}},
	}
	if len(recs) != len(wants) {
		t.Errorf("%d records of a read returning 4 patients' events, want %d (the read and one per patient)", len(recs), len(wants))
	}
	for pt, w := range wants {
		rec, ok := by[pt]
		if !ok {
			t.Errorf("no record for patient %q", pt)
			continue
		}
		d := rec.Details
		if rec.Actor.ID != "clin" || rec.Outcome != trail.OutcomeSuccess || d.Endpoint != "GET /v1/events" ||
			d.Count != w.count || !slices.Equal(d.Streams, w.streams) || d.Params["type"] != "lab.result" || len(d.Params) != 1 {
			t.Errorf("record for patient %q: %s\nwant actor clin, success, GET /v1/events, params {type: lab.result}, count %d, streams %v", pt, rec.raw, w.count, w.streams)
		}
	}

	// Each patient's view finds the read, with its own count and streams.
	for _, pt := range []string{"p1", "p2", "p3", "p4"} {
		r := s.get(t, "/v1/events?stream=trail/access&patient="+pt)
		var res struct{ Events []json.RawMessage }
		wantJSONLoose(t, r, &res)
		found := false
		for _, e := range res.Events {
			var rec hdRecord
			json.Unmarshal(e, &rec)
			if rec.Patient != pt {
				t.Errorf("patient=%s view holds a record of patient %q", pt, rec.Patient)
			}
			if rec.Actor.ID == "clin" && rec.Details.Count == wants[pt].count && slices.Equal(rec.Details.Streams, wants[pt].streams) {
				found = true
			}
		}
		if !found {
			t.Errorf("patient %s: the view (trail/access&patient=%s) does not find clin's read: %s", pt, pt, truncate(r.Body, 600))
		}
	}

	// A read that names a patient has one record, for that patient.
	from = s.l.Size()
	hdSend(t, s, s.client, http.MethodGet, "/v1/events?type=lab.result&patient=p1", "tok-clin", nil, nil)
	if recs := hdRecords(t, s, from); len(recs) != 1 || recs[0].Patient != "p1" || recs[0].Details.Count != 2 {
		t.Errorf("read naming p1: records %+v, want one for p1 with count 2", recs)
	}

	// The admin's reads of trail/access do not fan out over the patients
	// its records name.
	from = s.l.Size()
	r = s.get(t, "/v1/events?stream=trail/access&limit=1000")
	if recs := hdRecords(t, s, from); len(recs) != 1 || recs[0].Patient != "" {
		t.Errorf("admin read of trail/access: %d records %+v, want one, naming no patient", len(recs), recs)
	}
	if !bytes.Contains(r.Body, []byte(`"patient":"p2"`)) {
		t.Errorf("admin read of trail/access returned no record naming a patient: %s", truncate(r.Body, 300))
	}
	from = s.l.Size()
	s.get(t, "/v1/events?limit=1000")
	for _, rec := range hdRecords(t, s, from) {
		if slices.ContainsFunc(rec.Details.Streams, func(st string) bool { return strings.HasPrefix(st, "trail/") }) && rec.Patient != "" {
			t.Errorf("record %s: a patient's record lists trail/ streams", rec.raw)
		}
	}

	// purpose=system: the admin's, one record, no patient, never in a view.
	from = s.l.Size()
	r = s.get(t, "/v1/events?purpose=system&limit=1000")
	if r.Status != http.StatusOK {
		t.Fatalf("admin purpose=system: %v", r)
	}
	sys := hdRecords(t, s, from)
	if len(sys) != 1 || sys[0].Patient != "" || sys[0].Purpose != "system" {
		t.Errorf("purpose=system read: records %+v, want one with purpose system and no patient", sys)
	}
	from = s.l.Size()
	s.get(t, "/v1/events?purpose=system&patient=p1")
	if sys := hdRecords(t, s, from); len(sys) != 1 || sys[0].Patient != "" {
		t.Errorf("purpose=system read naming p1: records %+v, want one with no patient", sys)
	}
	size := s.l.Size()
	r = hdSend(t, s, s.client, http.MethodGet, "/v1/events?purpose=system", "tok-clin", nil, nil)
	wantProblem(t, r, http.StatusBadRequest, "system")
	s.wantUnchanged(t, size)

	// The patient's own token: its data and the view of its record, no one
	// else's.
	from = s.l.Size()
	r = hdSend(t, s, s.client, http.MethodGet, "/v1/events?stream=trail/access&patient=p2&limit=1000", "tok-p2", nil, nil)
	var view struct{ Events []json.RawMessage }
	wantJSONLoose(t, r, &view)
	if len(view.Events) == 0 {
		t.Fatalf("patient p2's view is empty: %v", r)
	}
	for _, e := range view.Events {
		var rec hdRecord
		json.Unmarshal(e, &rec)
		if rec.Patient != "p2" || rec.Purpose == "system" {
			t.Errorf("p2's view holds %s", e)
		}
		for _, st := range rec.Details.Streams {
			if st != "patient/p2" && !strings.HasPrefix(st, "patient/p2/") && !strings.HasPrefix(st, "trail/") {
				t.Errorf("p2's view names another patient's stream %q: %s", st, e)
			}
		}
		for _, other := range []string{"patient/p1", "patient/p3", "ward/", `"p1"`, `"p3"`, `"p4"`} {
			if bytes.Contains(e, []byte(other)) {
				t.Errorf("p2's view names %s: %s", other, e)
			}
		}
	}
	if recs := hdRecords(t, s, from); len(recs) != 1 || recs[0].Patient != "p2" {
		t.Errorf("p2's read of its view: records %+v, want one naming p2 (no fan-out)", recs)
	}
	r = hdSend(t, s, s.client, http.MethodGet, "/v1/events?type=lab.result", "tok-p2", nil, nil)
	var own struct{ Events []json.RawMessage }
	wantJSONLoose(t, r, &own)
	if len(own.Events) != 1 || !bytes.Contains(own.Events[0], []byte(`"patient":"p2"`)) {
		t.Errorf("p2 querying by type: %s, want its one event only", truncate(r.Body, 400))
	}
	if r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?stream=patient/p1", "tok-p2", nil, nil); r.Status != http.StatusForbidden {
		t.Errorf("p2 reading patient/p1: %v, want 403", r)
	}
}

// TestHdTailRecords: a tail is recorded when it starts, then (within about
// a second of delivering) with the count delivered and one record per
// patient delivered, and when it ends.
func TestHdTailRecords(t *testing.T) {
	s := hdBALPServer(t)
	from := s.l.Size()
	tl, r := hdOpenTail(t, s, "tok-clin", "")
	if tl == nil {
		t.Fatalf("tail: %v", r)
	}
	mine := func(recs []hdRecord) (main, per []hdRecord) {
		for _, rec := range hdAccess(recs) {
			if rec.Actor.ID != "clin" || rec.Details.Endpoint != "GET /v1/tail" {
				continue
			}
			if rec.Patient == "" {
				main = append(main, rec)
			} else {
				per = append(per, rec)
			}
		}
		return main, per
	}
	if main, per := mine(hdRecords(t, s, from)); len(main) != 1 || main[0].Details.Count != 0 || len(per) != 0 {
		t.Fatalf("tail start: records %+v %+v, want one with count 0", main, per)
	}
	if _, err := s.l.AppendBatch(context.Background(), []trail.Event{
		hdLab("patient/p1", "p1"), hdLab("patient/p1", "p1"), hdLab("patient/p2", "p2"), hdLab("ward/icu", "p4"), hdLab("ward/er", "p5"),
	}); err != nil {
		t.Fatal(err)
	}
	appended := time.Now()
	wantCounts := map[string]int{"p1": 2, "p2": 1, "p4": 1}
	var main, per []hdRecord
	for {
		main, per = mine(hdRecords(t, s, from))
		counts := map[string]int{}
		for _, rec := range per {
			counts[rec.Patient] += rec.Details.Count
		}
		delivered := 0
		for _, rec := range main {
			delivered += rec.Details.Count
		}
		if fmt.Sprint(counts) == fmt.Sprint(wantCounts) && delivered == 4 {
			break
		}
		if time.Since(appended) > 4*time.Second {
			t.Fatalf("4s after the tail delivered: records %+v and per patient %+v, want counts %v (4 in all)", main, per, wantCounts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, rec := range per {
		if rec.Patient == "p5" || slices.Contains(rec.Details.Streams, "ward/er") {
			t.Errorf("a record of events the tail may not read: %s", rec.raw)
		}
	}
	before := len(main)
	tl.close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		main, _ = mine(hdRecords(t, s, from))
		if len(main) > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record 5s after the tail ended: %+v", main)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last := main[len(main)-1]; last.Details.Count != 0 || last.Outcome != trail.OutcomeSuccess {
		t.Errorf("closing record %s: want count 0 (all delivered was recorded)", last.raw)
	}
}

// TestHdEveryReadRecordable: reads whose parameters, reason or User-Agent
// grow when escaped (control characters become \u00XX) or end mid-character
// are answered 200 and recorded, their details cut to fit (params_cut) and
// their strings valid UTF-8.
func TestHdEveryReadRecordable(t *testing.T) {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-er": {Name: "er-doctor", BreakGlass: true, Read: []string{"ward/*"}},
	}))
	mxAppend(t, s.l, hdLab("patient/p1", "p1"))
	ctl := strings.Repeat("\x01", 512)
	zeros := strings.Repeat("0", 480)
	long := url.Values{
		"since": {"2026-01-01T00:00:00." + zeros + "Z"}, "until": {"2099-01-01T00:00:00." + zeros + "Z"},
		"after": {strings.Repeat("0", 512)}, "limit": {strings.Repeat("0", 509) + "100"},
	}
	with := func(extra map[string]string) url.Values {
		v := url.Values{}
		for k, x := range long {
			v[k] = x
		}
		for k, x := range extra {
			v.Set(k, x)
		}
		return v
	}
	for _, c := range []struct {
		name    string
		token   string
		query   url.Values
		ua      string
		wantCut bool
	}{
		{"control characters", "tok-er", with(map[string]string{"type": ctl, "actor": ctl, "patient": ctl,
			"purpose": "emergency", "reason": "x" + strings.Repeat("\x01", 1023)}), "trail-test", true},
		{"%3C-heavy", "tok-er", with(map[string]string{"type": strings.Repeat("<", 512), "actor": strings.Repeat("&", 512),
			"patient": strings.Repeat(">", 512), "purpose": "emergency", "reason": strings.Repeat("<", 1024)}), "trail-test", false},
		{"quotes and backslashes", admin, with(map[string]string{"type": strings.Repeat(`"\`, 256), "actor": strings.Repeat(`\`, 512),
			"patient": strings.Repeat("\u2028", 170), "purpose": "emergency", "reason": "why" + strings.Repeat("\x7f\t", 510)}), "trail-test", false},
		{"User-Agent cut mid-character", admin, url.Values{"type": {"lab.result"}}, "a" + strings.Repeat("é", 300), false},
		{"User-Agent not UTF-8", admin, url.Values{"type": {"lab.result"}}, "agent\xff\xfe" + strings.Repeat("\xc3", 600), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sent := map[string]string{}
			for k, v := range c.query {
				sent[k] = v[0]
				if len(v[0]) > 1024 || k != "reason" && len(v[0]) > 512 {
					t.Fatalf("test parameter %s is %d bytes, over what the server takes", k, len(v[0]))
				}
			}
			escaped, _ := hdMarshal(sent)
			if c.wantCut && len(escaped) <= 16<<10 {
				t.Fatalf("test parameters are %d bytes escaped; want them past 16 KiB", len(escaped))
			}
			from := s.l.Size()
			r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?"+c.query.Encode(), c.token, nil, map[string]string{"User-Agent": c.ua})
			if r.Status != http.StatusOK {
				t.Fatalf("read: %v, want 200", r)
			}
			recs := hdRecords(t, s, from)
			streams := map[string]bool{}
			for _, rec := range recs {
				streams[rec.Stream] = true
				hdCheckStored(t, rec, sent, c.ua, c.wantCut)
			}
			if !streams[server.AccessStream] {
				t.Fatalf("read answered 200 but left no record in %s", server.AccessStream)
			}
			if _, emergency := sent["reason"]; emergency && !streams[server.BreakGlassStream] {
				t.Errorf("emergency read left no record in %s", server.BreakGlassStream)
			}
		})
	}
}

// hdCheckStored checks a stored read record of a read with the parameters
// sent and the User-Agent ua.
func hdCheckStored(t *testing.T, rec hdRecord, sent map[string]string, ua string, wantCut bool) {
	t.Helper()
	if rec.details > trail.MaxDetailsSize {
		t.Errorf("record %d: details are %d bytes, over %d", rec.Index, rec.details, trail.MaxDetailsSize)
	}
	if !utf8.Valid(rec.raw) {
		t.Errorf("record %d is not valid UTF-8", rec.Index)
	}
	if wantCut && !rec.Details.ParamsCut {
		t.Errorf("record %d of a read whose parameters do not fit: no params_cut: %s", rec.Index, truncate(rec.raw, 300))
	}
	for k, v := range sent {
		got, ok := rec.Details.Params[k]
		switch {
		case !ok:
			t.Errorf("record %d: parameter %s missing", rec.Index, k)
		case !rec.Details.ParamsCut && got != v:
			t.Errorf("record %d: parameter %s changed, though params_cut is not set", rec.Index, k)
		case !strings.HasPrefix(v, got):
			t.Errorf("record %d: parameter %s is not a prefix of the one sent", rec.Index, k)
		}
	}
	want := strings.ToValidUTF8(ua, "\uFFFD")
	for len(want) > 512 {
		_, n := utf8.DecodeLastRuneInString(want)
		want = want[:len(want)-n]
	}
	if rec.Actor.UserAgent != want {
		t.Errorf("record %d: user_agent %q (%d bytes), want %q (%d bytes): the first 512 bytes cut at a character boundary",
			rec.Index, truncate([]byte(rec.Actor.UserAgent), 40), len(rec.Actor.UserAgent), truncate([]byte(want), 40), len(want))
	}
}

// hdMarshal encodes v as a stored event does: compact, without HTML
// escaping.
func hdMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// TestHdPurposeAndReason: purpose is a code; an emergency reason must
// contain a visible character (spaces, controls and zero-width characters
// alone are 400); a 400 stores nothing.
func TestHdPurposeAndReason(t *testing.T) {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-er": {Name: "er-doctor", BreakGlass: true},
	}))
	for _, q := range []url.Values{
		{"purpose": {"emergency"}, "reason": {"\u200b"}},
		{"purpose": {"emergency"}, "reason": {"\u200b\u200c\u200d\u2060\ufeff"}},
		{"purpose": {"emergency"}, "reason": {" \t\u00a0\u3000"}},
		{"purpose": {"emergency"}, "reason": {"\x01\x02\x7f"}},
		{"purpose": {"emergency"}, "reason": {"\u0378\ue000\u2028"}}, // unassigned, private use, line separator
		{"purpose": {"emergency"}},
		{"purpose": {"treatment plan"}},
		{"purpose": {strings.Repeat("a", 65)}},
		{"purpose": {"trėatment"}},
		{"purpose": {""}},
		{"reason": {"why"}},
	} {
		size := s.l.Size()
		r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?"+q.Encode(), "tok-er", nil, nil)
		if r.Status != http.StatusBadRequest {
			t.Errorf("read with %q: %v, want 400", q.Encode(), r)
			continue
		}
		wantProblem(t, r, http.StatusBadRequest)
		s.wantUnchanged(t, size)
	}
	for _, q := range []url.Values{
		{"purpose": {"emergency"}, "reason": {"\u200bé"}},
		{"purpose": {"urn:oid:2.16.840.1.113883.5.8-ETREAT_x"}},
		{"purpose": {strings.Repeat("a", 64)}},
	} {
		if r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?"+q.Encode(), "tok-er", nil, nil); r.Status != http.StatusOK {
			t.Errorf("read with %q: %v, want 200", q.Encode(), r)
		}
	}
}

// TestHdLongPatientRecordable: an event may name a patient that takes most
// of its 64 KiB; reading it (by index, or in a query whose parameters fill
// the details) is answered and recorded, the patient of the per-patient
// record cut to its first 512 bytes (patient_cut).
func TestHdLongPatientRecordable(t *testing.T) {
	s := start(t)
	long := strings.Repeat("p", 65380)
	rc := s.appendOne(t, trail.Event{Stream: "ward/x", Type: "lab.result", Action: "C", Actor: trail.Actor{ID: "lab"}, Patient: long})
	ctl := strings.Repeat("\x01", 512)
	q := url.Values{"stream": {"ward/x"}, "type": {"lab.result"}, "actor": {"lab"}, "purpose": {"emergency"}, "reason": {"x" + strings.Repeat("\x01", 1023)}}
	for _, path := range []string{
		fmt.Sprintf("/v1/events/%d", rc.Index),
		fmt.Sprintf("/v1/events/%d?purpose=treatment", rc.Index),
		"/v1/events?" + q.Encode(),
		"/v1/events?type=lab.result&since=2026-01-01T00:00:00Z&order=desc&limit=1000&after=" + strings.Repeat("9", 19) + "&purpose=emergency&reason=" + url.QueryEscape("x"+ctl),
	} {
		from := s.l.Size()
		r := s.get(t, path)
		if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(long)) {
			t.Errorf("GET %s: %v, want 200 with the event", truncate([]byte(path), 80), r)
			continue
		}
		recs := hdAccess(hdRecords(t, s, from))
		var cut *hdRecord
		for i, rec := range recs {
			if rec.details > trail.MaxDetailsSize || len(rec.raw) > trail.MaxEventSize {
				t.Errorf("record %d: %d bytes, details %d", rec.Index, len(rec.raw), rec.details)
			}
			if rec.Patient != "" {
				cut = &recs[i]
			}
		}
		if cut == nil || cut.Patient != long[:512] || !cut.Details.PatientCut || cut.Details.Count != 1 {
			var got []string
			for _, rec := range recs {
				got = append(got, fmt.Sprintf("patient of %d bytes, patient_cut %v, count %d", len(rec.Patient), rec.Details.PatientCut, rec.Details.Count))
			}
			t.Errorf("GET %s: records %q, want one for the patient's first 512 bytes, with patient_cut and count 1", truncate([]byte(path), 80), got)
		}
	}
}

// TestHdTailClientStopsReading: a tail whose client stops reading ends once
// a write has waited TailWriteTimeout, freeing the principal's tail slot,
// and its closing record is stored.
func TestHdTailClientStopsReading(t *testing.T) {
	s := start(t, hdWith(func(c *server.Config) { c.MaxTails, c.TailWriteTimeout = 1, 300*time.Millisecond }),
		withPrincipals(map[string]*server.Principal{"tok-a": {Name: "clin-a", Read: []string{"patient/*"}}}))
	conn, err := net.Dial("tcp", s.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/tail HTTP/1.1\r\nHost: trail\r\nAuthorization: Bearer tok-a\r\n\r\n")
	// The tail holds the slot: a second one is refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, r := hdOpenTail(t, s, "tok-a", "")
		if r.Status == http.StatusTooManyRequests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unread tail never took the slot: %v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	from := s.l.Size()
	// Far more than the socket buffers hold, none of it read.
	big := strings.Repeat("x", 15<<10)
	for range 4 {
		evs := make([]trail.Event, 400)
		for i := range evs {
			evs[i] = event("", "patient/1")
			evs[i].Details = json.RawMessage(`{"note":"` + big + `"}`)
		}
		if _, err := s.l.AppendBatch(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		tl, r := hdOpenTail(t, s, "tok-a", "")
		if tl != nil {
			tl.close()
			break
		}
		if r.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("a tail whose client stopped reading still holds the slot after 10s: %v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The ended tail's record is appended as its handler returns, which
	// may be just after it gave the slot up.
	deadline = time.Now().Add(10 * time.Second)
	for ended := false; !ended; time.Sleep(50 * time.Millisecond) {
		for _, rec := range s.readsFrom(t, from) {
			ended = ended || rec.Actor.ID == "clin-a" && rec.Details.Endpoint == "GET /v1/tail" && rec.Details.Count > 0
		}
		if !ended && time.Now().After(deadline) {
			t.Fatalf("no record of what the ended tail delivered, 10s after it ended")
		}
	}
}

// TestHdReadRecordVolumeBounded: the read rate counts read records, not
// reads. A patient/* reader whose reads each return 1,000 patients' events
// (and so append 1,001 records) keeps reading for ~3s: the records it adds
// to trail/access stay within rate × time + burst + one read's fan-out, its
// reads past that get 429 with Retry-After and leave no record, and another
// principal reads meanwhile.
func TestHdReadRecordVolumeBounded(t *testing.T) {
	const rate, burst, patients = 400, 400, 1000
	s := start(t, hdWith(func(c *server.Config) {
		c.ReadRate = server.Rate{PerSecond: rate, Burst: burst}
	}), withPrincipals(map[string]*server.Principal{
		"tok-bulk":  {Name: "bulk-reader", Read: []string{"patient/*"}},
		"tok-other": {Name: "other-reader", Read: []string{"patient/*"}},
	}))
	evs := make([]trail.Event, patients)
	for i := range evs {
		pt := fmt.Sprintf("p%d", i)
		evs[i] = hdLab("patient/"+pt, pt)
	}
	if _, err := s.l.AppendBatch(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	from := s.l.Size()
	fanOut := patients + 1 // the read's record and one per patient
	began := time.Now()
	ok, limited, otherRead := 0, 0, false
	for time.Since(began) < 3*time.Second {
		size := s.l.Size()
		r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?limit=1000", "tok-bulk", nil, nil)
		if r.Status == http.StatusOK {
			ok++
			// Stop early once the records are past any bound a working
			// limit allows: without it this loop would store ~1,000 records
			// per read for 3s.
			if most := rate*time.Since(began).Seconds() + burst + float64(fanOut); float64(ok*fanOut) > most+float64(fanOut) {
				break
			}
			continue
		}
		wantProblem(t, r, http.StatusTooManyRequests, "bulk-reader")
		hdRetryAfter(t, r)
		s.wantUnchanged(t, size) // no record of a refused read
		limited++
		if !otherRead {
			otherRead = true
			o := hdSend(t, s, s.client, http.MethodGet, "/v1/events?limit=1000", "tok-other", nil, nil)
			if o.Status != http.StatusOK {
				t.Errorf("another principal's read while bulk-reader is limited: %v, want 200", o)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(began)
	n := 0
	for _, rec := range hdAccess(hdRecords(t, s, from)) {
		if rec.Actor.ID == "bulk-reader" {
			n++
		}
	}
	t.Logf("%d reads allowed, %d refused, %d records in %v", ok, limited, n, elapsed)
	if ok == 0 || n != ok*fanOut {
		t.Fatalf("%d allowed reads of %d patients' events stored %d records, want %d each", ok, patients, n, fanOut)
	}
	if most := rate*elapsed.Seconds() + burst + float64(fanOut); float64(n) > most {
		t.Errorf("bulk-reader appended %d read records in %v at a read rate of %d/s with a burst of %d: want at most %.0f (rate × time + burst + one read's records)",
			n, elapsed.Round(time.Millisecond), rate, burst, most)
	}
	if limited == 0 {
		t.Errorf("bulk-reader read for %v with no 429", elapsed.Round(time.Millisecond))
	}
	if !otherRead {
		t.Error("another principal's read was not tried")
	}
}

// hdBulk appends n events of other streams straight through the engine, in
// batches, with the events of between at n/len(between) spread among them
// (the first at index 0), and returns the indexes of those.
func hdBulk(t testing.TB, s *testServer, n int, between []trail.Event) []uint64 {
	t.Helper()
	const batch = 5000
	var idx []uint64
	every := n / max(1, len(between))
	evs := make([]trail.Event, 0, batch)
	flush := func() {
		rcs, err := s.l.AppendBatch(context.Background(), evs)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if len(between) > 0 && e.Stream == between[0].Stream {
				idx = append(idx, rcs[i].Index)
			}
		}
		evs = evs[:0]
	}
	for i := range n {
		if len(between) > 0 && i%every == 0 && i/every < len(between) {
			evs = append(evs, between[i/every])
		}
		evs = append(evs, hdLab(fmt.Sprintf("other/s%d", i%500), ""))
		if len(evs) >= batch {
			flush()
		}
	}
	if len(evs) > 0 {
		flush()
	}
	return idx
}

// hdBulkSize is the events of other streams the query cost tests store
// (fewer with -short, and in PostgreSQL, where storing them takes longer).
func hdBulkSize() int {
	if testing.Short() || *storeFlag == "postgres" {
		return 20_000
	}
	return 200_000
}

// TestHdQueryCostFollowsReadable: a reader of one stream among many other
// events pages through its 10 events (no filter or a filter every event
// matches, in either order): each page reads about as many records as it
// returns (the engine's count of records queries read), not the log.
func TestHdQueryCostFollowsReadable(t *testing.T) {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-one": {Name: "one-stream", Read: []string{"ward/a"}},
	}))
	mine := make([]trail.Event, 10)
	for i := range mine {
		mine[i] = hdLab("ward/a", "")
	}
	n := hdBulkSize()
	want := hdBulk(t, s, n, mine)
	if len(want) != 10 {
		t.Fatalf("stored %d events of ward/a, want 10", len(want))
	}
	const limit = 3
	for _, q := range []string{"order=desc", "order=asc", "order=desc&type=lab.result", "type=lab.result"} {
		var got []uint64
		after := ""
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("%s: more than 10 pages of 10 events", q)
			}
			before := s.l.Stats().QueryRecords
			began := time.Now()
			r := hdSend(t, s, s.client, http.MethodGet, fmt.Sprintf("/v1/events?%s&limit=%d%s", q, limit, after), "tok-one", nil, nil)
			took := time.Since(began)
			read := s.l.Stats().QueryRecords - before
			var res struct {
				Events []struct {
					Index  uint64 `json:"index"`
					Stream string `json:"stream"`
				}
				Next string
			}
			wantJSONLoose(t, r, &res)
			if read > 2*(limit+1) {
				t.Errorf("%s page %d: the query read %d records of a log of %d for a page of %d (in %v): it scans what the reader may not read",
					q, page, read, s.l.Size(), len(res.Events), took)
			}
			for _, e := range res.Events {
				if e.Stream != "ward/a" {
					t.Fatalf("%s: an event of %s returned to a reader of ward/a", q, e.Stream)
				}
				got = append(got, e.Index)
			}
			if res.Next == "" {
				break
			}
			after = "&after=" + res.Next
		}
		w := slices.Clone(want)
		if !strings.Contains(q, "asc") && strings.Contains(q, "desc") {
			slices.Reverse(w)
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s: pages returned %v, want %v", q, got, w)
		}
	}
}

// TestHdQueryStopsWhenClientGoes: a query that reads the log to find
// nothing the reader may read (its grants are too many exact streams for
// the index to narrow the query) stops within moments of its client going
// away, long before it would have read the log: the engine's running
// queries fall to none, having read a part of it.
func TestHdQueryStopsWhenClientGoes(t *testing.T) {
	if *storeFlag == "postgres" {
		t.Skip("PostgreSQL matches the grants itself (stream = ANY), so no query here reads the log record by record")
	}
	grants := make([]string, 300) // past the store's MaxScopeLegs: the query reads every record
	for i := range grants {
		grants[i] = fmt.Sprintf("ward/r%d", i)
	}
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-many": {Name: "many-grants", Read: grants},
	}))
	n := hdBulkSize()
	hdBulk(t, s, n, nil)
	if running := s.l.Stats().Queries; running != 0 {
		t.Fatalf("%d queries running before the test's", running)
	}
	before := s.l.Stats().QueryRecords
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ts.URL+"/v1/events?order=desc", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok-many")
	began := time.Now()
	resp, err := s.client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the query answered %d within 50ms over %d events: the test needs a query that takes longer", resp.StatusCode, n)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("query: %v, want the client's deadline", err)
	}
	for s.l.Stats().Queries != 0 {
		if waited := time.Since(began); waited > 550*time.Millisecond {
			t.Fatalf("a query still runs %v after its client went away at 50ms", waited.Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := time.Since(began)
	read := s.l.Stats().QueryRecords - before
	t.Logf("the query stopped %v after it began, having read %d of %d records", stopped.Round(time.Millisecond), read, s.l.Size())
	if read == 0 || read >= uint64(n) {
		t.Errorf("the query read %d records of %d before it stopped: want part of the log (it ran, and stopped before the end)", read, n)
	}
}

// TestHdTailRecordsPerSecond: a tail that delivers events of several
// patients for ~3s appends at most about one record per patient a second
// (one per TailRecordEvery, +1 for its end), whose counts add up to what it
// delivered; and each patient finds the tail's records in its own view
// (stream=trail/access&patient=P) with its own principal's token.
func TestHdTailRecordsPerSecond(t *testing.T) {
	patients := []string{"p1", "p2", "p3", "p4"}
	principals := map[string]*server.Principal{"tok-clin": {Name: "clin", Read: []string{"patient/*"}}}
	for _, pt := range patients {
		principals["tok-"+pt] = &server.Principal{Name: "patient-" + pt, Patient: pt}
	}
	s := start(t, withPrincipals(principals))
	from := s.l.Size()
	tl, r := hdOpenTail(t, s, "tok-clin", "")
	if tl == nil {
		t.Fatalf("tail: %v", r)
	}
	go io.Copy(io.Discard, tl.resp.Body) // a client that keeps reading
	began := time.Now()
	sent := map[string]int{}
	for time.Since(began) < 3*time.Second {
		var evs []trail.Event
		for _, pt := range patients {
			evs = append(evs, hdLab("patient/"+pt, pt))
			sent[pt]++
		}
		if _, err := s.l.AppendBatch(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	perPatient := func() map[string][]hdRecord {
		m := map[string][]hdRecord{}
		for _, rec := range hdAccess(hdRecords(t, s, from)) {
			if rec.Actor.ID == "clin" && rec.Details.Endpoint == "GET /v1/tail" && rec.Patient != "" {
				m[rec.Patient] = append(m[rec.Patient], rec)
			}
		}
		return m
	}
	// Every delivered event is recorded within about a second; then the
	// tail ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		complete := true
		for pt, recs := range perPatient() {
			n := 0
			for _, rec := range recs {
				n += rec.Details.Count
			}
			complete = complete && n == sent[pt]
		}
		if complete && len(perPatient()) == len(patients) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the last event, the tail's records do not count all %v delivered", sent)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tl.close()
	s.waitTailsEnded(t)
	elapsed := time.Since(began)
	most := int(elapsed.Seconds()) + 2 // one a second, rounded up, and +1
	by := perPatient()
	for _, pt := range patients {
		recs, n := by[pt], 0
		for _, rec := range recs {
			n += rec.Details.Count
			if len(rec.Details.Streams) != 1 || rec.Details.Streams[0] != "patient/"+pt {
				t.Errorf("tail record for %s lists streams %v, want [patient/%s]", pt, rec.Details.Streams, pt)
			}
		}
		if n != sent[pt] {
			t.Errorf("%s: tail records count %d events, it was sent %d", pt, n, sent[pt])
		}
		if len(recs) > most {
			t.Errorf("%s: %d tail records in %v of delivery, want at most %d (one a second, +1)", pt, len(recs), elapsed.Round(time.Millisecond), most)
		}
		if len(recs) < 2 {
			t.Errorf("%s: %d tail records in %v of delivery, want one about every second", pt, len(recs), elapsed.Round(time.Millisecond))
		}

		// The patient's own view finds them, and nothing of others.
		r := hdSend(t, s, s.client, http.MethodGet, "/v1/events?stream=trail/access&patient="+pt+"&limit=1000", "tok-"+pt, nil, nil)
		var view struct{ Events []json.RawMessage }
		wantJSONLoose(t, r, &view)
		seen := 0
		for _, e := range view.Events {
			var rec hdRecord
			json.Unmarshal(e, &rec)
			if rec.Patient != pt {
				t.Errorf("%s's view holds a record of patient %q: %s", pt, rec.Patient, e)
			}
			if rec.Actor.ID == "clin" && rec.Details.Endpoint == "GET /v1/tail" {
				seen += rec.Details.Count
			}
		}
		if seen != sent[pt] {
			t.Errorf("%s's own view (trail/access&patient=%s) finds tail records of %d events, the tail delivered %d: %s", pt, pt, seen, sent[pt], truncate(r.Body, 400))
		}
	}
}
