package trail

import (
	"bytes"
	"context"
	"fmt"
	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/verify"
)

// Size returns the number of events stored and acknowledged.
func (l *Log) Size() uint64 { return l.durable.load() }

// Read returns the stored bytes of the event at index: exactly the bytes the
// Merkle tree hashed. Bytes that do not hash to the tree's leaf at index are
// never returned: that is an *IntegrityError.
func (l *Log) Read(index uint64) ([]byte, error) {
	if index >= l.durable.load() {
		return nil, fmt.Errorf("event %d: %w", index, ErrNotFound)
	}
	if err := l.beginRead(); err != nil {
		return nil, err
	}
	defer l.endRead()
	return l.readChecked(index)
}

// readChecked reads record i and checks it against the tree's leaf i, which
// the sequencer computed from the bytes it wrote. A record changed on disk
// since (even with its frame checksum fixed) fails here, at the cost of one
// 32-byte read and one SHA-256 per record. The tree's own files are trusted
// here; Open checks them against the signed checkpoint, and trail verify
// recomputes everything.
func (l *Log) readChecked(i uint64) ([]byte, error) { return l.readCheckedIn(i, nil) }

// readCheckedIn is readChecked taking the leaf from w when given (a query's
// run of leaves).
func (l *Log) readCheckedIn(i uint64, w *leafWindow) ([]byte, error) {
	rec, err := l.st.Read(i)
	if err != nil {
		return nil, err
	}
	var want []byte
	if w != nil {
		want, err = w.leaf(l.st, i)
	} else {
		want, err = l.st.Leaf(i)
	}
	if err != nil {
		return nil, fmt.Errorf("event %d: leaf hash: %w", i, err)
	}
	if got := LeafHash(rec); !bytes.Equal(got[:], want) {
		return nil, &IntegrityError{Index: i, Err: fmt.Errorf("its leaf hash is %s, the tree's leaf %x", got, want)}
	}
	return rec, nil
}

// leafWindowSize is how many leaves a query reads from the tree at once.
const leafWindowSize = 256

// leafWindow holds a run of the tree's written leaves for a query, which
// reads records in index order: when they are adjacent (a query without
// filters), one read of the tree's file serves the checks of many records
// (a page of 1000 events: 5 reads instead of 1000); scattered ones (a
// patient's events) are read one by one.
type leafWindow struct {
	desc bool   // the query goes backwards: a run ends at the index asked
	from uint64 // the first leaf held
	n    uint64 // leaves held
	buf  []byte
	last uint64 // the previous index asked, plus one (0: none)
}

func (w *leafWindow) leaf(t store.Store, i uint64) ([]byte, error) {
	adjacent := w.last != 0 && (i+1 == w.last-1 || i+1 == w.last+1)
	w.last = i + 1
	if (i < w.from || i >= w.from+w.n) && !adjacent {
		return t.Leaf(i)
	}
	if i < w.from || i >= w.from+w.n {
		from := i
		if w.desc {
			from = i + 1 - min(i+1, leafWindowSize)
		}
		if w.buf == nil {
			w.buf = make([]byte, leafWindowSize*store.HashSize)
		}
		n, err := t.ReadLeaves(from, w.buf)
		if err != nil {
			return nil, err
		}
		w.from, w.n = from, uint64(n)
		if i >= w.from+w.n {
			return t.Leaf(i) // not written yet: still buffered in the tree
		}
	}
	off := (i - w.from) * store.HashSize
	return w.buf[off : off+store.HashSize], nil
}

// Checkpoint returns the latest signed checkpoint.
func (l *Log) Checkpoint() Checkpoint {
	c, _, _ := l.st.Latest()
	return verify.CheckpointOf(c)
}

// VerifierKey returns the checkpoint verifier key (name+hash+base64), as in
// DIR/checkpoint.vkey.
func (l *Log) VerifierKey() string { return l.st.VerifierKey() }

// Root returns the Merkle root of the first size events.
func (l *Log) Root(size uint64) (Hash, error) {
	if size > l.durable.load() {
		return Hash{}, fmt.Errorf("size %d: %w (%d events)", size, ErrOutOfRange, l.durable.load())
	}
	if err := l.beginRead(); err != nil {
		return Hash{}, err
	}
	defer l.endRead()
	r, err := l.st.Root(size)
	return toHash(r), l.storeErr(err)
}

// InclusionProof returns the RFC 6962 inclusion proof of event index in the
// tree of the given size (index < size ≤ Size()).
func (l *Log) InclusionProof(index, size uint64) ([]Hash, error) {
	if index >= size || size > l.durable.load() {
		return nil, fmt.Errorf("inclusion of %d in size %d: %w (%d events)", index, size, ErrOutOfRange, l.durable.load())
	}
	if err := l.beginRead(); err != nil {
		return nil, err
	}
	defer l.endRead()
	p, err := l.st.InclusionProof(index, size)
	return toHashes(p), l.storeErr(err)
}

// ConsistencyProof returns the RFC 6962 proof that the tree of size from is a
// prefix of the tree of size to (from ≤ to ≤ Size()).
func (l *Log) ConsistencyProof(from, to uint64) ([]Hash, error) {
	if from > to || to > l.durable.load() {
		return nil, fmt.Errorf("consistency %d to %d: %w (%d events)", from, to, ErrOutOfRange, l.durable.load())
	}
	if err := l.beginRead(); err != nil {
		return nil, err
	}
	defer l.endRead()
	p, err := l.st.ConsistencyProof(from, to)
	return toHashes(p), l.storeErr(err)
}

func toHash(b []byte) Hash {
	var h Hash
	copy(h[:], b)
	return h
}

func toHashes(bs [][]byte) []Hash {
	out := make([]Hash, len(bs))
	for i, b := range bs {
		out[i] = toHash(b)
	}
	return out
}

// ReadID returns the index and stored bytes of the event with the given
// id, as of every event acknowledged before the call, or ErrNotFound. The
// bytes are checked against the tree as Read checks them.
func (l *Log) ReadID(ctx context.Context, id string) (uint64, []byte, error) {
	if !event.ValidID(id) {
		return 0, nil, fmt.Errorf("event id %q: %w", id, ErrNotFound)
	}
	size := l.durable.load()
	has := func(i uint64) (uint64, []byte, bool, error) {
		rec, err := l.Read(i)
		if err != nil {
			return 0, nil, false, err
		}
		h, err := event.ParseHeader(rec)
		if err != nil {
			return 0, nil, false, fmt.Errorf("event %d: %w", i, err)
		}
		return i, rec, h.ID == id, nil
	}
	// An id in the form Trail assigns names its index; it is not indexed.
	if i, ok := store.DecodeGeneratedID(id); ok && i < size {
		if i, rec, ok, err := has(i); err != nil || ok {
			return i, rec, err
		}
	}
	if err := l.waitApplied(ctx, size); err != nil {
		return 0, nil, err
	}
	if err := l.beginRead(); err != nil {
		return 0, nil, err
	}
	i, ok, err := l.st.ID(id)
	l.endRead()
	if err != nil {
		return 0, nil, fmt.Errorf("trail: %w", err)
	}
	if ok && i < size {
		if i, rec, ok, err := has(i); err != nil || ok {
			return i, rec, err
		}
	}
	return 0, nil, fmt.Errorf("event id %q: %w", id, ErrNotFound)
}
