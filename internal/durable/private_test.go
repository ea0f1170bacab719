package durable

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWritePrivate: a new file is 0600; a file written over another keeps
// the mode and owner it is given, and a stale temporary file left by a crash
// does not stop the write.
func TestWritePrivate(t *testing.T) {
	dir := t.TempDir()
	if err := WritePrivate(dir, "secret", []byte("one"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(dir, "secret"), "one", 0o600, nil)

	// A crash left secret.tmp behind, world-readable.
	if err := os.WriteFile(filepath.Join(dir, "secret.tmp"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivate(dir, "secret", []byte("two"), 0o640, nil); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(dir, "secret"), "two", 0o640, nil)

	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	other := &Owner{UID: 65534, GID: 65534}
	if err := WritePrivate(dir, "secret", []byte("three"), 0o600, other); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(dir, "secret"), "three", 0o600, other)
}

func wantFile(t *testing.T, path, content string, mode os.FileMode, owner *Owner) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != content {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, content)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s mode %v, want %v", path, st.Mode().Perm(), mode)
	}
	if sys := st.Sys().(*syscall.Stat_t); owner != nil && (int(sys.Uid) != owner.UID || int(sys.Gid) != owner.GID) {
		t.Errorf("%s owned by %d:%d, want %d:%d", path, sys.Uid, sys.Gid, owner.UID, owner.GID)
	}
	if _, err := os.Stat(path + ".tmp"); err == nil {
		t.Errorf("%s.tmp is left behind", path)
	}
}
