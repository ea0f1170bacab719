package verify

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/tree"
)

// TestLeafRange checks leafRange's root against compact.Range's, hashing
// with tree.HashChildren, at every size up to 2,100, and that appending
// does not allocate.
func TestLeafRange(t *testing.T) {
	var r leafRange
	ref := (&compact.RangeFactory{Hash: tree.HashChildren}).NewEmptyRange(0)
	if got := r.root(); !bytes.Equal(got, tree.EmptyRoot()) {
		t.Fatalf("empty root %x, want %x", got, tree.EmptyRoot())
	}
	for i := range 2100 {
		leaf := event.LeafHash([]byte(fmt.Sprint(i)))
		r.append(&leaf)
		if err := ref.Append(bytes.Clone(leaf[:]), nil); err != nil {
			t.Fatal(err)
		}
		want, err := ref.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.root(); !bytes.Equal(got, want) {
			t.Fatalf("size %d: root %x, want %x", i+1, got, want)
		}
	}
	leaf := event.LeafHash(nil)
	if n := testing.AllocsPerRun(1000, func() { r.append(&leaf) }); n != 0 {
		t.Fatalf("append allocates %v times", n)
	}
}
