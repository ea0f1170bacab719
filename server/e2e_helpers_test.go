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
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// testServer is a real engine in a temporary directory behind the real HTTP
// API on loopback. Every end-to-end test talks to one over HTTP only, and
// looks at the engine directly only to check what was stored.
type testServer struct {
	dir    string
	l      *trail.Log
	srv    *server.Server
	ts     *httptest.Server
	tok    server.Token
	client *http.Client
}

// setup is what a test may change before the server starts.
type setup struct {
	engine trail.Config
	server server.Config
	// principals, when set, are admitted by their tokens beside the admin.
	principals map[string]*server.Principal
}

// withPrincipals admits each principal with its token (map key).
func withPrincipals(ps map[string]*server.Principal) func(*setup) {
	return func(s *setup) { s.principals = ps }
}

// tokenAuth admits the principals of a map by bearer token, and the admin.
type tokenAuth struct {
	principals map[string]*server.Principal
	admin      server.Authenticator
}

func (a tokenAuth) Authenticate(r *http.Request) (*server.Principal, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if p, ok := a.principals[tok]; ok {
			return p, nil
		}
	}
	return a.admin.Authenticate(r)
}

// withCheckpointInterval makes checkpoints follow the tree quickly (or, with
// a long interval, stay at the size the log was opened with).
func withCheckpointInterval(d time.Duration) func(*setup) {
	return func(s *setup) { s.engine.CheckpointInterval = d }
}

// unlimitedReads is the read rate of tests that are not about it.
var unlimitedReads = server.Rate{PerSecond: 1e9, Burst: 1e9}

// withTailRecordEvery sets how often live tails are recorded.
func withTailRecordEvery(d time.Duration) func(*setup) {
	return func(s *setup) { s.server.TailRecordEvery = d }
}

// start opens an engine and serves it until the test ends. On cleanup the
// order is the one trail serve uses: end live tails, stop HTTP, close the
// engine.
func start(t *testing.T, opts ...func(*setup)) *testServer {
	t.Helper()
	dir := t.TempDir()
	st := setup{engine: trail.DefaultConfig(), server: server.Config{ReadRate: unlimitedReads, AdminReadRate: unlimitedReads}}
	for _, o := range opts {
		o(&st)
	}
	l, err := openEngine(t, dir, st.engine)
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	tok, _, err := server.EnsureAdminToken(dir)
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	st.server.AdminToken = tok
	if st.principals != nil {
		st.server.Auth = tokenAuth{principals: st.principals, admin: server.AdminOnly(tok)}
	}
	srv, err := server.New(l, st.server)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ts := httptest.NewServer(checkAPI(t, srv.Handler()))
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Shutdown)
	client := ts.Client()
	// A redirect is an answer of its own: the API never redirects.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &testServer{dir: dir, l: l, srv: srv, ts: ts, tok: tok, client: client}
}

// reply is an HTTP answer read whole.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s: %s", r.Status, r.Header.Get("Content-Type"), truncate(r.Body, 400))
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// admin marks a request made with the admin token.
const admin = "\x00admin"

// try sends a request with token (admin: the admin token, "": none) and reads
// the whole answer. It is safe to call from any goroutine.
func (s *testServer) try(method, path, token string, body []byte) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.ts.URL+path, rd)
	if err != nil {
		return reply{}, err
	}
	if token == admin {
		token = string(s.tok)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// do is try for the test's goroutine: a transport error fails the test.
func (s *testServer) do(t testing.TB, method, path, token string, body []byte) reply {
	t.Helper()
	r, err := s.try(method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (s *testServer) get(t testing.TB, path string) reply {
	t.Helper()
	return s.do(t, http.MethodGet, path, admin, nil)
}

func (s *testServer) post(t testing.TB, path string, body []byte) reply {
	t.Helper()
	return s.do(t, http.MethodPost, path, admin, body)
}

// mediaType returns the media type of r's Content-Type, without parameters.
func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return "invalid Content-Type " + h.Get("Content-Type")
	}
	return mt
}

// problemDoc is an RFC 9457 problem detail as the API sends it.
type problemDoc struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Line   int    `json:"line"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// wantProblem checks that r is an application/problem+json answer with the
// status, and that its detail names each of detailHas.
func wantProblem(t testing.TB, r reply, status int, detailHas ...string) problemDoc {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %v, want status %d", r, status)
	}
	if mt := mediaType(r.Header); mt != "application/problem+json" {
		t.Errorf("status %d: Content-Type %q, want application/problem+json", status, mt)
	}
	var p problemDoc
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("status %d: problem body %q: %v", status, r.Body, err)
	}
	if p.Status != status {
		t.Errorf("problem status member %d, want %d", p.Status, status)
	}
	if strings.TrimSpace(p.Detail) == "" {
		t.Errorf("status %d: empty problem detail: %s", status, r.Body)
	}
	for _, s := range detailHas {
		if !strings.Contains(p.Detail, s) {
			t.Errorf("status %d: detail %q does not name %q", status, p.Detail, s)
		}
	}
	return p
}

// wantJSON checks that r has the status and is application/json, and decodes
// it into v, refusing members v does not have.
func wantJSON(t testing.TB, r reply, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %v, want status %d", r, status)
	}
	if mt := mediaType(r.Header); mt != "application/json" {
		t.Errorf("Content-Type %q, want application/json", mt)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", truncate(r.Body, 400), err)
	}
}

// wantJSONLoose is wantJSON for a v that holds only some members.
func wantJSONLoose(t testing.TB, r reply, v any) {
	t.Helper()
	if mt := mediaType(r.Header); mt != "application/json" {
		t.Errorf("Content-Type %q, want application/json", mt)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", truncate(r.Body, 400), err)
	}
}

var (
	hexHash      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	recordedForm = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)
)

// hashOf decodes a lower-case hex hash, failing the test on anything else.
func hashOf(t testing.TB, what, s string) trail.Hash {
	t.Helper()
	if !hexHash.MatchString(s) {
		t.Fatalf("%s %q: want 64 lower-case hex digits", what, s)
	}
	var h trail.Hash
	hex.Decode(h[:], []byte(s))
	return h
}

// receiptWire is a receipt as sent, with the hash as text so that its case
// can be checked.
type receiptWire struct {
	ID        string `json:"id"`
	Index     uint64 `json:"index"`
	Stream    string `json:"stream"`
	StreamSeq uint64 `json:"stream_seq"`
	Recorded  string `json:"recorded"`
	LeafHash  string `json:"leaf_hash"`
}

func (w receiptWire) receipt(t testing.TB) trail.Receipt {
	t.Helper()
	if !recordedForm.MatchString(w.Recorded) {
		t.Errorf("receipt recorded %q: want UTC RFC 3339 with nine fractional digits", w.Recorded)
	}
	return trail.Receipt{ID: w.ID, Index: w.Index, Stream: w.Stream, StreamSeq: w.StreamSeq,
		Recorded: w.Recorded, LeafHash: hashOf(t, "leaf_hash", w.LeafHash)}
}

// wantReceipt checks that r is a receipt with the status.
func wantReceipt(t testing.TB, r reply, status int) trail.Receipt {
	t.Helper()
	var w receiptWire
	wantJSON(t, r, status, &w)
	return w.receipt(t)
}

// wantReceipts checks that r is a batch's 200 answer and returns its receipts.
func wantReceipts(t testing.TB, r reply) []trail.Receipt {
	t.Helper()
	var b struct {
		Receipts []receiptWire `json:"receipts"`
	}
	wantJSON(t, r, http.StatusOK, &b)
	rcs := make([]trail.Receipt, len(b.Receipts))
	for i, w := range b.Receipts {
		rcs[i] = w.receipt(t)
	}
	return rcs
}

// event returns a valid event; an empty id lets the server assign one.
func event(id, stream string) trail.Event {
	return trail.Event{ID: id, Stream: stream, Type: "patient-record.read", Action: "R",
		Actor: trail.Actor{ID: "dr-house", Role: "physician"}}
}

// encode returns the JSON a client sends for e.
func encode(t testing.TB, e trail.Event) []byte {
	t.Helper()
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatalf("encode event: %v", err)
	}
	return b
}

// ndjson returns a batch body of evs, one a line.
func ndjson(t testing.TB, evs ...trail.Event) []byte {
	t.Helper()
	var b []byte
	for _, e := range evs {
		b = append(b, encode(t, e)...)
		b = append(b, '\n')
	}
	return b
}

// appendOne posts e and wants a new event's receipt.
func (s *testServer) appendOne(t testing.TB, e trail.Event) trail.Receipt {
	t.Helper()
	return wantReceipt(t, s.post(t, "/v1/events", encode(t, e)), http.StatusCreated)
}

// appendBatch posts evs as one batch and wants their receipts.
func (s *testServer) appendBatch(t testing.TB, evs ...trail.Event) []trail.Receipt {
	t.Helper()
	rcs := wantReceipts(t, s.post(t, "/v1/batch", ndjson(t, evs...)))
	if len(rcs) != len(evs) {
		t.Fatalf("batch of %d events: %d receipts", len(evs), len(rcs))
	}
	return rcs
}

// stored returns the stored bytes of event i, straight from the engine.
func (s *testServer) stored(t testing.TB, i uint64) []byte {
	t.Helper()
	rec, err := s.l.Read(i)
	if err != nil {
		t.Fatalf("engine read %d: %v", i, err)
	}
	return rec
}

// storedIDs returns the id of every stored event, by index.
func (s *testServer) storedIDs(t testing.TB) []string {
	t.Helper()
	n := s.l.Size()
	ids := make([]string, n)
	for i := range n {
		var e struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(s.stored(t, i), &e); err != nil {
			t.Fatalf("stored event %d: %v", i, err)
		}
		ids[i] = e.ID
	}
	return ids
}

// waitCheckpoint waits until the latest checkpoint covers size events.
func (s *testServer) waitCheckpoint(t testing.TB, size uint64) trail.Checkpoint {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp := s.l.Checkpoint()
		if cp.Size >= size {
			return cp
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size %d after 10s (latest %d)", size, cp.Size)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantUnchanged fails when the log grew past size: a rejected request stored
// something.
func (s *testServer) wantUnchanged(t testing.TB, size uint64) {
	t.Helper()
	if got := s.l.Size(); got != size {
		t.Errorf("log size %d after a rejected request, want %d: something was stored", got, size)
	}
}

// storedRead is a record of trail/access as stored: the members the
// contract fixes, and the event or stream a get, proof or stream head named.
type storedRead struct {
	Index   uint64 `json:"index"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Actor   struct {
		ID string `json:"id"`
	} `json:"actor"`
	Patient string `json:"patient"`
	Purpose string `json:"purpose"`
	Details struct {
		Endpoint string            `json:"endpoint"`
		Params   map[string]string `json:"params"`
		Count    int               `json:"count"`
		Index    *uint64           `json:"index"`
		Stream   string            `json:"stream"`
	} `json:"details"`
}

// readsFrom returns the records in trail/access at index from and after,
// straight from the engine (reading them through the API would add more),
// and checks that each is an audit-log.read R event.
func (s *testServer) readsFrom(t testing.TB, from uint64) []storedRead {
	t.Helper()
	var out []storedRead
	for i, end := from, s.l.Size(); i < end; i++ {
		rec := s.stored(t, i)
		st, err := trail.RecordStream(rec)
		if err != nil {
			t.Fatalf("stored event %d: %v", i, err)
		}
		if st != server.AccessStream {
			continue
		}
		var r storedRead
		if err := json.Unmarshal(rec, &r); err != nil {
			t.Fatalf("%s event %d %s: %v", st, i, rec, err)
		}
		if r.Type != "audit-log.read" || r.Action != "R" {
			t.Errorf("%s event %d: type %q action %q, want audit-log.read R", st, i, r.Type, r.Action)
		}
		out = append(out, r)
	}
	return out
}

// wantRead checks that the records stored from index from on are those of
// the read the caller just made, by actor at endpoint with the outcome: its
// record, then one per other patient whose events it returned (each with
// the same endpoint and parameters, a count, and a patient of its own).
// It returns the read's record.
func (s *testServer) wantRead(t testing.TB, from uint64, actor, outcome, endpoint string) storedRead {
	t.Helper()
	recs := s.readsFrom(t, from)
	if len(recs) == 0 {
		t.Fatalf("no record in %s from index %d, want the one of the read (%s by %s)", server.AccessStream, from, endpoint, actor)
	}
	r := recs[0]
	if r.Actor.ID != actor || r.Outcome != outcome || r.Details.Endpoint != endpoint {
		t.Errorf("read record %d: actor %q outcome %q endpoint %q, want %q %q %q", r.Index, r.Actor.ID, r.Outcome, r.Details.Endpoint, actor, outcome, endpoint)
	}
	seen, total := map[string]bool{r.Patient: true}, 0
	for _, p := range recs[1:] {
		if p.Actor.ID != actor || p.Details.Endpoint != endpoint || p.Patient == "" || seen[p.Patient] || p.Details.Count < 1 ||
			!maps.Equal(p.Details.Params, r.Details.Params) {
			t.Fatalf("records in %s from index %d: want the read (%s by %s) and one per other patient it returned: %+v", server.AccessStream, from, endpoint, actor, recs)
		}
		seen[p.Patient] = true
		total += p.Details.Count
	}
	if total > r.Details.Count {
		t.Errorf("per-patient records count %d events, the read returned %d: %+v", total, r.Details.Count, recs)
	}
	return r
}
