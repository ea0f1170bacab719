package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/server"
)

func TestQueryPagesThroughStoredBytes(t *testing.T) {
	s := newTestServer(t)
	c := s.client()
	var ps []*trail.Pending
	for i := 0; i < 25; i++ {
		ev := event(fmt.Sprintf("patient/%d", i%2), i%3, i)
		ev.Patient = strconv.Itoa(i % 2)
		ps = append(ps, c.Log(ev))
	}
	rs := waitAll(t, ps)
	want := map[uint64]trail.Hash{}
	for _, r := range rs {
		if r.Stream == "patient/1" {
			want[r.Index] = r.LeafHash
		}
	}
	for _, desc := range []bool{false, true} {
		q := client.Query{Stream: "patient/1", Limit: 4, Desc: desc}
		var got []uint64
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("too many pages")
			}
			p, err := c.Query(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range p.Events {
				se, err := trail.ParseStored(raw)
				if err != nil {
					t.Fatal(err)
				}
				if trail.LeafHash(raw) != want[se.Index] {
					t.Errorf("event %d: page bytes do not hash to its receipt's leaf hash", se.Index)
				}
				got = append(got, se.Index)
			}
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
		if len(got) != len(want) {
			t.Errorf("desc=%v: %d events, want %d", desc, len(got), len(want))
		}
		for i := 1; i < len(got); i++ {
			if (got[i] > got[i-1]) == desc {
				t.Errorf("desc=%v: order %v", desc, got)
				break
			}
		}
	}
	p, err := c.Query(t.Context(), client.Query{Actor: "dr-1", Patient: "0", Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range p.Events {
		se, _ := trail.ParseStored(raw)
		if se.Actor.ID != "dr-1" || se.Patient != "0" {
			t.Errorf("filtered query returned %s", raw)
		}
	}
	if len(p.Events) == 0 {
		t.Error("filtered query returned nothing")
	}
	_, err = c.Query(t.Context(), client.Query{Limit: 5000})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Detail == "" {
		t.Errorf("limit 5000: %v, want a 400 with a detail", err)
	}
}

func TestGetAndStreamNotFound(t *testing.T) {
	s := newTestServer(t)
	c := s.client()
	if _, err := c.Get(t.Context(), 12345); !errors.Is(err, trail.ErrNotFound) {
		t.Errorf("Get past the end: %v", err)
	}
	if _, err := c.Stream(t.Context(), "patient/none"); !errors.Is(err, trail.ErrNotFound) {
		t.Errorf("Stream with no events: %v", err)
	}
	r, err := c.Append(t.Context(), event("patient/7", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Stream(t.Context(), "patient/7")
	if err != nil {
		t.Fatal(err)
	}
	if h.Stream != "patient/7" || h.Length != 1 || h.HeadIndex != r.Index || h.HeadLeafHash != r.LeafHash {
		t.Errorf("stream head %+v, receipt %+v", h, r)
	}
}

func TestProofsVerify(t *testing.T) {
	s := newTestServer(t)
	c := s.client()
	var ps []*trail.Pending
	for i := 0; i < 40; i++ {
		ps = append(ps, c.Log(event("patient/3", 0, i)))
	}
	rs := waitAll(t, ps)
	var origin string
	var size uint64
	var root []byte
	waitFor(t, "a checkpoint covering the events", func() bool {
		note, err := c.Checkpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		origin, size, root = parseCheckpoint(t, note)
		return size >= 40
	})
	if origin == "" {
		t.Error("checkpoint without origin")
	}
	if want, _ := s.log.Root(size); !bytes.Equal(root, want[:]) {
		t.Fatalf("checkpoint root %x, engine's %x", root, want)
	}
	h := rfc6962.DefaultHasher
	for _, r := range rs[:5] {
		p, err := c.InclusionProof(t.Context(), r.Index, size)
		if err != nil {
			t.Fatal(err)
		}
		if p.Index != r.Index || p.Size != size || p.LeafHash != r.LeafHash {
			t.Errorf("proof %+v for receipt %+v at size %d", p, r, size)
		}
		if err := proof.VerifyInclusion(h, r.Index, p.Size, r.LeafHash[:], hashBytes(p.Hashes), root); err != nil {
			t.Errorf("inclusion of %d: %v", r.Index, err)
		}
	}
	// Without a size, the proof is at the latest checkpoint's, which the
	// read records of this test may have moved past size.
	p, err := c.InclusionProof(t.Context(), rs[0].Index, 0)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := s.log.Root(p.Size)
	if err != nil || p.Size < size {
		t.Fatalf("proof at the default size %d (checkpoint was %d): root %v", p.Size, size, err)
	}
	if err := proof.VerifyInclusion(h, rs[0].Index, p.Size, rs[0].LeafHash[:], hashBytes(p.Hashes), latest[:]); err != nil {
		t.Errorf("inclusion of %d at the default size %d: %v", rs[0].Index, p.Size, err)
	}
	mid := rs[10].Index + 1
	midRoot, err := s.log.Root(mid)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := c.ConsistencyProof(t.Context(), mid, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(h, mid, size, hashBytes(cp.Hashes), midRoot[:], root); err != nil {
		t.Errorf("consistency %d→%d: %v", mid, size, err)
	}
	if _, err := c.InclusionProof(t.Context(), size+10, size); err == nil {
		t.Error("inclusion proof past the tree: no error")
	}
}

// parseCheckpoint reads origin, size and root hash from a signed note.
func parseCheckpoint(t *testing.T, note []byte) (string, uint64, []byte) {
	t.Helper()
	lines := bytes.SplitN(note, []byte("\n"), 4)
	if len(lines) < 4 {
		t.Fatalf("checkpoint %q", note)
	}
	size, err := strconv.ParseUint(string(lines[1]), 10, 64)
	if err != nil {
		t.Fatalf("checkpoint size: %v", err)
	}
	root, err := base64.StdEncoding.DecodeString(string(lines[2]))
	if err != nil {
		t.Fatalf("checkpoint root: %v", err)
	}
	return string(lines[0]), size, root
}

func hashBytes(hs []trail.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func TestTail(t *testing.T) {
	s := newTestServer(t)
	c := s.client()
	r0, err := c.Append(t.Context(), event("ward/a", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type got struct {
		index uint64
		rec   []byte
	}
	ch := make(chan got, 100)
	done := make(chan error, 1)
	go func() {
		done <- c.Tail(ctx, "ward/a", &r0.Index, func(i uint64, rec []byte) error {
			ch <- got{i, rec}
			return nil
		})
	}()
	var rs []trail.Receipt
	for i := 1; i <= 5; i++ {
		c.Log(event("ward/b", 0, i)) // another stream: not tailed
		r, err := c.Append(t.Context(), event("ward/a", 0, i))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		select {
		case g := <-ch:
			if g.index != r.Index || trail.LeafHash(g.rec) != r.LeafHash {
				t.Errorf("tail gave %d %s, want event %d", g.index, g.rec, r.Index)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("tail did not deliver event %d", r.Index)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Tail after cancel: %v", err)
	}

	stop := errors.New("enough")
	err = c.Tail(t.Context(), "ward/a", &r0.Index, func(uint64, []byte) error { return stop })
	if err != stop {
		t.Errorf("Tail whose fn fails: %v", err)
	}
}

// TestBreakGlassParameters checks the request a break-glass read sends.
func TestBreakGlassParameters(t *testing.T) {
	s := newTestServer(t)
	got := make(chan string, 1)
	s.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		got <- r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"events": []any{}, "next": ""})
	})
	c := s.client()
	ctx := client.BreakGlass(t.Context(), "patient unconscious in ER")
	if _, err := c.Query(ctx, client.Query{Patient: "123"}); err != nil {
		t.Fatal(err)
	}
	if q, want := <-got, "patient=123&purpose=emergency&reason=patient+unconscious+in+ER"; q != want {
		t.Errorf("query string %q, want %q", q, want)
	}
}

// TestReadRateWaited: reads the server refuses for their rate (429 with
// Retry-After, which leaves no read record) are asked again after the wait,
// so a caller paging through results slows down instead of failing.
func TestReadRateWaited(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.AdminReadRate = server.Rate{PerSecond: 4, Burst: 1} })
	c := s.client()
	r, err := c.Append(t.Context(), event("patient/9", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	start, reads := time.Now(), 4
	for range reads {
		if _, err := c.Get(t.Context(), r.Index); err != nil {
			t.Fatalf("get under the read rate: %v", err)
		}
	}
	// A burst of one at four a second: the reads after the first waited.
	if d := time.Since(start); d < time.Duration(reads-2)*250*time.Millisecond {
		t.Errorf("%d reads took %v: the rate was not applied", reads, d)
	}
	// Each read is recorded once: refused attempts leave nothing.
	res, err := s.log.Query(t.Context(), trail.Query{Stream: "trail/access", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != reads {
		t.Errorf("trail/access holds %d records after %d reads", len(res.Events), reads)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, r.Index); err == nil {
		t.Error("a read past the rate with a context ending before the wait succeeded")
	}
}
