package auth

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AdminName is the principal of DIR/admin.token; no other may take it.
const AdminName = "admin"

// ReservedPrefix starts names kept for Trail's own principals.
const ReservedPrefix = "trail"

// PatientPrefix starts the name of a patient's own principal signed in
// through OpenID Connect ("patient:<id>"); no principal of the tokens file
// may take such a name, so that none shares a patient's read records.
const PatientPrefix = "patient:"

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

// MaxRoleLen bounds a principal's role, in bytes.
const MaxRoleLen = 64

// CheckRole checks a principal's role (e.g. physician, "charge nurse"):
// 1-64 bytes of printable UTF-8 (spaces allowed; no control or other
// invisible formatting characters) with at least one visible character.
func CheckRole(role string) error {
	const what = "printable text (e.g. physician)"
	switch {
	case role == "":
		return fmt.Errorf("role is empty: give %s, or no role", what)
	case len(role) > MaxRoleLen:
		return fmt.Errorf("role %q is %d bytes: a role is at most %d", role, len(role), MaxRoleLen)
	case !utf8.ValidString(role):
		return fmt.Errorf("role %q is not valid UTF-8", role)
	}
	visible := false
	for _, r := range role {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("role %q contains %U, which is not printable: a role is %s, without control characters", role, r, what)
		}
		visible = visible || r != ' '
	}
	if !visible {
		return fmt.Errorf("role %q is only spaces: give %s", role, what)
	}
	return nil
}
