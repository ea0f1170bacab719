package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
)

// Streams where the server records reads. The review grant opens
// BreakGlassStream and ReviewStream (auth.Principal.ReadPatterns).
const (
	AccessStream     = "trail/access"
	BreakGlassStream = auth.BreakGlassStream
	// ReviewStream holds the marks of reviewed emergency accesses (review.go).
	ReviewStream = auth.ReviewStream
)

// Purposes with a meaning of their own.
const (
	purposeEmergency = "emergency" // break-glass: read beyond the grants, with a reason
	purposeSystem    = "system"    // backup, verify --full: admin only, kept out of patients' views
)

// Who may read what: a read's grant checks (can, canFiltered, canRecord),
// the scope its queries are planned with, purposes and reasons. What a read
// leaves in the trail is in readaudit.go.

// read is one read request on its way through the grant check and the read
// audit: every read (query, get, proof, tail, stream head), allowed or
// refused with 403, is appended to trail/access before anything is
// answered; a break-glass read also to trail/break-glass. As IHE BALP asks,
// a read that returned events of patients it did not name also appends one
// record per such patient, so that every patient finds every read of their
// events by searching trail/access for their id.
type read struct {
	s         *Server
	r         *http.Request
	p         *Principal
	route     string
	params    map[string]string // the query parameters, as the record names them
	purpose   string
	reason    string
	emergency bool            // a break-glass principal reading with purpose=emergency and a reason
	system    bool            // the admin reading with purpose=system
	patient   string          // the patient the read named, if any
	index     *uint64         // the event a get or proof named
	stream    string          // the stream a stream-head read named
	streams   map[string]bool // the streams the answer carried
	patients  map[string]*patientReads
	delivered int  // events a tail delivered since its last record
	listed    bool // an emergency read's record is in trail/break-glass
	// own is set for a patient's own principal reading the read records
	// that name its patient (stream=trail/access&patient=<its id>): the
	// query is narrowed to them, and each record returned is checked.
	own bool
}

// purposeParams are accepted by every read endpoint.
var purposeParams = []string{"purpose", "reason"}

// maxPurposeLen bounds purpose, a code such as treatment or emergency.
const maxPurposeLen = 64

// readGate is an Authenticator that may be unable to vouch for read grants:
// auth.TokenAuth while its tokens file cannot be loaded.
type readGate interface {
	ReadRefusal(p *Principal) error
}

// policyRefusal returns the answer to a read by p when the authenticator
// cannot vouch for read grants now, or nil.
//
// It is 503, not 403: the caller's grant is not known to be missing — the
// server cannot tell what the policy is, as a revocation may be among what
// it cannot read — so the fault is the server's. A 503 with Retry-After is
// retried by clients once an administrator has repaired the file, shows on
// the operator's dashboards with the other 5xx, and is not taken for a
// refused grant (a 403, recorded in trail/access, tells the caller its
// grants need changing). Nothing is read, so nothing is recorded; the
// failure is logged and counted by the authenticator.
func (s *Server) policyRefusal(p *Principal) *problem {
	g, ok := s.auth.(readGate)
	if !ok || g.ReadRefusal(p) == nil {
		return nil
	}
	pr := newProblem(http.StatusServiceUnavailable, "tokens_unreadable",
		"the server's tokens file ("+auth.TokensFile+"), or with --store the policy in force in its database, is unreadable, so it cannot tell who may read: reads are refused (appends go on) until an administrator repairs it")
	pr.retryAfter = 5
	return pr
}

// newRead checks the principal's read rate, purpose and reason:
// purpose=emergency needs a reason with a visible character, from anyone;
// purpose=system is the admin's (400 otherwise, and a 400 is not recorded).
func (s *Server) newRead(r *http.Request, p *Principal, route string, ps *params) (*read, *problem) {
	if pr := s.policyRefusal(p); pr != nil {
		return nil, pr
	}
	rd := &read{s: s, r: r, p: p, route: route, params: map[string]string{}, streams: map[string]bool{}}
	for k, v := range ps.v {
		rd.params[k] = v[0]
	}
	rd.purpose, rd.reason = ps.str("purpose"), ps.str("reason")
	if ps.has("reason") && rd.purpose == "" {
		return nil, badRequest("reason is given without purpose; for an emergency read pass purpose=emergency&reason=<why>")
	}
	if ps.has("purpose") && !validPurpose(rd.purpose) {
		return nil, badRequest(fmt.Sprintf("purpose=%q is not a purpose-of-use code: 1-%d bytes of letters, digits and . _ : - (e.g. treatment, emergency)", rd.purpose, maxPurposeLen))
	}
	switch rd.purpose {
	case purposeEmergency:
		if !hasVisible(rd.reason) {
			return nil, badRequest("purpose=emergency needs a reason with visible text: say why, e.g. reason=cardiac+arrest+in+ER")
		}
		rd.emergency = p.BreakGlass || p.Admin // admin implies every grant
	case purposeSystem:
		if !p.Admin {
			return nil, badRequest(fmt.Sprintf("purpose=system is for the admin's own reads (backup, verify --full); principal %q may not use it", p.Name))
		}
		rd.system = true
	}
	if pr := s.readAllowed(p); pr != nil {
		return nil, pr
	}
	return rd, nil
}

// validPurpose reports whether v is a purpose code.
func validPurpose(v string) bool {
	if v == "" || len(v) > maxPurposeLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// hasVisible reports whether s has a character that shows: not a space, a
// control or a format character (zero-width spaces and joiners are format
// characters).
func hasVisible(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) && !unicode.IsControl(r) && !unicode.Is(unicode.Cf, r) && r != utf8.RuneError && unicode.IsGraphic(r) {
			return true
		}
	}
	return false
}

// can reports whether the read may see stream: by grant, or by break-glass
// (which never opens Trail's own streams).
func (rd *read) can(stream string) bool {
	return rd.p.CanRead(stream) || rd.emergency && !trail.IsReservedStream(stream)
}

// readable returns the filter for engine queries (nil: everything).
func (rd *read) readable() func(string) bool {
	if rd.p.Admin {
		return nil
	}
	if rd.own {
		return isAccessStream
	}
	return rd.can
}

func isAccessStream(stream string) bool { return stream == AccessStream }

// canFiltered reports whether a query of stream filtered by patient may run:
// by grant, or as a patient's own principal reading the read records that
// name its patient (and then rd.own is set).
func (rd *read) canFiltered(stream, patient string) bool {
	if rd.can(stream) {
		return true
	}
	rd.own = ownsAccess(rd.p, stream, patient)
	return rd.own
}

// ownsAccess reports whether p is a patient's own principal and stream and
// patient name the read records of its patient.
func ownsAccess(p *Principal, stream, patient string) bool {
	return p.Patient != "" && stream == AccessStream && patient == p.Patient
}

// canRecord reports whether the read may see the stored record rec of
// stream: by grant, or as the read record of a patient's own principal's
// patient.
func (rd *read) canRecord(stream string, rec []byte) bool {
	if rd.can(stream) {
		return true
	}
	if rd.p.Patient == "" || stream != AccessStream {
		return false
	}
	var f recordFields
	return json.Unmarshal(rec, &f) == nil && ownsAccess(rd.p, stream, f.Patient)
}

// forbidFiltered is forbid, saying what a patient's own principal may read.
func (rd *read) forbidFiltered(stream string) *problem {
	pr := rd.forbid(stream)
	if pr.Status == http.StatusForbidden && rd.p.Patient != "" && stream == AccessStream {
		pr.Detail += fmt.Sprintf("; as patient %q's own principal it reads the read records naming that patient: stream=%s&patient=%s",
			rd.p.Patient, AccessStream, url.QueryEscape(rd.p.Patient))
	}
	return pr
}

// patientOfStream is the patient a stream names (patient/<id>…), if any.
func patientOfStream(stream string) string {
	rest, ok := strings.CutPrefix(stream, "patient/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// scope describes the streams readable() accepts, so that the engine finds
// them through its index instead of reading the whole log (nil: everything).
// readable() stays the check of every event returned.
func (rd *read) scope() *trail.Scope {
	if rd.p.Admin {
		return nil
	}
	if rd.own {
		return &trail.Scope{Patterns: []string{AccessStream}}
	}
	return &trail.Scope{Patterns: rd.p.ReadPatterns(), Unreserved: rd.emergency}
}

// namePatient notes the patient a stream names, unless the read named one
// already.
func (rd *read) namePatient(stream string) {
	if rd.patient == "" {
		rd.patient = patientOfStream(stream)
	}
}
