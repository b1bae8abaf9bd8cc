package pushservice

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters is a token bucket per key (a capability, or a VAPID key). The
// sweeper drops buckets that have refilled, so it stays as small as the
// set of recently active senders. Capabilities are checked before they
// get a bucket, but the VAPID key of a subscription registered without
// one is whatever the sender says: the map is capped at max buckets, and
// when it is full of live ones a new key is turned away as rate-limited.
type limiters struct {
	limit rate.Limit
	burst int
	max   int

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

func newLimiters(limit rate.Limit, burst int) *limiters {
	return &limiters{limit: limit, burst: burst, max: maxBuckets, buckets: make(map[string]*rate.Limiter)}
}

// maxBuckets bounds the memory of one limiters (about 100 bytes a bucket).
const maxBuckets = 100_000

// fullWait is the Retry-After of a key turned away because the map is full.
const fullWait = 10 * time.Second

// reserve takes a token for key at now and returns a function that gives
// it back. If none is available it takes nothing and returns how long
// until one is.
func (l *limiters) reserve(key string, now time.Time) (undo func(), wait time.Duration) {
	if l.limit == rate.Inf {
		return func() {}, 0
	}
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.pruneLocked(now)
		}
		if len(l.buckets) >= l.max {
			l.mu.Unlock()
			return nil, fullWait
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return nil, time.Hour // a burst of 0 never admits anything
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return func() { r.CancelAt(now) }, 0
}

// prune forgets the buckets that are full again: a new bucket would be
// the same.
func (l *limiters) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(now)
}

func (l *limiters) pruneLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}

// retryAfter renders a wait as whole seconds for Retry-After, at least 1.
func retryAfter(d time.Duration) int {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		return 1
	}
	if s > 86400 {
		return 86400
	}
	return int(s)
}
