// Package access keeps the principals of a Trail server and their grants in
// DIR/tokens.json: a name, the SHA-256 of its bearer token (never the
// token), stream patterns it may append to and read, admin, break-glass
// and review flags, when it was created and whether it is revoked.
//
// Guarantees. The file is replaced atomically (write a temporary file,
// fsync, rename, fsync the directory), so a reader — the running server,
// which reloads it when it changes — sees the old policy or the new one,
// never a mix. The new file is readable by nobody but its owner from its
// first byte, and it keeps the previous file's owner and mode (a new one
// gets the data directory's owner and mode 0600), so that a change made as
// root stays readable by the server's user; when that cannot be done the
// change fails and the old file stays. Changes are serialised with an
// exclusive lock on DIR/tokens.lock, so two concurrent "trail token"
// commands cannot lose one another's change. A file that does not parse, or
// names a reserved principal, is an error; the server then refuses reads
// until it is repaired (see server.TokenAuth).
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

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/durable"
)

// FileName is the policy file in the data directory.
const FileName = "tokens.json"

// TokenPrefix starts every token, so secret scanners can spot leaked ones.
const TokenPrefix = "trail_"

// AdminName is the principal of DIR/admin.token; no other may take it.
const AdminName = "admin"

// ReservedPrefix starts names kept for Trail's own principals.
const ReservedPrefix = "trail"

// Principal is one named holder of a token and its grants.
type Principal struct {
	Name        string     `json:"name"`
	TokenSHA256 string     `json:"token_sha256"`
	Append      []string   `json:"append,omitempty"`
	Read        []string   `json:"read,omitempty"`
	Admin       bool       `json:"admin,omitempty"`
	BreakGlass  bool       `json:"break_glass,omitempty"`
	Review      bool       `json:"review,omitempty"`  // reads trail/break-glass and trail/review, marks emergency accesses reviewed
	Patient     string     `json:"patient,omitempty"` // a patient's own principal: reads patient/<id>… and the read records naming <id>
	Created     time.Time  `json:"created"`
	Expires     *time.Time `json:"expires,omitempty"` // the token stops working then
	Revoked     *time.Time `json:"revoked,omitempty"`
}

// Expired reports whether p's token has expired at now.
func (p *Principal) Expired(now time.Time) bool {
	return p.Expires != nil && !now.Before(*p.Expires)
}

// Policy is the content of the file.
type Policy struct {
	Principals []Principal `json:"principals"`
}

// Errors callers branch on.
var (
	ErrExists   = errors.New("a principal with this name exists")
	ErrNotFound = errors.New("no such principal")
	// ErrUnwritten: the new tokens file could not be written; the old one
	// is in force.
	ErrUnwritten = errors.New("tokens file not written")
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
		if err := CheckName(pr.Name); err != nil {
			return Policy{}, fmt.Errorf("%s: %w", FileName, err)
		}
		if seen[pr.Name] {
			return Policy{}, fmt.Errorf("%s: principal %q appears twice", FileName, pr.Name)
		}
		seen[pr.Name] = true
		if h, err := hex.DecodeString(pr.TokenSHA256); err != nil || len(h) != sha256.Size {
			return Policy{}, fmt.Errorf("%s: principal %q: token_sha256 is not a SHA-256 in hex", FileName, pr.Name)
		}
		if pr.Patient != "" {
			if err := CheckPatientPrincipal(pr); err != nil {
				return Policy{}, fmt.Errorf("%s: principal %q: %w", FileName, pr.Name, err)
			}
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
// "admin", not starting with "trail" and not with "patient:" (in any case),
// names reserved for the admin token, Trail's own principals and patients
// signed in through OpenID Connect, so that no read record or certificate
// can pass for theirs.
func CheckName(name string) error {
	if err := checkNameBytes(name); err != nil {
		return err
	}
	if strings.EqualFold(name, AdminName) {
		return fmt.Errorf("principal name %q is reserved for the admin token (DIR/admin.token); choose another", name)
	}
	if len(name) >= len(ReservedPrefix) && strings.EqualFold(name[:len(ReservedPrefix)], ReservedPrefix) {
		return fmt.Errorf("principal name %q: names starting with %q are reserved for Trail; choose another", name, ReservedPrefix)
	}
	if len(name) >= len(PatientPrefix) && strings.EqualFold(name[:len(PatientPrefix)], PatientPrefix) {
		return fmt.Errorf("principal name %q: names starting with %q are reserved for patients signed in through OpenID Connect; choose another", name, PatientPrefix)
	}
	return nil
}

// PatientPrefix starts the name of a patient's own principal signed in
// through OpenID Connect ("patient:<id>"); no principal of the tokens file
// may take such a name, so that none shares a patient's read records.
const PatientPrefix = "patient:"

// PatientName returns the name of patient id's own principal signed in
// through OpenID Connect, or why there can be none.
func PatientName(id string) (string, error) {
	if err := CheckPatient(id); err != nil {
		return "", err
	}
	name := PatientPrefix + id
	return name, checkNameBytes(name)
}

func checkNameBytes(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("principal name %q must be 1-128 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return fmt.Errorf("principal name %q: byte %q is not one of A-Z a-z 0-9 . _ : @ -", name, c)
		}
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

// CheckPatient checks the patient id of a patient's own principal: one
// segment of a stream name, so that patient/<id> is a stream.
func CheckPatient(id string) error {
	if id == "" || strings.Contains(id, "/") || trail.ValidateStream("patient/"+id) != nil {
		return fmt.Errorf("patient %q: want one segment of a stream name (letters, digits and . _ : -), as in patient/<id>", id)
	}
	return nil
}

// CheckPatientPrincipal checks a patient's own principal: a valid patient
// id and no other grant, so that it reads its own record and nothing else.
func CheckPatientPrincipal(p Principal) error {
	if err := CheckPatient(p.Patient); err != nil {
		return err
	}
	var extra []string
	if len(p.Append) > 0 {
		extra = append(extra, "append")
	}
	if len(p.Read) > 0 {
		extra = append(extra, "read")
	}
	if p.Admin {
		extra = append(extra, "admin")
	}
	if p.BreakGlass {
		extra = append(extra, "break-glass")
	}
	if p.Review {
		extra = append(extra, "review")
	}
	if len(extra) > 0 {
		return fmt.Errorf("a patient's own principal (patient %q) reads its own record and nothing else: it may not also have %s", p.Patient, strings.Join(extra, ", "))
	}
	return nil
}

// LockFile serialises changes to the tokens file.
const LockFile = "tokens.lock"

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
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	perm, owner, err := keep(dir)
	if err != nil {
		return err
	}
	if err := durable.WritePrivate(dir, FileName, append(b, '\n'), perm, &owner); err != nil {
		return fmt.Errorf("%w: %w; %s is unchanged: run trail token as the user who owns it (uid %d) or as root", ErrUnwritten, err,
			filepath.Join(dir, FileName), owner.UID)
	}
	return nil
}

// keep returns the mode and owner the new tokens file takes: the previous
// file's, or for a first file mode 0600 and the data directory's owner (the
// user the server runs as).
func keep(dir string) (os.FileMode, durable.Owner, error) {
	perm := os.FileMode(0o600)
	st, err := os.Stat(filepath.Join(dir, FileName))
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
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDONLY|syscall.O_CLOEXEC, 0o600)
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
func Create(dir string, pr Principal, now time.Time) (string, error) {
	if err := CheckName(pr.Name); err != nil {
		return "", err
	}
	for _, pat := range append(append([]string(nil), pr.Append...), pr.Read...) {
		if err := CheckPattern(pat); err != nil {
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
