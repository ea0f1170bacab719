package datadir

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestFormat: a directory without a log is stamped with DataFormat; one of
// the first edition (a log but no FORMAT), one stamped with another format
// and one with a garbled stamp are refused by CheckFormat and StampFormat
// with a FormatError that names the directory, the format found and the
// format needed, and StampFormat writes nothing there.
func TestFormat(t *testing.T) {
	fs := vfs.NewMem()
	const dir = "/data"
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadFormat(fs, dir); n != 0 || err != nil {
		t.Fatalf("ReadFormat of a new directory = %d, %v; want 0", n, err)
	}
	if err := CheckFormat(fs, dir); err != nil {
		t.Fatalf("CheckFormat of a new directory: %v", err)
	}
	if err := StampFormat(fs, dir); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, fs, dir+"/"+FormatFile); got != "2\n" {
		t.Fatalf("FORMAT = %q, want \"2\\n\"", got)
	}
	if err := fs.MkdirAll(fs.PathJoin(dir, LogDir), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, check := range []func(vfs.FS, string) error{CheckFormat, StampFormat} {
		if err := check(fs, dir); err != nil {
			t.Fatalf("a stamped directory: %v", err)
		}
	}
	if n, err := ReadFormat(fs, dir); n != DataFormat || err != nil {
		t.Fatalf("ReadFormat = %d, %v; want %d", n, err, DataFormat)
	}

	for _, tc := range []struct {
		name  string
		stamp string // "" removes FORMAT
		have  int
		says  string
	}{
		{"first edition", "", 1, "format 1"},
		{"later format", "3\n", 3, "format 3"},
		{"garbled stamp", "x", 0, "unreadable format stamp"},
		{"format 0", "0\n", 0, "unreadable format stamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fs.PathJoin(dir, FormatFile)
			if err := fs.Remove(p); err != nil {
				t.Fatal(err)
			}
			if tc.stamp != "" {
				writeFile(t, fs, p, tc.stamp)
			}
			if tc.have > 0 {
				if n, err := ReadFormat(fs, dir); n != tc.have || err != nil {
					t.Fatalf("ReadFormat = %d, %v; want %d", n, err, tc.have)
				}
			}
			for what, check := range map[string]func(vfs.FS, string) error{"CheckFormat": CheckFormat, "StampFormat": StampFormat} {
				err := check(fs, dir)
				var fe *FormatError
				if !errors.As(err, &fe) || !errors.Is(err, ErrFormat) || fe.Have != tc.have || fe.Want != DataFormat || fe.Dir != dir {
					t.Fatalf("%s = %v, want a FormatError with format %d", what, err, tc.have)
				}
				if msg := err.Error(); !strings.Contains(msg, tc.says) || !strings.Contains(msg, "reads format 2 only") || !strings.Contains(msg, dir) {
					t.Fatalf("%s: %q does not name the directory, the format found and the format needed", what, msg)
				}
			}
			_, err := fs.Stat(p)
			if exists := err == nil; exists != (tc.stamp != "") {
				t.Fatalf("StampFormat changed FORMAT (exists %v)", exists)
			}
			if tc.stamp != "" {
				if got := readFile(t, fs, p); got != tc.stamp {
					t.Fatalf("StampFormat rewrote FORMAT: %q", got)
				}
			} else {
				writeFile(t, fs, p, "2\n") // for the next case to remove
			}
		})
	}
}

func readFile(t *testing.T, fs vfs.FS, p string) string {
	t.Helper()
	f, err := fs.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, fs vfs.FS, p, data string) {
	t.Helper()
	f, err := fs.Create(p, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
