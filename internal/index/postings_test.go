package index

// A property test of the posting lists against a sorted-slice model: random
// Apply calls (some over chunkEvents entries, so that one call's postings
// split into several chunks), values that are prefixes of one another, that
// hold NUL bytes, and that are long enough to be keyed by their hash; then
// monotonic Seek sequences forwards and backwards, on the latest snapshot and
// on older ones taken between Apply calls. Every answer must be the model's:
// the first index ≥ x, the last ≤ x, or none.
//
// go test ./internal/index -run TestPostingsSeek -rapid.checks=N to run longer.

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"
)

// pValues are the values entries draw from. Their keys must not collide and
// no value's chunks may show up under another: "a" is a prefix of "ab" and of
// "a\x00", the 128-byte value is keyed verbatim while the longer ones that
// start with it are keyed by their SHA-256, and lengths 127 and 128 straddle
// the one- and two-byte uvarint length.
var pValues = []string{
	"a", "ab", "abc", "b", "a\x00", "\x00", "\x00a", "\x00\x00", "Ωmega-∑",
	strings.Repeat("x", 127),
	strings.Repeat("x", 128),
	strings.Repeat("x", 129),
	strings.Repeat("x", 128) + "y",
	strings.Repeat("L", 199) + "a",
	strings.Repeat("L", 199) + "b",
	strings.Repeat("\x00", 300),
	// As streams, these have a prefix posting ("a/", not "a/b/").
	"a/", "a/b/", "a/b/c/", "a/b", "a/b/c/d/e",
}

// pAbsent are values no entry has.
var pAbsent = []string{"", "aa", "a\x00\x00", "abcd", strings.Repeat("x", 130), strings.Repeat("L", 199), "a/b/c/d/"}

// pModel is the expected posting lists: field → value → indexes, ascending.
type pModel map[Field]map[string][]uint64

func (m pModel) add(e *Entry) {
	for _, f := range fields {
		vs := []string{e.field(f)}
		if f == FieldPrefix {
			vs = Prefixes(e.Stream)
		}
		for _, v := range vs {
			if v == "" {
				continue
			}
			if m[f] == nil {
				m[f] = map[string][]uint64{}
			}
			m[f][v] = append(m[f][v], e.Index)
		}
	}
}

// seek is the model's answer to Seek(x) on list, restricted to indexes below
// end (the snapshot's view).
func seek(list []uint64, end, x uint64, desc bool) (uint64, bool) {
	list = list[:sortSearch(list, end)]
	i := sortSearch(list, x)
	if !desc {
		if i < len(list) {
			return list[i], true
		}
		return 0, false
	}
	if i < len(list) && list[i] == x {
		return x, true
	}
	if i == 0 {
		return 0, false
	}
	return list[i-1], true
}

// sortSearch returns the position of the first element ≥ x.
func sortSearch(list []uint64, x uint64) int {
	i, _ := slices.BinarySearch(list, x)
	return i
}

// pProfile says how often each value shows up in one field: some values are
// dense, some rare (long gaps between their indexes, chunks that hold one
// index), some never.
type pProfile struct {
	values  []string
	weights []int // out of 1000; the rest is "no value"
}

func drawProfile(t *rapid.T, f Field) pProfile {
	var p pProfile
	n := rapid.IntRange(1, 6).Draw(t, fmt.Sprintf("values of %c", f))
	for i := 0; i < n; i++ {
		p.values = append(p.values, rapid.SampledFrom(pValues).Draw(t, fmt.Sprintf("value %c%d", f, i)))
		p.weights = append(p.weights, rapid.SampledFrom([]int{1, 5, 50, 150, 400}).Draw(t, fmt.Sprintf("weight %c%d", f, i)))
	}
	return p
}

func (p pProfile) pick(rng *rand.Rand) string {
	r := rng.IntN(1000)
	for i, w := range p.weights {
		if r < w {
			return p.values[i]
		}
		r -= w
	}
	return ""
}

// pSnap is a snapshot and how many entries had been applied when it was taken.
type pSnap struct {
	snap *pebble.Snapshot
	end  uint64
}

func TestPostingsSeek(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, err := Open(vfs.NewMem(), "idx", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		profiles := map[Field]pProfile{}
		for _, f := range fields {
			profiles[f] = drawProfile(t, f)
		}
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		model := pModel{}
		var snaps []pSnap
		defer func() {
			for _, sn := range snaps {
				sn.snap.Close()
			}
		}()
		var next uint64
		applies := rapid.IntRange(1, 6).Draw(t, "applies")
		for a := 0; a < applies; a++ {
			n := rapid.OneOf(
				rapid.IntRange(1, 40),
				rapid.IntRange(chunkEvents-2, chunkEvents+2),
				rapid.IntRange(chunkEvents+3, 3*chunkEvents+5),
			).Draw(t, fmt.Sprintf("apply %d size", a))
			entries := make([]Entry, n)
			for i := range entries {
				e := &entries[i]
				e.Index = next + uint64(i)
				e.Stream = profiles[FieldStream].pick(rng)
				e.Patient = profiles[FieldPatient].pick(rng)
				e.Actor = profiles[FieldActor].pick(rng)
				e.Type = profiles[FieldType].pick(rng)
				e.Action = profiles[FieldAction].pick(rng)
				e.Outcome = profiles[FieldOutcome].pick(rng)
				model.add(e)
			}
			next += uint64(n)
			if err := s.Apply(entries, next); err != nil {
				t.Fatalf("Apply %d entries: %v", n, err)
			}
			if got, err := s.Applied(); err != nil || got != next {
				t.Fatalf("Applied() = %d, %v; want %d", got, err, next)
			}
			if rapid.IntRange(0, 2).Draw(t, "snapshot now") == 0 {
				snap, end, err := s.Snapshot()
				if err != nil {
					t.Fatalf("Snapshot: %v", err)
				}
				if end != next {
					t.Fatalf("Snapshot reflects %d entries, want %d", end, next)
				}
				snaps = append(snaps, pSnap{snap, end})
			}
			if rapid.IntRange(0, 3).Draw(t, "flush now") == 0 {
				if err := s.Flush(); err != nil {
					t.Fatalf("Flush: %v", err)
				}
			}
		}
		snap, end, err := s.Snapshot()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		snaps = append(snaps, pSnap{snap, end})

		iters := rapid.IntRange(1, 12).Draw(t, "iterators")
		for k := 0; k < iters; k++ {
			sn := snaps[rapid.IntRange(0, len(snaps)-1).Draw(t, "snapshot")]
			f := rapid.SampledFrom(fields[:]).Draw(t, "field")
			v := rapid.OneOf(
				rapid.SampledFrom(profiles[f].values),
				rapid.SampledFrom(pValues),
				rapid.SampledFrom(pAbsent),
			).Draw(t, "value")
			desc := rapid.Bool().Draw(t, "desc")
			checkSeeks(t, s, sn, f, v, desc, model[f][v])
		}
	})
}

// checkSeeks runs a monotonic sequence of seeks on one iterator and compares
// each answer with the model's.
func checkSeeks(t *rapid.T, s *Store, sn pSnap, f Field, v string, desc bool, list []uint64) {
	it, err := s.Postings(sn.snap, f, v, desc)
	if err != nil {
		t.Fatalf("Postings(%c, %q): %v", f, short(v), err)
	}
	defer it.Close()
	x := uint64(0)
	if desc {
		x = rapid.SampledFrom([]uint64{^uint64(0), sn.end + 5, sn.end, sn.end - 1}).Draw(t, "start")
	}
	var trail []uint64
	seeks := rapid.IntRange(1, 60).Draw(t, "seeks")
	for i := 0; i < seeks; i++ {
		trail = append(trail, x)
		got, ok, err := it.Seek(x)
		if err != nil {
			t.Fatalf("%c=%q desc=%v: Seek(%d): %v", f, short(v), desc, x, err)
		}
		want, wok := seek(list, sn.end, x, desc)
		if got != want || ok != wok {
			t.Fatalf("%c=%q desc=%v (snapshot of %d entries): after seeks %v, Seek(%d) = %d, %v; want %d, %v",
				f, short(v), desc, sn.end, trail[:len(trail)-1], x, got, ok, want, wok)
		}
		x = nextTarget(t, x, got, ok, desc, sn.end)
	}
}

// nextTarget returns the next seek target: the same, a step, the answer
// itself or just past it, a jump into the next chunk, or the end of the
// index space.
func nextTarget(t *rapid.T, x, got uint64, ok, desc bool, end uint64) uint64 {
	step := uint64(rapid.SampledFrom([]int{0, 1, 2, 7, 100, chunkEvents - 1, chunkEvents, chunkEvents + 1}).Draw(t, "step"))
	switch rapid.IntRange(0, 4).Draw(t, "how") {
	case 0: // a step from x
	case 1: // from the answer
		if ok {
			x = got
		}
	case 2: // just past the answer
		if ok {
			x, step = got, 1
		}
	case 3: // far
		step = uint64(rapid.Uint64Range(0, end+10).Draw(t, "far"))
	default: // to the edge
		if desc {
			return 0
		}
		return ^uint64(0)
	}
	if desc {
		if step > x {
			return 0
		}
		return x - step
	}
	if x > ^uint64(0)-step {
		return ^uint64(0)
	}
	return x + step
}

func short(v string) string {
	if len(v) > 20 {
		return fmt.Sprintf("%s…(%d bytes)", v[:20], len(v))
	}
	return v
}

// TestPostingsChunkBoundaries: one value at every index of one Apply call of
// three and a half chunks, and another at every chunkEvents-th: seeks at and
// around each chunk's first and last index, forwards and backwards.
func TestPostingsChunkBoundaries(t *testing.T) {
	s, err := Open(vfs.NewMem(), "idx", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 3*chunkEvents + chunkEvents/2
	entries := make([]Entry, n)
	model := pModel{}
	for i := range entries {
		e := &entries[i]
		e.Index, e.Stream = uint64(i), "dense"
		if i%chunkEvents == chunkEvents-1 {
			e.Patient = "sparse"
		}
		model.add(e)
	}
	if err := s.Apply(entries, n); err != nil {
		t.Fatal(err)
	}
	snap, end, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var xs []uint64
	for c := uint64(0); c <= 4; c++ {
		for _, d := range []int64{-2, -1, 0, 1} {
			if x := int64(c*chunkEvents) + d; x >= 0 {
				xs = append(xs, uint64(x))
			}
		}
	}
	for _, tc := range []struct {
		f Field
		v string
	}{{FieldStream, "dense"}, {FieldPatient, "sparse"}} {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/desc=%v", tc.v, desc), func(t *testing.T) {
				// Each target on a fresh iterator, then all in order on one.
				order := slices.Clone(xs)
				if desc {
					slices.Reverse(order)
				}
				for _, x := range order {
					it, err := s.Postings(snap, tc.f, tc.v, desc)
					if err != nil {
						t.Fatal(err)
					}
					got, ok, err := it.Seek(x)
					it.Close()
					want, wok := seek(model[tc.f][tc.v], end, x, desc)
					if err != nil || got != want || ok != wok {
						t.Errorf("fresh Seek(%d) = %d, %v, %v; want %d, %v", x, got, ok, err, want, wok)
					}
				}
				it, err := s.Postings(snap, tc.f, tc.v, desc)
				if err != nil {
					t.Fatal(err)
				}
				defer it.Close()
				for _, x := range order {
					got, ok, err := it.Seek(x)
					want, wok := seek(model[tc.f][tc.v], end, x, desc)
					if err != nil || got != want || ok != wok {
						t.Errorf("Seek(%d) in sequence %v = %d, %v, %v; want %d, %v", x, order, got, ok, err, want, wok)
					}
				}
			})
		}
	}
}

// BenchmarkPostingsAfterLargeApply measures one pass over a value's postings
// (40 seeks, each into another chunk) right after an Apply call of n other
// entries, before Pebble has flushed it. An Apply batch over half the
// memtable size (16 MiB) becomes a Pebble "flushable batch", and every
// forward Seek that finds no chunk of the value in it (SeekLT, then Next)
// makes Pebble's merging iterator step through that batch from its first
// key: compare apply=10000 with apply=200000.
//
//	go test ./internal/index -run '^$' -bench PostingsAfterLargeApply -benchtime 3x
func BenchmarkPostingsAfterLargeApply(b *testing.B) {
	for _, n := range []int{10_000, 200_000} {
		b.Run(fmt.Sprintf("apply=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s, err := Open(vfs.NewMem(), "idx", slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				var next uint64
				apply := func(n int, target bool) {
					es := make([]Entry, n)
					for i := range es {
						es[i] = Entry{Index: next, Stream: fmt.Sprintf("s/%d", next), Patient: fmt.Sprintf("p%d", next), Actor: fmt.Sprintf("a%d", next%1000)}
						if target && i == n/2 {
							es[i].Patient = "target"
						}
						next++
					}
					if err := s.Apply(es, next); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < 20; i++ {
					apply(100, true)
				}
				apply(n, false)
				for i := 0; i < 20; i++ {
					apply(100, true)
				}
				b.StartTimer()
				snap, _, err := s.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				it, err := s.Postings(snap, FieldPatient, "target", false)
				if err != nil {
					b.Fatal(err)
				}
				found := 0
				for x := uint64(0); ; found++ {
					v, ok, err := it.Seek(x)
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						break
					}
					x = v + 1
				}
				b.StopTimer()
				if found != 40 {
					b.Fatalf("found %d of the value's 40 indexes", found)
				}
				it.Close()
				snap.Close()
				s.Close()
				b.StartTimer()
			}
		})
	}
}
