package trail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func testEvent(stream string, i int) Event {
	return Event{
		Stream:  stream,
		Type:    "patient-record.read",
		Action:  "R",
		Actor:   Actor{ID: fmt.Sprintf("dr-%d", i%7), Role: "physician", Address: "10.0.0.1"},
		Patient: "12345",
		Details: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i)),
	}
}

func openTest(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := openStore(t, dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// openFilesTest opens the engine on a data directory whatever -store says,
// for tests of the files themselves (damaged, removed, torn).
func openFilesTest(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func TestAppendReadProve(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l := openTest(t, dir, Config{})
	var rs []Receipt
	for i := 0; i < 50; i++ {
		r, err := l.Append(ctx, testEvent(fmt.Sprintf("patient/%d", i%3), i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if r.Index != uint64(i) {
			t.Fatalf("event %d got index %d", i, r.Index)
		}
		if want := uint64(i/3 + 1); r.StreamSeq != want {
			t.Fatalf("event %d: stream_seq %d, want %d", i, r.StreamSeq, want)
		}
		rs = append(rs, r)
	}
	size := l.Size()
	root, err := l.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatal(err)
		}
		if LeafHash(rec) != r.LeafHash {
			t.Fatalf("event %d: leaf hash of stored bytes differs from receipt", r.Index)
		}
		if !json.Valid(rec) {
			t.Fatalf("event %d: stored bytes are not JSON: %s", r.Index, rec)
		}
		p, err := l.InclusionProof(r.Index, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, size, r.LeafHash[:], hashesToBytes(p), root[:]); err != nil {
			t.Fatalf("inclusion proof of %d: %v", r.Index, err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, Config{})
	defer l.Close(ctx)
	if l.Size() != size {
		t.Fatalf("after reopen: size %d, want %d", l.Size(), size)
	}
	if cp := l.Checkpoint(); cp.Size != size || cp.Root != root {
		t.Fatalf("checkpoint after close: size %d root %x, want %d %x", cp.Size, cp.Root, size, root)
	}
	// Same id again: first receipt. Different content: conflict.
	ev := testEvent("patient/0", 0)
	ev.ID = rs[0].ID
	ev.Details = json.RawMessage(`{"n":0}`)
	r, err := l.Append(ctx, ev)
	if err != nil || r != rs[0] {
		t.Fatalf("resend of %s: %+v, %v; want first receipt %+v", ev.ID, r, err, rs[0])
	}
	ev.Type = "other"
	if _, err := l.Append(ctx, ev); !errors.Is(err, ErrIDConflict) {
		t.Fatalf("resend with other content: %v, want ErrIDConflict", err)
	}
	r, err = l.Append(ctx, testEvent("patient/1", 99))
	if err != nil || r.Index != size || r.StreamSeq != rs[len(rs)-1].StreamSeq+1 && r.Stream == rs[len(rs)-1].Stream {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
}

func hashesToBytes(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// TestResendEqualAfterParsing: an id sent again with the same event gets the
// first receipt even when details list their members in another order;
// different details are a conflict.
func TestResendEqualAfterParsing(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), Config{})
	defer l.Close(ctx)
	ev := testEvent("patient/1", 1)
	ev.ID = "resend-1"
	ev.Details = json.RawMessage(`{"a":1,"b":{"c":[1,2],"d":"x"}}`)
	first, err := l.Append(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{`{"b":{"d":"x","c":[1,2]},"a":1}`, ` { "a" : 1 , "b" : { "c" : [ 1 , 2 ] , "d" : "x" } } `} {
		ev.Details = json.RawMessage(d)
		p := l.Log(ev)
		r, err := p.Wait(ctx)
		if err != nil || r != first || !p.Duplicate() {
			t.Fatalf("resend with details %s: %+v, %v, duplicate %v", d, r, err, p.Duplicate())
		}
	}
	for _, d := range []string{`{"a":1,"b":{"c":[2,1],"d":"x"}}`, `{"a":1}`, `{"a":1,"b":{"c":[1,2],"d":"x"},"e":null}`} {
		ev.Details = json.RawMessage(d)
		if _, err := l.Append(ctx, ev); !errors.Is(err, ErrIDConflict) {
			t.Fatalf("resend with details %s: %v, want ErrIDConflict", d, err)
		}
	}
	if l.Size() != 1 {
		t.Fatalf("log has %d events, want 1", l.Size())
	}
}

// TestAppendReserved: Trail's own streams take events only through
// AppendReserved, which takes nothing else.
func TestAppendReserved(t *testing.T) {
	ctx := context.Background()
	l := openTest(t, t.TempDir(), Config{})
	defer l.Close(ctx)
	own := testEvent("trail/access", 1)
	if _, err := l.Append(ctx, own); err == nil {
		t.Fatal("Append to trail/access succeeded")
	}
	if _, err := l.AppendBatch(ctx, []Event{testEvent("patient/1", 1), own}); err == nil {
		t.Fatal("AppendBatch with a trail/access event succeeded")
	}
	rs, err := l.AppendReserved(ctx, []Event{own, testEvent("trail/break-glass", 2)})
	if err != nil || len(rs) != 2 || rs[1].Stream != "trail/break-glass" {
		t.Fatalf("AppendReserved: %v, %v", rs, err)
	}
	var be *BatchError
	if _, err := l.AppendReserved(ctx, []Event{own, testEvent("patient/1", 3)}); !errors.As(err, &be) || be.Index != 1 {
		t.Fatalf("AppendReserved with patient/1: %v, want a BatchError at 1", err)
	}
	if l.Size() != 2 {
		t.Fatalf("log has %d events, want 2", l.Size())
	}
}
