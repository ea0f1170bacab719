package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/access"
	"github.com/trailhq/trail/internal/durable"
)

// TokenPrefix starts every token, so secret scanners can spot leaked ones.
const TokenPrefix = access.TokenPrefix

// AdminTokenFile is the admin token's file in the data directory.
const AdminTokenFile = "admin.token"

// Principal is an authenticated caller and what it may do.
type Principal struct {
	Name       string
	Admin      bool // every grant, trail/… streams included
	BreakGlass bool // may read beyond its grants with purpose=emergency and a reason
	Review     bool // reads trail/break-glass and trail/review, and marks emergency accesses reviewed
	// Patient makes p a patient's own principal: it reads the streams
	// patient/<Patient> and patient/<Patient>/…, and in trail/access the
	// read records naming patient <Patient>, never other ones.
	Patient string
	Append  []string // stream patterns it may append to
	Read    []string // stream patterns it may read
}

// LogValue keeps log lines to the principal's name.
func (p *Principal) LogValue() slog.Value { return slog.StringValue(p.Name) }

// CanAppend reports whether p may append to stream.
func (p *Principal) CanAppend(stream string) bool { return p.Admin || matchAny(p.Append, stream) }

// CanRead reports whether p may read stream.
func (p *Principal) CanRead(stream string) bool { return p.Admin || matchAny(p.readPatterns(), stream) }

// CanReview reports whether p may mark emergency accesses reviewed (the
// review grant; admin implies it).
func (p *Principal) CanReview() bool { return p.Admin || p.Review }

// reviewStreams are the streams the review grant opens, and only those.
var reviewStreams = []string{BreakGlassStream, ReviewStream}

// readPatterns are the stream patterns p reads: its read grants, and the
// review grant's streams.
func (p *Principal) readPatterns() []string {
	if !p.Review && p.Patient == "" {
		return p.Read
	}
	pats := slices.Clip(p.Read)
	if p.Review {
		pats = append(pats, reviewStreams...)
	}
	if p.Patient != "" {
		pats = append(pats, "patient/"+p.Patient, "patient/"+p.Patient+"/*")
	}
	return pats
}

// matchAny reports whether stream matches a grant pattern (trail.MatchStream).
func matchAny(patterns []string, stream string) bool { return trail.MatchStream(patterns, stream) }

// Authenticator finds the principal making a request. It returns
// ErrUnauthenticated (possibly wrapped) when the request carries no valid
// credentials.
type Authenticator interface {
	Authenticate(r *http.Request) (*Principal, error)
}

// ErrUnauthenticated: no token, or one that is unknown or revoked.
var ErrUnauthenticated = errors.New("missing, unknown or revoked token")

// Token is a bearer token. It never appears in logs.
type Token string

// LogValue redacts the token.
func (Token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// NewToken returns a new random token: the prefix and 32 random bytes,
// URL-safe.
func NewToken() Token { return Token(access.NewToken()) }

// HashToken returns the SHA-256 of a token: all that is kept of it.
func HashToken(t Token) [32]byte { return access.Hash(string(t)) }

// bearer extracts the token of an Authorization: Bearer header.
func bearer(r *http.Request) (Token, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return Token(tok), tok != ""
}

// adminAuth admits the holder of the admin token.
type adminAuth struct{ hash [32]byte }

// AdminOnly returns an Authenticator that admits the holder of tok as the
// principal "admin" with every grant.
func AdminOnly(tok Token) Authenticator { return adminAuth{hash: HashToken(tok)} }

func (a adminAuth) Authenticate(r *http.Request) (*Principal, error) {
	tok, ok := bearer(r)
	if !ok {
		return nil, ErrUnauthenticated
	}
	h := HashToken(tok)
	if subtle.ConstantTimeCompare(h[:], a.hash[:]) != 1 {
		return nil, ErrUnauthenticated
	}
	return &Principal{Name: "admin", Admin: true}, nil
}

// EnsureAdminToken returns the admin token kept in DIR/admin.token, creating
// the file (mode 0600 from its first byte, written atomically and fsynced)
// when it is missing.
// created reports whether it was made now.
func EnsureAdminToken(dir string) (tok Token, created bool, err error) {
	path := filepath.Join(dir, AdminTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if !strings.HasPrefix(t, TokenPrefix) {
			return "", false, fmt.Errorf("%s does not hold a Trail token (want %s…); remove it to have a new one made", path, TokenPrefix)
		}
		return Token(t), false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	if err := durable.MkdirAll(vfs.Default, dir); err != nil {
		return "", false, err
	}
	tok = NewToken()
	if err := durable.WriteFile(vfs.Default, dir, AdminTokenFile, []byte(string(tok)+"\n"), true); err != nil {
		return "", false, fmt.Errorf("write admin token: %w", err)
	}
	return tok, true, nil
}
