package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/trailhq/trail"
)

// Streams the review grant opens, and only those.
const (
	// BreakGlassStream holds a record of every emergency (break-glass) read.
	BreakGlassStream = "trail/break-glass"
	// ReviewStream holds the marks of reviewed emergency accesses.
	ReviewStream = "trail/review"
)

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
	// Role is what the principal is (e.g. physician), as the tokens file
	// says: its read records carry it as actor.role. It grants nothing.
	Role string
}

// LogValue keeps log lines to the principal's name.
func (p *Principal) LogValue() slog.Value { return slog.StringValue(p.Name) }

// CanAppend reports whether p may append to stream.
func (p *Principal) CanAppend(stream string) bool { return p.Admin || matchAny(p.Append, stream) }

// CanRead reports whether p may read stream.
func (p *Principal) CanRead(stream string) bool { return p.Admin || matchAny(p.ReadPatterns(), stream) }

// CanReview reports whether p may mark emergency accesses reviewed (the
// review grant; admin implies it).
func (p *Principal) CanReview() bool { return p.Admin || p.Review }

// reviewStreams are the streams the review grant opens, and only those.
var reviewStreams = []string{BreakGlassStream, ReviewStream}

// ReadPatterns are the stream patterns p reads: its read grants, the review
// grant's streams, and a patient's own streams. Admin is not among them: it
// reads every stream (CanRead).
func (p *Principal) ReadPatterns() []string {
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

// TokenHashAuthenticator is an Authenticator that can also authenticate a
// token by its SHA-256 alone (a console session keeps no token).
type TokenHashAuthenticator interface {
	AuthenticateTokenHash(h [32]byte) (*Principal, error)
}

// ErrUnauthenticated: no token, or one that is unknown or revoked.
var ErrUnauthenticated = errors.New("missing, unknown or revoked token")

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
func CheckPatientPrincipal(p *Principal) error {
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
