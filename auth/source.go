package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
)

// PolicySource is where TokenAuth reads the policy from: the tokens file of
// a data directory (FileSource) or, with trail serve --store, the database
// the processes share (package internal/store/postgres).
type PolicySource interface {
	// Version identifies the policy in force at the source now, cheaply:
	// it changes whenever the policy may have changed.
	Version(ctx context.Context) (string, error)
	// Load reads the policy in force and checks it (as Parse does), and
	// returns it with its version.
	Load(ctx context.Context) (Policy, string, error)
	// String names the source in logs: a file's path, a database.
	String() string
}

// Updater changes a policy where it is kept: it applies fn to the policy in
// force and keeps the result as the new policy, or keeps nothing when fn (or
// the check of its result) fails. Two updates never lose each other's
// change.
type Updater func(fn func(p *Policy) error) error

// FileUpdater changes the tokens file of dir (see Update).
func FileUpdater(dir string) Updater {
	return func(fn func(p *Policy) error) error { return Update(dir, fn) }
}

// Marshal encodes a policy as the tokens file holds it: indented JSON and a
// newline. A policy kept in a database is these bytes too.
func Marshal(p Policy) ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// FileSource is the tokens file of a data directory: DIR/tokens.json, a
// missing file being an empty policy. Its version tells a replaced file
// (inode, size, modification time).
func FileSource(dir string) PolicySource { return fileSource{dir: dir} }

type fileSource struct{ dir string }

func (s fileSource) String() string { return filepath.Join(s.dir, TokensFile) }

func (s fileSource) Version(context.Context) (string, error) {
	id, err := statFile(s.dir)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

func (s fileSource) Load(ctx context.Context) (Policy, string, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return Policy{}, "", err
	}
	p, err := Load(s.dir)
	return p, v, err
}

func (id fileID) String() string {
	return fmt.Sprintf("%d/%d/%d", id.ino, id.size, id.mtime.UnixNano())
}
