package verify

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// TestDirCheckpoints reads a directory's checkpoints as Dir does: one at a
// time, in order, and fails check when the file changed between its two
// reads (one checkpoint replaced by another signed one, past the first
// chunk the second read has read when verifiedCheckpoints returns).
func TestDirCheckpoints(t *testing.T) {
	const n, replaced = 1000, 900
	for _, change := range []bool{false, true} {
		fs := vfs.NewMem()
		s, err := checkpoint.Open(fs, "", "example.com/log")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var want []checkpoint.Checkpoint
		var off int64
		for k := range uint64(n) {
			c, err := s.Add(k, bytes.Repeat([]byte{byte(k)}, 32))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, c)
			if k < replaced {
				off += int64(len(segment.AppendFrame(nil, c.Signed, false)))
			}
		}
		cps, err := verifiedCheckpoints(fs, "", "")
		if err != nil {
			t.Fatal(err)
		}
		l := cps.list
		if l.n != len(want) || string(l.latest.Signed) != string(want[len(want)-1].Signed) {
			t.Fatalf("count %d, latest %q; want %d, %q", l.n, l.latest.Signed, len(want), want[len(want)-1].Signed)
		}
		if change {
			skey, err := durable.ReadFile(fs, checkpoint.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
			if err != nil {
				t.Fatal(err)
			}
			other, err := checkpoint.Sign(signer, replaced, bytes.Repeat([]byte{1}, 32))
			if err != nil {
				t.Fatal(err)
			}
			f, err := fs.OpenReadWrite(checkpoint.LogFile, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(segment.AppendFrame(nil, other.Signed, false), off); err != nil {
				t.Fatal(err)
			}
			f.Close()
			want[replaced] = other
		}
		for k := range want {
			if !l.ok || l.k != k || l.cur.Size != want[k].Size || string(l.root) != string(want[k].Root) {
				t.Fatalf("checkpoint %d: ok %v, number %d, size %d; want size %d", k, l.ok, l.k, l.cur.Size, want[k].Size)
			}
			l.pop()
		}
		err = cps.check()
		switch {
		case change && (err == nil || !strings.Contains(err.Error(), "changed")):
			t.Errorf("check after the file changed = %v, want an error", err)
		case !change && (l.ok || err != nil):
			t.Errorf("check = %v (more %v), want nil", err, l.ok)
		}
	}
}
