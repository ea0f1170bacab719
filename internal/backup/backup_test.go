package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/internal/backup"
)

// TestSnapshotWhileAppending: backups taken one after the other from an
// engine that appends from four goroutines, with 16 KiB segments so that
// segments are sealed and created during the copies and checkpoints are
// signed every 5 ms, each verify (Check), hold exactly the events of their
// checkpoint, and restore into data directories that open with the same
// records byte for byte and the same root, and take new appends.
func TestSnapshotWhileAppending(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	l, err := trail.Open(dir, trail.Config{SegmentSize: 16 << 10, CheckpointInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var appended atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ev := trail.Event{Stream: fmt.Sprintf("patient/%d", i%7), Type: "patient-record.read", Action: "R", Actor: trail.Actor{ID: fmt.Sprintf("dr-%d", w)}}
				if _, err := l.Append(ctx, ev); err != nil {
					t.Error(err)
					return
				}
				appended.Add(1)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	var last uint64
	for run := range 4 {
		for appended.Load() < int64(150*(run+1)) {
			time.Sleep(5 * time.Millisecond)
		}
		out := filepath.Join(tmp, fmt.Sprintf("backup-%d", run))
		d, err := backup.NewDir(out)
		if err != nil {
			t.Fatal(err)
		}
		m, err := backup.Snapshot(ctx, vfs.Default, dir, backup.Options{VerifierKey: l.VerifierKey()}, d)
		if err != nil {
			t.Fatalf("run %d: snapshot: %v", run, err)
		}
		if _, _, err := d.Check(ctx, backup.CheckOptions{VerifierKey: l.VerifierKey()}); err != nil {
			t.Fatalf("run %d: check before commit: %v", run, err)
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		if m.Size < last {
			t.Errorf("run %d: backup of %d events after one of %d", run, m.Size, last)
		}
		last = m.Size
		t.Logf("run %d: backup of %d events, %d files", run, m.Size, len(m.Files))
		if _, rep, err := backup.Check(ctx, out, backup.CheckOptions{VerifierKey: l.VerifierKey()}); err != nil {
			t.Fatalf("run %d: check: %v", run, err)
		} else if rep.Events != m.Size {
			t.Fatalf("run %d: %d events verified, checkpoint %d", run, rep.Events, m.Size)
		}
		restored := filepath.Join(tmp, fmt.Sprintf("restored-%d", run))
		if _, _, err := backup.Restore(ctx, out, restored, backup.RestoreOptions{VerifierKey: l.VerifierKey()}); err != nil {
			t.Fatalf("run %d: restore: %v", run, err)
		}
		compareRestored(t, l, restored, m)
	}
	if last < 400 {
		t.Errorf("the last backup holds %d events; the appenders did not run alongside", last)
	}
}

// compareRestored opens the restored directory and compares it with the
// original engine up to the backup's checkpoint.
func compareRestored(t *testing.T, orig *trail.Log, dir string, m *backup.Manifest) {
	t.Helper()
	ctx := context.Background()
	r, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		t.Fatalf("open restored: %v", err)
	}
	defer r.Close(ctx)
	if r.Size() != m.Size || r.Checkpoint().Size != m.Size || string(r.Checkpoint().Signed) != m.Checkpoint {
		t.Fatalf("restored: %d events, checkpoint %d; want %d", r.Size(), r.Checkpoint().Size, m.Size)
	}
	for i := uint64(0); i < m.Size; i++ {
		a, err := orig.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Read(i)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("event %d: restored %q (%v), original %q", i, b, err, a)
		}
	}
	if m.Size > 0 {
		ra, _ := orig.Root(m.Size)
		rb, _ := r.Root(m.Size)
		if ra != rb {
			t.Fatalf("root of %d: restored %x, original %x", m.Size, rb, ra)
		}
	}
	rc, err := r.Append(ctx, trail.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: trail.Actor{ID: "after"}})
	if err != nil || rc.Index != m.Size {
		t.Fatalf("append to the restored log: %+v, %v", rc, err)
	}
}

// failAfter is a Writer that passes k files on and then fails, as a
// backup that dies part way does.
type failAfter struct {
	w backup.Writer
	k int
}

var errInjected = errors.New("injected failure")

func (f *failAfter) File(name string, size int64, r io.Reader) error {
	if f.k == 0 {
		return errInjected
	}
	f.k--
	return f.w.File(name, size, r)
}

// TestInterruptedBackupRefused: a backup stopped after any number of its
// files, or whole but not committed (the temporary directory left as a
// crash leaves it), leaves its target absent, and neither Check nor
// Restore accept what was written.
func TestInterruptedBackupRefused(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	l, err := trail.Open(dir, trail.Config{SegmentSize: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if _, err := l.Append(ctx, trail.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: trail.Actor{ID: fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := auth.EnsureAdminToken(dir); err != nil {
		t.Fatal(err)
	}
	whole, err := backup.NewDir(filepath.Join(tmp, "whole"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backup.Snapshot(ctx, vfs.Default, dir, backup.Options{}, whole)
	if err != nil {
		t.Fatal(err)
	}
	whole.Abort()
	if !m.Has(auth.AdminTokenFile) || !m.Has("checkpoint.key") {
		t.Fatalf("the backup lacks the admin token or the signing key: %+v", m.Files)
	}
	if len(m.Files) < 8 {
		t.Fatalf("a backup of %d files; want several segments", len(m.Files))
	}
	// k == len(m.Files): all but the manifest; k == len(m.Files)+1: the
	// snapshot is whole, but the process dies before Commit.
	for k := 0; k <= len(m.Files)+1; k++ {
		target := filepath.Join(tmp, fmt.Sprintf("cut-%d", k))
		d, err := backup.NewDir(target)
		if err != nil {
			t.Fatal(err)
		}
		_, err = backup.Snapshot(ctx, vfs.Default, dir, backup.Options{}, &failAfter{w: d, k: k})
		if k <= len(m.Files) && !errors.Is(err, errInjected) || k > len(m.Files) && err != nil {
			t.Fatalf("cut after %d files: %v", k, err)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cut after %d files: the target exists (%v)", k, err)
		}
		if _, _, err := backup.Check(ctx, d.Path(), backup.CheckOptions{}); !errors.Is(err, backup.ErrInvalid) {
			t.Errorf("cut after %d files: Check says %v", k, err)
		}
		newDir := filepath.Join(tmp, fmt.Sprintf("restored-%d", k))
		if _, _, err := backup.Restore(ctx, d.Path(), newDir, backup.RestoreOptions{}); !errors.Is(err, backup.ErrInvalid) {
			t.Errorf("cut after %d files: Restore says %v", k, err)
		}
		if _, err := os.Stat(newDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cut after %d files: a refused restore left %s", k, newDir)
		}
	}
}

// TestUntarRefuses: an archive naming a file outside a data directory's
// (a path that climbs out, an absolute one, an unknown name), a link, or a
// file after the manifest is refused, and nothing is written outside the
// backup's temporary directory.
func TestUntarRefuses(t *testing.T) {
	tmp := t.TempDir()
	for _, c := range []struct {
		name  string
		build func(tw *tar.Writer)
	}{
		{"climbs out", func(tw *tar.Writer) { addFile(tw, "log/../../escaped", "x") }},
		{"absolute", func(tw *tar.Writer) { addFile(tw, filepath.Join(tmp, "escaped"), "x") }},
		{"unknown name", func(tw *tar.Writer) { addFile(tw, "index/MANIFEST-000001", "x") }},
		{"bad segment name", func(tw *tar.Writer) { addFile(tw, "log/1.seg", "x") }},
		{"symlink", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "checkpoint.key", Linkname: "/etc/passwd"})
		}},
		{"after the manifest", func(tw *tar.Writer) {
			addFile(tw, backup.ManifestFile, "{}")
			addFile(tw, "FORMAT", "2\n")
		}},
		{"no manifest", func(tw *tar.Writer) { addFile(tw, "FORMAT", "2\n") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			c.build(tw)
			tw.Close()
			d, err := backup.NewDir(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Abort()
			if err := backup.Untar(&buf, d); !errors.Is(err, backup.ErrInvalid) {
				t.Errorf("Untar: %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(tmp, "escaped")); err == nil {
		t.Error("an archive wrote outside the backup")
	}
}

func addFile(tw *tar.Writer, name, body string) {
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o600})
	tw.Write([]byte(body))
}
