package server

import (
	"sync"
	"time"
)

// failLimiter rate-limits failed authentication per client address: each
// address has a bucket of failBurst attempts, refilled at failRate a
// second. An address whose bucket is empty gets 429 without its token being
// looked at, valid or not, so guessing tokens is slow; only failures take
// from the bucket. Behind a reverse proxy every client shares the proxy's
// address (the limit then applies to all of them together).
type failLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

const (
	failBurst  = 20
	failRate   = 1.0 // per second
	maxBuckets = 100_000
	bucketIdle = time.Minute
)

func newFailLimiter() *failLimiter {
	return &failLimiter{buckets: map[string]*bucket{}, now: time.Now}
}

// blocked reports whether addr has no attempts left, and when it will.
func (l *failLimiter) blocked(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(addr)
	if b == nil || b.tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - b.tokens) / failRate * float64(time.Second))
}

// failed takes one attempt from addr's bucket.
func (l *failLimiter) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(addr)
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweep()
		}
		b = &bucket{tokens: failBurst, last: l.now()}
		l.buckets[addr] = b
	}
	b.tokens = max(b.tokens-1, 0)
}

// refill brings addr's bucket up to now; nil if it has none.
func (l *failLimiter) refill(addr string) *bucket {
	b := l.buckets[addr]
	if b == nil {
		return nil
	}
	now := l.now()
	b.tokens = min(failBurst, b.tokens+now.Sub(b.last).Seconds()*failRate)
	b.last = now
	return b
}

// sweep drops full buckets idle for a while; if none, any half of them, so
// the map stays bounded whatever addresses an attacker uses.
func (l *failLimiter) sweep() {
	now := l.now()
	for a, b := range l.buckets {
		if now.Sub(b.last) > bucketIdle {
			delete(l.buckets, a)
		}
	}
	for a := range l.buckets {
		if len(l.buckets) < maxBuckets/2 {
			break
		}
		delete(l.buckets, a)
	}
}
