package trail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// storedOriginal is the original member of a stored record.
type storedOriginal struct {
	Format   string  `json:"format"`
	Encoding *string `json:"encoding"`
	Data     string  `json:"data"`
}

func originalOf(t *testing.T, rec []byte) *storedOriginal {
	t.Helper()
	var m struct {
		Original *storedOriginal `json:"original"`
	}
	if err := json.Unmarshal(rec, &m); err != nil {
		t.Fatalf("stored record is not JSON: %v: %q", err, rec)
	}
	return m.Original
}

// TestOriginalStoredVerbatim: every byte of an original survives storage
// and ParseStored, as readable text when it is text and in base64 when it
// is not (invalid UTF-8, NUL) or when escaping would make it longer.
func TestOriginalStoredVerbatim(t *testing.T) {
	ctx := context.Background()
	l, err := trail.OpenTest(t, t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	for _, tc := range []struct {
		name   string
		format string
		data   string
		base64 bool
	}{
		{"syslog with BOM and XML", trail.OriginalSyslog, "<85>1 2026-01-05T10:00:00.1Z pacs.example ATNA 42 IHE+RFC-3881 - \ufeff<?xml version=\"1.0\"?>\r\n<AuditMessage><EventIdentification EventActionCode=\"R\"/></AuditMessage>\n", false},
		{"FHIR resource", trail.OriginalFHIR, `{"resourceType":"AuditEvent","type":{"code":"rest"},"text":{"div":"<div>a & b</div>"}}`, false},
		{"empty", trail.OriginalSyslog, "", false},
		{"some quotes and backslashes", trail.OriginalSyslog, `file "C:\dicom\in" ` + strings.Repeat("a", 40), false},
		{"mostly quotes: shorter in base64", trail.OriginalSyslog, strings.Repeat(`a"\`, 100), true},
		{"invalid UTF-8", trail.OriginalSyslog, "<13>Jan  5 10:00:00 host app: caf\xe9", true},
		{"NUL", trail.OriginalSyslog, "a\x00b", true},
		{"control bytes", trail.OriginalSyslog, strings.Repeat("\x01", 300), true},
		{"lone surrogate encoded in UTF-8", trail.OriginalFHIR, "\xed\xa0\x80", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := trail.Event{Stream: "atna/pacs", Type: "dicom:110110", Action: "R", Actor: trail.Actor{ID: "pacs"},
				Original: &trail.Original{Format: tc.format, Data: []byte(tc.data)}}
			r, err := l.Append(ctx, ev)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			rec, err := l.Read(r.Index)
			if err != nil {
				t.Fatal(err)
			}
			o := originalOf(t, rec)
			if o == nil || o.Format != tc.format {
				t.Fatalf("stored original = %+v, want format %q: %s", o, tc.format, rec)
			}
			if got := o.Encoding != nil; got != tc.base64 {
				t.Errorf("stored with encoding %v, want base64 %v: %s", o.Encoding, tc.base64, rec)
			}
			if !tc.base64 && o.Data != tc.data {
				t.Errorf("stored text %q, want %q", o.Data, tc.data)
			}
			st, err := trail.ParseStored(rec)
			if err != nil {
				t.Fatalf("ParseStored: %v", err)
			}
			if st.Original == nil || st.Original.Format != tc.format || !bytes.Equal(st.Original.Data, []byte(tc.data)) {
				t.Fatalf("ParseStored original = %+v, want %q", st.Original, tc.data)
			}
		})
	}
}

// TestOriginalWorstCaseFits: the largest event with the largest original of
// the worst kind still makes a record within MaxStoredSize; one byte more
// of original is refused, and nothing of it is stored.
func TestOriginalWorstCaseFits(t *testing.T) {
	ctx := context.Background()
	l, err := trail.OpenTest(t, t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	stream := "s/" + strings.Repeat("x", trail.MaxStreamLen-2)
	ev := trail.Event{ID: strings.Repeat("i", trail.MaxIDLen), Stream: stream, Type: "t", Action: "R", Actor: trail.Actor{ID: "dr"}}
	b, _ := ev.MarshalJSON()
	ev.OutcomeDesc = strings.Repeat("\x01", (trail.MaxEventSize-len(b)-len(`,"outcome_desc":""`))/6)
	if b, _ := ev.MarshalJSON(); len(b) > trail.MaxEventSize || len(b) < trail.MaxEventSize-6 {
		t.Fatalf("test event is %d bytes", len(b))
	}
	rng := rand.NewChaCha8([32]byte{1})
	for _, data := range [][]byte{
		bytes.Repeat([]byte{1}, trail.MaxOriginalSize),                // escaped: 6 bytes each
		bytes.Repeat([]byte("\xe2\x80\xa8"), trail.MaxOriginalSize/3), // U+2028, stored as is
		func() []byte { b := make([]byte, trail.MaxOriginalSize); rng.Read(b); return b }(),
	} {
		e := ev
		e.ID = ""
		e.Original = &trail.Original{Format: trail.OriginalSyslog, Data: data}
		r, err := l.Append(ctx, e)
		if err != nil {
			t.Fatalf("Append of a 64 KiB event with a 64 KiB original: %v", err)
		}
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec) > trail.MaxStoredSize {
			t.Fatalf("stored record is %d bytes; the limit is %d", len(rec), trail.MaxStoredSize)
		}
		st, err := trail.ParseStored(rec)
		if err != nil || !bytes.Equal(st.Original.Data, data) {
			t.Fatalf("ParseStored: %v; original kept: %v", err, err == nil && bytes.Equal(st.Original.Data, data))
		}
	}
	size := l.Size()
	ev.ID = ""
	ev.Original = &trail.Original{Format: trail.OriginalSyslog, Data: make([]byte, trail.MaxOriginalSize+1)}
	var ve *trail.ValidationError
	if _, err := l.Append(ctx, ev); !errors.Is(err, trail.ErrTooLarge) || !errors.As(err, &ve) || ve.Field != "original.data" {
		t.Fatalf("Append of a 64 KiB + 1 original: %v, want ErrTooLarge for original.data", err)
	}
	if l.Size() != size {
		t.Fatalf("a refused event changed the log's size %d → %d", size, l.Size())
	}
}

// TestOriginalOnlyFromTheServer: a client's JSON cannot carry an original,
// and the Go client's encoding refuses an event that has one, so that an
// original is always what the server received.
func TestOriginalOnlyFromTheServer(t *testing.T) {
	_, err := trail.ParseEvent([]byte(`{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"original":{"format":"syslog","data":"x"}}`))
	var ve *trail.ValidationError
	if !errors.As(err, &ve) || ve.Field != "original" {
		t.Fatalf("ParseEvent with an original: %v, want a problem with original", err)
	}
	ev := trail.Event{Stream: "p/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "a"},
		Original: &trail.Original{Format: trail.OriginalSyslog, Data: []byte("x")}}
	if err := ev.Validate(); err != nil {
		t.Fatalf("Validate of a Go event with an original: %v", err)
	}
	if b, err := ev.MarshalJSON(); !errors.As(err, &ve) || ve.Field != "original" {
		t.Fatalf("MarshalJSON of an event with an original = %s, %v; want a problem with original", b, err)
	}
}

// TestOriginalIsNotContent: an id sent again with the same event and
// another original gets the first receipt: the original is how the event
// arrived, not what it says (a FHIR client's retry may differ in spacing).
// Subtypes are content.
func TestOriginalIsNotContent(t *testing.T) {
	ctx := context.Background()
	l, err := trail.OpenTest(t, t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	ev := trail.Event{ID: "ae-1", Stream: "p/1", Type: "t", Subtypes: []string{"a|b"}, Action: "R", Actor: trail.Actor{ID: "a"},
		Original: &trail.Original{Format: trail.OriginalFHIR, Data: []byte(`{"resourceType":"AuditEvent"}`)}}
	r1, err := l.Append(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.Original = &trail.Original{Format: trail.OriginalFHIR, Data: []byte(`{ "resourceType" : "AuditEvent" }`)}
	r2, err := l.Append(ctx, ev)
	if err != nil || r2 != r1 {
		t.Fatalf("resend with another original: %+v, %v; want the first receipt %+v", r2, err, r1)
	}
	ev.Subtypes = []string{"a|c"}
	if _, err := l.Append(ctx, ev); !errors.Is(err, trail.ErrIDConflict) {
		t.Fatalf("resend with other subtypes: %v, want ErrIDConflict", err)
	}
}

// FuzzOriginal: any bytes as an original are stored as one line of compact
// JSON within MaxStoredSize and read back byte for byte.
func FuzzOriginal(f *testing.F) {
	f.Add([]byte("<85>1 - - - - - - \ufeff<AuditMessage/>"))
	f.Add([]byte("caf\xe9\x00\"\\\n\u2028"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > trail.MaxOriginalSize {
			return
		}
		l := fuzzLog(t)
		ctx, cancel := ctxT()
		defer cancel()
		r, err := l.Append(ctx, trail.Event{Stream: "atna/fuzz", Type: "t", Action: "E", Actor: trail.Actor{ID: "a"},
			Original: &trail.Original{Format: trail.OriginalSyslog, Data: data}})
		if err != nil {
			t.Fatalf("Append with original %q: %v", data, err)
		}
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatal(err)
		}
		var cb bytes.Buffer
		if err := json.Compact(&cb, rec); err != nil || !bytes.Equal(cb.Bytes(), rec) || bytes.ContainsAny(rec, "\n\r") {
			t.Fatalf("stored record is not compact one-line JSON (%v): %q", err, rec)
		}
		st, err := trail.ParseStored(rec)
		if err != nil {
			t.Fatalf("ParseStored(%q): %v", rec, err)
		}
		if st.Original == nil || !bytes.Equal(st.Original.Data, data) {
			t.Fatalf("original %q read back as %+v", data, st.Original)
		}
	})
}
