package atna

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/trailhq/trail"
)

// patientStream is the stream of one patient's events: patient/<OID>:<id>
// for an HL7 CX identifier with an ISO assigning authority, when both fit
// the stream grammar; otherwise patient/h-<hash of the identifier as sent>.
func patientStream(id string) string {
	return stream("patient/", cxSegment(id), id)
}

// sourceStream is the stream of events without one patient:
// atna/<AuditSourceID>, or atna/h-<hash> when the id does not fit.
func sourceStream(sourceID string) string {
	return stream("atna/", sourceID, sourceID)
}

// stream returns prefix+readable when that is a valid stream, else
// prefix+"h-" and the first 32 hex characters of SHA-256 of sent.
func stream(prefix, readable, sent string) string {
	if readable != "" && trail.ValidateStream(prefix+readable) == nil && !strings.Contains(readable, "/") {
		return prefix + readable
	}
	sum := sha256.Sum256([]byte(sent))
	return prefix + "h-" + hex.EncodeToString(sum[:16])
}

// cxSegment returns "<OID>:<id>" for an HL7 v2 CX identifier whose
// assigning authority (the fourth component) carries a universal id of
// type ISO, as in 12345^^^&1.2.3&ISO; otherwise "".
func cxSegment(cx string) string {
	comps := strings.Split(cx, "^")
	if len(comps) < 4 || comps[0] == "" {
		return ""
	}
	hd := strings.Split(comps[3], "&")
	if len(hd) < 3 || hd[1] == "" || hd[2] != "ISO" {
		return ""
	}
	return hd[1] + ":" + comps[0]
}
