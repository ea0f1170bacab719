package files_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trailhq/trail"
)

// TestOpenRebuildsDerivedFiles: a data directory left with its records,
// signed checkpoints and keys alone — as a backup restores it, without the
// Merkle tree, the sealed segments' offset indexes and the index store —
// opens with every derived file rebuilt from the records: the same size,
// checkpoint, roots, proofs, stream heads and id lookups as before, and it
// goes on appending.
func TestOpenRebuildsDerivedFiles(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := trail.Config{SegmentSize: 8 << 10}
	l, err := trail.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 700 {
		ev := trail.Event{ID: fmt.Sprintf("ev-%d", i), Stream: fmt.Sprintf("patient/%d", i%11), Type: "patient-record.read", Action: "R", Actor: trail.Actor{ID: "dr"}}
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	type state struct {
		size       uint64
		checkpoint string
		root       trail.Hash
		proofs     [][]trail.Hash
		heads      []trail.StreamHead
		ids        []uint64
	}
	look := func(l *trail.Log) state {
		var s state
		s.size, s.checkpoint = l.Size(), string(l.Checkpoint().Signed)
		s.root, _ = l.Root(s.size)
		for _, i := range []uint64{0, 1, 333, 698, 699} {
			p, err := l.InclusionProof(i, s.size)
			if err != nil {
				t.Fatal(err)
			}
			s.proofs = append(s.proofs, p)
		}
		for _, from := range []uint64{1, 100, 512} {
			p, err := l.ConsistencyProof(from, s.size)
			if err != nil {
				t.Fatal(err)
			}
			s.proofs = append(s.proofs, p)
		}
		for k := range 11 {
			h, err := l.StreamHead(ctx, fmt.Sprintf("patient/%d", k))
			if err != nil {
				t.Fatal(err)
			}
			s.heads = append(s.heads, h)
		}
		for _, id := range []string{"ev-0", "ev-345", "ev-699"} {
			i, _, err := l.ReadID(ctx, id)
			if err != nil {
				t.Fatalf("id %s: %v", id, err)
			}
			s.ids = append(s.ids, i)
		}
		return s
	}
	l, err = trail.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := look(l)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	idx, _ := filepath.Glob(filepath.Join(dir, "log", "*.idx"))
	if len(idx) < 3 {
		t.Fatalf("%d sealed segments; want several", len(idx))
	}
	for _, p := range append(idx, filepath.Join(dir, "tree"), filepath.Join(dir, "index")) {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	l, err = trail.Open(dir, cfg)
	if err != nil {
		t.Fatalf("open without derived files: %v", err)
	}
	defer l.Close(ctx)
	after := look(l)
	if before.size != 700 || after.size != before.size || after.checkpoint != before.checkpoint || after.root != before.root ||
		!slices.EqualFunc(after.proofs, before.proofs, slices.Equal) || !slices.Equal(after.heads, before.heads) || !slices.Equal(after.ids, before.ids) {
		t.Fatalf("rebuilt:\n%+v\nbefore:\n%+v", after, before)
	}
	if r, err := l.Append(ctx, trail.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "after"}}); err != nil || r.Index != 700 || r.StreamSeq != before.heads[1].Length+1 {
		t.Fatalf("append after the rebuild: %+v, %v", r, err)
	}
}
