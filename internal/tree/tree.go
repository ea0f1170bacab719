// Package tree keeps an RFC 6962 Merkle tree on disk so that the root of any
// size and any inclusion or consistency proof cost O(log n) reads.
//
// Level k of the tree is a file of 32-byte hashes: entry i is the root of the
// perfect subtree over leaves [i·2^k, (i+1)·2^k). Appending a leaf writes the
// leaf hash and every subtree it completes (on average two hashes a leaf).
//
// Guarantees and failure. The files are derived from the log: Append only
// buffers, Flush writes (no fsync), Sync fdatasyncs every level. After Sync
// returns, the tree is durable up to the size it had at the call; a caller
// records that size (in a signed checkpoint) and, after a crash, reopens the
// tree at that size and appends the log's remaining leaves again. Entries
// past the reopened size are overwritten, never trusted.
package tree

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/trailhq/trail/internal/durable"
)

// HashSize is the size of every hash in the tree.
const HashSize = sha256.Size

// HashChildren returns the RFC 6962 interior node hash SHA-256(0x01 || l || r).
func HashChildren(l, r []byte) []byte {
	var b [1 + 2*HashSize]byte
	b[0] = 1
	copy(b[1:], l)
	copy(b[1+HashSize:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// EmptyRoot is the root of the empty tree: SHA-256 of nothing.
func EmptyRoot() []byte {
	h := sha256.Sum256(nil)
	return h[:]
}

var factory = &compact.RangeFactory{Hash: HashChildren}

// Tree is a Merkle tree stored in one directory. Append is for one writer
// goroutine; everything else is safe for concurrent use. Appended hashes are
// buffered until Flush (or FlushIfLarge, when the buffer is large); readers
// see sizes up to the last flush.
type Tree struct {
	fs  vfs.FS
	dir string

	wmu     sync.Mutex // guards rng, pending and pendingStart
	rng     *compact.Range
	pending [64][]byte // hashes appended but not yet written, per level
	// index of the first pending hash, per level
	pendingStart [64]uint64
	pendingBytes int

	mu      sync.RWMutex // guards files and flushed
	files   []vfs.File   // one per level
	flushed uint64       // leaves whose hashes are written to the files
	created bool         // a level file was created since the last Sync
}

// Open opens the tree in dir at the given size. Hashes of sizes up to size
// must have been made durable by an earlier Sync; everything past it is
// ignored and overwritten by later appends.
func Open(fs vfs.FS, dir string, size uint64) (*Tree, error) {
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create tree directory: %w", err)
	}
	t := &Tree{fs: fs, dir: dir}
	for k := 0; k < 64; k++ {
		name := fs.PathJoin(dir, fmt.Sprintf("level-%02d", k))
		if _, err := fs.Stat(name); err != nil {
			break
		}
		f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("open tree level %d: %w", k, err)
		}
		t.files = append(t.files, f)
	}
	t.flushed = size
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := t.node(id)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("tree of size %d: %w", size, err)
		}
		hashes[i] = h
	}
	rng, err := factory.NewRange(0, size, hashes)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.rng = rng
	for k := range t.pendingStart {
		t.pendingStart[k] = size >> k
	}
	return t, nil
}

// Flushed returns the number of leaves whose hashes are written.
func (t *Tree) Flushed() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.flushed
}

// Size returns the number of leaves appended.
func (t *Tree) Size() uint64 {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.rng.End()
}

// Append adds a leaf hash. The tree keeps leaf: the caller must not change it.
func (t *Tree) Append(leaf []byte) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if err := t.rng.Append(leaf, t.visit); err != nil {
		panic("tree: " + err.Error()) // only on a corrupt range, which Open rules out
	}
}

func (t *Tree) visit(id compact.NodeID, hash []byte) {
	t.pending[id.Level] = append(t.pending[id.Level], hash...)
	t.pendingBytes += len(hash)
}

// flushAt is how many buffered bytes make FlushIfLarge write.
const flushAt = 256 << 10

// FlushIfLarge writes the buffered hashes if they are many, so that a small
// batch costs no write calls for the tree.
func (t *Tree) FlushIfLarge() error {
	t.wmu.Lock()
	large := t.pendingBytes >= flushAt
	t.wmu.Unlock()
	if !large {
		return nil
	}
	return t.Flush()
}

// Flush writes the appended hashes to the level files (without fsync) and
// makes them readable. After an error the tree must not be used.
func (t *Tree) Flush() error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	for k := range t.pending {
		p := t.pending[k]
		if len(p) == 0 {
			continue
		}
		f, err := t.level(k)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(p, int64(t.pendingStart[k])*HashSize); err != nil {
			return fmt.Errorf("write tree level %d: %w", k, err)
		}
		t.pendingStart[k] += uint64(len(p) / HashSize)
		t.pending[k] = p[:0]
	}
	t.pendingBytes = 0
	t.mu.Lock()
	t.flushed = t.rng.End()
	t.mu.Unlock()
	return nil
}

func (t *Tree) level(k int) (vfs.File, error) {
	t.mu.RLock()
	n := len(t.files)
	t.mu.RUnlock()
	for n <= k {
		name := t.fs.PathJoin(t.dir, fmt.Sprintf("level-%02d", n))
		f, err := t.fs.Create(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			return nil, fmt.Errorf("create tree level %d: %w", n, err)
		}
		t.mu.Lock()
		t.files = append(t.files, f)
		t.created = true
		t.mu.Unlock()
		n++
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.files[k], nil
}

// Sync makes every written (flushed) hash durable and returns the size it
// covers.
//
// Order: fdatasync each level file, then (if a level was created) fsync the
// directory. Only after both may the caller record the size as durable.
func (t *Tree) Sync() (uint64, error) {
	t.mu.RLock()
	size, files, created := t.flushed, t.files, t.created
	t.mu.RUnlock()
	for k, f := range files {
		if err := f.SyncData(); err != nil {
			return 0, fmt.Errorf("sync tree level %d: %w", k, err)
		}
	}
	if created {
		if err := durable.SyncDir(t.fs, t.dir); err != nil {
			return 0, err
		}
		t.mu.Lock()
		t.created = false
		t.mu.Unlock()
	}
	return size, nil
}

// ErrSize reports a size or index outside the readable tree.
var ErrSize = errors.New("outside the tree")

// node reads the hash of a perfect subtree.
func (t *Tree) node(id compact.NodeID) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if int(id.Level) >= len(t.files) {
		return nil, fmt.Errorf("tree level %d is missing", id.Level)
	}
	b := make([]byte, HashSize)
	if n, err := t.files[id.Level].ReadAt(b, int64(id.Index)*HashSize); n != HashSize {
		return nil, fmt.Errorf("read tree node %d/%d: %w", id.Level, id.Index, errors.Join(err, errors.New("short read")))
	}
	return b, nil
}

// checkSize reports whether the hashes of the first size leaves are written.
func (t *Tree) checkSize(size uint64) error {
	t.mu.RLock()
	flushed := t.flushed
	t.mu.RUnlock()
	if size > flushed {
		return fmt.Errorf("size %d: %w (size %d)", size, ErrSize, flushed)
	}
	return nil
}

// Root returns the root hash of the tree's first size leaves.
func (t *Tree) Root(size uint64) ([]byte, error) {
	if err := t.checkSize(size); err != nil {
		return nil, err
	}
	if size == 0 {
		return EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	var root []byte
	for i := len(ids) - 1; i >= 0; i-- {
		h, err := t.node(ids[i])
		if err != nil {
			return nil, err
		}
		if root == nil {
			root = h
		} else {
			root = HashChildren(h, root)
		}
	}
	return root, nil
}

// LeafHash returns the hash of leaf i.
func (t *Tree) LeafHash(i uint64) ([]byte, error) {
	if err := t.checkSize(i + 1); err != nil {
		return nil, err
	}
	return t.node(compact.NewNodeID(0, i))
}

// Leaf returns leaf i as appended, whether or not it is flushed yet: the
// hash the tree holds for the record at index i. Readers compare a record's
// hash with it (and so never need the tree flushed to read recent records).
func (t *Tree) Leaf(i uint64) ([]byte, error) {
	// A written leaf is read without the writer's lock.
	if t.checkSize(i+1) == nil {
		return t.node(compact.NewNodeID(0, i))
	}
	t.wmu.Lock()
	if start := t.pendingStart[0]; i >= start {
		defer t.wmu.Unlock()
		if i >= t.rng.End() {
			return nil, fmt.Errorf("leaf %d: %w (size %d)", i, ErrSize, t.rng.End())
		}
		off := (i - start) * HashSize
		return append([]byte(nil), t.pending[0][off:off+HashSize]...), nil
	}
	// Flushed meanwhile: Flush advances pendingStart only after its write.
	t.wmu.Unlock()
	return t.node(compact.NewNodeID(0, i))
}

// ReadLeaves reads written leaves from index from on into buf (a multiple of
// HashSize long) with one read, and returns how many it read: fewer than fit
// when the written leaves end first (those past are still buffered; see
// Leaf).
func (t *Tree) ReadLeaves(from uint64, buf []byte) (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if from >= t.flushed || len(t.files) == 0 {
		return 0, nil
	}
	n := min(uint64(len(buf)/HashSize), t.flushed-from)
	b := buf[:n*HashSize]
	if k, err := t.files[0].ReadAt(b, int64(from)*HashSize); k != len(b) {
		return 0, fmt.Errorf("read tree leaves %d-%d: %w", from, from+n-1, errors.Join(err, errors.New("short read")))
	}
	return int(n), nil
}

// StoredLeaf returns what the level-0 file holds for leaf i, whatever the
// tree's size: ok is false when the file has no hash there (it ends before,
// or holds zeros, as a crash before the write leaves it). Recovery compares
// the records past the latest checkpoint with it.
func (t *Tree) StoredLeaf(i uint64) (leaf []byte, ok bool, err error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.files) == 0 {
		return nil, false, nil
	}
	b := make([]byte, HashSize)
	n, err := t.files[0].ReadAt(b, int64(i)*HashSize)
	if n < HashSize {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, fmt.Errorf("read tree leaf %d: %w", i, err)
		}
		return nil, false, nil
	}
	for _, c := range b {
		if c != 0 {
			return b, true, nil
		}
	}
	return nil, false, nil
}

// Trim zeroes every hash past the tree's size in the level files and
// fdatasyncs them. Call it after Flush, with nothing appended since. Hashes
// that a crash left past the size (of records cut as torn, or never
// written) would otherwise look like the leaves of the records later
// written at those indexes; after Trim, a non-zero leaf in the files was
// written for the record at its index.
//
// Order: overwrite each level's tail with zeros, then fdatasync that level.
// A crash before the sync leaves the old tail or zeros, and the next
// recovery trims again.
func (t *Tree) Trim() error {
	t.wmu.Lock()
	size := t.rng.End()
	t.wmu.Unlock()
	t.mu.RLock()
	defer t.mu.RUnlock()
	for k, f := range t.files {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat tree level %d: %w", k, err)
		}
		keep := int64(size>>k) * HashSize
		if st.Size() <= keep {
			continue
		}
		zero := make([]byte, min(st.Size()-keep, 1<<20))
		for off := keep; off < st.Size(); off += int64(len(zero)) {
			if _, err := f.WriteAt(zero[:min(int64(len(zero)), st.Size()-off)], off); err != nil {
				return fmt.Errorf("trim tree level %d: %w", k, err)
			}
		}
		if err := f.SyncData(); err != nil {
			return fmt.Errorf("sync tree level %d: %w", k, err)
		}
	}
	return nil
}

// InclusionProof returns the proof that leaf index is in the tree of the
// given size.
func (t *Tree) InclusionProof(index, size uint64) ([][]byte, error) {
	if err := t.checkSize(size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSize, err)
	}
	return t.fetch(nodes)
}

// ConsistencyProof returns the proof that the tree of size from is a prefix
// of the tree of size to.
func (t *Tree) ConsistencyProof(from, to uint64) ([][]byte, error) {
	if err := t.checkSize(to); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSize, err)
	}
	return t.fetch(nodes)
}

func (t *Tree) fetch(nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := t.node(id)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	out, err := nodes.Rehash(hashes, HashChildren)
	if out == nil {
		out = [][]byte{}
	}
	return out, err
}

// Close closes the level files.
func (t *Tree) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, f := range t.files {
		errs = append(errs, f.Close())
	}
	t.files = nil
	return errors.Join(errs...)
}
