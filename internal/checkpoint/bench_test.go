package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// BenchmarkOpen opens a directory on disk whose log holds n checkpoints,
// and reports the heap the open store keeps (retained-B).
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			fs, dir := vfs.Default, b.TempDir()
			writeBenchLog(b, fs, dir, n)
			b.ReportAllocs()
			var m0, m1 runtime.MemStats
			var retained uint64
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&m0)
				b.StartTimer()
				s, err := Open(fs, dir, "")
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&m1)
				retained = max(retained, m1.HeapAlloc-min(m1.HeapAlloc, m0.HeapAlloc))
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(retained), "retained-B")
		})
	}
}

// writeBenchLog makes a store in dir whose log holds n checkpoints, written
// in one go (Add would fsync each).
func writeBenchLog(b *testing.B, fs vfs.FS, dir string, n int) {
	s, err := Open(fs, dir, "example.com/log")
	if err != nil {
		b.Fatal(err)
	}
	var log []byte
	var last Checkpoint
	for size := 1; size <= n; size++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(size)))
		if last, err = Sign(s.signer, uint64(size), h[:]); err != nil {
			b.Fatal(err)
		}
		log = segment.AppendFrame(log, last.Signed, false)
	}
	if _, err := s.log.WriteAt(log, 0); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := durable.WriteFile(fs, dir, LatestFile, last.Signed, false); err != nil {
		b.Fatal(err)
	}
}
