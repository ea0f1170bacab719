// Package verify checks a Trail log offline, trusting nothing but the
// checkpoint verifier key and, if given, a checkpoint verified earlier.
//
// The checks are in two parts. A Checker holds the sequential ones and knows
// nothing of storage: fed the records in index order, it checks each
// record's index, every stream's gap-free stream_seq and prev chain, the
// Merkle tree recomputed from the leaves against every signed checkpoint
// and the trusted one, and that no checkpoint covers more than the log
// holds. Dir feeds a Checker from a data directory's segment files, which
// it reads in chunks of 2 MiB and checks record by record (frame CRC,
// layout, leaf hash) on every core, a few chunks ahead of the Checker, which
// takes them in log order: the first bad record in the log is the one
// reported, whichever core found it first. Memory is bounded by the chunks
// in flight, not by the size of a segment.
//
// This package does not import the engine (package trail), which names its
// types for its own API: trail.Verify is Dir.
package verify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/checkpoint"
)

// Error names the first record (or checkpoint) that fails verification and
// why. Its presence means tampering or corruption.
type Error struct {
	Index  uint64 // the first bad index
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("index %d: %s", e.Index, e.Reason)
}

// ErrNotDataDir: the directory is not a Trail data directory.
var ErrNotDataDir = errors.New("not a Trail data directory")

// Report summarises a successful verification.
type Report struct {
	Events      uint64 // records verified
	Streams     int    // distinct streams
	Checkpoints int    // signed checkpoints verified
	TornTail    string // non-empty when the log ends in a torn write past the last checkpoint
	// Latest is the latest signed checkpoint, verified against the log (zero
	// when there is none): what a caller saves to pass as Trusted next time.
	Latest Checkpoint
}

// Options tune Dir.
type Options struct {
	FS vfs.FS // default: the OS
	// Progress, if set, is called now and then with bytes done and total.
	Progress func(done, total int64)
	// CheckJSON also parses every record as JSON. It costs more than all the
	// other checks together and finds only what Trail itself could write
	// wrong: tampering is caught by the hashes without it.
	CheckJSON bool
	// VerifierKey, when set, is the only key the checkpoints may be signed
	// with: a signed-note verifier key (name+hash+base64, as in
	// checkpoint.vkey) kept apart from the data directory. Empty trusts the
	// directory's own checkpoint.vkey, which cannot detect a history rebuilt
	// and re-signed under a new key.
	VerifierKey string
	// Trusted, when set, is a checkpoint verified earlier (see
	// ParseCheckpoint and Report.Latest): the log must hold at least its
	// size and have its root at that size, so that a history rolled back or
	// rewritten since, and signed again, is found.
	Trusted *Checkpoint
}

// Checkpoint is a signed checkpoint: a commitment to the first Size events.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   event.Hash
	Signed []byte // the signed note (C2SP tlog-checkpoint)
}

// ParseCheckpoint verifies a signed checkpoint (a C2SP tlog-checkpoint
// signed note, as GET /v1/checkpoint serves it) with a verifier key
// (name+hash+base64) and parses it.
func ParseCheckpoint(signed []byte, verifierKey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	c, err := checkpoint.Parse(signed, v)
	if err != nil {
		return Checkpoint{}, err
	}
	return CheckpointOf(c), nil
}

// CheckpointOf is the checkpoint store's (package internal/checkpoint)
// verified checkpoint c as a Checkpoint.
func CheckpointOf(c checkpoint.Checkpoint) Checkpoint {
	cp := Checkpoint{Origin: c.Origin, Size: c.Size, Signed: c.Signed}
	copy(cp.Root[:], c.Root)
	return cp
}
