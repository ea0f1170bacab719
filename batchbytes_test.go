package trail

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/trailhq/trail/internal/store"
)

// TestMaxBatchBytes checks that a group-commit write stays within
// Config.MaxBatchBytes, whatever the events' sizes, except for an atomic
// batch larger than the bound, which is written whole.
func TestMaxBatchBytes(t *testing.T) {
	const limit = 64 << 10
	var mu sync.Mutex
	var sizes []int
	testHookWrite = func(b *store.Batch) {
		mu.Lock()
		sizes = append(sizes, len(b.Buf))
		mu.Unlock()
	}
	defer func() { testHookWrite = nil }()
	l := openFilesTest(t, t.TempDir(), Config{MaxBatchBytes: limit})
	ctx := context.Background()
	var pendings []*Pending
	for i := range 3000 {
		ev := testEvent(fmt.Sprintf("patient/%d", i%50), i)
		if i%3 == 0 { // events of about 300 bytes and of about 4 KB, mixed
			ev.Details = json.RawMessage(fmt.Sprintf(`{"note":%q}`, strings.Repeat("x", 4000)))
		}
		pendings = append(pendings, l.Log(ev))
	}
	for i, p := range pendings {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	mu.Lock()
	written, most := len(sizes), 0
	for _, n := range sizes {
		most = max(most, n)
	}
	mu.Unlock()
	if most > limit {
		t.Fatalf("a write of %d bytes, MaxBatchBytes %d", most, limit)
	}
	if written < 3000*1500/limit {
		t.Fatalf("%d writes for %d events of about 1.5 KB on average: batches cannot have been near %d bytes", written, 3000, limit)
	}

	// An atomic batch larger than the bound is written whole, in one write.
	evs := make([]Event, 40)
	for i := range evs {
		evs[i] = testEvent("patient/big", i)
		evs[i].Details = json.RawMessage(fmt.Sprintf(`{"note":%q}`, strings.Repeat("y", 4000)))
	}
	mu.Lock()
	sizes = sizes[:0]
	mu.Unlock()
	if _, err := l.AppendBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 1 || sizes[0] < 40*4000 {
		t.Fatalf("an atomic batch of 40 events of 4 KB: writes %v, want one of all of it", sizes)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
