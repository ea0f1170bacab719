package trail

import (
	"errors"
	"fmt"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/store"
)

// Errors the engine returns; compare with errors.Is.
var (
	// ErrBufferFull: the queue of events not yet stored is full. Retry later,
	// or use Enqueue or Append to wait for room.
	ErrBufferFull = errors.New("trail: queue full; retry later or wait for room")
	// ErrClosed: the engine is closed or closing.
	ErrClosed = errors.New("trail: closed")
	// ErrFailed: the engine stopped acknowledging after a write or fsync
	// failure; see the wrapped cause. Restart to recover.
	ErrFailed = errors.New("trail: stopped after a storage failure; restart to recover")
	// ErrIDConflict: an event with this id is stored with different content.
	ErrIDConflict = errors.New("trail: id already used by a different event")
	// ErrTooLarge: the event is over 64 KiB as sent.
	ErrTooLarge = event.ErrTooLarge
	// ErrUnavailable: the store (a database) cannot be reached now; the
	// event was not stored, or may have been: retry with the same id.
	ErrUnavailable = store.ErrUnavailable
	// ErrNotFound: no such event or stream.
	ErrNotFound = errors.New("trail: not found")
	// ErrOutOfRange: a proof or size outside the tree.
	ErrOutOfRange = store.ErrOutOfRange
	// ErrIntegrity: a stored record does not match the Merkle tree's leaf at
	// its index (see IntegrityError).
	ErrIntegrity = store.ErrIntegrity
)

// BatchError says which event of an atomic batch was refused; nothing of the
// batch was stored.
type BatchError struct {
	Index int // position in the batch, from 0
	Err   error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("batch event %d: %v (nothing of the batch was stored)", e.Index, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// FailedError wraps the storage error that stopped the engine. It matches
// ErrFailed with errors.Is.
type FailedError struct{ Cause error }

func (e *FailedError) Error() string {
	return fmt.Sprintf("trail: stopped after a storage failure (restart to recover): %v", e.Cause)
}

func (e *FailedError) Unwrap() []error { return []error{ErrFailed, e.Cause} }

// IntegrityError names a stored record whose bytes do not match the Merkle
// tree's leaf at its index, or cannot be read at all (store.IntegrityError).
// It matches ErrIntegrity with errors.Is.
type IntegrityError = store.IntegrityError
