// Package store is the seam between the engine's write pipeline and where
// the log lives. The engine (package trail) orders events, assigns their
// indexes, stream_seq, prev and ids, and hashes them (the sequencer); a Store
// keeps what the sequencer produced: the records, the Merkle tree's hashes,
// the signed checkpoints and the indexes that find events by id, stream and
// query field.
//
// The pipeline drives a Store in this order:
//
//	sequencer:    Begin, then Len, Head, ID, Read (to sequence),
//	              NeedsDurable, and Write, or Abort when nothing is written
//	syncer:       Sync (then the receipts are given)
//	indexer:      Apply (entries of durable records, off the receipt path)
//	checkpointer: Checkpoint
//	readers:      Read, Leaf, ReadLeaves, Root, InclusionProof,
//	              ConsistencyProof, Head, ID, Snapshot
//
// Write and Sync are called from one goroutine each, never concurrently with
// themselves; everything else may run beside them. After any write, sync or
// index error, and after Fail, a Store writes and syncs nothing more: the
// engine fails closed, and recovery on the next Open starts from what is
// durable.
//
// The files in a data directory are the first implementation
// (internal/store/files).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/index"
	"github.com/trailhq/trail/internal/segment"
)

// Store keeps a log: see the package comment for who calls what.
type Store interface {
	// Begin starts a batch. A store that several processes write (one
	// database) serialises their batches from here to the batch's Sync or
	// Abort, and says whether another process appended since this one's
	// previous batch: the sequencer then forgets what it cached of the log
	// (stream heads, recent ids) and reads it from the store again.
	Begin(ctx context.Context) (Begun, error)
	// Abort ends a batch begun and not written.
	Abort()
	// Follow has the store call fn with the log's committed length when it
	// sees another process append (never concurrently with itself), so
	// that this process reads what they wrote. A store only this process
	// writes never calls it.
	Follow(fn func(size uint64))

	// Len is the number of records written, durable or not.
	Len() uint64
	// Read returns a copy of record i as written, not checked against its
	// leaf hash (the engine checks it). A record found damaged is an
	// *IntegrityError.
	Read(i uint64) ([]byte, error)
	// Head returns the last event of a stream among the applied entries.
	Head(stream string) (Head, bool, error)
	// ID returns the index of the event with a client-chosen id among the
	// applied entries.
	ID(id string) (uint64, bool, error)

	// NeedsDurable reports whether b can only be written once every record
	// written before it is durable (a store that seals a segment before
	// starting the next, say).
	NeedsDurable(b *Batch) bool
	// Write writes a sequenced batch: its records and their leaves in the
	// Merkle tree. It is not durable until Sync.
	Write(b *Batch) (Commit, error)
	// Sync makes written batches durable. A failed sync is never retried.
	Sync(cs []Commit) error
	// Apply records the index entries of durable records; end is the log's
	// length once they are applied.
	Apply(entries []Entry, end uint64) error
	// Fail makes the store refuse every later write and sync: the engine
	// stopped for cause.
	Fail(cause error)
	// Err is the store's own failure (a write, sync or index error, or the
	// cause given to Fail), or nil.
	Err() error

	// Checkpoint signs and stores a checkpoint of the first durable records
	// if the log grew since the latest; applied is how far the indexes are.
	Checkpoint(durable, applied uint64) error
	// Latest returns the latest signed checkpoint and when this process
	// signed it (zero if it did not).
	Latest() (checkpoint.Checkpoint, time.Time, bool)
	// VerifierKey is the checkpoints' verifier key (name+hash+base64).
	VerifierKey() string

	// Leaf returns the tree's leaf hash of record i, written or buffered.
	Leaf(i uint64) ([]byte, error)
	// ReadLeaves reads consecutive written leaves from index from into buf
	// (HashSize bytes each) and returns how many it read.
	ReadLeaves(from uint64, buf []byte) (int, error)
	// Root, InclusionProof and ConsistencyProof answer from the tree's
	// hashes; sizes beyond the records written are ErrOutOfRange.
	Root(size uint64) ([]byte, error)
	InclusionProof(index, size uint64) ([][]byte, error)
	ConsistencyProof(from, to uint64) ([][]byte, error)

	// Describe says what the store is and, for a database, how it is
	// replicated, for operators.
	Describe(ctx context.Context) Info

	// Snapshot fixes the indexes as they are for a query.
	Snapshot() (Snapshot, error)

	Close() error
}

// Batcher is a store whose lookups cost a round trip each (a database):
// the sequencer asks it for a whole batch's client ids and stream heads at
// once, instead of calling ID and Head for each event.
type Batcher interface {
	// IDs returns the index of each stored id among ids.
	IDs(ids []string) (map[string]uint64, error)
	// Heads returns the head of each stream of streams that has events.
	Heads(streams []string) (map[string]Head, error)
}

// Snapshot is a fixed view of the indexes for one query.
type Snapshot interface {
	// End is the log length the view covers.
	End() uint64
	// Candidates returns a function yielding, in the direction of f, the
	// indexes in [lo, hi) whose events match every field of f and whose
	// stream may be in f.Scope (a superset: the caller checks each event).
	Candidates(ctx context.Context, f Filter, lo, hi uint64) (func() (uint64, bool, error), error)
	Close() error
}

// Filter is what a query asks of the indexes: exact values of indexed
// fields (empty ones do not filter), and the streams a caller may read.
type Filter struct {
	Stream, Patient, Actor, Type, Action, Outcome string
	Scope                                         *Scope
	Desc                                          bool
}

// Info describes a store for operators.
type Info struct {
	Kind  string `json:"kind"`  // "files" or "postgres"
	Where string `json:"where"` // the data directory, or the database (without its password)
	// Mode is how a database's commits reach standbys: "none",
	// "asynchronous", "synchronous" or "unknown" (empty for files).
	Mode string `json:"mode,omitempty"`
	// Replication says the same in words, with the standbys' count.
	Replication string `json:"replication,omitempty"`
}

// Begun is what Begin found.
type Begun struct {
	// Changed: another process appended since this one's previous batch,
	// or that batch failed in a way that leaves the store's state unknown
	// to the sequencer.
	Changed bool
	// LastRecorded is the recorded time of the log's last record, when the
	// store knows it cheaply (for Changed): recorded times never go back.
	LastRecorded string
	// Moved, when not Changed, are the heads of the streams that other
	// processes appended to since this one's previous batch: what the
	// sequencer cached of the log stays true but for these.
	Moved map[string]Head
}

// ErrUnavailable: the store cannot be reached now (a database restarting
// or failing over). The batch in flight is not stored, or its outcome is
// unknown; the engine goes on, and callers retry with the same ids, which
// keep the retry from storing an event twice.
var ErrUnavailable = errors.New("trail: storage unavailable; retry with the same ids")

// Commit is a batch written and not yet durable, as its store knows it.
type Commit any

// Head is the last event of a stream.
type Head = index.Head

// Entry is what the indexes record of one event.
type Entry = index.Entry

// HashSize is the size of a tree hash.
const HashSize = 32

// ErrOutOfRange: a size or index beyond the log.
var ErrOutOfRange = errors.New("trail: out of range")

// ErrIntegrity: a stored record does not match the Merkle tree's leaf at
// its index (see IntegrityError).
var ErrIntegrity = errors.New("trail: stored record does not match the Merkle tree")

// IntegrityError names a stored record whose bytes do not match the Merkle
// tree's leaf at its index, or cannot be read at all: the record was altered
// on disk (tampering) or the disk damaged it. The engine never returns such
// bytes; the rest of the log stays readable and appends go on, since the
// tree is intact. It matches ErrIntegrity with errors.Is.
type IntegrityError struct {
	Index uint64 // the record's index
	Err   error  // what differs
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("trail: event %d: the stored record does not match the Merkle tree (altered on disk, or a damaged disk; run trail verify): %v", e.Index, e.Err)
}

func (e *IntegrityError) Unwrap() []error { return []error{ErrIntegrity, e.Err} }

// Batch is a sequenced batch on its way to a store: its records framed back
// to back (the segment framing, which carries each record's length,
// checksum and whether more records of its atomic group follow), their leaf
// hashes, and the index entries of its events.
type Batch struct {
	First   uint64   // index of the first record
	Buf     []byte   // the frames
	Starts  []int    // offset of each frame in Buf
	Leaves  [][]byte // leaf hash of each record
	Entries []Entry
}

// Reset empties b for the batch starting at index first, keeping its memory.
func (b *Batch) Reset(first uint64) {
	b.First, b.Buf, b.Starts, b.Leaves = first, b.Buf[:0], b.Starts[:0], b.Leaves[:0]
	b.Entries = nil
}

// Len is the number of records in b.
func (b *Batch) Len() int { return len(b.Starts) }

// Begin starts the frame of the next record; append the record to b.Buf
// and call End.
func (b *Batch) Begin() (start int) {
	var s int
	b.Buf, s = segment.BeginFrame(b.Buf)
	b.Starts = append(b.Starts, s)
	return s
}

// End closes the frame begun at start; more marks a record followed by
// more of its atomic group.
func (b *Batch) End(start int, more bool) { segment.EndFrame(b.Buf, start, more) }

// Record returns the k-th record of b and whether more of its group follow.
func (b *Batch) Record(k int) ([]byte, bool, error) {
	rec, more, _, err := segment.DecodeFrame(b.Buf[b.Starts[k]:])
	return rec, more, err
}

// RecordAt returns the record of b at log index i, which must be in b.
func (b *Batch) RecordAt(i uint64) ([]byte, error) {
	rec, _, err := b.Record(int(i - b.First))
	return rec, err
}

// Body is the part of frame k past its header: the record.
func (b *Batch) Body(start int) []byte { return b.Buf[start+segment.HeaderSize:] }

// EntryOf returns e with the query fields of ev filled in: the fields the
// indexes keep postings for besides the stream.
func EntryOf(ev *event.Event, e Entry) Entry {
	outcome := ev.Outcome
	if outcome == "" {
		outcome = event.OutcomeSuccess
	}
	e.Patient, e.Actor, e.Type, e.Action, e.Outcome = ev.Patient, ev.Actor.ID, ev.Type, ev.Action, outcome
	return e
}
