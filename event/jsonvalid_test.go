package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidJSON: validJSON agrees with json.Valid on every input, and so
// does checkJSONText, which also finds exactly the texts with a string that
// encoding/json would change (invalid UTF-8, lone surrogates) or that holds
// NUL, as far as cleanText can tell.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, `["\ud800"]`, `["\udc00\ud800"]`, `["\ud83e\ude7a"]`, `{"\ud800x":1}`,
		`["\ud800\u0041"]`, `["\ud800\\udc00"]`, `["\\u0000"]`, `["\ufffd"]`, "[\"\xef\xbf\xbd\"]", "[\"\xed\xa0\x80\"]", `["\u00"]`} {
		f.Add([]byte(s))
	}
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
		probs, ok := checkJSONText(b, "")
		if ok != json.Valid(b) {
			t.Fatalf("checkJSONText(%q) valid = %v, json.Valid = %v", b, ok, !ok)
		}
		if !ok {
			return
		}
		if clean, known := cleanText(b); known && clean != (len(probs) == 0) {
			t.Fatalf("checkJSONText(%q) = %v; the strings are clean: %v", b, probs, clean)
		}
		for _, p := range probs {
			if p.Field == "" || p.Reason == "" {
				t.Fatalf("checkJSONText(%q): a problem without a field or reason: %#v", b, p)
			}
		}
	})
}

// cleanText is the reference for checkJSONText on valid JSON b: whether
// every string (member names included) is valid UTF-8 in b, holds no NUL
// once decoded and no lone surrogate. encoding/json decodes a lone surrogate
// to U+FFFD, so a decoded U+FFFD tells only when b spells none itself
// (known is false then).
func cleanText(b []byte) (clean, known bool) {
	if !utf8.Valid(b) {
		return false, true
	}
	spellsFFFD := bytes.Contains(b, []byte("\xef\xbf\xbd")) || bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`))
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return true, true
		}
		if err != nil {
			return false, false
		}
		s, ok := tok.(string)
		switch {
		case !ok:
		case strings.IndexByte(s, 0) >= 0:
			return false, true
		case strings.ContainsRune(s, utf8.RuneError) && !spellsFFFD:
			return false, true
		case strings.ContainsRune(s, utf8.RuneError):
			return true, false
		}
	}
}

func BenchmarkValidJSON(b *testing.B) {
	d := []byte(`{"fields":["allergies","medication"],"note":"` + strings.Repeat("x", 200) + `","n":1.5,"ok":true}`)
	b.Run("validJSON", func(b *testing.B) {
		for b.Loop() {
			validJSON(d)
		}
	})
	b.Run("checkJSONText", func(b *testing.B) {
		for b.Loop() {
			checkJSONText(d, "details")
		}
	})
	b.Run("validJSON+utf8.Valid", func(b *testing.B) {
		for b.Loop() {
			_ = validJSON(d) && utf8.Valid(d)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		for b.Loop() {
			json.Valid(d)
		}
	})
}
