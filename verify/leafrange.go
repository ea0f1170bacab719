package verify

import (
	"crypto/sha256"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/tree"
)

// leafRange is the compact range of a tree's leaves from 0: the roots of
// the perfect subtrees the leaves fill, one for every bit set in the number
// of leaves, what compact.Range keeps, in a fixed array, so that appending a
// leaf hashes as many interior nodes as it completes (one on average) and
// allocates nothing.
type leafRange struct {
	n      uint64
	levels [64]event.Hash // levels[k]: the root of the subtree of 2^k leaves, when bit k of n is set
}

// hashChildren is tree.HashChildren into a Hash: SHA-256(0x01 || l || r).
func hashChildren(l, r *event.Hash) event.Hash {
	var b [1 + 2*tree.HashSize]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[1+tree.HashSize:], r[:])
	return sha256.Sum256(b[:])
}

// append adds a leaf hash.
func (r *leafRange) append(leaf *event.Hash) {
	h := *leaf
	k := 0
	for ; r.n>>k&1 == 1; k++ {
		h = hashChildren(&r.levels[k], &h)
	}
	r.levels[k] = h
	r.n++
}

// root is the root of the tree of the leaves appended (RFC 6962: the
// subtrees' roots folded from the smallest, rightmost, to the largest).
func (r *leafRange) root() []byte {
	if r.n == 0 {
		return tree.EmptyRoot()
	}
	k := 0
	for r.n>>k&1 == 0 {
		k++
	}
	h := r.levels[k]
	for k++; k < 64; k++ {
		if r.n>>k&1 == 1 {
			h = hashChildren(&r.levels[k], &h)
		}
	}
	return h[:]
}
