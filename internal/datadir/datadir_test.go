package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestInspect: what a path holds, and which paths are refused.
func TestInspect(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, files ...string) string {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mount := mk("mount")
	if err := os.Mkdir(filepath.Join(mount, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
		want State
		err  error
	}{
		{"missing", filepath.Join(base, "none"), Missing, nil},
		{"empty", mk("empty"), Empty, nil},
		{"fresh volume", mount, Empty, nil},
		{"data directory", mk("data", Marker, "LOCK"), Data, nil},
		{"another program's", mk("leveldb", "LOCK", "CURRENT"), 0, ErrNotData},
		{"only tokens", mk("tokens", "tokens.json"), 0, ErrNotData},
		{"a file", file, 0, ErrNotData},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Inspect(c.path)
			if !errors.Is(err, c.err) || err == nil && got != c.want {
				t.Errorf("Inspect(%s) = %v, %v; want %v, %v", c.path, got, err, c.want, c.err)
			}
		})
	}
}

// TestCheckPrivate: any group or other bit is refused, saying what to run.
func TestCheckPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivate(dir); err != nil {
		t.Errorf("0700: %v", err)
	}
	for _, mode := range []os.FileMode{0o750, 0o705, 0o710, 0o701, 0o755} {
		os.Chmod(dir, mode)
		if err := CheckPrivate(dir); !errors.Is(err, ErrShared) {
			t.Errorf("%04o: %v, want ErrShared", mode, err)
		}
	}
}
