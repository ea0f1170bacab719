package event

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestStoredLen checks that StoredLen predicts AppendStored's length exactly
// (the sequencer writes records into room reserved with it) over random
// events, indexes, sequence numbers and with or without prev and time.
func TestStoredLen(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	recorded := []byte("2026-12-08T03:04:05.123456789Z")
	salt := make([]byte, SaltLen/2)
	numbers := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return uint64(rng.IntN(10))
		case 1:
			return math.MaxUint64 - uint64(rng.IntN(3))
		case 2:
			return uint64(math.Pow10(rng.IntN(20))) - uint64(rng.IntN(2))
		}
		return rng.Uint64() >> rng.IntN(64)
	}
	for i := 0; i < 20000; i++ {
		ev := Event{
			ID:     string(make([]byte, rng.IntN(65))),
			Stream: string(make([]byte, 1+rng.IntN(256))),
			Type:   "t", Action: "R",
			Actor: Actor{ID: string(make([]byte, rng.IntN(100)))},
		}
		e, _, err := Encode(&ev, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.ID, e.Stream = ev.ID, ev.Stream
		e.HasTime = rng.IntN(2) == 0
		if rng.IntN(3) == 0 {
			e.Original = make([]byte, rng.IntN(1000))
		}
		var prev *Hash
		if rng.IntN(2) == 0 {
			prev = &Hash{}
		}
		index, seq := numbers(), numbers()
		got := StoredLen(&e, index, seq, len(recorded), prev != nil)
		want := len(AppendStored(nil, &e, index, seq, recorded, salt, prev))
		if got != want {
			t.Fatalf("StoredLen(index %d, seq %d, time %v, prev %v) = %d, AppendStored wrote %d", index, seq, e.HasTime, prev != nil, got, want)
		}
	}
}
