package index

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestFormat: a new store is stamped with the key layout; a store in
// another layout, or an unstamped one that holds data, is refused with
// ErrFormat, so the engine rebuilds it from the log instead of misreading it.
func TestFormat(t *testing.T) {
	fs := vfs.NewMem()
	log := slog.New(slog.DiscardHandler)
	s, err := Open(fs, "a", log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply([]Entry{{Index: 0, ID: "x", Given: true, Stream: "p/1", Seq: 1}}, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(fs, "a", log); err != nil {
		t.Fatalf("reopen a stamped store: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(db *pebble.DB) error
	}{
		{"older layout", func(db *pebble.DB) error { return db.Set([]byte(keyFormat), []byte("1"), pebble.NoSync) }},
		{"unstamped", func(db *pebble.DB) error { return db.Delete([]byte(keyFormat), pebble.NoSync) }},
	} {
		if err := tc.edit(s.db); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := Open(fs, "a", log)
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("%s: Open = %v, want ErrFormat", tc.name, err)
		}
		db, err := pebble.Open("a", &pebble.Options{FS: fs, DisableWAL: true})
		if err != nil {
			t.Fatal(err)
		}
		s = &Store{db: db}
	}
	s.Close()
}
