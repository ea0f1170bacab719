package event

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strconv"
	"testing"
)

// referenceHeader is ParseHeader as first written — each field copied as it
// is read, numbers parsed by strconv — kept as the reference that
// ParseHeaderView, and ParseHeader through it, are held to.
func referenceHeader(rec []byte) (Header, error) {
	var h Header
	r := layoutReader{b: rec}
	h.ID = r.str(`{"id":"`, '"')
	h.Index = r.num(`,"index":`)
	h.Stream = r.str(`,"stream":"`, '"')
	h.Seq = r.num(`,"stream_seq":`)
	h.Recorded = r.str(`,"recorded":"`, '"')
	h.Salt = r.str(`,"salt":"`, '"')
	h.Time = r.str(`,"time":"`, '"')
	if r.err != nil || len(h.Recorded) != len(RecordedLayout) || !isSalt(h.Salt) {
		return h, errLayout
	}
	const prevLen = len(`,"prev":"`) + 64 + 2
	if i := len(rec) - prevLen; i > 0 && bytes.HasPrefix(rec[i:], []byte(`,"prev":"`)) && rec[len(rec)-2] == '"' {
		var p Hash
		if _, err := hex.Decode(p[:], rec[i+9:i+9+64]); err == nil {
			h.Prev = &p
		}
	}
	if rec[len(rec)-1] != '}' {
		return h, errLayout
	}
	return h, nil
}

func (r *layoutReader) str(lit string, end byte) string {
	return string(r.bytes(lit, end))
}

func (r *layoutReader) num(lit string) uint64 {
	r.expect(lit)
	if r.err != nil {
		return 0
	}
	i := 0
	for i < len(r.b) && '0' <= r.b[i] && r.b[i] <= '9' {
		i++
	}
	n, err := strconv.ParseUint(string(r.b[:i]), 10, 64)
	if err != nil || (i > 1 && r.b[0] == '0') {
		r.err = errLayout
		return 0
	}
	r.b = r.b[i:]
	return n
}

// headerRecords are stored events in AppendStored's layout, with and
// without a prev, and a few records off the layout.
func headerRecords(t testing.TB) [][]byte {
	t.Helper()
	ev := Event{ID: "ev-1", Stream: "patient/12345", Type: "patient-record.read", Action: "R", Actor: Actor{ID: "dr.smith"}}
	e, _, err := Encode(&ev, nil)
	if err != nil {
		t.Fatal(err)
	}
	salt := bytes.Repeat([]byte{0xa7}, 16)
	recorded := []byte("2026-01-02T03:04:05.000000000Z")
	prev := LeafHash([]byte("the stream's record before"))
	recs := [][]byte{
		AppendStored(nil, &e, 0, 1, recorded, salt, nil),
		AppendStored(nil, &e, 1234567, 89, recorded, salt, &prev),
		[]byte(`{}`),
		[]byte(`{"id":"a","index":01,"stream":"s","stream_seq":1}`),
		[]byte(`{"id":"a","index":18446744073709551616,"stream":"s"}`),
		[]byte(`{"id":"a","index":18446744073709551615,"stream":"s","stream_seq":99999999999999999999,"recorded":"x"}`),
		[]byte(`{"id":"a","index":118446744073709551615,"stream":"s"}`),
		[]byte(`{"id":"a","index":,"stream":"s"}`),
	}
	return recs
}

// sameHeader reports how a HeaderView differs from a Header, or "".
func sameHeader(h Header, v HeaderView) string {
	switch {
	case h.ID != string(v.ID), h.Stream != string(v.Stream), h.Recorded != string(v.Recorded),
		h.Salt != string(v.Salt), h.Time != string(v.Time):
		return "string fields differ"
	case h.Index != v.Index || h.Seq != v.Seq:
		return "numbers differ"
	case (h.Prev != nil) != v.HasPrev:
		return "prev present in one only"
	case h.Prev != nil && *h.Prev != v.Prev:
		return "prev differs"
	case h.Prev == nil && v.Prev != (Hash{}):
		return "prev set without HasPrev"
	}
	return ""
}

// checkHeaderView checks that ParseHeaderView and ParseHeader agree with
// referenceHeader on rec: the same error, and the same fields.
func checkHeaderView(t *testing.T, rec []byte) {
	t.Helper()
	h, err := referenceHeader(rec)
	v, verr := ParseHeaderView(rec)
	if (err == nil) != (verr == nil) || err != nil && err.Error() != verr.Error() {
		t.Fatalf("%q: reference error %v, ParseHeaderView error %v", rec, err, verr)
	}
	if d := sameHeader(h, v); d != "" {
		t.Fatalf("%q: %s: reference %+v, ParseHeaderView %+v", rec, d, h, v)
	}
	ph, perr := ParseHeader(rec)
	if (perr == nil) != (err == nil) || !reflect.DeepEqual(ph, h) {
		t.Fatalf("%q: ParseHeader %+v, %v; reference %+v, %v", rec, ph, perr, h, err)
	}
}

// TestParseHeaderView checks that ParseHeaderView and ParseHeader agree with
// the reference on valid records and on every record made by changing one
// byte of them (to each of a few values), cutting them short or adding to
// them, and that ParseHeaderView does not allocate.
func TestParseHeaderView(t *testing.T) {
	valid := 0
	for _, rec := range headerRecords(t) {
		if _, err := referenceHeader(rec); err == nil {
			valid++
		}
		checkHeaderView(t, rec)
		for i := range rec {
			for _, c := range []byte{'0', '9', 'a', 'f', 'g', 'A', 'F', 'G', '"', '}', ',', 0} {
				r := bytes.Clone(rec)
				r[i] = c
				checkHeaderView(t, r)
			}
			checkHeaderView(t, rec[:i])
			checkHeaderView(t, rec[i:])
		}
		checkHeaderView(t, append(bytes.Clone(rec), ' '))
	}
	if valid != 2 {
		t.Fatalf("%d of the records are valid, want 2", valid)
	}
	rec := headerRecords(t)[1]
	if n := testing.AllocsPerRun(100, func() { ParseHeaderView(rec) }); n != 0 {
		t.Fatalf("ParseHeaderView allocates %v times a record", n)
	}
}

func FuzzParseHeaderView(f *testing.F) {
	for _, rec := range headerRecords(f) {
		f.Add(rec)
	}
	f.Fuzz(checkHeaderView)
}

func BenchmarkParseHeaderView(b *testing.B) {
	rec := headerRecords(b)[1]
	for b.Loop() {
		ParseHeaderView(rec)
	}
}
