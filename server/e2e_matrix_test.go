package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// mxServer is a real engine behind the real API whose principals are those
// of DIR/tokens.json, loaded and watched by server.TokenAuth, as trail serve
// runs it.
type mxServer struct {
	dir    string
	l      *trail.Log
	srv    *server.Server
	auth   *server.TokenAuth
	h      http.Handler
	admin  server.Token
	tokens map[string]string // principal name → bearer token
	url    string            // set by serve
}

// mxStart creates the principals (and revokes those named in revoked) in a
// new data directory with package auth, the way "trail token" does, then
// opens the engine and the server over it. Nothing listens yet: serve does.
func mxStart(t testing.TB, cfg trail.Config, principals []auth.Entry, revoked ...string) *mxServer {
	t.Helper()
	dir := t.TempDir()
	s := &mxServer{dir: dir, tokens: map[string]string{}}
	for _, p := range principals {
		s.tokens[p.Name] = mxCreate(t, dir, p)
	}
	for _, name := range revoked {
		if err := auth.Revoke(dir, name, time.Now()); err != nil {
			t.Fatalf("revoke %s: %v", name, err)
		}
	}
	l, err := openEngine(t, dir, cfg)
	if err != nil {
		t.Fatalf("open engine in a directory that holds tokens.json: %v", err)
	}
	s.l = l
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	if s.admin, _, err = server.EnsureAdminToken(dir); err != nil {
		t.Fatalf("admin token: %v", err)
	}
	if s.auth, err = server.NewTokenAuth(dir, s.admin, nil); err != nil {
		t.Fatalf("token auth: %v", err)
	}
	t.Cleanup(s.auth.Close)
	if s.srv, err = server.New(l, server.Config{Auth: s.auth, ReadRate: unlimitedReads, AdminReadRate: unlimitedReads}); err != nil {
		t.Fatalf("new server: %v", err)
	}
	t.Cleanup(s.srv.Shutdown)
	s.h = checkAPI(t, s.srv.Handler())
	return s
}

// mxCreate adds a principal to dir's tokens file and returns its token.
func mxCreate(t testing.TB, dir string, p auth.Entry) string {
	t.Helper()
	tok, err := auth.Create(dir, p, time.Now())
	if err != nil {
		t.Fatalf("create principal %s: %v", p.Name, err)
	}
	return tok
}

// serve listens on loopback over plain HTTP until the test ends. Live tails
// end before the listener closes (cleanups run last in, first out).
func (s *mxServer) serve(t testing.TB) {
	t.Helper()
	ts := httptest.NewServer(s.h)
	t.Cleanup(ts.Close)
	t.Cleanup(s.srv.Shutdown)
	s.url = ts.URL
}

// mxAppend stores events straight through the engine and returns their
// indexes.
func mxAppend(t testing.TB, l *trail.Log, evs ...trail.Event) []uint64 {
	t.Helper()
	var idx []uint64
	for _, e := range evs {
		rc, err := l.Append(context.Background(), e)
		if err != nil {
			t.Fatalf("engine append to %s: %v", e.Stream, err)
		}
		idx = append(idx, rc.Index)
	}
	return idx
}

// mxEvent is a valid event of a stream about a patient, done by actor.
func mxEvent(stream, patient, actor string) trail.Event {
	return trail.Event{Stream: stream, Type: "patient-record.read", Action: "R",
		Actor: trail.Actor{ID: actor, Role: "physician"}, Patient: patient}
}

// mxClientFrom returns an HTTP client whose connections come from the
// loopback address ip (Linux routes all of 127.0.0.0/8 to loopback), so a
// test can be several client addresses at once. It never follows redirects.
func mxClientFrom(t testing.TB, ip string) *http.Client {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("this test needs the loopback address %s (all of 127.0.0.0/8 is loopback on Linux): %v", ip, err)
	}
	ln.Close()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// mxReply is an HTTP answer.
type mxReply struct {
	status int
	header http.Header
	body   []byte
}

func (r mxReply) String() string {
	b := r.body
	if len(b) > 400 {
		b = b[:400]
	}
	return fmt.Sprintf("%d %s: %s", r.status, r.header.Get("Content-Type"), b)
}

// mxRequest is one request of a test.
type mxRequest struct {
	method, path string
	query        url.Values
	body         []byte
	token        string // "" sends no Authorization
	headOnly     bool   // read the status and headers, then hang up (a tail)
}

// mxSend sends rq to base with c and reads the answer.
func mxSend(ctx context.Context, c *http.Client, base string, rq mxRequest) (mxReply, error) {
	u := base + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return mxReply{}, err
	}
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return mxReply{}, err
	}
	defer resp.Body.Close()
	r := mxReply{status: resp.StatusCode, header: resp.Header}
	if rq.headOnly && resp.StatusCode == http.StatusOK {
		return r, nil
	}
	r.body, err = io.ReadAll(resp.Body)
	return r, err
}

// mxServe answers rq with the handler itself, as if it came from
// remoteAddr, and reads the whole answer.
func mxServe(h http.Handler, remoteAddr string, rq mxRequest) mxReply {
	u := rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	req := httptest.NewRequest(rq.method, u, bytes.NewReader(rq.body))
	req.RemoteAddr = remoteAddr
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return mxReply{status: w.Code, header: w.Result().Header, body: w.Body.Bytes()}
}

// mxProblem checks that r is an application/problem+json answer with the
// status whose detail names each of detailHas.
func mxProblem(t testing.TB, r mxReply, status int, detailHas ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %v, want status %d", r, status)
	}
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "application/problem+json" {
		t.Errorf("status %d: Content-Type %q, want application/problem+json", status, r.header.Get("Content-Type"))
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("status %d: problem body %q: %v", status, r.body, err)
	}
	if p.Status != status || strings.TrimSpace(p.Detail) == "" {
		t.Errorf("status %d: problem %s: want its status and a detail", status, r.body)
	}
	for _, s := range detailHas {
		if !strings.Contains(p.Detail, s) {
			t.Errorf("status %d: detail %q does not name %q", status, p.Detail, s)
		}
	}
}

// mxUnauthorized checks a 401: a problem with WWW-Authenticate: Bearer.
func mxUnauthorized(t testing.TB, r mxReply) {
	t.Helper()
	mxProblem(t, r, http.StatusUnauthorized)
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(strings.ToLower(ch), "bearer") {
		t.Errorf("401 with WWW-Authenticate %q, want a Bearer challenge", ch)
	}
}

// mxRecord is a stored event as the read audit checks it.
type mxRecord struct {
	Index   uint64 `json:"index"`
	Stream  string `json:"stream"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Actor   struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	} `json:"actor"`
	Patient string `json:"patient"`
	Purpose string `json:"purpose"`
	Details struct {
		Endpoint string            `json:"endpoint"`
		Params   map[string]string `json:"params"`
		Count    int               `json:"count"`
		Reason   string            `json:"reason"`
	} `json:"details"`
}

func mxParse(t testing.TB, rec []byte) mxRecord {
	t.Helper()
	var r mxRecord
	if err := json.Unmarshal(rec, &r); err != nil {
		t.Fatalf("stored event %s: %v", rec, err)
	}
	return r
}

// mxSince returns the events stored at index from and after, read from the
// log itself: looking adds no read record.
func mxSince(t testing.TB, l *trail.Log, from uint64) []mxRecord {
	t.Helper()
	var out []mxRecord
	for i := from; i < l.Size(); i++ {
		rec, err := l.Read(i)
		if err != nil {
			t.Fatalf("engine read %d: %v", i, err)
		}
		out = append(out, mxParse(t, rec))
	}
	return out
}

// mxAudit returns the records of an audit stream, through the engine.
func mxAudit(t testing.TB, l *trail.Log, stream string) []mxRecord {
	t.Helper()
	res, err := l.Query(context.Background(), trail.Query{Stream: stream, Limit: 1000})
	if err != nil {
		t.Fatalf("engine query %s: %v", stream, err)
	}
	out := make([]mxRecord, len(res.Events))
	for i, e := range res.Events {
		out[i] = mxParse(t, e)
	}
	return out
}

// mxMatch is the grant rule of the contract: an exact stream, or a prefix
// ending in "/*" that matches everything below it but not itself.
func mxMatch(patterns []string, stream string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "/*"); ok {
			if strings.HasPrefix(stream, prefix+"/") && len(stream) > len(prefix)+1 {
				return true
			}
		} else if p == stream {
			return true
		}
	}
	return false
}

// mxWho is a row of the matrix: who sends the requests.
type mxWho struct {
	label  string
	name   string // the principal; "" when the request cannot authenticate
	token  string
	addr   string // the loopback address its requests come from
	read   []string
	append []string
	admin  bool
	glass  bool // break-glass: its reads carry purpose=emergency and a reason
}

func (w mxWho) authenticated() bool { return w.name != "" }

// mayRead is the contract's read rule for w (break-glass reads open every
// stream but Trail's own).
func (w mxWho) mayRead(stream string) bool {
	return w.admin || mxMatch(w.read, stream) || w.glass && !strings.HasPrefix(stream, "trail/")
}

func (w mxWho) mayAppend(stream string) bool {
	return w.admin || mxMatch(w.append, stream)
}

// mxStream is a column of the matrix: a stream, its patient and the actor
// of its events.
type mxStream struct {
	label, name, patient, actor string
	idx                         []uint64 // its seeded events
}

// mxOp is an operation of the matrix.
type mxOp struct {
	name     string
	endpoint string // the route pattern recorded; "" for append, which is not recorded
	// request builds the request on a stream.
	request func(st mxStream) mxRequest
	// named: the read names the stream, so an unreadable one is 403.
	named bool
	// filter is the query the oracle runs for GET /v1/events.
	filter func(st mxStream) trail.Query
	// patient is the patient the read record names.
	patient func(st mxStream) string
	// count is the events an allowed answer carries, when fixed.
	count int
}

// mxSeedSize is the tree size the matrix proves inclusion in.
const mxSeedSize = 5

func mxOps() []mxOp {
	streamPatient := func(st mxStream) string { return st.patient }
	q := func(k func(mxStream) (string, string)) func(mxStream) mxRequest {
		return func(st mxStream) mxRequest {
			name, v := k(st)
			return mxRequest{method: http.MethodGet, path: "/v1/events", query: url.Values{name: {v}}}
		}
	}
	return []mxOp{
		{name: "query by stream", endpoint: "GET /v1/events", named: true, patient: streamPatient,
			request: q(func(st mxStream) (string, string) { return "stream", st.name }),
			filter:  func(st mxStream) trail.Query { return trail.Query{Stream: st.name} }},
		{name: "query by patient", endpoint: "GET /v1/events", patient: streamPatient,
			request: q(func(st mxStream) (string, string) { return "patient", st.patient }),
			filter:  func(st mxStream) trail.Query { return trail.Query{Patient: st.patient} }},
		{name: "query by actor", endpoint: "GET /v1/events", patient: func(mxStream) string { return "" },
			request: q(func(st mxStream) (string, string) { return "actor", st.actor }),
			filter:  func(st mxStream) trail.Query { return trail.Query{Actor: st.actor} }},
		{name: "get", endpoint: "GET /v1/events/{index}", named: true, patient: streamPatient, count: 1,
			request: func(st mxStream) mxRequest {
				return mxRequest{method: http.MethodGet, path: "/v1/events/" + strconv.FormatUint(st.idx[0], 10)}
			}},
		{name: "proof", endpoint: "GET /v1/events/{index}/proof", named: true, patient: streamPatient, count: 1,
			request: func(st mxStream) mxRequest {
				return mxRequest{method: http.MethodGet, path: fmt.Sprintf("/v1/events/%d/proof", st.idx[0]),
					query: url.Values{"size": {strconv.Itoa(mxSeedSize)}}}
			}},
		{name: "tail", endpoint: "GET /v1/tail", named: true, patient: streamPatient,
			request: func(st mxStream) mxRequest {
				return mxRequest{method: http.MethodGet, path: "/v1/tail", query: url.Values{"stream": {st.name}}, headOnly: true}
			}},
		{name: "stream head", endpoint: "GET /v1/streams/{stream...}", named: true, patient: streamPatient,
			request: func(st mxStream) mxRequest {
				return mxRequest{method: http.MethodGet, path: "/v1/streams/" + st.name}
			}},
		// Last: the events it adds would change what the reads above see.
		{name: "append",
			request: func(st mxStream) mxRequest {
				b, _ := json.Marshal(mxEvent(st.name, st.patient, "matrix-writer"))
				return mxRequest{method: http.MethodPost, path: "/v1/events", body: b}
			}},
	}
}

// TestAccessMatrix walks every principal over every operation on a stream
// it may read and one it may not, and checks both the answer and what the
// read audit stored: allowed reads are recorded with their count, 403s as
// minor failures, 401s and appends not at all; break-glass reads also in
// trail/break-glass.
func TestAccessMatrix(t *testing.T) {
	principals := []auth.Entry{
		{Name: "revoked-reader", Read: []string{"patient/*"}},
		{Name: "writer", Append: []string{"patient/*"}},
		{Name: "reader-1", Read: []string{"patient/1"}},
		{Name: "patient-1", Read: []string{"patient/1"}},
		{Name: "er-doc", BreakGlass: true},
	}
	s := mxStart(t, trail.DefaultConfig(), principals, "revoked-reader")
	s.serve(t)
	streams := []mxStream{
		{label: "allowed", name: "patient/1", patient: "1", actor: "dr-one"},
		{label: "forbidden", name: "patient/2", patient: "2", actor: "dr-two"},
	}
	streams[0].idx = mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"), mxEvent("patient/1", "1", "dr-one"))
	streams[1].idx = mxAppend(t, s.l, mxEvent("patient/2", "2", "dr-two"), mxEvent("patient/2", "2", "dr-two"), mxEvent("patient/2", "2", "dr-two"))
	if s.l.Size() != mxSeedSize {
		t.Fatalf("seeded %d events, want %d", s.l.Size(), mxSeedSize)
	}

	who := []mxWho{
		{label: "no token", addr: "127.0.0.2"},
		{label: "bad token", token: string(auth.NewToken()), addr: "127.0.0.3"},
		{label: "revoked", token: s.tokens["revoked-reader"], addr: "127.0.0.4"},
		{label: "writer", name: "writer", token: s.tokens["writer"], addr: "127.0.0.5", append: []string{"patient/*"}},
		{label: "reader", name: "reader-1", token: s.tokens["reader-1"], addr: "127.0.0.6", read: []string{"patient/1"}},
		{label: "patient", name: "patient-1", token: s.tokens["patient-1"], addr: "127.0.0.7", read: []string{"patient/1"}},
		{label: "break-glass", name: "er-doc", token: s.tokens["er-doc"], addr: "127.0.0.8", glass: true},
		{label: "admin", name: "admin", token: string(s.admin), addr: "127.0.0.9", admin: true},
	}
	clients := map[string]*http.Client{}
	for _, w := range who {
		clients[w.addr] = mxClientFrom(t, w.addr)
	}
	for _, op := range mxOps() {
		for _, w := range who {
			for _, st := range streams {
				t.Run(op.name+","+w.label+","+st.label, func(t *testing.T) {
					mxCell(t, s, clients[w.addr], op, w, st)
				})
			}
		}
	}
}

// mxCell runs one cell of the matrix.
func mxCell(t *testing.T, s *mxServer, c *http.Client, op mxOp, w mxWho, st mxStream) {
	rq := op.request(st)
	rq.token = w.token
	emergency := w.glass && op.endpoint != ""
	if emergency {
		if rq.query == nil {
			rq.query = url.Values{}
		}
		rq.query.Set("purpose", "emergency")
		rq.query.Set("reason", "code blue in ER")
	}
	var visible []uint64
	if op.filter != nil {
		visible = mxVisible(t, s.l, op.filter(st), w)
	}
	before := s.l.Size()
	r, err := mxSend(context.Background(), c, s.url, rq)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	stored := mxSince(t, s.l, before)

	if !w.authenticated() {
		mxUnauthorized(t, r)
		if len(stored) != 0 {
			t.Errorf("a 401 stored %d events (first %+v): refused credentials are not recorded", len(stored), stored[0])
		}
		return
	}
	if op.endpoint == "" {
		mxCellAppend(t, r, w, st, stored)
		return
	}

	allowed := !op.named || w.mayRead(st.name)
	want := mxRecord{Stream: server.AccessStream, Type: "audit-log.read", Action: "R", Patient: op.patient(st)}
	want.Actor.ID, want.Actor.Address = w.name, w.addr
	want.Details.Endpoint, want.Details.Params = op.endpoint, map[string]string{}
	for k := range rq.query {
		want.Details.Params[k] = rq.query.Get(k)
	}
	if emergency {
		want.Purpose, want.Details.Reason = "emergency", rq.query.Get("reason")
	}
	var carried []mxRecord
	if allowed {
		want.Outcome = trail.OutcomeSuccess
		carried = mxCheckAnswer(t, s, r, op, w, st, visible)
		want.Details.Count = len(carried)
	} else {
		want.Outcome = trail.OutcomeMinorFailure
		if strings.HasPrefix(op.endpoint, "GET /v1/events/{index}") {
			// Read by index: the answer must not say which stream (patient)
			// the event belongs to; the record does.
			mxProblem(t, r, http.StatusForbidden, "read grant", "the stream of event")
			if strings.Contains(string(r.body), st.name) {
				t.Errorf("403 for a read by index names the stream: %s", r.body)
			}
		} else {
			mxProblem(t, r, http.StatusForbidden, "read grant", st.name)
		}
	}

	wantStored := []mxRecord{want}
	if emergency {
		bg := want
		bg.Stream = server.BreakGlassStream
		wantStored = append(wantStored, bg)
	}
	wantStored = append(wantStored, mxFanOut(want, carried)...)
	if op.endpoint == "GET /v1/tail" && allowed {
		// A tail is recorded again when it ends (the client hung up):
		// nothing was delivered, so with count 0.
		end := want
		end.Details.Count = 0
		wantStored = append(wantStored, end)
		stored = mxWaitSince(t, s.l, before, len(wantStored))
	}
	ignoreIndex := cmpopts.IgnoreFields(mxRecord{}, "Index")
	if d := cmp.Diff(wantStored, stored, ignoreIndex, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("events stored by the read (-want +got):\n%s", d)
	}
}

// mxCellAppend checks an append cell: 201 when granted, 403 naming the
// append grant otherwise; an append is never a read record.
func mxCellAppend(t *testing.T, r mxReply, w mxWho, st mxStream, stored []mxRecord) {
	t.Helper()
	if !w.mayAppend(st.name) {
		if len(w.append) == 0 && !w.admin {
			// No append grant at all: refused before the body is read.
			mxProblem(t, r, http.StatusForbidden, "no append grant")
		} else {
			mxProblem(t, r, http.StatusForbidden, "append grant", st.name)
		}
		if len(stored) != 0 {
			t.Errorf("a refused append stored %+v", stored)
		}
		return
	}
	if r.status != http.StatusCreated {
		t.Fatalf("got %v, want 201", r)
	}
	var rc struct {
		Index  uint64 `json:"index"`
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal(r.body, &rc); err != nil || rc.Stream != st.name {
		t.Fatalf("receipt %s (%v): want one of stream %s", r.body, err, st.name)
	}
	if len(stored) != 1 || stored[0].Stream != st.name || stored[0].Index != rc.Index {
		t.Errorf("append stored %+v, want only the event itself (index %d): appends are not read records", stored, rc.Index)
	}
}

// mxVisible is the oracle of a query: every stored event q selects that w
// may read, in the order and number of a default page.
func mxVisible(t testing.TB, l *trail.Log, q trail.Query, w mxWho) []uint64 {
	t.Helper()
	q.Limit = 1000
	res, err := l.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("engine query: %v", err)
	}
	var idx []uint64
	for _, e := range res.Events {
		if r := mxParse(t, e); w.mayRead(r.Stream) && len(idx) < 100 {
			idx = append(idx, r.Index)
		}
	}
	return idx
}

// mxFanOut returns the records a read leaves for the patients of the events
// it carried other than the one it named (IHE BALP): one per patient, with
// the count of that patient's events.
func mxFanOut(main mxRecord, carried []mxRecord) []mxRecord {
	counts := map[string]int{}
	for _, e := range carried {
		if e.Patient != main.Patient && !trail.IsReservedStream(e.Stream) {
			counts[e.Patient]++
		}
	}
	var out []mxRecord
	for _, pt := range slices.Sorted(maps.Keys(counts)) {
		r := main
		r.Stream, r.Patient, r.Details.Count = server.AccessStream, pt, counts[pt]
		out = append(out, r)
	}
	return out
}

// mxWaitSince waits until the log holds n events from index from on (a
// tail's closing record is stored after its client hung up).
func mxWaitSince(t testing.TB, l *trail.Log, from uint64, n int) []mxRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.WaitSize(ctx, from+uint64(n)-1); err != nil {
		t.Fatalf("waiting for %d records from index %d: %v (have %d)", n, from, err, l.Size()-from)
	}
	return mxSince(t, l, from)
}

// mxCheckAnswer checks the 200 of an allowed read and returns the events it
// carried.
func mxCheckAnswer(t *testing.T, s *mxServer, r mxReply, op mxOp, w mxWho, st mxStream, visible []uint64) []mxRecord {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("got %v, want 200", r)
	}
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	switch op.endpoint {
	case "GET /v1/events":
		var page struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatalf("query answer %s: %v", r.body, err)
		}
		var got []uint64
		var carried []mxRecord
		for _, e := range page.Events {
			rec := mxParse(t, e)
			if !w.mayRead(rec.Stream) {
				t.Errorf("LEAK: %s may not read %s, yet the query answered its event %d", w.label, rec.Stream, rec.Index)
			}
			got = append(got, rec.Index)
			carried = append(carried, rec)
		}
		if d := cmp.Diff(visible, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("events answered (-readable +got):\n%s", d)
		}
		return carried
	case "GET /v1/events/{index}":
		want, _ := s.l.Read(st.idx[0])
		if !bytes.Equal(r.body, want) || mt != "application/json" {
			t.Errorf("get answered %s %q, want application/json %q", mt, r.body, want)
		}
	case "GET /v1/events/{index}/proof":
		var p struct {
			Index    uint64 `json:"index"`
			Size     uint64 `json:"size"`
			LeafHash string `json:"leaf_hash"`
		}
		rec, _ := s.l.Read(st.idx[0])
		lh := trail.LeafHash(rec)
		if err := json.Unmarshal(r.body, &p); err != nil || p.Index != st.idx[0] || p.Size != mxSeedSize || p.LeafHash != hex.EncodeToString(lh[:]) {
			t.Errorf("proof answered %s (%v), want index %d size %d leaf %x", r.body, err, st.idx[0], mxSeedSize, lh)
		}
	case "GET /v1/tail":
		if mt != "text/event-stream" {
			t.Errorf("tail Content-Type %q, want text/event-stream", mt)
		}
	case "GET /v1/streams/{stream...}":
		var h struct {
			Stream string `json:"stream"`
			Length int    `json:"length"`
		}
		if err := json.Unmarshal(r.body, &h); err != nil || h.Stream != st.name || h.Length != len(st.idx) {
			t.Errorf("stream head %s (%v), want %s of length %d", r.body, err, st.name, len(st.idx))
		}
	}
	if op.count == 1 {
		rec, _ := s.l.Read(st.idx[0])
		return []mxRecord{mxParse(t, rec)}
	}
	return nil
}

// TestAccessMatrixBreakGlassTrail: after the matrix's kind of reads, the
// break-glass list holds exactly the emergency reads, each the same content
// as its trail/access record, and no one else's.
func TestAccessMatrixBreakGlassTrail(t *testing.T) {
	s := mxStart(t, trail.DefaultConfig(), []auth.Entry{
		{Name: "er-doc", BreakGlass: true},
		{Name: "reader-1", Read: []string{"patient/1"}},
	})
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"), mxEvent("patient/2", "2", "dr-two"))
	emergency := url.Values{"purpose": {"emergency"}, "reason": {"cardiac arrest"}}
	reads := []struct {
		tok    string
		q      url.Values
		status int
	}{
		{s.tokens["er-doc"], url.Values{"stream": {"patient/2"}, "purpose": {"emergency"}, "reason": {"cardiac arrest"}}, 200},
		{s.tokens["er-doc"], url.Values{"stream": {"patient/2"}}, 403},                                               // no purpose: its grants, none
		{s.tokens["er-doc"], url.Values{"stream": {"trail/access"}, "purpose": {"emergency"}, "reason": {"x"}}, 403}, // never Trail's own
		{s.tokens["reader-1"], url.Values{"stream": {"patient/2"}, "purpose": {"emergency"}, "reason": {"x"}}, 403},  // not break-glass
		{s.tokens["er-doc"], emergency, 200},
		{s.tokens["reader-1"], url.Values{"stream": {"patient/1"}, "purpose": {"treatment"}}, 200}, // an ordinary purpose
	}
	for i, rd := range reads {
		r := mxServe(s.h, "192.0.2.1:1", mxRequest{method: http.MethodGet, path: "/v1/events", query: rd.q, token: rd.tok})
		if r.status != rd.status {
			t.Errorf("read %d (%v): got %v, want %d", i, rd.q, r, rd.status)
		}
	}
	acc, glass := mxAudit(t, s.l, server.AccessStream), mxAudit(t, s.l, server.BreakGlassStream)
	// Read 4 named no patient and returned patient 1's and patient 2's
	// events: one more record each, in trail/access only.
	if len(acc) != len(reads)+2 {
		t.Fatalf("trail/access holds %d records, want %d", len(acc), len(reads)+2)
	}
	fan := acc[5:7]
	acc = append(acc[:5:5], acc[7:]...)
	for i, r := range fan {
		if want := strconv.Itoa(i + 1); r.Patient != want || r.Details.Count != 1 || r.Purpose != "emergency" || r.Actor.ID != "er-doc" {
			t.Errorf("record for patient %s of the emergency read without a filter: %+v, want patient %s, count 1", want, r, want)
		}
	}
	inGlass := func(r mxRecord) bool {
		r.Stream, r.Index = server.BreakGlassStream, 0
		return slices.ContainsFunc(glass, func(g mxRecord) bool { g.Index = 0; return cmp.Equal(r, g, cmpopts.EquateEmpty()) })
	}
	for _, r := range fan {
		if inGlass(r) {
			t.Errorf("a per-patient record is in trail/break-glass: %+v", r)
		}
	}
	for i, must := range map[int]bool{0: true, 1: false, 3: false, 4: true, 5: false} {
		if inGlass(acc[i]) != must {
			t.Errorf("read %d (%v, %s): in trail/break-glass %v, want %v", i, reads[i].q, acc[i].Actor.ID, !must, must)
		}
	}
	// A refused emergency read (of trail/access) may be listed or not; no
	// other record may be.
	if n := len(glass); n < 2 || n > 3 {
		t.Errorf("trail/break-glass holds %d records, want the 2 emergency reads (and perhaps the refused one): %+v", n, glass)
	}
	if r := acc[0]; r.Purpose != "emergency" || r.Details.Reason != "cardiac arrest" || r.Actor.ID != "er-doc" || r.Details.Count != 1 || r.Patient != "2" {
		t.Errorf("emergency read recorded as %+v: want purpose emergency, the reason, the principal, count 1, patient 2", r)
	}
	if r := acc[2]; r.Outcome != trail.OutcomeMinorFailure || r.Purpose != "emergency" {
		t.Errorf("refused emergency read of trail/access recorded as %+v", r)
	}
	if r := acc[3]; r.Actor.ID != "reader-1" || r.Outcome != trail.OutcomeMinorFailure {
		t.Errorf("the reader's emergency read recorded as %+v, want a minor failure of reader-1", r)
	}
	if r := acc[5]; r.Purpose != "treatment" || r.Details.Reason != "" || r.Outcome != trail.OutcomeSuccess || r.Patient != "1" {
		t.Errorf("read with purpose=treatment recorded as %+v, want purpose treatment, no reason", r)
	}
}
