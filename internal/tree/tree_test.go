package tree_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trailhq/trail/internal/tree"
)

var hasher = rfc6962.DefaultHasher

func leaf(seed string, i uint64) []byte {
	return hasher.HashLeaf([]byte(fmt.Sprintf("%s-%d", seed, i)))
}

func leaves(seed string, n uint64) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = leaf(seed, uint64(i))
	}
	return out
}

// mth is the Merkle Tree Hash of RFC 6962 section 2.1, straight from its
// definition, over leaf hashes.
func mth(ls [][]byte) []byte {
	switch n := len(ls); n {
	case 0:
		return hasher.EmptyRoot()
	case 1:
		return ls[0]
	default:
		k := 1 << (bits.Len(uint(n-1)) - 1) // the largest power of two < n
		return hasher.HashChildren(mth(ls[:k]), mth(ls[k:]))
	}
}

// refRoots returns the root of every prefix, computed with a compact range
// and the rfc6962 hasher.
func refRoots(ls [][]byte) [][]byte {
	rng := (&compact.RangeFactory{Hash: hasher.HashChildren}).NewEmptyRange(0)
	roots := [][]byte{hasher.EmptyRoot()}
	for _, l := range ls {
		if err := rng.Append(l, nil); err != nil {
			panic(err)
		}
		r, err := rng.GetRootHash(nil)
		if err != nil {
			panic(err)
		}
		roots = append(roots, r)
	}
	return roots
}

func open(t *testing.T, fs vfs.FS, size uint64) *tree.Tree {
	t.Helper()
	tr, err := tree.Open(fs, "tree", size)
	if err != nil {
		t.Fatalf("Open at %d: %v", size, err)
	}
	return tr
}

func root(t *testing.T, tr *tree.Tree, size uint64) []byte {
	t.Helper()
	r, err := tr.Root(size)
	if err != nil {
		t.Fatalf("Root(%d): %v", size, err)
	}
	return r
}

func checkInclusion(t *testing.T, tr *tree.Tree, ls, roots [][]byte, i, size uint64) {
	t.Helper()
	p, err := tr.InclusionProof(i, size)
	if err != nil {
		t.Fatalf("InclusionProof(%d, %d): %v", i, size, err)
	}
	if err := proof.VerifyInclusion(hasher, i, size, ls[i], p, roots[size]); err != nil {
		t.Fatalf("InclusionProof(%d, %d) does not verify: %v", i, size, err)
	}
}

func checkConsistency(t *testing.T, tr *tree.Tree, roots [][]byte, a, b uint64) {
	t.Helper()
	p, err := tr.ConsistencyProof(a, b)
	if err != nil {
		t.Fatalf("ConsistencyProof(%d, %d): %v", a, b, err)
	}
	if err := proof.VerifyConsistency(hasher, a, b, p, roots[a], roots[b]); err != nil {
		t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", a, b, err)
	}
}

func TestHashes(t *testing.T) {
	if got, want := tree.EmptyRoot(), sha256.Sum256(nil); !bytes.Equal(got, want[:]) || !bytes.Equal(got, hasher.EmptyRoot()) {
		t.Fatalf("EmptyRoot() = %x, want SHA-256 of nothing %x", got, want)
	}
	l, r := leaf("l", 0), leaf("r", 0)
	if got := tree.HashChildren(l, r); !bytes.Equal(got, hasher.HashChildren(l, r)) {
		t.Fatalf("HashChildren = %x, want RFC 6962 %x", got, hasher.HashChildren(l, r))
	}
	for n := range 40 {
		if got, want := refRoots(leaves("x", uint64(n)))[n], mth(leaves("x", uint64(n))); !bytes.Equal(got, want) {
			t.Fatalf("reference roots disagree at size %d", n)
		}
	}
}

// TestSmallSizes appends 300 leaves one at a time and checks, at every size,
// the root, every inclusion proof and every consistency proof (from all
// smaller sizes), and the hashes of every smaller size.
func TestSmallSizes(t *testing.T) {
	const n = 300
	ls := leaves("small", n)
	roots := refRoots(ls)
	tr := open(t, vfs.NewMem(), 0)
	defer tr.Close()
	if got := root(t, tr, 0); !bytes.Equal(got, hasher.EmptyRoot()) {
		t.Fatalf("Root(0) = %x, want the empty root", got)
	}
	for size := uint64(1); size <= n; size++ {
		tr.Append(ls[size-1])
		if tr.Size() != size {
			t.Fatalf("Size() = %d after %d appends", tr.Size(), size)
		}
		// Before Flush a read either writes what it needs or says the size
		// is not readable yet; it never answers a wrong root.
		if r, err := tr.Root(size); err == nil && !bytes.Equal(r, roots[size]) {
			t.Fatalf("Root(%d) before Flush = %x, want %x", size, r, roots[size])
		} else if err != nil && !errors.Is(err, tree.ErrSize) {
			t.Fatalf("Root(%d) before Flush: %v", size, err)
		}
		if err := tr.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := root(t, tr, size); !bytes.Equal(got, roots[size]) {
			t.Fatalf("Root(%d) = %x, want %x", size, got, roots[size])
		}
		if size <= 64 {
			if !bytes.Equal(roots[size], mth(ls[:size])) {
				t.Fatalf("reference roots disagree at %d", size)
			}
		}
		for i := uint64(0); i < size; i++ {
			checkInclusion(t, tr, ls, roots, i, size)
		}
		for a := uint64(0); a <= size; a++ {
			checkConsistency(t, tr, roots, a, size)
		}
		if lh, err := tr.LeafHash(size - 1); err != nil || !bytes.Equal(lh, ls[size-1]) {
			t.Fatalf("LeafHash(%d) = %x, %v", size-1, lh, err)
		}
	}
	for size := uint64(0); size <= n; size++ {
		if got := root(t, tr, size); !bytes.Equal(got, roots[size]) {
			t.Fatalf("after %d leaves: Root(%d) = %x, want %x", n, size, got, roots[size])
		}
	}
	checkOutOfRange(t, tr, n)
}

func checkOutOfRange(t *testing.T, tr *tree.Tree, size uint64) {
	t.Helper()
	if _, err := tr.Root(size + 1); !errors.Is(err, tree.ErrSize) {
		t.Errorf("Root(%d) of a tree of %d: %v, want ErrSize", size+1, size, err)
	}
	if _, err := tr.InclusionProof(size, size); err == nil {
		t.Errorf("InclusionProof(%d, %d): no error", size, size)
	}
	if _, err := tr.InclusionProof(0, size+1); !errors.Is(err, tree.ErrSize) {
		t.Errorf("InclusionProof(0, %d) of a tree of %d: %v, want ErrSize", size+1, size, err)
	}
	if size > 0 {
		if _, err := tr.ConsistencyProof(size, size-1); err == nil {
			t.Errorf("ConsistencyProof(%d, %d): no error", size, size-1)
		}
	}
	if _, err := tr.ConsistencyProof(0, size+1); !errors.Is(err, tree.ErrSize) {
		t.Errorf("ConsistencyProof(0, %d) of a tree of %d: %v, want ErrSize", size+1, size, err)
	}
	if _, err := tr.LeafHash(size); !errors.Is(err, tree.ErrSize) {
		t.Errorf("LeafHash(%d) of a tree of %d: %v, want ErrSize", size, size, err)
	}
}

// TestBigSizes builds a few large trees, flushing at random points, and
// checks random roots and proofs.
func TestBigSizes(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []uint64{1 << 12, 1<<12 + 1, 5000 + rnd.Uint64N(5000), 1<<16 + 3} {
		ls := leaves(fmt.Sprint("big", n), n)
		roots := refRoots(ls)
		tr := open(t, vfs.NewMem(), 0)
		var flushed uint64
		for i := uint64(0); i < n; i++ {
			tr.Append(ls[i])
			if rnd.IntN(100) == 0 || i == n-1 {
				if err := tr.Flush(); err != nil {
					t.Fatal(err)
				}
				flushed = i + 1
				if got := root(t, tr, flushed); !bytes.Equal(got, roots[flushed]) {
					t.Fatalf("n=%d: Root(%d) = %x, want %x", n, flushed, got, roots[flushed])
				}
			}
		}
		for range 300 {
			size := 1 + rnd.Uint64N(n)
			if got := root(t, tr, size); !bytes.Equal(got, roots[size]) {
				t.Fatalf("n=%d: Root(%d) = %x, want %x", n, size, got, roots[size])
			}
			checkInclusion(t, tr, ls, roots, rnd.Uint64N(size), size)
			checkConsistency(t, tr, roots, rnd.Uint64N(size+1), size)
		}
		for _, size := range []uint64{1, 2, n / 2, n - 1, n} {
			checkInclusion(t, tr, ls, roots, 0, size)
			checkInclusion(t, tr, ls, roots, size-1, size)
			checkConsistency(t, tr, roots, 1, size)
			checkConsistency(t, tr, roots, size-1, size)
		}
		checkOutOfRange(t, tr, n)
		tr.Close()
	}
}

// TestReopen syncs a tree, reopens it at a smaller size and appends again:
// the same leaves give the same roots, other leaves the roots of the new
// sequence (what lay past the reopened size is overwritten, never trusted).
func TestReopen(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	sizes := []uint64{0, 1, 2, 3, 7, 8, 9, 100, 255, 256, 257, 299}
	for range 10 {
		sizes = append(sizes, rnd.Uint64N(300))
	}
	const n = 300
	for _, m := range sizes {
		fs := vfs.NewMem()
		old := leaves("old", n)
		tr := open(t, fs, 0)
		for _, l := range old {
			tr.Append(l)
		}
		if err := tr.Flush(); err != nil {
			t.Fatal(err)
		}
		if got, err := tr.Sync(); err != nil || got != n {
			t.Fatalf("Sync() = %d, %v; want %d", got, err, n)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}

		// Reopen at m and re-append the same leaves.
		oldRoots := refRoots(old)
		tr = open(t, fs, m)
		if tr.Size() != m {
			t.Fatalf("reopened at %d: Size() = %d", m, tr.Size())
		}
		if got := root(t, tr, m); !bytes.Equal(got, oldRoots[m]) {
			t.Fatalf("reopened at %d: Root = %x, want %x", m, got, oldRoots[m])
		}
		if _, err := tr.Root(m + 1); !errors.Is(err, tree.ErrSize) {
			t.Fatalf("reopened at %d: Root(%d) = %v, want ErrSize (past the size it was opened at)", m, m+1, err)
		}
		for _, l := range old[m:] {
			tr.Append(l)
		}
		if err := tr.Flush(); err != nil {
			t.Fatal(err)
		}
		for size := uint64(0); size <= n; size++ {
			if got := root(t, tr, size); !bytes.Equal(got, oldRoots[size]) {
				t.Fatalf("reopened at %d, same leaves again: Root(%d) = %x, want %x", m, size, got, oldRoots[size])
			}
		}
		if _, err := tr.Sync(); err != nil {
			t.Fatal(err)
		}
		tr.Close()

		// Reopen at m and append other leaves: the tree is the new sequence.
		mixed := append(append([][]byte(nil), old[:m]...), leaves("new", n+50-m)...)
		roots := refRoots(mixed)
		tr = open(t, fs, m)
		for _, l := range mixed[m:] {
			tr.Append(l)
		}
		if err := tr.Flush(); err != nil {
			t.Fatal(err)
		}
		for size := uint64(0); size <= uint64(len(mixed)); size++ {
			if got := root(t, tr, size); !bytes.Equal(got, roots[size]) {
				t.Fatalf("reopened at %d, other leaves: Root(%d) = %x, want %x", m, size, got, roots[size])
			}
		}
		for range 50 {
			size := 1 + rnd.Uint64N(uint64(len(mixed)))
			checkInclusion(t, tr, mixed, roots, rnd.Uint64N(size), size)
			checkConsistency(t, tr, roots, rnd.Uint64N(size+1), size)
		}
		if _, err := tr.Sync(); err != nil {
			t.Fatal(err)
		}
		tr.Close()

		// And once more at the full new size: nothing was lost.
		tr = open(t, fs, uint64(len(mixed)))
		if got := root(t, tr, uint64(len(mixed))); !bytes.Equal(got, roots[len(mixed)]) {
			t.Fatalf("reopened at %d: Root = %x, want %x", len(mixed), got, roots[len(mixed)])
		}
		tr.Close()
	}
}

// TestOpenMissingHashes: opening at a size whose hashes were never written
// is an error, not a wrong tree.
func TestOpenMissingHashes(t *testing.T) {
	fs := vfs.NewMem()
	tr := open(t, fs, 0)
	for _, l := range leaves("few", 5) {
		tr.Append(l)
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if tr, err := tree.Open(fs, "tree", 9); err == nil {
		r, rerr := tr.Root(9)
		tr.Close()
		t.Fatalf("Open at 9 with 5 leaves written: no error (Root(9) = %x, %v)", r, rerr)
	}
}

// TestConcurrentReaders reads roots and proofs of every size the tree has
// reached while one goroutine appends.
func TestConcurrentReaders(t *testing.T) {
	const n = 3000
	ls := leaves("conc", n)
	roots := refRoots(ls)
	tr := open(t, vfs.NewMem(), 0)
	defer tr.Close()
	done := make(chan struct{})
	errs := make(chan error, 4)
	for r := range 2 {
		go func() {
			rnd := rand.New(rand.NewPCG(uint64(r), 9))
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				size := tr.Size()
				if size == 0 {
					continue
				}
				got, err := tr.Root(size)
				if err != nil && !errors.Is(err, tree.ErrSize) {
					errs <- fmt.Errorf("Root(%d): %v", size, err)
					return
				}
				if err != nil {
					continue // not readable yet
				}
				if !bytes.Equal(got, roots[size]) {
					errs <- fmt.Errorf("Root(%d) = %x, want %x", size, got, roots[size])
					return
				}
				i := rnd.Uint64N(size)
				p, err := tr.InclusionProof(i, size)
				if err == nil {
					err = proof.VerifyInclusion(hasher, i, size, ls[i], p, roots[size])
				}
				if err != nil {
					errs <- fmt.Errorf("inclusion of %d in %d: %v", i, size, err)
					return
				}
			}
		}()
	}
	for i := range ls {
		tr.Append(ls[i])
		if i%97 == 0 {
			if err := tr.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := root(t, tr, n); !bytes.Equal(got, roots[n]) {
		t.Fatalf("Root(%d) = %x, want %x", n, got, roots[n])
	}
}

// TestLeafStoredLeafTrim: Leaf answers for flushed and buffered leaves alike;
// StoredLeaf reads the file whatever the size, and sees nothing where the
// file has no hash; Trim zeroes what lies past the size, so that a tree
// reopened below what it once wrote does not keep those stale hashes.
func TestLeafStoredLeafTrim(t *testing.T) {
	fs := vfs.NewMem()
	tr, err := tree.Open(fs, "/t", 0)
	if err != nil {
		t.Fatal(err)
	}
	ls := leaves("a", 40)
	for _, l := range ls[:30] {
		tr.Append(l)
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls[30:] {
		tr.Append(l) // buffered
	}
	for i, want := range ls {
		if got, err := tr.Leaf(uint64(i)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Leaf(%d) = %x, %v; want %x", i, got, err, want)
		}
	}
	if _, err := tr.Leaf(40); !errors.Is(err, tree.ErrSize) {
		t.Fatalf("Leaf(40) of 40: %v, want ErrSize", err)
	}
	if _, ok, err := tr.StoredLeaf(35); ok || err != nil {
		t.Fatalf("StoredLeaf(35), not flushed: ok %v, %v", ok, err)
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Sync(); err != nil {
		t.Fatal(err)
	}
	tr.Close()

	// Reopened at 20 (as at a checkpoint of 20): the hashes of 20-39 are
	// still in the files until Trim, after the recovered leaves are in.
	tr, err = tree.Open(fs, "/t", 20)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if got, ok, err := tr.StoredLeaf(35); !ok || err != nil || !bytes.Equal(got, ls[35]) {
		t.Fatalf("StoredLeaf(35) after reopening at 20: %x, %v, %v", got, ok, err)
	}
	for _, l := range leaves("b", 5) {
		tr.Append(l)
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Trim(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(25); i < 45; i++ {
		if got, ok, err := tr.StoredLeaf(i); ok || err != nil {
			t.Fatalf("StoredLeaf(%d) after Trim at 25: %x, %v, %v; want none", i, got, ok, err)
		}
	}
	want := append(append([][]byte(nil), ls[:20]...), leaves("b", 5)...)
	if root, err := tr.Root(25); err != nil || !bytes.Equal(root, mth(want)) {
		t.Fatalf("Root(25) after Trim: %x, %v; want %x", root, err, mth(want))
	}
}

// BenchmarkLeaf measures reading a written leaf from the files, the cost the
// engine's integrity check adds to each record it reads (with one SHA-256).
func BenchmarkLeaf(b *testing.B) {
	tr, err := tree.Open(vfs.Default, b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	const n = 1 << 16
	for _, l := range leaves("b", n) {
		tr.Append(l)
	}
	if err := tr.Flush(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		if _, err := tr.Leaf(rng.Uint64N(n)); err != nil {
			b.Fatal(err)
		}
	}
}
