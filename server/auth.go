package server

import (
	"log/slog"

	"github.com/trailhq/trail/auth"
)

// Authentication, principals and their grants, tokens, the tokens file and
// the failed-attempt limiter live in package auth. The names below are the
// auth package's types, functions and constants, kept here so that callers
// of package server go on compiling; new code may use package auth directly.

// Principal is an authenticated caller and what it may do (auth.Principal).
type Principal = auth.Principal

// Authenticator finds the principal making a request (auth.Authenticator).
type Authenticator = auth.Authenticator

// Token is a bearer token; it never appears in logs (auth.Token).
type Token = auth.Token

// TokenAuth authenticates with the admin token, DIR/tokens.json and client
// certificates (auth.TokenAuth).
type TokenAuth = auth.TokenAuth

// Proxies are the reverse proxies trusted to say who their client is
// (auth.Proxies).
type Proxies = auth.Proxies

// Rate is a sustained rate a second with a burst (auth.Rate).
type Rate = auth.Rate

// ErrUnauthenticated: no token, or one that is unknown or revoked
// (auth.ErrUnauthenticated).
var ErrUnauthenticated = auth.ErrUnauthenticated

const (
	// TokenPrefix starts every token (auth.TokenPrefix).
	TokenPrefix = auth.TokenPrefix
	// AdminTokenFile is the admin token's file in the data directory
	// (auth.AdminTokenFile).
	AdminTokenFile = auth.AdminTokenFile
	// PolicyReload is how often TokenAuth looks for a changed tokens file
	// (auth.PolicyReload).
	PolicyReload = auth.PolicyReload
)

// NewToken returns a new random token (auth.NewToken).
func NewToken() Token { return auth.NewToken() }

// HashToken returns the SHA-256 of a token (auth.HashToken).
func HashToken(t Token) [32]byte { return auth.HashToken(t) }

// AdminOnly returns an Authenticator that admits only the holder of tok
// (auth.AdminOnly).
func AdminOnly(tok Token) Authenticator { return auth.AdminOnly(tok) }

// EnsureAdminToken returns the admin token kept in DIR/admin.token, creating
// it when it is missing (auth.EnsureAdminToken).
func EnsureAdminToken(dir string) (tok Token, created bool, err error) {
	return auth.EnsureAdminToken(dir)
}

// NewTokenAuth loads the tokens file of dir and starts watching it
// (auth.NewTokenAuth).
func NewTokenAuth(dir string, admin Token, logger *slog.Logger) (*TokenAuth, error) {
	return auth.NewTokenAuth(dir, admin, logger)
}

// ParseProxies parses CIDR ranges (or single addresses) of trusted proxies
// (auth.ParseProxies).
func ParseProxies(cidrs []string) (Proxies, error) { return auth.ParseProxies(cidrs) }
