package index

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
)

func TestPrefixes(t *testing.T) {
	for _, tc := range []struct {
		stream  string
		want    []string
		indexed string // IndexedPrefix(stream + "/")
	}{
		{"login", nil, "login/"},
		{"patient/1", []string{"patient/"}, "patient/"},
		{"patient/1/labs", []string{"patient/"}, "patient/"},
		{"a/b/c/d/e", []string{"a/"}, "a/"},
	} {
		if got := Prefixes(tc.stream); !slices.Equal(got, tc.want) {
			t.Errorf("Prefixes(%q) = %q, want %q", tc.stream, got, tc.want)
		}
		if got := IndexedPrefix(tc.stream + "/"); got != tc.indexed {
			t.Errorf("IndexedPrefix(%q) = %q, want %q", tc.stream+"/", got, tc.indexed)
		}
	}
	if got := IndexedPrefix(""); got != "" {
		t.Errorf(`IndexedPrefix("") = %q, want ""`, got)
	}
}

// TestTopLevel: each first segment once, in key order, however the streams
// below it interleave with streams whose names start the same way; and
// Streams below a prefix.
func TestTopLevel(t *testing.T) {
	s, err := Open(vfs.NewMem(), "idx", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	streams := []string{"seg", "seg-x", "seg.y/1", "seg/a", "seg/b/c", "seg0", "trail", "trail/access", "a/1", "a/2", "b"}
	var entries []Entry
	for i, st := range streams {
		entries = append(entries, Entry{Index: uint64(i), Stream: st, Seq: 1})
	}
	if err := s.Apply(entries, uint64(len(entries))); err != nil {
		t.Fatal(err)
	}
	snap, _, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var got []string
	if err := s.TopLevel(snap, func(v string, prefix bool) bool {
		got = append(got, v)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/", "b", "seg", "seg-x", "seg.y/", "seg/", "seg0", "trail", "trail/"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("TopLevel (-want +got):\n%s", d)
	}
	var below []string
	if err := s.Streams(snap, "seg/", func(st string) bool { below = append(below, st); return true }); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"seg/a", "seg/b/c"}, below); d != "" {
		t.Errorf("Streams(seg/) (-want +got):\n%s", d)
	}
	got = got[:0]
	s.TopLevel(snap, func(v string, prefix bool) bool {
		got = append(got, v)
		return len(got) < 2
	})
	if len(got) != 2 {
		t.Errorf("TopLevel went on after fn returned false: %q", got)
	}
}

// BenchmarkApply measures Apply of batches of 4096 events over 100,000
// patients' streams (patient/<k>, a quarter patient/<k>/labs) with every
// query field set, as the indexer applies them; ns/event.
//
//	go test ./internal/index -run '^$' -bench '^BenchmarkApply$' -benchtime 200x -count 5
func BenchmarkApply(b *testing.B) {
	s, err := Open(vfs.NewMem(), "idx", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	batches := make([][]Entry, 16)
	for j := range batches {
		for range 4096 {
			k := rng.IntN(100_000)
			st := fmt.Sprintf("patient/%d", k)
			if k%4 == 0 {
				st += "/labs"
			}
			batches[j] = append(batches[j], Entry{Stream: st, Seq: 1, Patient: fmt.Sprint(k),
				Actor: fmt.Sprintf("dr-%d", rng.IntN(1000)), Type: "patient-record.read", Action: "R", Outcome: "success"})
		}
	}
	var next uint64
	for b.Loop() {
		es := batches[next/4096%16]
		for i := range es {
			es[i].Index = next
			next++
		}
		if err := s.Apply(es, next); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next), "ns/event")
}
