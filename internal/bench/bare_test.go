package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/trailhq/trail"
)

// TestNaiveWritesEveryEvent checks the naive reference does the work it is
// credited with: every event it acknowledges is in its file, encoded whole,
// in all the streams the workload spreads them over.
func TestNaiveWritesEveryEvent(t *testing.T) {
	for _, async := range []bool{false, true} {
		dir := t.TempDir()
		n, err := OpenNaive(dir)
		if err != nil {
			t.Fatal(err)
		}
		w := Workload{Events: 6000, Size: 300, Producers: 8, Streams: 5000, Async: async}
		if _, err := Run(context.Background(), n, w); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, "naive.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		lines, streams := 0, map[string]bool{}
		for sc.Scan() {
			var ev trail.Event
			if err := json.Unmarshal(bytes.TrimSpace(sc.Bytes()), &ev); err != nil {
				t.Fatalf("line %d: %v", lines+1, err)
			}
			streams[ev.Stream] = true
			lines++
		}
		if lines != w.Events {
			t.Fatalf("async=%v: %d events in the file, %d acknowledged", async, lines, w.Events)
		}
		// More streams than the 4096 event templates: every stream used.
		if len(streams) != w.Streams {
			t.Fatalf("async=%v: %d distinct streams, want %d", async, len(streams), w.Streams)
		}
	}
}
