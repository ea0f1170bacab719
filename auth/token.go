package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/durable"
)

// TokenPrefix starts every token, so secret scanners can spot leaked ones.
const TokenPrefix = "trail_"

// AdminTokenFile is the admin token's file in the data directory.
const AdminTokenFile = "admin.token"

// Token is a bearer token. It never appears in logs.
type Token string

// LogValue redacts the token.
func (Token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// NewToken returns a new random token: the prefix and 32 random bytes,
// URL-safe base64.
func NewToken() Token {
	var b [32]byte
	rand.Read(b[:])
	return Token(TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]))
}

// HashToken returns the SHA-256 of a token: all that is kept of it.
func HashToken(t Token) [32]byte { return sha256.Sum256([]byte(t)) }

// Bearer extracts the token of an Authorization: Bearer header.
func Bearer(r *http.Request) (Token, bool) {
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
	tok, ok := Bearer(r)
	if !ok {
		return nil, ErrUnauthenticated
	}
	return a.AuthenticateTokenHash(HashToken(tok))
}

func (a adminAuth) AuthenticateTokenHash(h [32]byte) (*Principal, error) {
	if subtle.ConstantTimeCompare(h[:], a.hash[:]) != 1 {
		return nil, ErrUnauthenticated
	}
	return &Principal{Name: AdminName, Admin: true}, nil
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
