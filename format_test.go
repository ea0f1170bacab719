package trail

import (
	"context"
	"errors"
	"github.com/trailhq/trail/internal/datadir"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFormatStamp: a new data directory is stamped with DataFormat; a
// directory of the first edition (a log but no FORMAT) and one stamped with
// another format are refused by Open and by Verify with a FormatError that
// names the format found and the format needed, and nothing is written.
func TestFormatStamp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openFilesTest(t, dir, Config{})
	if _, err := l.Append(ctx, testEvent("patient/1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, datadir.FormatFile))
	if err != nil || string(b) != "2\n" {
		t.Fatalf("FORMAT = %q, %v; want \"2\\n\"", b, err)
	}
	if _, err := Verify(ctx, dir, VerifyOptions{}); err != nil {
		t.Fatalf("Verify of a new directory: %v", err)
	}

	for _, tc := range []struct {
		name  string
		stamp func(dir string) error
		have  int
		says  string
	}{
		{"first edition", func(dir string) error { return os.Remove(filepath.Join(dir, datadir.FormatFile)) }, 1, "format 1"},
		{"later format", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, datadir.FormatFile), []byte("3\n"), 0o644)
		}, 3, "format 3"},
		{"garbled stamp", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, datadir.FormatFile), []byte("x"), 0o644)
		}, 0, "unreadable format stamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.stamp(dir); err != nil {
				t.Fatal(err)
			}
			before := listFiles(t, dir)
			_, oerr := Open(dir, Config{})
			_, verr := Verify(ctx, dir, VerifyOptions{})
			for what, err := range map[string]error{"Open": oerr, "Verify": verr} {
				var fe *FormatError
				if !errors.As(err, &fe) || !errors.Is(err, ErrFormat) || fe.Have != tc.have || fe.Want != DataFormat {
					t.Fatalf("%s = %v, want a FormatError with format %d", what, err, tc.have)
				}
				if msg := err.Error(); !strings.Contains(msg, tc.says) || !strings.Contains(msg, "reads format 2 only") || !strings.Contains(msg, dir) {
					t.Fatalf("%s: %q does not name the directory, the format found and the format needed", what, msg)
				}
			}
			if after := listFiles(t, dir); after != before {
				t.Fatalf("a refused directory was changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// listFiles lists the names and sizes of the files under dir.
func listFiles(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() && fi.Name() != datadir.LockFile {
			b.WriteString(path[len(dir):] + " ")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
