package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/verify"
)

// ErrInvalid: a directory is not a whole backup that verifies. Errors that
// match it say which file or record is wrong; a *verify.Error among them
// names the first bad index.
var ErrInvalid = errors.New("not a whole, valid Trail backup")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// CheckOptions tune Check.
type CheckOptions struct {
	// VerifierKey, when set, is the only key the backup's checkpoints may be
	// signed with; empty trusts the backup's own checkpoint.vkey, which
	// cannot detect a history re-signed under a new key.
	VerifierKey string
}

// Check checks the backup in dir: its manifest is there (it is written
// last), every file it lists is there with its size and SHA-256 and no
// other, a signing key present pairs with the verifier key, every record
// verifies against the tree and every signed checkpoint (verify.Dir), and
// the log holds exactly the records the manifest's checkpoint covers, which
// is the latest. Errors about the backup match ErrInvalid.
func Check(ctx context.Context, dir string, opts CheckOptions) (*Manifest, verify.Report, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, verify.Report{}, err
	}
	return checkContents(ctx, dir, m, opts)
}

// checkContents is Check of the files in dir against the manifest m.
func checkContents(ctx context.Context, dir string, m *Manifest, opts CheckOptions) (*Manifest, verify.Report, error) {
	if err := checkFiles(dir, m); err != nil {
		return nil, verify.Report{}, err
	}
	if m.Has(checkpoint.KeyFile) {
		if err := checkKeyPair(dir); err != nil {
			return nil, verify.Report{}, err
		}
	}
	rep, err := verify.Dir(ctx, dir, verify.Options{VerifierKey: opts.VerifierKey})
	var ve *verify.Error
	switch {
	case errors.As(err, &ve) || errors.Is(err, verify.ErrNotDataDir) || errors.Is(err, datadir.ErrFormat):
		return nil, rep, fmt.Errorf("%w: %w", ErrInvalid, err)
	case err != nil:
		return nil, rep, err
	case rep.TornTail != "":
		return nil, rep, invalidf("%s", rep.TornTail)
	case rep.Events != m.Size:
		return nil, rep, invalidf("the log holds %d records, the backup's checkpoint covers %d", rep.Events, m.Size)
	case string(rep.Latest.Signed) != m.Checkpoint:
		return nil, rep, invalidf("the latest signed checkpoint (size %d) is not the one the manifest names", rep.Latest.Size)
	}
	latest, err := os.ReadFile(filepath.Join(dir, checkpoint.LatestFile))
	if err != nil || string(latest) != m.Checkpoint {
		return nil, rep, invalidf("%s is not the backup's checkpoint", checkpoint.LatestFile)
	}
	return m, rep, nil
}

// readManifest reads and parses dir's manifest.
func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, serr
		}
		return nil, invalidf("%s has no %s manifest: the backup was interrupted before it was whole, or this is not a Trail backup", dir, ManifestFile)
	}
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return m, nil
}

// checkFiles checks that dir holds the files m lists, with their sizes and
// SHA-256, and nothing else.
func checkFiles(dir string, m *Manifest) error {
	listed := map[string]bool{ManifestFile: true, datadir.LogDir: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		if err := checkFile(filepath.Join(dir, filepath.FromSlash(f.Name)), f); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !listed[filepath.ToSlash(rel)] {
			return invalidf("%s is not in the manifest", rel)
		}
		return nil
	})
}

// checkFile checks one file's size and SHA-256.
func checkFile(p string, f File) error {
	st, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return invalidf("%s is missing", f.Name)
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Size() != f.Size {
		return invalidf("%s has %d bytes, the manifest says %d", f.Name, st.Size(), f.Size)
	}
	sum, err := fileSHA256(p)
	if err != nil {
		return err
	}
	if sum != f.SHA256 {
		return invalidf("%s differs from the file the backup wrote (SHA-256 %s, the manifest says %s)", f.Name, sum, f.SHA256)
	}
	return nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkKeyPair checks that dir's signing key is the one of its verifier
// key.
func checkKeyPair(dir string) error {
	skey, err := os.ReadFile(filepath.Join(dir, checkpoint.KeyFile))
	if err != nil {
		return err
	}
	vkey, err := os.ReadFile(filepath.Join(dir, checkpoint.VerifierFile))
	if err != nil {
		return err
	}
	return pairs(skey, vkey)
}

// pairs reports whether the signing key skey and the verifier key vkey
// are one key pair.
func pairs(skey, vkey []byte) error {
	s, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return invalidf("the signing key is not a signed-note key: %v", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return invalidf("the verifier key is not a signed-note key: %v", err)
	}
	if s.Name() != v.Name() || s.KeyHash() != v.KeyHash() {
		return invalidf("the signing key (%s) is not the log's: its checkpoints are verified with %s", s.Name(), strings.TrimSpace(string(vkey)))
	}
	// The name and hash could be forged; a signature settles it.
	msg, err := note.Sign(&note.Note{Text: "trail backup key check\n"}, s)
	if err == nil {
		_, err = note.Open(msg, note.VerifierList(v))
	}
	if err != nil {
		return invalidf("the signing key does not sign for the verifier key %s", strings.TrimSpace(string(vkey)))
	}
	return nil
}
