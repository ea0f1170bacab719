package event

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParseFast: whatever the fast decoder accepts, encoding/json decodes to
// the very same valid event (or both refuse it), so the fast path changes
// speed only; and no path accepts a string encoding/json would have changed
// (invalid UTF-8, lone surrogates) or a NUL.
func FuzzParseFast(f *testing.F) {
	seeds := []string{
		`{"stream":"patient/12345","type":"patient-record.read","action":"R","actor":{"id":"dr-house"}}`,
		`{"id":"x","stream":"p/1","time":"2026-11-25T10:00:00.123+01:00","type":"t","action":"U","outcome":"minor-failure","outcome_desc":"ü","actor":{"id":"a","name":"n","role":"r","address":"::1","user_agent":"u"},"patient":"1","entities":[{"type":"P","id":"1","role":"s","name":"J"}],"source":{"id":"e","site":"s","type":"4"},"purpose":"treatment","details":{"a":[1,{"b":"}\\""}],"c":null}}`,
		` { "stream" : "a" , "entities" : [ ] , "source" : { } , "actor" : { } } `,
		`{"stream":"a","stream":"b"}`,
		`{"Stream":"a"}`,
		`{"stream":"a\u0041"}`,
		`{"details":{"a":"\ud800"}}`,
		`{"details":[1]}`,
		`{"time":""}`,
		"{\"stream\":\"\xff\"}",
		`{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"details":{"a":"\u0000"}}`,
		`{"stream":"p/1","type":"t","action":"R","actor":{"id":"a","name":"\ud800"}}`,
		`{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"details":{"\udc00":1}}`,
		"{\"stream\":\"p/1\",\"type\":\"t\",\"action\":\"R\",\"actor\":{\"id\":\"a\"},\"details\":{\"a\":\"\xff\"}}",
		`{"id":"","stream":"p/1","type":"t","action":"R","actor":{"id":"a"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	// The event corpus of FuzzParseEvent is realistic input too.
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "fuzz", "FuzzParseEvent", "*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whichever path decodes it, an accepted event had only clean
		// strings: nothing was replaced with U+FFFD.
		if _, err := Parse(data); err == nil {
			if clean, known := cleanText(data); known && !clean {
				t.Fatalf("Parse(%q) accepted a string that is not valid UTF-8 or holds NUL or a lone surrogate", data)
			}
		}
		w, ok := parseFast(data)
		if !ok {
			return
		}
		var fps, sps problems
		fast, terr := w.event()
		fps.add(terr)
		fast.check(&fps, false)
		ferr := fps.err()
		slow, serr := parseSlow(data, &sps)
		if serr == nil {
			slow.check(&sps, false)
			serr = sps.err()
		}
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("fast error %v, slow error %v for %q", ferr, serr, data)
		}
		if ferr == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast and slow decoders differ for %q:\nfast %#v\nslow %#v", data, fast, slow)
		}
	})
}

// TestParseFastTakesCommonEvents: the shapes clients send do take the fast
// path (otherwise it would be dead code and the speed-up lost).
func TestParseFastTakesCommonEvents(t *testing.T) {
	for _, s := range []string{
		`{"stream":"patient/12345","type":"patient-record.read","action":"R","actor":{"id":"dr-house"}}`,
		`{"id":"01930000-0000-4000-8000-000000000000","stream":"patient/1","time":"2026-11-25T10:00:00Z","type":"t","action":"R","actor":{"id":"a","role":"physician","address":"10.1.2.3"},"patient":"1","entities":[{"type":"Patient","id":"1"}],"details":{"note":"xxxx"}}`,
		"{\n  \"stream\": \"p/1\",\n  \"type\": \"t\",\n  \"action\": \"R\",\n  \"actor\": {\"id\": \"a\"}\n}\n",
	} {
		if _, ok := parseFast([]byte(s)); !ok {
			t.Errorf("fast path refused %s", s)
		}
	}
}

var benchEvent = []byte(`{"id":"6f1c2a7e-3b7d-4c1e-9a53-0b8f2d1e4c11","stream":"patient/123","type":"patient-record.read","action":"R","actor":{"id":"dr-42","role":"physician","address":"10.1.2.3"},"patient":"123","details":{"note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`)

// BenchmarkParseEvent compares the fast decoder with encoding/json on a
// typical event.
func BenchmarkParse(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := Parse(benchEvent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var ps problems
			ev, err := parseSlow(benchEvent, &ps)
			if err == nil {
				ev.check(&ps, false)
				err = ps.err()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
