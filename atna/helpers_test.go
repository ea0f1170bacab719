package atna_test

// Helpers shared by the tests.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
)

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func xmlEscape(w io.Writer, s string) error { return xml.EscapeText(w, []byte(s)) }
