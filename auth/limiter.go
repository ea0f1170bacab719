package auth

import (
	"math"
	"sync"
	"time"
)

// Limiter is a table of token buckets, one per key (a client address for
// failed authentication, a principal for reads), each holding at most burst
// tokens and refilled at rate a second. The table is bounded: past
// maxBuckets keys, full buckets idle for a while are dropped first, then any
// half, so an attacker who varies its key cannot grow it without limit (a
// dropped bucket comes back full, which is the price of the bound).
//
// Only Charge takes a bucket below empty, into a debt of at most maxDebt
// tokens (set by AllowDebt; none by default) that refills at rate like any
// other shortfall: a key in debt is refused until it is paid off.
type Limiter struct {
	mu      sync.Mutex
	burst   float64
	rate    float64 // tokens a second
	maxDebt float64
	buckets map[string]*bucket
	max     int
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

const bucketIdle = time.Minute

// NewLimiter returns an empty table of buckets holding at most burst tokens
// each, refilled at rate a second, for at most maxBuckets keys.
func NewLimiter(rate, burst float64, maxBuckets int) *Limiter {
	return &Limiter{rate: rate, burst: burst, buckets: map[string]*bucket{}, max: maxBuckets, now: time.Now}
}

// Blocked reports whether key has no token left, and how long until it has
// one; it takes nothing.
func (l *Limiter) Blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b == nil || b.tokens >= 1 {
		return false, 0
	}
	return true, l.wait(b)
}

// Take takes one token from key's bucket when it has one; otherwise it
// reports how long until it will.
func (l *Limiter) Take(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key)
	if b.tokens < 1 {
		return false, l.wait(b)
	}
	b.tokens--
	return true, 0
}

// AllowDebt lets Charge take a bucket down to -d tokens, and returns l. Call
// it before l is used.
func (l *Limiter) AllowDebt(d float64) *Limiter {
	l.maxDebt = max(d, 0)
	return l
}

// Charge takes n tokens from key's bucket for work already allowed (such as
// the records a read appended past its own), into debt if need be but never
// below -maxDebt. Until the bucket has refilled to one token, Take refuses
// key and Blocked reports it, with the wait until then.
func (l *Limiter) Charge(key string, n float64) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key)
	b.tokens = max(b.tokens-n, min(b.tokens, -l.maxDebt))
}

// Spend takes one token from key's bucket, down to empty.
func (l *Limiter) Spend(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key)
	b.tokens = max(b.tokens-1, 0)
}

func (l *Limiter) wait(b *bucket) time.Duration {
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// get returns key's bucket brought up to now, making a full one if needed.
func (l *Limiter) get(key string) *bucket {
	b := l.refill(key)
	if b == nil {
		if len(l.buckets) >= l.max {
			l.sweep()
		}
		b = &bucket{tokens: l.burst, last: l.now()}
		l.buckets[key] = b
	}
	return b
}

// refill brings key's bucket up to now; nil if it has none.
func (l *Limiter) refill(key string) *bucket {
	b := l.buckets[key]
	if b == nil {
		return nil
	}
	now := l.now()
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	return b
}

// sweep drops full buckets idle for a while; if that is not enough, any
// half of them.
func (l *Limiter) sweep() {
	now := l.now()
	for k, b := range l.buckets {
		if now.Sub(b.last) > bucketIdle && b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max/2 {
			break
		}
		delete(l.buckets, k)
	}
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Failed authentication: a burst of 20 attempts per address, then one a
// second. Only failures take from the bucket, and only requests without
// valid credentials are refused, so failures from a shared address (a NAT, a
// proxy) never lock out the applications behind it.
const (
	FailBurst = 20
	FailRate  = 1.0
)

// MaxBuckets bounds the keys a Limiter of the server holds (client
// addresses for failed authentication, principals for reads).
const MaxBuckets = 100_000

// Rate is a sustained rate a second with a burst. A PerSecond that is not a
// positive finite number (zero, negative, NaN, Inf) means the default: such
// a limit would never refill or never run out.
type Rate struct {
	PerSecond float64
	Burst     int
}

// IsSet reports whether r names a rate of its own rather than the default.
func (r Rate) IsSet() bool { return r.PerSecond > 0 && !math.IsInf(r.PerSecond, 0) }
