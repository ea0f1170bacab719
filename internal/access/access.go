// Package access keeps the principals of a Trail server and their grants in
// DIR/tokens.json: a name, the SHA-256 of its bearer token (never the
// token), stream patterns it may append to and read, admin and break-glass
// flags, when it was created and whether it is revoked.
//
// Guarantees. The file is replaced atomically (write a temporary file,
// fsync, rename, fsync the directory), so a reader — the running server,
// which reloads it when it changes — sees the old policy or the new one,
// never a mix. Changes are serialised with an exclusive lock on
// DIR/tokens.lock, so two concurrent "trail token" commands cannot lose one
// another's change. A file that does not parse is an error; the server then
// keeps the policy it had.
package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/durable"
)

// FileName is the policy file in the data directory.
const FileName = "tokens.json"

// TokenPrefix starts every token, so secret scanners can spot leaked ones.
const TokenPrefix = "trail_"

// AdminName is the principal of DIR/admin.token; no other may take it.
const AdminName = "admin"

// Principal is one named holder of a token and its grants.
type Principal struct {
	Name        string     `json:"name"`
	TokenSHA256 string     `json:"token_sha256"`
	Append      []string   `json:"append,omitempty"`
	Read        []string   `json:"read,omitempty"`
	Admin       bool       `json:"admin,omitempty"`
	BreakGlass  bool       `json:"break_glass,omitempty"`
	Created     time.Time  `json:"created"`
	Revoked     *time.Time `json:"revoked,omitempty"`
}

// Policy is the content of the file.
type Policy struct {
	Principals []Principal `json:"principals"`
}

// Errors callers branch on.
var (
	ErrExists   = errors.New("a principal with this name exists")
	ErrNotFound = errors.New("no such principal")
)

// NewToken returns a new random token: the prefix and 32 random bytes,
// URL-safe base64.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:])
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash returns the SHA-256 of a token, all that is kept of it.
func Hash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// Load reads the policy of dir; a missing file is an empty policy.
func Load(dir string) (Policy, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
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
		return Policy{}, fmt.Errorf("%s: %w", FileName, err)
	}
	seen := map[string]bool{}
	for _, pr := range p.Principals {
		if err := CheckName(pr.Name); err != nil && pr.Name != AdminName {
			return Policy{}, fmt.Errorf("%s: %w", FileName, err)
		}
		if seen[pr.Name] {
			return Policy{}, fmt.Errorf("%s: principal %q appears twice", FileName, pr.Name)
		}
		seen[pr.Name] = true
		if h, err := hex.DecodeString(pr.TokenSHA256); err != nil || len(h) != sha256.Size {
			return Policy{}, fmt.Errorf("%s: principal %q: token_sha256 is not a SHA-256 in hex", FileName, pr.Name)
		}
		for _, pat := range append(append([]string(nil), pr.Append...), pr.Read...) {
			if err := CheckPattern(pat); err != nil {
				return Policy{}, fmt.Errorf("%s: principal %q: %w", FileName, pr.Name, err)
			}
		}
	}
	return p, nil
}

// CheckName checks a principal name: 1-128 bytes of [A-Za-z0-9._:@-], not
// "admin".
func CheckName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("principal name %q must be 1-128 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return fmt.Errorf("principal name %q: byte %q is not one of A-Z a-z 0-9 . _ : @ -", name, c)
		}
	}
	if name == AdminName {
		return fmt.Errorf("principal name %q is the admin token's", name)
	}
	return nil
}

// CheckPattern checks a stream pattern: an exact stream, or a stream prefix
// followed by "/*" (everything below it).
func CheckPattern(p string) error {
	base, _ := strings.CutSuffix(p, "/*")
	if err := trail.ValidateStream(base); err != nil {
		return fmt.Errorf("stream pattern %q: want an exact stream such as patient/123 or a prefix such as patient/*", p)
	}
	return nil
}

// Update changes the policy of dir under the lock and replaces the file
// atomically. fn changes p in place.
func Update(dir string, fn func(p *Policy) error) error {
	if err := durable.MkdirAll(vfs.Default, dir); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "tokens.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	p, err := Load(dir)
	if err != nil {
		return err
	}
	if err := fn(&p); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(vfs.Default, dir, FileName, append(b, '\n'), true)
}

// Create adds a principal with a new token and returns the token: the only
// time it is seen.
func Create(dir string, pr Principal, now time.Time) (string, error) {
	if err := CheckName(pr.Name); err != nil {
		return "", err
	}
	for _, pat := range append(append([]string(nil), pr.Append...), pr.Read...) {
		if err := CheckPattern(pat); err != nil {
			return "", err
		}
	}
	tok := NewToken()
	h := Hash(tok)
	pr.TokenSHA256 = hex.EncodeToString(h[:])
	pr.Created = now.UTC()
	pr.Revoked = nil
	err := Update(dir, func(p *Policy) error {
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
	return tok, nil
}

// Revoke marks a principal revoked; its token and certificate stop working.
func Revoke(dir, name string, now time.Time) error {
	return Update(dir, func(p *Policy) error {
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
