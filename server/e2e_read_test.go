package server_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail"
)

func TestGetEvent(t *testing.T) {
	t.Parallel()
	s := start(t)
	var rcs []trail.Receipt
	for i := range 3 {
		e := event(fmt.Sprintf("g-%d", i), "patient/"+strconv.Itoa(i%2))
		e.Details = []byte(`{"note":"a <b> & c"}`)
		rcs = append(rcs, s.appendOne(t, e))
	}
	var records []uint64
	for _, rc := range rcs {
		size := s.l.Size()
		r := s.get(t, fmt.Sprintf("/v1/events/%d", rc.Index))
		if r.Status != http.StatusOK || mediaType(r.Header) != "application/json" {
			t.Fatalf("event %d: %v, want 200 application/json", rc.Index, r)
		}
		if want := s.stored(t, rc.Index); !bytes.Equal(r.Body, want) {
			t.Errorf("event %d: body\n%q\nwant the stored bytes\n%q", rc.Index, r.Body, want)
		}
		if got := trail.LeafHash(r.Body); got != rc.LeafHash {
			t.Errorf("event %d: LeafHash(body) %v, receipt leaf_hash %v", rc.Index, got, rc.LeafHash)
		}
		rec := s.wantRead(t, size, "admin", "success", "GET /v1/events/{index}")
		if rec.Details.Index == nil || *rec.Details.Index != rc.Index || rec.Details.Count != 1 {
			t.Errorf("record of the get of %d: details.index %v count %d, want %d and 1", rc.Index, rec.Details.Index, rec.Details.Count, rc.Index)
		}
		records = append(records, rec.Index)
	}
	// The admin reads trail/ too: a read record is an event like any other.
	for _, i := range records {
		r := s.get(t, fmt.Sprintf("/v1/events/%d", i))
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, s.stored(t, i)) {
			t.Errorf("read record %d: %v, want 200 and the stored bytes", i, r)
		}
	}

	// end stands for the log's size when the request is made: the first
	// index past the end.
	const end = "{end}"
	tests := []struct {
		path   string
		token  string
		status int
		detail string
	}{
		{path: "/v1/events/" + end, status: 404, detail: end},
		{path: "/v1/events/18446744073709551615", status: 404},
		{path: "/v1/events/abc", status: 400, detail: "abc"},
		{path: "/v1/events/-1", status: 400},
		{path: "/v1/events/1.5", status: 400},
		{path: "/v1/events/18446744073709551616", status: 400},
		{path: "/v1/events/0?pretty=1", status: 400, detail: "pretty"},
		{path: "/v1/events/0", token: "-", status: 401},
		{path: "/v1/events/0", token: "trail_wrong", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.token, func(t *testing.T) {
			token := admin
			if tt.token == "-" {
				token = ""
			} else if tt.token != "" {
				token = tt.token
			}
			size := s.l.Size()
			path := strings.ReplaceAll(tt.path, end, strconv.FormatUint(size, 10))
			var detail []string
			if tt.detail != "" {
				detail = append(detail, strings.ReplaceAll(tt.detail, end, strconv.FormatUint(size, 10)))
			}
			r := s.do(t, http.MethodGet, path, token, nil)
			wantProblem(t, r, tt.status, detail...)
			if tt.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q, want Bearer", r.Header.Get("WWW-Authenticate"))
			}
			if tt.status != http.StatusNotFound {
				s.wantUnchanged(t, size) // 400s and 401s are not recorded
				return
			}
			// A get past the end is a read allowed that found nothing.
			rec := s.wantRead(t, size, "admin", "success", "GET /v1/events/{index}")
			if want, _ := strconv.ParseUint(strings.TrimPrefix(path, "/v1/events/"), 10, 64); rec.Details.Index == nil || *rec.Details.Index != want || rec.Details.Count != 0 {
				t.Errorf("record of %s: details.index %v count %d, want %d and 0", path, rec.Details.Index, rec.Details.Count, want)
			}
		})
	}
}

// proofReply is an inclusion proof as sent.
type proofReply struct {
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Hashes   []string `json:"hashes"`
}

func hashesOf(t testing.TB, hs []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(hs))
	for i, h := range hs {
		x := hashOf(t, "proof hash", h)
		out[i] = x[:]
	}
	return out
}

func (s *testServer) root(t testing.TB, size uint64) []byte {
	t.Helper()
	r, err := s.l.Root(size)
	if err != nil {
		t.Fatalf("engine root of %d: %v", size, err)
	}
	return r[:]
}

func TestInclusionProof(t *testing.T) {
	t.Parallel()
	s := start(t, withCheckpointInterval(20*time.Millisecond))
	const n = 9
	var rcs []trail.Receipt
	for i := range n {
		rcs = append(rcs, s.appendOne(t, event(fmt.Sprintf("p-%d", i), "patient/"+strconv.Itoa(i%3))))
	}

	verify := func(t *testing.T, r reply, index, size uint64) {
		t.Helper()
		var p proofReply
		wantJSON(t, r, http.StatusOK, &p)
		if p.Index != index || p.Size != size {
			t.Fatalf("proof of %d in %d: reply names index %d size %d", index, size, p.Index, p.Size)
		}
		leaf := hashOf(t, "leaf_hash", p.LeafHash)
		if leaf != rcs[index].LeafHash {
			t.Errorf("proof leaf_hash %v, receipt %v", leaf, rcs[index].LeafHash)
		}
		if p.Hashes == nil {
			t.Errorf("hashes is null, want an array")
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], hashesOf(t, p.Hashes), s.root(t, size)); err != nil {
			t.Errorf("inclusion of %d in %d does not verify: %v", index, size, err)
		}
	}

	t.Run("every index and size", func(t *testing.T) {
		from := s.l.Size()
		type asked struct{ index, size uint64 }
		var want []asked
		for size := uint64(1); size <= n; size++ {
			for i := range size {
				verify(t, s.get(t, fmt.Sprintf("/v1/events/%d/proof?size=%d", i, size)), i, size)
				want = append(want, asked{i, size})
			}
		}
		// Each proof is a read, recorded with the event and size it named.
		var got []asked
		for _, r := range s.readsFrom(t, from) {
			if r.Actor.ID != "admin" || r.Outcome != "success" || r.Details.Endpoint != "GET /v1/events/{index}/proof" || r.Details.Count != 1 || r.Details.Index == nil {
				t.Fatalf("record %d of a proof: %+v", r.Index, r)
			}
			size, err := strconv.ParseUint(r.Details.Params["size"], 10, 64)
			if err != nil || len(r.Details.Params) != 1 {
				t.Fatalf("record %d of a proof: params %v, want size only", r.Index, r.Details.Params)
			}
			got = append(got, asked{*r.Details.Index, size})
		}
		if d := cmp.Diff(want, got, cmp.AllowUnexported(asked{})); d != "" {
			t.Errorf("proof records (-asked +recorded):\n%s", d)
		}
	})
	t.Run("size defaults to the latest checkpoint", func(t *testing.T) {
		// Reads grow the log: wait until the checkpoint covers every
		// record so far. The proof's own record comes after the size is
		// chosen.
		cp := s.waitCheckpoint(t, s.l.Size())
		verify(t, s.get(t, "/v1/events/4/proof"), 4, cp.Size)
	})

	// Requests refused with 400 are not recorded, so the tree keeps its
	// size while these run.
	tests := []struct {
		name string
		path func(t testing.TB, tree uint64) string
	}{
		{"index at size", func(testing.TB, uint64) string { return "/v1/events/5/proof?size=5" }},
		{"index past size", func(testing.TB, uint64) string { return "/v1/events/5/proof?size=3" }},
		{"size 0", func(testing.TB, uint64) string { return "/v1/events/0/proof?size=0" }},
		{"size past the tree", func(_ testing.TB, tree uint64) string { return fmt.Sprintf("/v1/events/0/proof?size=%d", tree+1) }},
		{"index at the checkpoint's size", func(t testing.TB, tree uint64) string {
			return fmt.Sprintf("/v1/events/%d/proof", s.waitCheckpoint(t, tree).Size)
		}},
		{"index and size past the tree", func(_ testing.TB, tree uint64) string {
			return fmt.Sprintf("/v1/events/%d/proof?size=%d", tree+89, tree+90)
		}},
		{"size not a number", func(testing.TB, uint64) string { return "/v1/events/0/proof?size=x" }},
		{"index not a number", func(testing.TB, uint64) string { return "/v1/events/x/proof?size=1" }},
		{"size twice", func(testing.TB, uint64) string { return "/v1/events/0/proof?size=1&size=2" }},
		{"unknown parameter", func(testing.TB, uint64) string { return "/v1/events/0/proof?tree_size=1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := s.l.Size()
			path := tt.path(t, size)
			wantProblem(t, s.get(t, path), http.StatusBadRequest)
			s.wantUnchanged(t, size)
		})
	}
	t.Run("no token", func(t *testing.T) {
		size := s.l.Size()
		wantProblem(t, s.do(t, http.MethodGet, "/v1/events/0/proof?size=1", "", nil), http.StatusUnauthorized)
		s.wantUnchanged(t, size)
	})
}

// TestInclusionProofBeforeCheckpoint: with no checkpoint covering an event,
// a proof without size is a 400 that says what to do, not a wrong proof.
func TestInclusionProofBeforeCheckpoint(t *testing.T) {
	t.Parallel()
	s := start(t, withCheckpointInterval(time.Hour))
	s.appendOne(t, event("x", "patient/1"))
	if got := s.l.Checkpoint().Size; got != 0 {
		t.Skipf("a checkpoint of size %d was signed already", got)
	}
	wantProblem(t, s.get(t, "/v1/events/0/proof"), http.StatusBadRequest, "checkpoint")
	var p proofReply
	wantJSON(t, s.get(t, "/v1/events/0/proof?size=1"), http.StatusOK, &p)
}

func TestConsistencyProof(t *testing.T) {
	t.Parallel()
	s := start(t, withCheckpointInterval(20*time.Millisecond))
	const n = 11
	for i := range n {
		s.appendOne(t, event(fmt.Sprintf("c-%d", i), "patient/"+strconv.Itoa(i%4)))
	}

	type consistency struct {
		From   uint64   `json:"from"`
		To     uint64   `json:"to"`
		Hashes []string `json:"hashes"`
	}
	verify := func(t *testing.T, r reply, from, to uint64) {
		t.Helper()
		var c consistency
		wantJSON(t, r, http.StatusOK, &c)
		if c.From != from || c.To != to {
			t.Fatalf("proof from %d to %d: reply names %d to %d", from, to, c.From, c.To)
		}
		if c.Hashes == nil {
			t.Errorf("hashes is null, want an array")
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, to, hashesOf(t, c.Hashes), s.root(t, from), s.root(t, to)); err != nil {
			t.Errorf("consistency %d to %d does not verify: %v", from, to, err)
		}
	}

	t.Run("every pair, no token", func(t *testing.T) {
		for to := uint64(0); to <= n; to++ {
			for from := range to + 1 {
				r := s.do(t, http.MethodGet, fmt.Sprintf("/v1/proof/consistency?from=%d&to=%d", from, to), "", nil)
				verify(t, r, from, to)
			}
		}
	})
	t.Run("to defaults to the latest checkpoint", func(t *testing.T) {
		s.waitCheckpoint(t, n)
		verify(t, s.do(t, http.MethodGet, "/v1/proof/consistency?from=3", "", nil), 3, n)
	})

	for _, path := range []string{
		"/v1/proof/consistency?from=5&to=4",
		fmt.Sprintf("/v1/proof/consistency?from=0&to=%d", n+1),
		fmt.Sprintf("/v1/proof/consistency?from=%d&to=%d", n+1, n+1),
		"/v1/proof/consistency?from=x&to=3",
		"/v1/proof/consistency?from=1&to=-3",
		"/v1/proof/consistency?from=1&to=3&first=1",
		"/v1/proof/consistency?from=1&from=2&to=3",
	} {
		t.Run(path, func(t *testing.T) {
			wantProblem(t, s.do(t, http.MethodGet, path, "", nil), http.StatusBadRequest)
		})
	}
}

func TestCheckpoint(t *testing.T) {
	t.Parallel()
	s := start(t, withCheckpointInterval(20*time.Millisecond))
	v, err := note.NewVerifier(s.l.VerifierKey())
	if err != nil {
		t.Fatalf("verifier key %q: %v", s.l.VerifierKey(), err)
	}
	origin := s.l.Checkpoint().Origin

	// fetch gets the checkpoint without a token and checks its signature.
	fetch := func(t *testing.T) (size uint64, root []byte) {
		t.Helper()
		r := s.do(t, http.MethodGet, "/v1/checkpoint", "", nil)
		if r.Status != http.StatusOK || mediaType(r.Header) != "text/plain" {
			t.Fatalf("checkpoint: %v, want 200 text/plain", r)
		}
		n, err := note.Open(r.Body, note.VerifierList(v))
		if err != nil {
			t.Fatalf("checkpoint note %q: %v", r.Body, err)
		}
		lines := strings.Split(n.Text, "\n")
		if len(lines) < 4 || lines[len(lines)-1] != "" {
			t.Fatalf("checkpoint body %q: want origin, size, root lines", n.Text)
		}
		if lines[0] != origin || origin == "" {
			t.Errorf("checkpoint origin %q, want %q", lines[0], origin)
		}
		size, err = strconv.ParseUint(lines[1], 10, 64)
		if err != nil {
			t.Fatalf("checkpoint size %q: %v", lines[1], err)
		}
		root, err = base64.StdEncoding.DecodeString(lines[2])
		if err != nil {
			t.Fatalf("checkpoint root %q: %v", lines[2], err)
		}
		return size, root
	}

	t.Run("fresh log", func(t *testing.T) {
		size, root := fetch(t)
		if size != 0 || !bytes.Equal(root, s.root(t, 0)) {
			t.Errorf("fresh checkpoint: size %d root %x, want 0 and the empty tree's root", size, root)
		}
	})
	t.Run("after appends", func(t *testing.T) {
		s.appendBatch(t, event("k-1", "patient/1"), event("k-2", "patient/2"), event("k-3", "patient/1"))
		s.appendOne(t, event("k-4", "patient/1"))
		s.waitCheckpoint(t, 4)
		size, root := fetch(t)
		if size != 4 {
			t.Errorf("checkpoint size %d, want 4", size)
		}
		if want := s.root(t, size); !bytes.Equal(root, want) {
			t.Errorf("checkpoint root %x, engine root of %d %x", root, size, want)
		}
	})
	t.Run("unknown parameter", func(t *testing.T) {
		wantProblem(t, s.do(t, http.MethodGet, "/v1/checkpoint?size=1", "", nil), http.StatusBadRequest, "size")
	})
}

func TestStreamHead(t *testing.T) {
	t.Parallel()
	s := start(t)
	var rcs []trail.Receipt
	for i, st := range []string{"patient/1", "ward/7/bed:3", "patient/1", "patient/1", "ward/7/bed:3"} {
		rcs = append(rcs, s.appendOne(t, event(fmt.Sprintf("h-%d", i), st)))
	}
	type head struct {
		Stream       string `json:"stream"`
		Length       uint64 `json:"length"`
		HeadIndex    uint64 `json:"head_index"`
		HeadLeafHash string `json:"head_leaf_hash"`
	}
	for _, want := range []head{
		{Stream: "patient/1", Length: 3, HeadIndex: 3, HeadLeafHash: rcs[3].LeafHash.String()},
		{Stream: "ward/7/bed:3", Length: 2, HeadIndex: 4, HeadLeafHash: rcs[4].LeafHash.String()},
	} {
		t.Run(want.Stream, func(t *testing.T) {
			size := s.l.Size()
			var got head
			wantJSON(t, s.get(t, "/v1/streams/"+want.Stream), http.StatusOK, &got)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("head (-want +got):\n%s", d)
			}
			hashOf(t, "head_leaf_hash", got.HeadLeafHash)
			rec := s.wantRead(t, size, "admin", "success", "GET /v1/streams/{stream...}")
			if rec.Details.Stream != want.Stream {
				t.Errorf("record of the head of %s: details.stream %q", want.Stream, rec.Details.Stream)
			}
			if p, ok := strings.CutPrefix(want.Stream, "patient/"); ok && rec.Patient != p {
				t.Errorf("record of the head of %s: patient %q, want %q", want.Stream, rec.Patient, p)
			}
		})
	}

	tests := []struct {
		path   string
		token  string
		status int
	}{
		{path: "/v1/streams/patient/2", status: 404},
		{path: "/v1/streams/patient", status: 404},
		{path: "/v1/streams/bad%20name", status: 400},
		{path: "/v1/streams/patient/1$", status: 400},
		{path: "/v1/streams/" + strings.Repeat("s", 257), status: 400},
		{path: "/v1/streams/patient//1", status: 400},
		{path: "/v1/streams/patient/./1", status: 400},
		{path: "/v1/streams/patient/x/../1", status: 400},
		{path: "/v1/streams/patient/1?order=desc", status: 400},
		{path: "/v1/streams/patient/1", token: "-", status: 401},
		{path: "/v1/streams/patient/x/../1", token: "-", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			token := admin
			if tt.token == "-" {
				token = ""
			}
			size := s.l.Size()
			wantProblem(t, s.do(t, http.MethodGet, tt.path, token, nil), tt.status)
			if tt.status != http.StatusNotFound {
				s.wantUnchanged(t, size) // 400s and 401s are not recorded
				return
			}
			// A stream with no events is a read allowed that found nothing.
			rec := s.wantRead(t, size, "admin", "success", "GET /v1/streams/{stream...}")
			if want := strings.TrimPrefix(tt.path, "/v1/streams/"); rec.Details.Stream != want || rec.Details.Count != 0 {
				t.Errorf("record of %s: details.stream %q count %d, want %q and 0", tt.path, rec.Details.Stream, rec.Details.Count, want)
			}
		})
	}
}

// TestErrorsAreProblems: unknown endpoints and methods answer problem+json
// too.
func TestErrorsAreProblems(t *testing.T) {
	t.Parallel()
	s := start(t)
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/v2/events"},
		{http.MethodGet, "/v1/event"},
		{http.MethodDelete, "/v1/events/0"},
		{http.MethodPut, "/v1/events"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := s.do(t, tt.method, tt.path, admin, nil)
			if r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
				t.Fatalf("got %v, want 404 or 405", r)
			}
			wantProblem(t, r, r.Status)
		})
	}
}
