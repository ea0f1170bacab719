package auth

// The tokens file: DIR/tokens.json holds the principals of a data directory
// (see the package comment for its guarantees).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/trailhq/trail/internal/durable"
)

// TokensFile is the tokens file in the data directory.
const TokensFile = "tokens.json"

// Entry is one principal of the tokens file: its name and grants (those of
// Principal, field for field), the SHA-256 of its token, when it was made
// and when it expires or was revoked. Its JSON field names are the file's
// format: they do not change.
type Entry struct {
	Name        string     `json:"name"`
	TokenSHA256 string     `json:"token_sha256"`
	Append      []string   `json:"append,omitempty"`
	Read        []string   `json:"read,omitempty"`
	Admin       bool       `json:"admin,omitempty"`
	BreakGlass  bool       `json:"break_glass,omitempty"`
	Review      bool       `json:"review,omitempty"`  // reads trail/break-glass and trail/review, marks emergency accesses reviewed
	Patient     string     `json:"patient,omitempty"` // a patient's own principal: reads patient/<id>… and the read records naming <id>
	Role        string     `json:"role,omitempty"`    // its role (e.g. physician), copied into its read records' actor.role
	Created     time.Time  `json:"created"`
	Expires     *time.Time `json:"expires,omitempty"` // the token stops working then
	Revoked     *time.Time `json:"revoked,omitempty"`
}

// Principal returns the principal e authenticates as: its name and grants.
func (e *Entry) Principal() *Principal {
	return &Principal{Name: e.Name, Admin: e.Admin, BreakGlass: e.BreakGlass, Review: e.Review, Patient: e.Patient, Append: e.Append, Read: e.Read,
		Role: e.Role}
}

// Expired reports whether e's token has expired at now.
func (e *Entry) Expired(now time.Time) bool {
	return e.Expires != nil && !now.Before(*e.Expires)
}

// Policy is the content of the tokens file.
type Policy struct {
	Principals []Entry `json:"principals"`
}

// Errors callers branch on.
var (
	ErrExists   = errors.New("a principal with this name exists")
	ErrNotFound = errors.New("no such principal")
	// ErrUnwritten: the new tokens file could not be written; the old one
	// is in force.
	ErrUnwritten = errors.New("tokens file not written")
)

// Load reads the policy of dir; a missing file is an empty policy.
func Load(dir string) (Policy, error) {
	b, err := os.ReadFile(filepath.Join(dir, TokensFile))
	if errors.Is(err, os.ErrNotExist) {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, err
	}
	return Parse(b)
}

// Parse decodes and checks a policy file.
func Parse(b []byte) (Policy, error) {
	var p Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return Policy{}, fmt.Errorf("%s: %w", TokensFile, err)
	}
	seen := map[string]bool{}
	for _, pr := range p.Principals {
		if err := CheckName(pr.Name); err != nil {
			return Policy{}, fmt.Errorf("%s: %w", TokensFile, err)
		}
		if seen[pr.Name] {
			return Policy{}, fmt.Errorf("%s: principal %q appears twice", TokensFile, pr.Name)
		}
		seen[pr.Name] = true
		if h, err := hex.DecodeString(pr.TokenSHA256); err != nil || len(h) != sha256.Size {
			return Policy{}, fmt.Errorf("%s: principal %q: token_sha256 is not a SHA-256 in hex", TokensFile, pr.Name)
		}
		if pr.Patient != "" {
			if err := CheckPatientPrincipal(pr.Principal()); err != nil {
				return Policy{}, fmt.Errorf("%s: principal %q: %w", TokensFile, pr.Name, err)
			}
		}
		for _, pat := range append(append([]string(nil), pr.Append...), pr.Read...) {
			if err := CheckPattern(pat); err != nil {
				return Policy{}, fmt.Errorf("%s: principal %q: %w", TokensFile, pr.Name, err)
			}
		}
		if pr.Role != "" {
			if err := CheckRole(pr.Role); err != nil {
				return Policy{}, fmt.Errorf("%s: principal %q: %w", TokensFile, pr.Name, err)
			}
		}
	}
	return p, nil
}

// TokensLock serialises changes to the tokens file.
const TokensLock = "tokens.lock"

// Update changes the policy of dir under the lock and replaces the file
// atomically. fn changes p in place. dir must exist: a data directory is
// made by "trail serve", never here.
func Update(dir string, fn func(p *Policy) error) error {
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := Load(dir)
	if err != nil {
		return err
	}
	if err := fn(&p); err != nil {
		return err
	}
	b, err := Marshal(p)
	if err != nil {
		return err
	}
	perm, owner, err := keep(dir)
	if err != nil {
		return err
	}
	if err := durable.WritePrivate(dir, TokensFile, b, perm, &owner); err != nil {
		return fmt.Errorf("%w: %w; %s is unchanged: run trail token as the user who owns it (uid %d) or as root", ErrUnwritten, err,
			filepath.Join(dir, TokensFile), owner.UID)
	}
	return nil
}

// keep returns the mode and owner the new tokens file takes: the previous
// file's, or for a first file mode 0600 and the data directory's owner (the
// user the server runs as).
func keep(dir string) (os.FileMode, durable.Owner, error) {
	perm := os.FileMode(0o600)
	st, err := os.Stat(filepath.Join(dir, TokensFile))
	if errors.Is(err, os.ErrNotExist) {
		st, err = os.Stat(dir)
	} else if err == nil {
		perm = st.Mode().Perm()
	}
	if err != nil {
		return 0, durable.Owner{}, err
	}
	owner, ok := durable.OwnerOf(st)
	if !ok {
		owner = durable.Owner{UID: os.Geteuid(), GID: os.Getegid()}
	}
	return perm, owner, nil
}

// lock takes the exclusive lock on DIR/tokens.lock. A lock file root
// creates is given to the data directory's owner, so that the server's user
// can take it later.
func lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, TokensLock), os.O_CREATE|os.O_RDONLY|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open tokens lock: %w", err)
	}
	if os.Geteuid() == 0 {
		if st, err := os.Stat(dir); err == nil {
			if o, ok := durable.OwnerOf(st); ok {
				f.Chown(o.UID, o.GID) // best effort: root can always take the lock
			}
		}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// Create adds a principal with a new token and returns the token: the only
// time it is seen. pr.Expires, when set, must be after now.
func Create(dir string, pr Entry, now time.Time) (string, error) {
	return CreateIn(FileUpdater(dir), pr, now)
}

// CreateIn is Create on the policy update changes.
func CreateIn(update Updater, pr Entry, now time.Time) (string, error) {
	if err := CheckName(pr.Name); err != nil {
		return "", err
	}
	for _, pat := range append(append([]string(nil), pr.Append...), pr.Read...) {
		if err := CheckPattern(pat); err != nil {
			return "", err
		}
	}
	if pr.Role != "" {
		if err := CheckRole(pr.Role); err != nil {
			return "", err
		}
	}
	if pr.Expires != nil {
		if !pr.Expires.After(now) {
			return "", fmt.Errorf("principal %q: expiry %s is not in the future", pr.Name, pr.Expires.Format(time.RFC3339))
		}
		t := pr.Expires.UTC()
		pr.Expires = &t
	}
	tok := NewToken()
	h := HashToken(tok)
	pr.TokenSHA256 = hex.EncodeToString(h[:])
	pr.Created = now.UTC()
	pr.Revoked = nil
	err := update(func(p *Policy) error {
		for _, q := range p.Principals {
			if q.Name == pr.Name {
				return fmt.Errorf("%q: %w (revoke does not free a name; choose another)", pr.Name, ErrExists)
			}
		}
		p.Principals = append(p.Principals, pr)
		return nil
	})
	if err != nil {
		return "", err
	}
	return string(tok), nil
}

// Revoke marks a principal revoked; its token and certificate stop working.
func Revoke(dir, name string, now time.Time) error {
	return RevokeIn(FileUpdater(dir), name, now)
}

// RevokeIn is Revoke on the policy update changes.
func RevokeIn(update Updater, name string, now time.Time) error {
	return update(func(p *Policy) error {
		for i := range p.Principals {
			if p.Principals[i].Name == name {
				if p.Principals[i].Revoked == nil {
					t := now.UTC()
					p.Principals[i].Revoked = &t
				}
				return nil
			}
		}
		return fmt.Errorf("%q: %w", name, ErrNotFound)
	})
}
