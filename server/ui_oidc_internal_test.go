package server

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestOIDCFlowSealed: a sign-in in progress travels sealed in its cookie.
// It opens under the key that sealed it (so under any process sharing
// that key) with its state only; an altered cookie, one sealed under
// another key, or one over ten minutes old opens nothing; the cookie shows
// nothing of the flow.
func TestOIDCFlowSealed(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, err := newOIDCFlows(key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newOIDCFlows(key) // another process with the same key
	other, _ := newOIDCFlows(bytes.Repeat([]byte{8}, 32))
	sealed, fl := a.add("/ui/patient?id=7")
	for _, part := range []string{fl.State, fl.Nonce, fl.Verifier, "/ui/patient"} {
		if strings.Contains(sealed, part) {
			t.Errorf("the cookie %q shows %q", sealed, part)
		}
	}
	got, mismatch := b.open(sealed, fl.State)
	if got == nil || mismatch || got.State != fl.State || got.Nonce != fl.Nonce || got.Verifier != fl.Verifier ||
		got.Next != "/ui/patient?id=7" || !bytes.Equal(got.ID, fl.ID) {
		t.Fatalf("opened by another process with the key: %+v %v; want %+v", got, mismatch, fl)
	}
	for _, bad := range []string{"", "x", fl.State + "x", fl.Nonce} {
		if got, mismatch := a.open(sealed, bad); got != nil || !mismatch {
			t.Errorf("state %q: opened %v, mismatch %v; want refused as another sign-in's", bad, got, mismatch)
		}
	}
	if got, _ := other.open(sealed, fl.State); got != nil {
		t.Error("a cookie sealed under another key opened")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(sealed)
	for i := range raw {
		alt := bytes.Clone(raw)
		alt[i] ^= 1
		if got, _ := a.open(base64.RawURLEncoding.EncodeToString(alt), fl.State); got != nil {
			t.Fatalf("a cookie altered at byte %d opened", i)
		}
	}
	for _, junk := range []string{"", "!!!", "AAAA", strings.Repeat("A", 5000)} {
		if got, _ := a.open(junk, fl.State); got != nil {
			t.Errorf("cookie %.20q opened", junk)
		}
	}
	a.now = func() time.Time { return time.Now().Add(oidcFlowLifetime) }
	if got, _ := a.open(sealed, fl.State); got != nil {
		t.Error("a flow ten minutes old opened")
	}
	if _, err := newOIDCFlows(make([]byte, 31)); err == nil {
		t.Error("a 31-byte key was taken")
	}
}
