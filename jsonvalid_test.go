package trail

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValidJSON: validJSON agrees with json.Valid on every input.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` {"a" : [1, 2.5e-3, -0, true, false, null, "x\u00e9\n"]} `, `{"a":}`, `[1,]`, `01`, `-`,
		`1.`, `1e`, `1e+`, `"\x"`, `"\u12"`, "\"\x01\"", `{"a":1}x`, `nul`, `{"a" 1}`, `[[[[]]]]`, `"é"`, "\"\xff\"",
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	d := []byte(`{"fields":["allergies","medication"],"note":"` + strings.Repeat("x", 200) + `","n":1.5,"ok":true}`)
	b.Run("validJSON", func(b *testing.B) {
		for b.Loop() {
			validJSON(d)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		for b.Loop() {
			json.Valid(d)
		}
	})
}
