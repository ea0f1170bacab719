// Package index keeps the engine's derived state in an embedded Pebble store:
// each event's id (for exactly-once), each stream's head (for stream_seq and
// prev), posting lists for queries (postings.go), and the number of log
// records applied.
//
// Guarantees. Everything here is derived from the log. Apply writes a batch
// of events and the new applied count in one atomic Pebble batch, so after any
// crash the store reflects exactly the first Applied() records and the caller
// replays the rest from the log. Pebble's write-ahead log is off: durability
// comes from the segment log, not from here; Close flushes so that a clean
// restart replays nothing.
package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Key prefixes. Client ids sort last: ids that grow over time (the Go
// client's are time-ordered) then fall past the key range of every older
// sstable, so looking up a new id reads no sstable at all.
const (
	prefixID     = 'z' // z/<id> → index
	prefixStream = 's' // s/<stream> → head
	prefixPost   = 'x' // x<field><len><value><first index> → postings (postings.go)
	keyApplied   = "m/applied"
	keyFormat    = "m/format"
)

// format is the layout of the keys above; a store in another layout is
// rebuilt from the log. 3: postings of stream prefixes (FieldPrefix).
const format = "3"

// ErrFormat: the store is in another layout and must be rebuilt.
var ErrFormat = errors.New("index store in an older layout")

// Head is the last event of a stream.
type Head struct {
	Seq      uint64 // stream_seq of the last event
	Index    uint64 // its index in the log
	LeafHash [32]byte
}

// Entry is what Apply records of one event.
type Entry struct {
	Index  uint64
	ID     string
	Given  bool // the client chose the id; assigned ids are not indexed (they name their index)
	Stream string
	Seq    uint64
	Leaf   [32]byte

	// Query fields: each non-empty one gets a posting.
	Patient, Actor, Type, Action, Outcome string
}

// Store is the Pebble-backed index.
type Store struct {
	db *pebble.DB
}

// Open opens (creating if needed) the store in dir.
func Open(fs vfs.FS, dir string, logger *slog.Logger) (*Store, error) {
	opts := &pebble.Options{
		FS:           fs,
		DisableWAL:   true,
		MemTableSize: 32 << 20,
		CacheSize:    64 << 20,
		// Pebble keeps up to this many files open (1000 by default), most
		// of them sstables in its table cache. The server's budget is 256
		// descriptors besides sockets, of which the log takes 65 (see
		// segment.DefaultMaxOpenSealed) and the tree and the rest about 35.
		// The index gets the larger share: every append looks its ids up,
		// and a table that is not open must be reopened (its footer and
		// filter read) before its filter can answer, where a log segment
		// out of the cache costs a cold read two opens. Past the bound the
		// table cache closes the least recently used tables: a cost, not an
		// error.
		MaxOpenFiles: 128,
		Logger:       pebbleLogger{logger},
	}
	// Bloom filters on every level: most id lookups are for new ids, and
	// a filter answers "absent" without reading (and decompressing) blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	s := &Store{db: db}
	if err := s.checkFormat(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkFormat stamps a new store with the layout, and refuses a store in
// another one.
func (s *Store) checkFormat() error {
	v, ok, err := s.get([]byte(keyFormat))
	if err != nil {
		return err
	}
	if ok {
		if string(v) != format {
			return fmt.Errorf("%w (%q, want %q)", ErrFormat, v, format)
		}
		return nil
	}
	if _, ok, err := s.get([]byte(keyApplied)); err != nil || ok {
		if ok {
			return fmt.Errorf("%w (unstamped)", ErrFormat)
		}
		return err
	}
	// The write-ahead log is off: flush, so that the stamp is on disk before
	// anything that relies on it.
	if err := s.db.Set([]byte(keyFormat), []byte(format), pebble.NoSync); err != nil {
		return err
	}
	return s.Flush()
}

// Applied returns how many log records the store reflects.
func (s *Store) Applied() (uint64, error) {
	v, ok, err := s.get([]byte(keyApplied))
	if err != nil || !ok {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// ID returns the index of the event with the given id.
func (s *Store) ID(id string) (uint64, bool, error) {
	v, ok, err := s.get(key(prefixID, id))
	if err != nil || !ok {
		return 0, false, err
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// Head returns the head of a stream.
func (s *Store) Head(stream string) (Head, bool, error) {
	v, ok, err := s.get(key(prefixStream, stream))
	if err != nil || !ok {
		return Head{}, false, err
	}
	if len(v) != 48 {
		return Head{}, false, fmt.Errorf("index: head of %q is %d bytes, want 48", stream, len(v))
	}
	h := Head{Seq: binary.BigEndian.Uint64(v), Index: binary.BigEndian.Uint64(v[8:])}
	copy(h.LeafHash[:], v[16:])
	return h, true, nil
}

func (s *Store) get(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("index: get %q: %w", k, err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// Apply records entries, which must be the log records [Applied(), applied)
// in order, and sets Applied to applied, atomically. Each client-chosen id is
// written; each
// stream's head only once, at its last entry.
func (s *Store) Apply(entries []Entry, applied uint64) error {
	var w sortedWrites
	last := make(map[string]int, 64)
	for i := range entries {
		e := &entries[i]
		last[e.Stream] = i
		if e.Given {
			w.add(key(prefixID, e.ID), binary.BigEndian.AppendUint64(nil, e.Index))
		}
	}
	for _, i := range last {
		e := &entries[i]
		v := make([]byte, 48)
		binary.BigEndian.PutUint64(v[:8], e.Seq)
		binary.BigEndian.PutUint64(v[8:16], e.Index)
		copy(v[16:], e.Leaf[:])
		w.add(key(prefixStream, e.Stream), v)
	}
	addPostings(&w, entries)
	w.add([]byte(keyApplied), binary.BigEndian.AppendUint64(nil, applied))
	b := s.db.NewBatch()
	defer b.Close()
	if err := w.into(b); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	return nil
}

// sortedWrites collects a batch's writes and hands them to Pebble in key
// order: the memtable inserts each key next to the one before instead of
// searching the skiplist from the top, which made unsorted batches cost
// about 1 µs a key.
type sortedWrites struct {
	kvs []kv
}

type kv struct{ k, v []byte }

func (w *sortedWrites) add(k, v []byte) { w.kvs = append(w.kvs, kv{k, v}) }

func (w *sortedWrites) into(b *pebble.Batch) error {
	slices.SortStableFunc(w.kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	for _, e := range w.kvs {
		if err := b.Set(e.k, e.v, nil); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}

// Flush writes everything applied so far to disk, so that recovery after a
// crash replays the log only from here.
func (s *Store) Flush() error {
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("index: flush: %w", err)
	}
	return nil
}

// Close flushes the store to disk and closes it.
func (s *Store) Close() error {
	ferr := s.db.Flush()
	return errors.Join(ferr, s.db.Close())
}

func key(prefix byte, s string) []byte {
	k := make([]byte, 0, 2+len(s))
	return append(append(k, prefix, '/'), s...)
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("index store", "msg", fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("index store fatal", "msg", fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
