package pushservice

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters is a token bucket per key (a capability, or a VAPID key). Only
// keys of real subscriptions reach it (unknown capabilities are refused
// first), and the sweeper drops buckets that have refilled, so it stays
// as small as the set of recently active senders.
type limiters struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

func newLimiters(limit rate.Limit, burst int) *limiters {
	return &limiters{limit: limit, burst: burst, buckets: make(map[string]*rate.Limiter)}
}

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
