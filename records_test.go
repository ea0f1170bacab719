package trail

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRecordsWrittenInParallel checks what the sequencer's parallel writing
// of records must keep, with one goroutine and with two (parallelRecords):
// every receipt's leaf hash is its record's, every stream's events are
// numbered 1, 2, 3, … with each prev the leaf hash of the event before
// (streams hot and cold mixed in large sequencer batches), an id repeated
// within one sequencer batch — in one LogBatch or in separate Log calls —
// gets the first event's receipt, and the whole directory verifies offline.
func TestRecordsWrittenInParallel(t *testing.T) {
	for _, threshold := range []int{1 << 30, 2, 256} {
		t.Run(fmt.Sprintf("threshold-%d", threshold), func(t *testing.T) {
			old := parallelRecords
			parallelRecords = threshold
			defer func() { parallelRecords = old }()
			dir := t.TempDir()
			l := openFilesTest(t, dir, Config{})
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(threshold), 7))
			stream := func() string {
				if rng.IntN(3) == 0 {
					return "patient/hot"
				}
				return fmt.Sprintf("patient/%d", rng.IntN(40))
			}
			type sent struct {
				ev    Event
				first int // index in sent of the event it repeats, or itself
			}
			var all []sent
			var pendings []*Pending
			for round := range 6 {
				// Single events logged without waiting: the sequencer takes
				// hundreds at once. Some repeat an id of this round, which
				// is then still in the batch being built.
				start := len(all)
				for i := range 700 {
					ev := testEvent(stream(), round*1000+i)
					first := len(all)
					if i > 0 && rng.IntN(10) == 0 {
						first = start + rng.IntN(len(all)-start)
						if all[first].ev.ID == "" {
							all[first].ev.ID = fmt.Sprintf("r%d-%d", round, first)
						}
						ev = all[first].ev
						first = all[first].first
					} else if rng.IntN(4) == 0 {
						ev.ID = fmt.Sprintf("given-%d-%d", round, i)
					}
					all = append(all, sent{ev: ev, first: first})
				}
				for i := start; i < len(all); i++ {
					pendings = append(pendings, l.Log(all[i].ev))
				}
				// And one atomic batch with repeats inside it.
				evs := make([]Event, 500)
				for i := range evs {
					evs[i] = testEvent(stream(), round*1000+700+i)
					evs[i].ID = fmt.Sprintf("b%d-%d", round, i)
					if i > 0 && rng.IntN(8) == 0 {
						evs[i] = evs[rng.IntN(i)]
					}
				}
				rs, err := l.AppendBatch(ctx, evs)
				if err != nil {
					t.Fatal(err)
				}
				firstOf := map[string]Receipt{}
				for i, r := range rs {
					if f, ok := firstOf[evs[i].ID]; ok && f != r {
						t.Fatalf("batch event %d repeats id %s: receipt %+v, first %+v", i, evs[i].ID, r, f)
					}
					firstOf[evs[i].ID] = r
					checkLeaf(t, l, r)
				}
			}
			receipts := make([]Receipt, len(pendings))
			for i, p := range pendings {
				r, err := p.Wait(ctx)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				receipts[i] = r
				if f := all[i].first; f != i && receipts[f] != r {
					t.Fatalf("event %d repeats event %d: receipt %+v, first %+v", i, f, r, receipts[f])
				}
				checkLeaf(t, l, r)
			}
			checkChains(t, l)
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(ctx, dir, VerifyOptions{})
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if rep.Events != l.Size() {
				t.Fatalf("verify checked %d events, log has %d", rep.Events, l.Size())
			}
		})
	}
}

// checkLeaf checks that r's leaf hash and stream_seq are those of its record.
func checkLeaf(t *testing.T, l *Log, r Receipt) {
	t.Helper()
	rec, err := l.Read(r.Index)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseStored(rec)
	if err != nil {
		t.Fatal(err)
	}
	if LeafHash(rec) != r.LeafHash || ev.StreamSeq != r.StreamSeq || ev.Stream != r.Stream || ev.ID != r.ID {
		t.Fatalf("receipt %+v does not match its record %s", r, rec)
	}
}

// checkChains reads the whole log and checks that each stream's events are
// numbered 1, 2, 3, … with each prev the leaf hash of the stream's event
// before.
func checkChains(t *testing.T, l *Log) {
	t.Helper()
	type link struct {
		seq  uint64
		leaf Hash
		prev *Hash
	}
	streams := map[string][]link{}
	for i := range l.Size() {
		rec, err := l.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ParseStored(rec)
		if err != nil {
			t.Fatal(err)
		}
		streams[ev.Stream] = append(streams[ev.Stream], link{ev.StreamSeq, LeafHash(rec), ev.Prev})
	}
	for st, links := range streams {
		slices.SortFunc(links, func(a, b link) int { return cmp.Compare(a.seq, b.seq) })
		for i, k := range links {
			if k.seq != uint64(i+1) {
				t.Fatalf("stream %s: its %dth event has stream_seq %d", st, i+1, k.seq)
			}
			if (i == 0) != (k.prev == nil) || (i > 0 && *k.prev != links[i-1].leaf) {
				t.Fatalf("stream %s: event %d: prev %v, want the leaf hash of event %d", st, k.seq, k.prev, i)
			}
		}
	}
}
