package verify

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/checkpoint"
)

const testOrigin = "trail/checker-test"

// testRecord is how build makes record i; a broken case changes it.
type testRecord struct {
	index, seq uint64
	stream     string
	action     string
	prev       *event.Hash // nil: the stream's previous leaf, as the engine writes it
	noPrev     bool        // write no prev at all
	more       bool
}

// build makes n stored records over three streams, as the engine's
// sequencer writes them (event.Encode, event.AppendStored), after edit
// changes how record i is made. It returns them as a Checker takes them and
// the leaf hashes.
func build(t *testing.T, n int, edit func(i int, r *testRecord)) ([]Record, [][]byte) {
	t.Helper()
	seqs := map[string]uint64{}
	leaves := map[string]event.Hash{}
	var recs []Record
	var hashes [][]byte
	for i := range n {
		stream := fmt.Sprintf("patient/%d", i%3)
		r := testRecord{index: uint64(i), seq: seqs[stream] + 1, stream: stream, action: "R"}
		if seqs[stream] > 0 {
			prev := leaves[stream]
			r.prev = &prev
		}
		if edit != nil {
			edit(i, &r)
		}
		if r.noPrev {
			r.prev = nil
		}
		ev := event.Event{ID: fmt.Sprintf("ev-%d", i), Stream: r.stream, Type: "patient-record.read", Action: r.action,
			Actor: event.Actor{ID: "dr.smith"}}
		if err := ev.Validate(); err != nil {
			t.Fatal(err)
		}
		e, _, err := event.Encode(&ev, nil)
		if err != nil {
			t.Fatal(err)
		}
		salt := make([]byte, 16)
		salt[0] = byte(i)
		rec := event.AppendStored(nil, &e, r.index, r.seq, []byte("2026-01-02T03:04:05.000000000Z"), salt, r.prev)
		h, err := event.ParseHeader(rec)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		leaf := event.LeafHash(rec)
		recs = append(recs, Record{Header: h, Leaf: leaf, More: r.more})
		hashes = append(hashes, leaf[:])
		seqs[r.stream], leaves[r.stream] = r.seq, leaf
	}
	return recs, hashes
}

// rootOf is the RFC 6962 root of leaves, computed apart from the Checker.
func rootOf(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		return rfc6962.DefaultHasher.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return rfc6962.DefaultHasher.HashChildren(rootOf(leaves[:k]), rootOf(leaves[k:]))
}

// signer signs checkpoints of a log as the engine does: a checkpoint store
// (package internal/checkpoint) in a data directory of its own.
func signer(t *testing.T, origin string) *checkpoint.Store {
	t.Helper()
	s, err := checkpoint.Open(vfs.NewMem(), "", origin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sign signs the roots of leaves at the sizes, and returns the checkpoints
// verified and parsed (ParseCheckpoint) with the store's verifier key.
func sign(t *testing.T, s *checkpoint.Store, leaves [][]byte, sizes ...int) []Checkpoint {
	t.Helper()
	var cps []Checkpoint
	for _, n := range sizes {
		c, err := s.Add(uint64(n), rootOf(leaves[:n]))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := ParseCheckpoint(c.Signed, s.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		if cp.Origin != c.Origin || cp.Size != c.Size || string(cp.Root[:]) != string(c.Root) || string(cp.Signed) != string(c.Signed) {
			t.Fatalf("ParseCheckpoint = %+v, the store signed %+v", cp, c)
		}
		cps = append(cps, cp)
	}
	return cps
}

// check feeds recs to a Checker made with cps and trusted, and finishes;
// it feeds them again, as Dir does, with addView, and returns an error
// saying so when the two ways disagree.
func check(cps []Checkpoint, trusted *Checkpoint, recs []Record) (Report, error) {
	rep, err := checkWith(cps, trusted, recs, false)
	vrep, verr := checkWith(cps, trusted, recs, true)
	if fmt.Sprint(rep, err) != fmt.Sprint(vrep, verr) {
		return rep, fmt.Errorf("Add: %+v, %v; addView: %+v, %v", rep, err, vrep, verr)
	}
	return rep, err
}

// checkWith is check feeding with Add, or with addView if views.
func checkWith(cps []Checkpoint, trusted *Checkpoint, recs []Record, views bool) (Report, error) {
	c, err := NewChecker(cps, trusted)
	if err != nil {
		return Report{}, err
	}
	for i := range recs {
		r := &recs[i]
		if views {
			err = c.addView(r.Header.Index, []byte(r.Header.Stream), r.Header.Seq, r.Header.Prev, &r.Leaf, r.More)
		} else {
			err = c.Add(r)
		}
		if err != nil {
			return Report{}, err
		}
	}
	return c.Finish()
}

// TestChecker feeds the Checker records directly, without files: the valid
// log is accepted, and each case breaks it on purpose in one way, which the
// Checker must report as an *Error naming the first bad index and why.
func TestChecker(t *testing.T) {
	const n = 12
	s := signer(t, testOrigin)
	valid, leaves := build(t, n, nil)
	cps := sign(t, s, leaves, 0, 5, 8, n)
	trusted := cps[2]

	rep, err := check(cps, &trusted, valid)
	if err != nil {
		t.Fatalf("the valid log: %v", err)
	}
	if want := (Report{Events: n, Streams: 3, Checkpoints: len(cps), Latest: cps[len(cps)-1]}); rep.Events != want.Events ||
		rep.Streams != want.Streams || rep.Checkpoints != want.Checkpoints || rep.TornTail != "" ||
		rep.Latest.Size != n || string(rep.Latest.Signed) != string(want.Latest.Signed) {
		t.Fatalf("report %+v, want %+v", rep, want)
	}

	other := sign(t, signer(t, "trail/another-log"), leaves, 5)[0]
	longer, longerLeaves := build(t, n+3, nil)
	ahead := sign(t, s, longerLeaves, n+3)[0]
	badLeaf := event.LeafHash([]byte("not the record before"))
	// withStream is valid with record i's stream name changed (after the
	// record was made: an event's stream is validated before it is
	// stored).
	withStream := func(i int, name string) []Record {
		recs := slices.Clone(valid)
		recs[i].Header.Stream = name
		return recs
	}

	cases := []struct {
		name    string
		edit    func(i int, r *testRecord) // makes the broken records; nil: valid records
		cps     []Checkpoint               // nil: cps
		trusted *Checkpoint                // nil: &trusted
		recs    []Record                   // the records fed, when not built with edit
		index   uint64
		reason  string
	}{
		{name: "gap in stream_seq", index: 7, reason: "stream patient/1: stream_seq 4 follows 2 (gap or repeat)",
			edit: func(i int, r *testRecord) {
				if i == 7 {
					r.seq++
				}
			}},
		{name: "repeated stream_seq", index: 4, reason: "stream patient/1: stream_seq 1 follows 1 (gap or repeat)",
			edit: func(i int, r *testRecord) {
				if i == 4 {
					r.seq, r.noPrev = 1, true
				}
			}},
		{name: "wrong prev", index: 6, reason: "stream patient/0: prev does not match the leaf hash of stream_seq 2",
			edit: func(i int, r *testRecord) {
				if i == 6 {
					r.prev = &badLeaf
				}
			}},
		{name: "missing prev", index: 9, reason: "stream patient/0: prev does not match the leaf hash of stream_seq 3",
			edit: func(i int, r *testRecord) {
				if i == 9 {
					r.noPrev = true
				}
			}},
		{name: "prev on a stream's first event", index: 2, reason: "stream patient/2: first event has a prev",
			edit: func(i int, r *testRecord) {
				if i == 2 {
					r.prev = &badLeaf
				}
			}},
		{name: "wrong index", index: 5, reason: "record says index 6",
			edit: func(i int, r *testRecord) {
				if i == 5 {
					r.index = 6
				}
			}},
		{name: "stream name not valid", index: 4, reason: event.ValidateStream("patient/..").Error(),
			recs: withStream(4, "patient/..")},
		{name: "stream name of a later record not valid", index: 7, reason: event.ValidateStream("patient//1").Error(),
			recs: withStream(7, "patient//1")},
		{name: "a stream of one record in another's chain", index: 4, reason: "stream patient/7: stream_seq 2 follows 0 (gap or repeat)",
			recs: withStream(4, "patient/7")},
		{name: "a record removed", index: 4, reason: "record says index 5", recs: append(valid[:4:4], valid[5:]...)},
		// The chains hold (each prev is the leaf of the altered record), but
		// the tree does not have the signed root at size 5.
		{name: "root does not match a checkpoint", index: 4, reason: "tree root of size 5 does not match signed checkpoint 1",
			edit: func(i int, r *testRecord) {
				if i == 3 {
					r.action = "U"
				}
			}},
		{name: "root does not match the trusted checkpoint", index: 7, reason: "tree root of size 8 does not match the trusted checkpoint saved earlier: history was rewritten",
			cps: cps[:2], edit: func(i int, r *testRecord) {
				if i == 6 {
					r.action = "U"
				}
			}},
		{name: "checkpoint larger than the log", index: 10, reason: "log has 10 records but signed checkpoint 3 covers 12 (records were removed)",
			recs: valid[:10]},
		{name: "trusted checkpoint of another log", index: 0, reason: `the log is "trail/checker-test", the trusted checkpoint is of "trail/another-log"`,
			trusted: &other},
		{name: "trusted checkpoint larger than the log", index: n, reason: fmt.Sprintf("log has %d records but the trusted checkpoint saved earlier covers %d: history was rolled back", n, n+3),
			trusted: &ahead},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cps := cmpOr(tc.cps, cps)
			tr := &trusted
			if tc.trusted != nil {
				tr = tc.trusted
			}
			// The same checkpoints accept the valid records when they can:
			// a trusted checkpoint of another log or beyond the log is
			// refused whatever the records, so it is checked against a log
			// it does vouch for.
			switch tc.trusted {
			case &other:
				if _, err := check(nil, &other, valid); err != nil {
					t.Fatalf("the valid log without checkpoints of its own: %v", err)
				}
			case &ahead:
				if _, err := check(cps, &ahead, longer); err != nil {
					t.Fatalf("the log the trusted checkpoint was signed for: %v", err)
				}
			default:
				if _, err := check(cps, tr, valid); err != nil {
					t.Fatalf("the valid log: %v", err)
				}
			}
			recs := tc.recs
			if recs == nil && tc.edit != nil {
				recs, _ = build(t, n, tc.edit)
			}
			if recs == nil {
				recs = valid
			}
			_, err := check(cps, tr, recs)
			var ve *Error
			if !errors.As(err, &ve) || ve.Index != tc.index || ve.Reason != tc.reason {
				t.Fatalf("got %v\nwant index %d: %s", err, tc.index, tc.reason)
			}
		})
	}
}

func cmpOr[T any](a, b []T) []T {
	if a != nil {
		return a
	}
	return b
}

// TestCheckerDamage: what a store holds at the next index that is not a
// record is a torn write when it is at the end of the log past every
// checkpoint, and corruption anywhere else; an incomplete last atomic group
// is a torn write.
func TestCheckerDamage(t *testing.T) {
	const n = 6
	s := signer(t, testOrigin)
	valid, leaves := build(t, n, nil)
	cps := sign(t, s, leaves, 4)
	feed := func(c *Checker, recs []Record) {
		t.Helper()
		for i := range recs {
			if err := c.Add(&recs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	newChecker := func() *Checker {
		c, err := NewChecker(cps, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := newChecker()
	feed(c, valid[:5])
	if err := c.Damage("5.seg", "record unreadable: bad CRC", true); err != nil {
		t.Fatalf("damage at the end past the checkpoints: %v", err)
	}
	if err := c.Add(&valid[5]); err == nil {
		t.Fatal("a record was taken after the torn tail")
	}
	rep, err := c.Finish()
	if want := "5.seg at index 5: record unreadable: bad CRC (a torn write past the last checkpoint; trail cuts it on start)"; err != nil || rep.TornTail != want || rep.Events != 5 {
		t.Fatalf("Finish = %+v, %v; want 5 events and the torn tail %q", rep, err, want)
	}

	for _, tc := range []struct {
		name  string
		fed   int
		atEnd bool
	}{
		{"damage before the end", 5, false},
		{"damage a checkpoint covers", 3, true},
	} {
		c := newChecker()
		feed(c, valid[:tc.fed])
		err := c.Damage("0.seg", "record unreadable: bad CRC", tc.atEnd)
		var ve *Error
		if !errors.As(err, &ve) || ve.Index != uint64(tc.fed) || ve.Reason != "0.seg: record unreadable: bad CRC" {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}

	grouped, _ := build(t, n, func(i int, r *testRecord) { r.more = i == n-1 })
	c = newChecker()
	feed(c, grouped)
	if rep, err := c.Finish(); err != nil || !strings.Contains(rep.TornTail, "index 6: the last atomic batch is incomplete") {
		t.Fatalf("an incomplete last group: %+v, %v", rep, err)
	}
}
