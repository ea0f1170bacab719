package access

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParsePatient: a patient's own principal names one stream segment; a
// tokens file naming anything else is refused, saying which principal.
func TestParsePatient(t *testing.T) {
	const hash = "0000000000000000000000000000000000000000000000000000000000000000"
	file := func(patient string) []byte {
		return []byte(`{"principals":[{"name":"p","token_sha256":"` + hash + `","patient":` + patient + `}]}`)
	}
	for _, good := range []string{"12345", "MRN-1.2", "urn:oid:1.2", "a_b"} {
		p, err := Parse(file(`"` + good + `"`))
		if err != nil || p.Principals[0].Patient != good {
			t.Errorf("patient %q: %v %+v", good, err, p)
		}
	}
	for _, bad := range []string{"1/2", "..", ".", "a b", "é", "x\u0000", strings.Repeat("9", 2000)} {
		b, _ := json.Marshal(bad)
		if _, err := Parse(file(string(b))); err == nil || !strings.Contains(err.Error(), `principal "p"`) || !strings.Contains(err.Error(), "patient") {
			t.Errorf("patient %q: %v, want a refusal naming the principal and the patient", bad, err)
		}
	}
}

// TestParsePatientAlone: a patient's own principal holds no other grant; a
// tokens file that gives it one is refused, naming it.
func TestParsePatientAlone(t *testing.T) {
	const hash = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, extra := range []string{`"admin":true`, `"break_glass":true`, `"review":true`, `"read":["patient/*"]`, `"append":["patient/1"]`} {
		b := []byte(`{"principals":[{"name":"p","token_sha256":"` + hash + `","patient":"1",` + extra + `}]}`)
		if _, err := Parse(b); err == nil || !strings.Contains(err.Error(), "nothing else") {
			t.Errorf("patient with %s: %v, want a refusal", extra, err)
		}
	}
}
