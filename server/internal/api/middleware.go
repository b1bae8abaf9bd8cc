package api

import (
	"context"
	"hash/fnv"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func parseSiteURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, nil
	}
	return url.Parse(s)
}

// common sets the headers Mattermost puts on every response and assigns
// the request id.
func (a *API) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := model.NewID()
		h := w.Header()
		h.Set("X-Request-ID", id)
		h.Set("X-Version-ID", a.versionID)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method == http.MethodGet {
			h.Set("Expires", "0")
		}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// bounded limits a request's body to MaximumPayloadSizeBytes and its run
// time to the request timeout, so a request waiting on a dead database
// ends. routes applies it to everything but file transfers and the
// WebSocket.
func (a *API) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.MaxPayload > 0 && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, a.o.MaxPayload)
		}
		if a.o.RequestTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), a.o.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP returns the caller's address, from a trusted proxy header when
// configured (ServiceSettings.TrustedProxyIPHeader).
func (a *API) clientIP(r *http.Request) string {
	for _, h := range a.o.TrustedProxyIPHeader {
		if v := r.Header.Get(h); v != "" {
			first, _, _ := strings.Cut(v, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// keyedLimiter is a token bucket per key with a bounded number of keys.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex // guards m
	m  map[string]*rate.Limiter
}

func newKeyedLimiter(perSec float64, burst, max int) *keyedLimiter {
	if max <= 0 {
		max = 10000
	}
	return &keyedLimiter{limit: rate.Limit(perSec), burst: burst, max: max, m: map[string]*rate.Limiter{}}
}

func (l *keyedLimiter) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			// Forget full buckets first; they carry no state worth keeping.
			now := time.Now()
			for k, v := range l.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
			if len(l.m) >= l.max {
				clear(l.m)
			}
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	return lim
}

// allow takes a token for key.
func (l *keyedLimiter) allow(key string) bool { return l.get(key).Allow() }

// available reports whether key has a token left, without taking one.
func (l *keyedLimiter) available(key string) bool { return l.get(key).Tokens() >= 1 }

// RateLimitOptions are RateLimitSettings.
type RateLimitOptions struct {
	PerSec, MaxBurst, MemoryStoreSize int
	VaryByRemoteAddr, VaryByUser      bool
	VaryByHeader                      string
}

// rateLimited applies RateLimitSettings to the API.
func (a *API) rateLimited(next http.Handler) http.Handler {
	if a.rateLimit == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var key []string
		if a.rateOpts.VaryByRemoteAddr {
			key = append(key, a.clientIP(r))
		}
		if a.rateOpts.VaryByUser {
			if t, _, _ := tokenFromRequest(r); t != "" {
				key = append(key, "t:"+hashKey(t))
			}
		}
		if a.rateOpts.VaryByHeader != "" {
			key = append(key, r.Header.Get(a.rateOpts.VaryByHeader))
		}
		if !a.rateLimit.allow(strings.Join(key, "|")) {
			w.Header().Set("Retry-After", "1")
			a.renderError(w, r, model.NewAppError("api.rate_limit", "api.context.rate_limit.app_error",
				http.StatusTooManyRequests, "Too many requests; slow down."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hashKey turns a token into a short map key so tokens do not sit in the
// limiter's memory.
func hashKey(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return strconv.FormatUint(h.Sum64(), 36)
}
