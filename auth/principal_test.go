package auth

import (
	"slices"
	"testing"
)

// TestPrincipalGrants: read grants, the review grant's two streams and a
// patient's own streams are what a principal reads; admin reads and
// appends everywhere; appends follow the append grants alone.
func TestPrincipalGrants(t *testing.T) {
	reader := &Principal{Name: "r", Read: []string{"patient/*"}, Append: []string{"ward/7"}}
	reviewer := &Principal{Name: "v", Review: true}
	patient := &Principal{Name: "patient:12", Patient: "12"}
	admin := &Principal{Name: AdminName, Admin: true}
	for _, c := range []struct {
		p      *Principal
		stream string
		read   bool
		append bool
	}{
		{reader, "patient/1", true, false},
		{reader, "ward/7", false, true},
		{reader, BreakGlassStream, false, false},
		{reviewer, BreakGlassStream, true, false},
		{reviewer, ReviewStream, true, false},
		{reviewer, "trail/access", false, false},
		{reviewer, "patient/1", false, false},
		{patient, "patient/12", true, false},
		{patient, "patient/12/labs", true, false},
		{patient, "patient/1", false, false},
		{patient, "patient/123", false, false},
		{admin, "trail/access", true, true},
		{admin, "anything/else", true, true},
	} {
		if got := c.p.CanRead(c.stream); got != c.read {
			t.Errorf("%s CanRead(%s) = %v, want %v", c.p.Name, c.stream, got, c.read)
		}
		if got := c.p.CanAppend(c.stream); got != c.append {
			t.Errorf("%s CanAppend(%s) = %v, want %v", c.p.Name, c.stream, got, c.append)
		}
	}
	if !reviewer.CanReview() || !admin.CanReview() || reader.CanReview() || patient.CanReview() {
		t.Error("CanReview: want the review grant or admin, nobody else")
	}
	// The review grant's streams are added to a copy: the read grants of
	// the principal are not changed under it.
	both := &Principal{Name: "b", Review: true, Read: make([]string, 1, 8)}
	both.Read[0] = "patient/*"
	if got := both.ReadPatterns(); !slices.Equal(got, []string{"patient/*", BreakGlassStream, ReviewStream}) {
		t.Errorf("ReadPatterns = %v", got)
	}
	if len(both.Read) != 1 || cap(both.Read) != 8 || both.Read[:2][1] != "" {
		t.Errorf("ReadPatterns changed the read grants: %v", both.Read[:cap(both.Read)])
	}
}
