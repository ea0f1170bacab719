package index

import (
	"log/slog"
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
		{"patient/1", []string{"patient/"}, "patient/1/"},
		{"patient/1/labs", []string{"patient/", "patient/1/"}, "patient/1/labs/"},
		{"a/b/c/d/e", []string{"a/", "a/b/", "a/b/c/"}, "a/b/c/"},
		{"a/b/c/d", []string{"a/", "a/b/", "a/b/c/"}, "a/b/c/"},
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
// below it interleave with streams whose names start the same way.
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
	got = got[:0]
	s.TopLevel(snap, func(v string, prefix bool) bool {
		got = append(got, v)
		return len(got) < 2
	})
	if len(got) != 2 {
		t.Errorf("TopLevel went on after fn returned false: %q", got)
	}
}
