//go:build linux

package server_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiskMetrics: /metrics has the free and total bytes of the data
// directory's file system, as statfs gives them at scrape time; a log kept
// in PostgreSQL has no data directory and no such series.
func TestDiskMetrics(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.appendOne(t, event("disk-1", "patient/1"))
	r := s.do(t, http.MethodGet, "/metrics", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/metrics: %v", r)
	}
	sample := func(name string) (float64, bool) {
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(string(r.Body))
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("%s sample %q: %v", name, m[1], err)
		}
		return v, true
	}
	free, okFree := sample("trail_disk_free_bytes")
	size, okSize := sample("trail_disk_size_bytes")
	if *storeFlag == "postgres" {
		if okFree || okSize {
			t.Fatalf("a log in PostgreSQL exports disk space (free %v, size %v); it has no data directory", okFree, okSize)
		}
		return
	}
	if !okFree || !okSize {
		t.Fatalf("/metrics has trail_disk_free_bytes %v and trail_disk_size_bytes %v, want both", okFree, okSize)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		t.Fatal(err)
	}
	wantSize := float64(st.Blocks) * float64(st.Bsize)
	wantFree := float64(st.Bavail) * float64(st.Bsize)
	if size <= 0 || free <= 0 || free > size {
		t.Fatalf("trail_disk_free_bytes %v, trail_disk_size_bytes %v: want 0 < free <= size", free, size)
	}
	if size != wantSize {
		t.Errorf("trail_disk_size_bytes %v, statfs says %v", size, wantSize)
	}
	// Other programs write to the same file system meanwhile: the free
	// space may have moved, by little.
	if d := free - wantFree; d > size/100 || -d > size/100 {
		t.Errorf("trail_disk_free_bytes %v, statfs says %v a moment later: more than 1%% of %v apart", free, wantFree, size)
	}
}
