package trail

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestStreamHeadsBounded appends to many more streams than the sequencer may
// keep heads of, first while the index store is held back (no head may be
// dropped then: the store could not give it back) and then while it keeps
// up, and checks that every stream stays one gap-free chain: stream_seq
// 1, 2, 3, … with each prev the leaf hash of the event before.
func TestStreamHeadsBounded(t *testing.T) {
	const limit, streams = 16, 300
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	testHookApply = func() { <-hold }
	t.Cleanup(func() { release(); testHookApply = nil })

	l := openTest(t, t.TempDir(), Config{MaxStreamHeads: limit})
	defer l.Close(context.Background())
	defer release() // before Close, which waits for the index store
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]Receipt{}
	appendTo := func(n int) {
		for range n {
			st := fmt.Sprintf("patient/%d", rng.IntN(streams))
			r, err := l.Append(ctx, testEvent(st, len(want[st])))
			if err != nil {
				t.Fatal(err)
			}
			want[st] = append(want[st], r)
		}
	}
	// Held back: every cached head names an event the index store lacks,
	// so none may be dropped; past half again the limit the sequencer
	// waits for the store instead of growing the cache.
	held := make(chan error, 1)
	var heldReceipts []Receipt
	var heldStreams []string
	go func() {
		for i := range 2000 {
			st := fmt.Sprintf("patient/%d", rng.IntN(streams))
			r, err := l.Append(ctx, testEvent(st, i))
			if err != nil {
				held <- err
				return
			}
			heldReceipts, heldStreams = append(heldReceipts, r), append(heldStreams, st)
		}
		held <- nil
	}()
	for last := uint64(0); ; {
		time.Sleep(300 * time.Millisecond)
		n := l.Size()
		if n == last {
			break
		}
		last = n
	}
	if n := l.Stats().StreamHeads; n > limit+limit/2+1 {
		t.Fatalf("%d heads cached while the index store lags, limit %d: the cache grew past half again its limit", n, limit)
	}
	// In PostgreSQL a head is in the database once its batch commits, and
	// the engine follows commits (applied advances without the indexer), so
	// nothing there need wait.
	if n := l.Size(); n >= 2000 && *storeFlag == "files" {
		t.Fatalf("all %d appends went through while the index store was held and the cache was full", n)
	}
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, r := range heldReceipts {
		want[heldStreams[i]] = append(want[heldStreams[i]], r)
	}
	appendTo(4000)
	// Once the index store has caught up, the next batch trims the cache
	// to the limit (and that batch's stream).
	if err := l.waitApplied(ctx, l.Size()); err != nil {
		t.Fatal(err)
	}
	appendTo(1)
	if n := l.Stats().StreamHeads; n > limit+1 {
		t.Fatalf("%d heads cached, limit %d", n, limit)
	}
	// Concurrent producers too.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				st := fmt.Sprintf("patient/%d", (p*7919+i*31)%streams)
				r, err := l.Append(ctx, testEvent(st, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[st] = append(want[st], r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	for st, rs := range want {
		slices.SortFunc(rs, func(a, b Receipt) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
		for i, r := range rs {
			if r.StreamSeq != uint64(i+1) {
				t.Fatalf("stream %s: %d events, the %dth has stream_seq %d (a dropped head restarted or skipped the stream)", st, len(rs), i+1, r.StreamSeq)
			}
			checkLeaf(t, l, r)
		}
	}
	checkChains(t, l)
}
