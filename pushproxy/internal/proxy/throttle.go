package proxy

import (
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxThrottleKeys bounds the limiter table, as upstream's
// ThrottleMemoryStoreSize does.
const maxThrottleKeys = 50000

// throttle is a token bucket per sender.
type throttle struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newThrottle(perSec, burst int) *throttle {
	return &throttle{limit: rate.Limit(perSec), burst: burst, buckets: make(map[string]*bucket)}
}

// allow takes a token from key's bucket, or says how long until one is due.
func (t *throttle) allow(key string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	b := t.buckets[key]
	if b == nil {
		if len(t.buckets) >= maxThrottleKeys {
			t.pruneLocked(now)
		}
		b = &bucket{lim: rate.NewLimiter(t.limit, t.burst)}
		t.buckets[key] = b
	}
	b.seen = now
	t.mu.Unlock()

	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// pruneLocked forgets buckets idle long enough to be full again (a new
// bucket is the same), and if that is not enough, any half of them: under
// a flood of distinct senders a forgotten one only regains its burst.
func (t *throttle) pruneLocked(now time.Time) {
	refill := time.Duration(math.Ceil(float64(t.burst)/float64(t.limit))) * time.Second
	for k, b := range t.buckets {
		if now.Sub(b.seen) > refill {
			delete(t.buckets, k)
		}
	}
	for k := range t.buckets {
		if len(t.buckets) < maxThrottleKeys/2 {
			break
		}
		delete(t.buckets, k)
	}
}

// senderKey names the sender of r for the throttle: the remote address,
// or, when that address is a trusted proxy, the nearest untrusted address
// in X-Forwarded-For (read right to left, as each proxy appends). A
// request whose remote address cannot be parsed (an in-process caller)
// is keyed by the raw value, never by an empty key all senders share.
func senderKey(r *http.Request, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
			ap = netip.AddrPortFrom(a, 0)
		} else {
			return "remote:" + r.RemoteAddr
		}
	}
	addr := ap.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := parseForwarded(parts[j])
			if err != nil {
				return addr.String() // a hop we cannot read: stop at the last one we could
			}
			addr = a
			if !isTrusted(a, trusted) {
				return a.String()
			}
		}
	}
	return addr.String()
}

func parseForwarded(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap(), nil
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
