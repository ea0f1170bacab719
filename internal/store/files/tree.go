package files

import (
	"errors"
	"fmt"

	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/internal/tree"
)

// Leaf returns the tree's leaf hash of record i, written or still buffered.
func (s *Store) Leaf(i uint64) ([]byte, error) { return s.tree.Leaf(i) }

// ReadLeaves reads consecutive written leaves from index from into buf.
func (s *Store) ReadLeaves(from uint64, buf []byte) (int, error) { return s.tree.ReadLeaves(from, buf) }

// Root returns the Merkle root of the first size records.
func (s *Store) Root(size uint64) ([]byte, error) {
	if err := s.flushTreeTo(size); err != nil {
		return nil, err
	}
	r, err := s.tree.Root(size)
	return r, treeErr(err)
}

// InclusionProof returns the RFC 6962 inclusion proof of index in the tree
// of the given size.
func (s *Store) InclusionProof(index, size uint64) ([][]byte, error) {
	if err := s.flushTreeTo(size); err != nil {
		return nil, err
	}
	p, err := s.tree.InclusionProof(index, size)
	return p, treeErr(err)
}

// ConsistencyProof returns the RFC 6962 consistency proof from one size to
// another.
func (s *Store) ConsistencyProof(from, to uint64) ([][]byte, error) {
	if err := s.flushTreeTo(to); err != nil {
		return nil, err
	}
	p, err := s.tree.ConsistencyProof(from, to)
	return p, treeErr(err)
}

// flushTreeTo makes the tree's hashes of the first size leaves readable.
func (s *Store) flushTreeTo(size uint64) error {
	if size <= s.tree.Flushed() {
		return nil
	}
	return s.flushTree()
}

// flushTree writes the tree's buffered hashes. It holds writeMu, as Write
// does, so that a write error here fails the store before the sequencer can
// write again.
func (s *Store) flushTree() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.failed(); err != nil {
		return err
	}
	if err := s.tree.Flush(); err != nil {
		return s.fail(err)
	}
	return nil
}

func treeErr(err error) error {
	if errors.Is(err, tree.ErrSize) {
		return fmt.Errorf("%w: %v", store.ErrOutOfRange, err)
	}
	return err
}
