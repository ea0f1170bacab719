package auth

import (
	"strconv"
	"testing"
	"time"
)

// TestHdLimiterBounded: an attacker who varies its key (a new address, or a
// new /64, for every attempt) cannot grow the failed-authentication table
// past its bound, however many keys it uses.
func TestHdLimiterBounded(t *testing.T) {
	l := NewLimiter(FailRate, FailBurst, MaxBuckets)
	now := time.Now()
	l.now = func() time.Time { return now } // all within a second: nothing is idle
	peak := 0
	key := []byte("2001:db8::/64#")
	for i := range 1_000_000 {
		l.Spend(string(strconv.AppendInt(key[:14], int64(i), 10)))
		if n := len(l.buckets); n > peak {
			peak = n
		}
	}
	if peak > MaxBuckets {
		t.Errorf("table held %d buckets under 1M distinct keys; the bound is %d", peak, MaxBuckets)
	}
	if n := l.Len(); n == 0 || n > MaxBuckets {
		t.Errorf("table holds %d buckets after 1M distinct keys, want 1-%d", n, MaxBuckets)
	}
}

// TestHdLimiterCounts: a key has its burst, then one attempt per refill;
// Blocked takes nothing, and other keys are unaffected.
func TestHdLimiterCounts(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	l := NewLimiter(1, 3, 10)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if blocked, _ := l.Blocked("a"); blocked {
			t.Fatalf("attempt %d of a burst of 3 blocked", i+1)
		}
		l.Spend("a")
	}
	blocked, wait := l.Blocked("a")
	if !blocked || wait <= 0 || wait > time.Second {
		t.Fatalf("after the burst: blocked %v wait %v, want blocked for at most 1s", blocked, wait)
	}
	if blocked, _ := l.Blocked("a"); !blocked {
		t.Fatal("blocked took a token: a second look unblocked the key")
	}
	if blocked, _ := l.Blocked("b"); blocked {
		t.Fatal("another key is blocked by a's failures")
	}
	now = now.Add(time.Second)
	if blocked, _ := l.Blocked("a"); blocked {
		t.Fatal("a is still blocked a refill later")
	}
	if ok, _ := l.Take("a"); !ok {
		t.Fatal("take after a refill failed")
	}
	if ok, wait := l.Take("a"); ok || wait <= 0 {
		t.Fatalf("take on an empty bucket: ok %v wait %v, want refused with a wait", ok, wait)
	}
}
