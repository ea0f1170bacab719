// Package checkpoint signs and keeps the log's checkpoints: C2SP
// tlog-checkpoint signed notes (origin, size, root hash) with an Ed25519 key.
//
// Files in the data directory:
//
//	checkpoint.key    the signer key (mode 0600), created on first open
//	checkpoint.vkey   the verifier key, name+hash+base64, created on first open
//	checkpoints       every signed checkpoint, framed like log records, in order
//	checkpoint        the latest signed checkpoint alone, replaced atomically
//
// Guarantees. Add appends a checkpoint and fsyncs before it returns, so a
// returned checkpoint survives a crash. On open a torn last frame (damage
// with nothing but zeros after it) is cut, and nothing is appended after
// damage that has data after it. The caller must only sign sizes whose
// records and tree hashes are durable.
//
// Cost. A Store keeps only the latest checkpoint in memory, and Open reads
// only the end of the checkpoints log: it looks for the frame of the note in
// the latest file, which Add replaces after the frame is durable, so the
// log's last intact frame is that one or a later one. Add refuses a size
// below the latest, so the frames before it need not be read to find it.
// Only when the latest file is missing or is not in the log (a directory
// written before the file existed, a crash while the keys were made, damage)
// does Open read the whole log, still keeping only the latest. Open thus does
// not check the frames before the latest: Each, which trail verify runs,
// reads and verifies every checkpoint, and reports damage followed by more
// data, which would hide the checkpoints after it, as an error.
package checkpoint

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// File names in the data directory.
const (
	KeyFile      = "checkpoint.key"
	VerifierFile = "checkpoint.vkey"
	LogFile      = "checkpoints"
	LatestFile   = "checkpoint"
)

// Checkpoint is a verified, parsed signed checkpoint.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Signed []byte // the signed note, as stored and served
}

// Store signs checkpoints and keeps them.
type Store struct {
	fs       vfs.FS
	dir      string
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	log      vfs.File
	logSize  int64
	latest   Checkpoint
	has      bool // latest is set: the log holds a checkpoint
}

// Open opens the checkpoint store in dir, creating the key pair (named origin)
// when there is none. origin is used only on creation.
func Open(fs vfs.FS, dir, origin string) (*Store, error) {
	s := &Store{fs: fs, dir: dir}
	if err := s.loadKeys(origin); err != nil {
		return nil, err
	}
	f, err := fs.OpenReadWrite(fs.PathJoin(dir, LogFile), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("open checkpoints: %w", err)
	}
	s.log = f
	t, err := s.readTail()
	if err == nil {
		err = cutTail(f, t.end)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	s.latest, s.has, s.logSize = t.last, t.n > 0, t.end
	return s, nil
}

func (s *Store) loadKeys(origin string) error {
	keyPath := s.fs.PathJoin(s.dir, KeyFile)
	if _, err := s.fs.Stat(keyPath); err != nil {
		if err := s.createKeys(origin); err != nil {
			return err
		}
	}
	skey, err := durable.ReadFile(s.fs, keyPath)
	if err != nil {
		return fmt.Errorf("read signing key: %w", err)
	}
	vkey, err := durable.ReadFile(s.fs, s.fs.PathJoin(s.dir, VerifierFile))
	if err != nil {
		return fmt.Errorf("read verifier key: %w", err)
	}
	s.vkey = strings.TrimSpace(string(vkey))
	if s.signer, err = note.NewSigner(strings.TrimSpace(string(skey))); err != nil {
		return fmt.Errorf("signing key %s: %w", keyPath, err)
	}
	if s.verifier, err = note.NewVerifier(s.vkey); err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	if s.verifier.Name() != s.signer.Name() || s.verifier.KeyHash() != s.signer.KeyHash() {
		return errors.New("checkpoint.key and checkpoint.vkey are not a pair")
	}
	return nil
}

// createKeys makes the key pair. Order: write the verifier key and then the
// signer key, each through a synced temporary file and a rename, then fsync
// the directory. The signer key is written last, so its presence means both
// are complete; a crash before that makes the next open start over.
func (s *Store) createKeys(origin string) error {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return fmt.Errorf("generate checkpoint key for origin %q: %w", origin, err)
	}
	if err := durable.WriteFile(s.fs, s.dir, VerifierFile, []byte(vkey+"\n"), false); err != nil {
		return err
	}
	return durable.WriteFile(s.fs, s.dir, KeyFile, []byte(skey+"\n"), true)
}

// cutTail overwrites a torn last frame with zeros and syncs, so that the next
// checkpoint appended at end leaves no stale bytes after it.
func cutTail(f vfs.File, end int64) error {
	st, err := f.Stat()
	if err != nil || st.Size() <= end {
		return err
	}
	if _, err := f.WriteAt(make([]byte, st.Size()-end), end); err != nil {
		return fmt.Errorf("cut torn checkpoint: %w", err)
	}
	return f.SyncData()
}

func logCheckpoint(origin string, size uint64, root []byte) []byte {
	return log.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal()
}

// Parse verifies a signed checkpoint with v and parses it.
func Parse(signed []byte, v note.Verifier) (Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Signed: signed}, nil
}

// Latest returns the newest checkpoint, if any.
func (s *Store) Latest() (Checkpoint, bool) {
	return s.latest, s.has
}

// VerifierKey returns the verifier key (name+hash+base64).
func (s *Store) VerifierKey() string { return s.vkey }

// Origin returns the log's origin line.
func (s *Store) Origin() string { return s.signer.Name() }

// Add signs a checkpoint for a tree of the given size and root and keeps it.
// size must not be below the latest's: Open, which reads only the log's end,
// could not tell.
//
// Order: append the frame to the checkpoints log and fdatasync it (from here
// the checkpoint is durable), then replace the latest file atomically.
func (s *Store) Add(size uint64, root []byte) (Checkpoint, error) {
	if s.has && size < s.latest.Size {
		return Checkpoint{}, fmt.Errorf("checkpoint of size %d: below the latest, of size %d", size, s.latest.Size)
	}
	body := logCheckpoint(s.Origin(), size, root)
	signed, err := note.Sign(&note.Note{Text: string(body)}, s.signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	frame := segment.AppendFrame(nil, signed, false)
	if _, err := s.log.WriteAt(frame, s.logSize); err != nil {
		return Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
	}
	if err := s.log.SyncData(); err != nil {
		return Checkpoint{}, fmt.Errorf("sync checkpoints: %w", err)
	}
	s.logSize += int64(len(frame))
	c := Checkpoint{Origin: s.Origin(), Size: size, Root: root, Signed: signed}
	s.latest, s.has = c, true
	// A copy: a file system may reuse the buffer it was given to write
	// (Pebble's in-memory one scribbles over it in race builds).
	if err := durable.WriteFile(s.fs, s.dir, LatestFile, bytes.Clone(signed), false); err != nil {
		return c, err
	}
	return c, nil
}

// Close closes the checkpoint log.
func (s *Store) Close() error { return s.log.Close() }
