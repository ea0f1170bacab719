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

// TestLimiterCharge: charged work takes a bucket into debt, bounded by
// AllowDebt; the key is refused until the debt is paid off at the rate, and
// other keys are unaffected. Without AllowDebt a charge stops at empty.
func TestLimiterCharge(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	l := NewLimiter(10, 5, 10).AllowDebt(100)
	l.now = func() time.Time { return now }
	if ok, _ := l.Take("a"); !ok {
		t.Fatal("first take refused")
	}
	l.Charge("a", 24) // 4 left, charged 24: 20 in debt
	ok, wait := l.Take("a")
	if ok || wait != 2100*time.Millisecond {
		t.Fatalf("take in debt of 20 at 10/s: ok %v wait %v, want refused for 2.1s", ok, wait)
	}
	if blocked, w := l.Blocked("a"); !blocked || w != wait {
		t.Fatalf("blocked in debt: %v %v, want blocked for %v", blocked, w, wait)
	}
	if ok, _ := l.Take("b"); !ok {
		t.Fatal("another key refused while a is in debt")
	}
	now = now.Add(2 * time.Second)
	if ok, _ := l.Take("a"); ok {
		t.Fatal("take after 2s of a 2.1s debt allowed")
	}
	now = now.Add(100 * time.Millisecond)
	if ok, _ := l.Take("a"); !ok {
		t.Fatal("take once the debt is paid refused")
	}

	// The debt is bounded: however much is charged, a refill of maxDebt+1
	// tokens (10.1s at 10/s) pays it off.
	l.Charge("a", 1e9)
	l.Charge("a", 1e9)
	if _, wait := l.Take("a"); wait != 10100*time.Millisecond {
		t.Fatalf("wait after charging 2e9: %v, want 10.1s (the debt bound of 100)", wait)
	}
	now = now.Add(10100 * time.Millisecond)
	if ok, _ := l.Take("a"); !ok {
		t.Fatal("take once the bounded debt is paid refused")
	}
	// Burst is still the most a bucket holds after a long rest.
	now = now.Add(time.Hour)
	for i := range 5 {
		if ok, _ := l.Take("a"); !ok {
			t.Fatalf("take %d of a burst of 5 after a rest refused", i+1)
		}
	}
	if ok, _ := l.Take("a"); ok {
		t.Fatal("a 6th take in a burst of 5 allowed")
	}

	// Without AllowDebt a charge empties the bucket and goes no further.
	m := NewLimiter(10, 5, 10)
	m.now = l.now
	m.Charge("c", 50)
	if _, wait := m.Take("c"); wait != 100*time.Millisecond {
		t.Fatalf("without debt allowed, wait after charging 50: %v, want 100ms (empty, not in debt)", wait)
	}
}
