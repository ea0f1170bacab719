package auth

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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

// TestTokensFileFormat: a tokens file written before the principals moved
// to this package (testdata/tokens-v1.json: every field, some omitted, as
// "trail token" wrote it) loads, and a change to it writes it back byte for
// byte: the file's field names, order and omissions are unchanged.
func TestTokensFileFormat(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "tokens-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Principals) != 4 {
		t.Fatalf("%d principals, want 4", len(p.Principals))
	}
	o := p.Principals[1]
	if o.Name != "officer@hospital.org" || !o.Admin || !o.BreakGlass || !o.Review || o.Expires == nil || o.Revoked == nil ||
		len(o.Read) != 1 || o.Read[0] != "patient/*" {
		t.Errorf("principal read back as %+v", o)
	}
	if pt := p.Principals[2]; pt.Patient != "4711" || pt.Revoked != nil {
		t.Errorf("patient principal read back as %+v", pt)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TokensFile), old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Update(dir, func(*Policy) error { return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Errorf("tokens file rewritten differently:\n got %s\nwant %s", got, old)
	}

	// A principal made now is written in the same form.
	if _, err := Create(dir, Entry{Name: "new-one", Read: []string{"ward/*"}}, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	got, err = os.ReadFile(filepath.Join(dir, TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	tail := `    {
      "name": "new-one",
      "token_sha256": "`
	i := bytes.LastIndex(got, []byte(tail))
	if i < 0 || !bytes.Equal(got[:i], append(bytes.TrimSuffix(old, []byte("\n    }\n  ]\n}\n")), "\n    },\n"...)) ||
		!bytes.HasSuffix(got, []byte(`",
      "read": [
        "ward/*"
      ],
      "created": "2026-05-01T00:00:00Z"
    }
  ]
}
`)) {
		t.Errorf("a created principal is not appended in the file's form:\n%s", got)
	}

	// A principal with a role: "role" after the grants, read back as
	// written, and the file rewritten byte for byte.
	if _, err := Create(dir, Entry{Name: "dr-grey", Read: []string{"ward/*"}, Role: "attending physician"}, time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	withRole, err := os.ReadFile(filepath.Join(dir, TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(withRole, bytes.TrimSuffix(got, []byte("\n  ]\n}\n"))) || !bytes.HasSuffix(withRole, []byte(`",
      "read": [
        "ward/*"
      ],
      "role": "attending physician",
      "created": "2026-05-02T00:00:00Z"
    }
  ]
}
`)) {
		t.Errorf("a principal with a role is not appended in the file's form:\n%s", withRole)
	}
	p, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Principals {
		if want := map[string]string{"dr-grey": "attending physician"}[e.Name]; e.Role != want {
			t.Errorf("principal %q read back with role %q, want %q", e.Name, e.Role, want)
		}
		if e.Name == "dr-grey" && e.Principal().Role != "attending physician" {
			t.Errorf("dr-grey authenticates with role %q", e.Principal().Role)
		}
	}
	if err := Update(dir, func(*Policy) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, TokensFile)); !bytes.Equal(again, withRole) {
		t.Errorf("tokens file with a role rewritten differently:\n got %s\nwant %s", again, withRole)
	}
}

// TestRole: a role is 1-64 bytes of printable UTF-8 with a visible
// character; Create and Parse refuse any other, saying why.
func TestRole(t *testing.T) {
	for _, ok := range []string{"physician", "charge nurse", "Oberärztin", "x", strings.Repeat("r", MaxRoleLen), "médecin (urgences)"} {
		if err := CheckRole(ok); err != nil {
			t.Errorf("CheckRole(%q): %v", ok, err)
		}
	}
	for bad, why := range map[string]string{
		"":                      "empty",
		strings.Repeat("r", 65): "at most 64",
		strings.Repeat("é", 33): "at most 64",
		"nurse\n":               "not printable",
		"a\tb":                  "not printable",
		"doc\x00":               "not printable",
		"doc\x1b[31m":           "not printable",
		"\u202ephysician":       "not printable",
		"zero\u200bwidth":       "not printable",
		"\xff":                  "not valid UTF-8",
		"   ":                   "only spaces",
	} {
		err := CheckRole(bad)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("CheckRole(%q) = %v, want an error saying %q", bad, err, why)
		}
		dir := t.TempDir()
		if _, err := Create(dir, Entry{Name: "n", Role: bad}, time.Now()); bad != "" && err == nil {
			t.Errorf("Create with role %q accepted", bad)
		}
		// (JSON carries no invalid UTF-8: decoding makes it U+FFFD.)
		b, _ := json.Marshal(Policy{Principals: []Entry{{Name: "n", TokenSHA256: strings.Repeat("ab", 32), Role: bad}}})
		if _, err := Parse(b); bad != "" && utf8.ValidString(bad) && err == nil {
			t.Errorf("Parse of a principal with role %q accepted", bad)
		}
	}
}

// TestEntryGrants: an entry of the tokens file holds every field of the
// Principal it authenticates as, under the same name and type, and
// Entry.Principal carries them all over.
func TestEntryGrants(t *testing.T) {
	pt, et := reflect.TypeFor[Principal](), reflect.TypeFor[Entry]()
	for f := range pt.Fields() {
		ef, ok := et.FieldByName(f.Name)
		if !ok || ef.Type != f.Type {
			t.Errorf("Principal.%s (%s) has no counterpart in Entry", f.Name, f.Type)
		}
	}
	e := Entry{Name: "n", Append: []string{"a/*"}, Read: []string{"r"}, Admin: true, BreakGlass: true, Review: true, Patient: "7", Role: "nurse"}
	p := e.Principal()
	ev, pv := reflect.ValueOf(e), reflect.ValueOf(p).Elem()
	for i := range pt.NumField() {
		name := pt.Field(i).Name
		if !reflect.DeepEqual(pv.Field(i).Interface(), ev.FieldByName(name).Interface()) {
			t.Errorf("Entry.Principal: %s = %v, want %v", name, pv.Field(i), ev.FieldByName(name))
		}
	}
}
