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

// TestReservedNames: admin, trail… and patient:… are no principal's of the
// tokens file, in any case; a patient's OpenID Connect name is patient:<id>.
func TestReservedNames(t *testing.T) {
	for _, name := range []string{"admin", "ADMIN", "trail", "trail-syslog", "Trail.x", "patient:1", "PATIENT:7", "patient:"} {
		if err := CheckName(name); err == nil {
			t.Errorf("CheckName(%q) accepted a reserved name", name)
		}
	}
	for _, name := range []string{"dr-house", "patient-1", "patients", "officer@hospital.org"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q): %v", name, err)
		}
	}
	if name, err := PatientName("4711"); err != nil || name != "patient:4711" {
		t.Errorf("PatientName(4711) = %q, %v", name, err)
	}
	for _, id := range []string{"", "1/2", "a b", strings.Repeat("1", 125)} {
		if name, err := PatientName(id); err == nil {
			t.Errorf("PatientName(%q) = %q, want an error", id, name)
		}
	}
}
