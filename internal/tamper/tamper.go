// Package tamper alters a Trail data directory as someone with the disk but
// not the signing key would, for the tests of tamper evidence: a record's
// bytes change and its frame checksum is fixed, so the frame reads as whole
// and only the hashes can tell. Nothing outside tests imports it.
package tamper

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// Record changes one letter of record i's type in the log under dir on fs,
// fixes its frame checksum, writes the frame in place and syncs it. It
// returns the altered record.
func Record(fs vfs.FS, dir string, i uint64) ([]byte, error) {
	segDir := fs.PathJoin(dir, "log")
	names, err := fs.List(segDir)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var n uint64
	for _, name := range names {
		if !strings.HasSuffix(name, ".seg") {
			continue
		}
		path := fs.PathJoin(segDir, name)
		data, err := durable.ReadFile(fs, path)
		if err != nil {
			return nil, err
		}
		for pos := 0; pos < len(data); n++ {
			rec, more, size, err := segment.DecodeFrame(data[pos:])
			if err != nil {
				break
			}
			if n == i {
				return rec, rewrite(fs, path, data, rec, pos, size, more)
			}
			pos += size
		}
	}
	return nil, fmt.Errorf("tamper: no record %d in %s (%d records)", i, segDir, n)
}

// rewrite flips a bit of the first letter of rec's type, fixes the header
// of the frame at data[pos:pos+size] and writes that frame back.
func rewrite(fs vfs.FS, path string, data, rec []byte, pos, size int, more bool) error {
	k := bytes.Index(rec, []byte(`"type":"`))
	if k < 0 {
		return fmt.Errorf("tamper: record has no type: %s", rec)
	}
	rec[k+len(`"type":"`)] ^= 0x01
	segment.EndFrame(data[:pos+size], pos, more)
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(data[pos:pos+size], int64(pos)); err != nil {
		return err
	}
	return f.Sync()
}
