// Package proxy is the Mattermost-facing front of garrison-pushproxy: the
// mattermost-push-proxy protocol in (POST /api/v1/send_push and /ack,
// byte-compatible), Web Push out (RFC 8030/8291/8292 with webpush-go
// v1.4.0), through a durable outbox in Postgres.
//
// # Intake
//
// send_push validates the notification as upstream does, builds the device
// payload under the content policy, stores it in the outbox in one
// transaction and only then answers. The first delivery attempt starts at
// once; send_push waits for it for a short bounded time so that a dead
// subscription answers REMOVE and a refused one FAIL. A transient outcome
// (or no answer yet) answers OK: the notification is queued, and OK never
// meant "delivered" for APNs or FCM either.
//
// # Outbox
//
// Any number of proxies may share the database. Workers claim due rows
// with FOR UPDATE SKIP LOCKED and lease them by moving their due time to
// the end of the lease; a worker killed mid-attempt lets its rows fall due
// again when the lease runs out. Delivery is at least once: a device
// de-duplicates by ack_id.
//
// No plaintext content is stored. Under id_only the row holds the id-only
// payload (ids, no text) and is encrypted afresh on every attempt. Under
// full the row holds only the RFC 8291 ciphertext sealed at acceptance;
// each attempt sends it with a freshly signed VAPID header, so the
// 12-hour JWT webpush-go v1.4.0 always signs (push.md §3.3) never limits
// how long such a row may wait, and no VAPID token is stored either.
//
// # webpush-go v1.4.0
//
// Its three defects (push.md §3.3) are worked around: every call gets a
// full-slice-expression copy of the payload (it appends padding into the
// caller's spare capacity), VapidExpiration is not relied on (each attempt
// signs anew), and a leading "mailto:" is stripped from the subject (the
// library prepends one; an https: subject passes unchanged).
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// HTTPClient sends requests to push services. *http.Client satisfies it.
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// Options configure a Proxy. Zero values take the defaults in brackets.
type Options struct {
	// Pool is the database with the pushproxy schema applied. Required.
	Pool *pgxpool.Pool
	// Logger receives the proxy's logs [discarded].
	Logger *slog.Logger
	// Registerer receives the metrics [none: counted but not exported].
	Registerer prometheus.Registerer

	// VAPID is the key pair signing every push (see LoadOrCreateVAPIDKeys).
	// Required.
	VAPID Keys
	// VAPIDSubject is the RFC 8292 contact: "mailto:admin@site" or an
	// https:// URL. Required.
	VAPIDSubject string

	// SenderSecret, when set, is required on every /api/v1 route as
	// "Authorization: Bearer <secret>" or as the password of HTTP basic
	// auth.
	SenderSecret string
	// ContentPolicy is ContentIDOnly or ContentFull [ContentIDOnly].
	ContentPolicy ContentPolicy
	// ThrottlePerSec and ThrottleBurst shape the token bucket of each
	// sender on /api/v1 [300, 600].
	ThrottlePerSec, ThrottleBurst int
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// when keying the throttle [none].
	TrustedProxies []netip.Prefix

	// SendTimeout bounds one delivery attempt [30s].
	SendTimeout time.Duration
	// FirstAttemptWait is how long send_push waits for the first attempt
	// before answering OK (queued); at most SendTimeout [5s]. Negative:
	// never wait, every notification goes to the workers.
	FirstAttemptWait time.Duration
	// AllowedPushHosts are the hosts a subscription endpoint may point to
	// (the SSRF guard); registrations elsewhere are refused naming the
	// host. An entry is a host name or an IP address ([brackets] optional
	// for IPv6), optionally with ":port". Names match exactly and
	// case-insensitively (a trailing dot ignored; no wildcards; a name
	// does not match the addresses it resolves to). Without a port every
	// port of the host is allowed; with one only that port, an endpoint
	// without a port having its scheme's (80 for http, 443 for https).
	// Endpoints may be http or https: the payload is end-to-end encrypted
	// either way and the on-premise push service is often the proxy's own
	// http PublicURL. Required.
	AllowedPushHosts []string
	// HTTPClient sends to push services [an http.Client with SendTimeout
	// and no environment proxy]. It should route the proxy's own push
	// service in-process.
	HTTPClient HTTPClient

	// Version and Hash answer GET /version.
	Version, Hash string
	// Now is the clock deciding due times, leases and expiry [time.Now].
	Now func() time.Time
	// Workers is the number of deliveries the outbox workers make at
	// once; as many of send_push's synchronous first attempts may run
	// besides (when all are busy, send_push answers OK at once and leaves
	// the notification to the workers) [8].
	Workers int
	// PollInterval is how often idle workers look for due rows that other
	// proxies queued or that fell due [1s].
	PollInterval time.Duration
	// MaxOutboxDepth, when set, is the outbox size above which Ready
	// fails [0: never]. Off by default: the outbox is shared by every
	// proxy, so a backlog (say, browsers closed over a weekend) would take
	// every proxy out of a load balancer at once, and the device sockets
	// with them; watch pushproxy_outbox_depth instead.
	MaxOutboxDepth int
	// InstanceID names this proxy in the lease column and logs [host name,
	// pid and random bits].
	InstanceID string
}

// Defaults.
const (
	defaultPerSec         = 300
	defaultBurst          = 600
	defaultSendTimeout    = 30 * time.Second
	defaultFirstWait      = 5 * time.Second
	defaultWorkers        = 8
	defaultPollInterval   = time.Second
	defaultMaxOutboxDepth = 0
	// leaseSlack is added to SendTimeout to give a claim's holder time
	// to record the outcome before another proxy may take the row.
	leaseSlack = 30 * time.Second
	// statsInterval is how often the outbox gauges are refreshed.
	statsInterval = 5 * time.Second
	// maxBeatAge is how stale the workers' heartbeat may be for Ready.
	maxBeatAge = 10 * time.Second
)

// Proxy is the Mattermost-facing push proxy. Create it with New, serve
// Handler, and run its outbox workers between Start and Stop.
type Proxy struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	m         *metrics
	keys      Keys
	subject   string // VAPIDSubject as webpush-go wants it: no "mailto:"
	secret    [32]byte
	hasSecret bool
	policy    ContentPolicy
	throttle  *throttle
	trusted   []netip.Prefix
	hosts     []hostRule
	client    HTTPClient
	version   string
	hash      string
	now       func() time.Time
	instance  string

	sendTimeout  time.Duration
	firstWait    time.Duration
	lease        time.Duration
	pollInterval time.Duration
	workers      int
	maxDepth     int64

	slots  chan struct{} // one token per worker delivery under way
	inline chan struct{} // one token per synchronous first attempt under way
	wake   chan struct{} // nudges the poller; capacity 1
	quit   chan struct{} // closed by Stop: start nothing new
	abort  chan struct{} // closed when Stop's context ends: cancel attempts

	mu       sync.Mutex // guards the fields below
	started  bool
	stopping bool

	wg        sync.WaitGroup // the poller, the stats loop and every delivery
	abortOnce sync.Once
	beat      atomic.Int64 // when the poller last went round (unix ns, real time)
	depth     atomic.Int64 // outbox rows at the last stats refresh

	// Logs a flood could repeat are written at most every 10 s.
	logThrottled, logUnauthorized, logKeyMismatch, logClaim rate.Sometimes
}

// New checks o as a whole (reporting every bad field at once) and builds
// a Proxy. It touches neither the network nor the database.
func New(o Options) (*Proxy, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if o.Pool == nil {
		bad("Pool is required")
	}
	if err := o.VAPID.Validate(); err != nil {
		bad("VAPID: %w", err)
	}
	subject, err := vapidSubject(o.VAPIDSubject)
	if err != nil {
		bad("VAPIDSubject: %w", err)
	}
	policy := o.ContentPolicy
	if policy == "" {
		policy = ContentIDOnly
	}
	if policy != ContentIDOnly && policy != ContentFull {
		bad("ContentPolicy %q: want %q or %q", o.ContentPolicy, ContentIDOnly, ContentFull)
	}
	perSec, burst := orDefault(o.ThrottlePerSec, defaultPerSec), orDefault(o.ThrottleBurst, defaultBurst)
	if perSec < 0 || burst < 0 {
		bad("ThrottlePerSec and ThrottleBurst must not be negative")
	}
	for _, p := range o.TrustedProxies {
		if !p.IsValid() {
			bad("TrustedProxies: an invalid prefix")
		}
	}
	sendTimeout := orDefault(o.SendTimeout, defaultSendTimeout)
	if sendTimeout < 0 {
		bad("SendTimeout must not be negative")
	}
	firstWait := orDefault(o.FirstAttemptWait, defaultFirstWait)
	firstWait = min(firstWait, sendTimeout)
	hosts, err := parseHostRules(o.AllowedPushHosts)
	if err != nil {
		errs = append(errs, err)
	} else if len(hosts) == 0 {
		bad("AllowedPushHosts is empty: no subscription could register (list the push service's host, e.g. the host of PublicURL)")
	}
	workers := orDefault(o.Workers, defaultWorkers)
	if workers < 0 {
		bad("Workers must not be negative")
	}
	poll := orDefault(o.PollInterval, defaultPollInterval)
	if poll < 0 || poll > maxBeatAge/2 {
		bad("PollInterval must be between 0 and %s", maxBeatAge/2)
	}
	maxDepth := orDefault(o.MaxOutboxDepth, defaultMaxOutboxDepth)
	if maxDepth < 0 {
		bad("MaxOutboxDepth must not be negative")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("proxy: %w", errors.Join(errs...))
	}

	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client := o.HTTPClient
	if client == nil {
		client = defaultClient(sendTimeout)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	instance := o.InstanceID
	if instance == "" {
		instance = defaultInstanceID()
	}
	p := &Proxy{
		pool:         o.Pool,
		log:          logger,
		m:            m,
		keys:         o.VAPID,
		subject:      subject,
		hasSecret:    o.SenderSecret != "",
		secret:       sha256.Sum256([]byte(o.SenderSecret)),
		policy:       policy,
		throttle:     newThrottle(perSec, burst),
		trusted:      o.TrustedProxies,
		hosts:        hosts,
		client:       client,
		version:      o.Version,
		hash:         o.Hash,
		now:          now,
		instance:     instance,
		sendTimeout:  sendTimeout,
		firstWait:    firstWait,
		lease:        sendTimeout + leaseSlack,
		pollInterval: poll,
		workers:      workers,
		maxDepth:     int64(maxDepth),
		slots:        make(chan struct{}, workers),
		inline:       make(chan struct{}, workers),
		wake:         make(chan struct{}, 1),
		quit:         make(chan struct{}),
		abort:        make(chan struct{}),

		logThrottled:    rate.Sometimes{Interval: 10 * time.Second},
		logUnauthorized: rate.Sometimes{Interval: 10 * time.Second},
		logKeyMismatch:  rate.Sometimes{Interval: 10 * time.Second},
		logClaim:        rate.Sometimes{Interval: 10 * time.Second},
	}
	return p, nil
}

func orDefault[T int | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// vapidSubject checks an RFC 8292 subject and returns what webpush-go
// v1.4.0 must be given: it prepends "mailto:" to anything not starting
// with "https:", so a "mailto:" subject loses its prefix here.
func vapidSubject(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("required (mailto:admin@site or https://site)")
	}
	if strings.HasPrefix(s, "https:") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%q is not an https URL", s)
		}
		return s, nil
	}
	addr := s
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		addr = s[7:]
	}
	if strings.Contains(addr, ":") || !strings.Contains(addr, "@") || strings.ContainsAny(addr, " \t\r\n<>") {
		return "", fmt.Errorf("%q is neither mailto:<address> nor an https URL", s)
	}
	return addr, nil
}

// defaultClient is used when no client is injected: bounded, and never
// through an environment proxy (push services are on site).
func defaultClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	// A push endpoint must not redirect (UnifiedPush), and following one
	// would leave the hosts AllowedPushHosts allows.
	return &http.Client{Timeout: timeout, Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "pushproxy"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Start runs the outbox workers: a poller claiming due rows and a loop
// refreshing the outbox gauges. They run until Stop, not until ctx ends.
func (p *Proxy) Start(_ context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopping:
		return errors.New("proxy: start: already stopped")
	case p.started:
		return errors.New("proxy: start: already started")
	}
	p.started = true
	p.beat.Store(time.Now().UnixNano())
	p.wg.Add(2)
	go p.poll()
	go p.statsLoop()
	p.log.Info("push proxy outbox started", "instance", p.instance, "workers", p.workers,
		"content_policy", string(p.policy), "vapid_public_key", redact(p.keys.PublicKey))
	return nil
}

// Stop stops claiming work and waits for deliveries under way. When ctx
// ends first, they are cancelled and their rows released at once for any
// proxy to take; nothing accepted is lost either way.
func (p *Proxy) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		close(p.quit)
	}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	p.abortOnce.Do(func() { close(p.abort) })
	<-done // cancelled deliveries return promptly; their bookkeeping is bounded by dbTimeout
	p.log.Info("push proxy stopped with deliveries cancelled; their notifications stay queued")
	return nil
}

// Ready reports whether this proxy can take and deliver notifications: the
// database is reachable and writable, the workers are running, and the
// outbox is below MaxOutboxDepth if one is set. It is meant for /readyz.
func (p *Proxy) Ready(ctx context.Context) error {
	var errs []error
	p.mu.Lock()
	started, stopping := p.started, p.stopping
	p.mu.Unlock()
	switch {
	case stopping:
		errs = append(errs, errors.New("the proxy is stopping"))
	case !started:
		errs = append(errs, errors.New("the outbox workers are not started"))
	default:
		if age := time.Since(time.Unix(0, p.beat.Load())); age > maxBeatAge {
			errs = append(errs, fmt.Errorf("the outbox workers last ran %s ago", age.Round(time.Second)))
		}
	}
	var standby bool
	if err := p.pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		errs = append(errs, fmt.Errorf("database: %w", err))
	} else if standby {
		errs = append(errs, errors.New("database: connected to a read-only standby"))
	}
	if d := p.depth.Load(); p.maxDepth > 0 && d > p.maxDepth {
		errs = append(errs, fmt.Errorf("the outbox holds %d notifications, over %d", d, p.maxDepth))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("proxy: not ready: %w", err)
	}
	return nil
}

// VAPIDPublicKey is the key browsers subscribe with (applicationServerKey).
func (p *Proxy) VAPIDPublicKey() string { return p.keys.PublicKey }

// startDelivery takes one of the workers' delivery slots, unless all are
// busy or the proxy is stopping; inline takes one of the synchronous
// first attempts' instead. Separate pools keep a poller holding its
// slots during a claim from turning send_push's first attempt away. The
// caller must call endDelivery with the same inline when it is over.
func (p *Proxy) startDelivery(inline bool) bool {
	slots := p.slots
	if inline {
		slots = p.inline
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return false
	}
	select {
	case slots <- struct{}{}:
		p.wg.Add(1) // under mu, so never after Stop began waiting
		return true
	default:
		return false
	}
}

// endDelivery returns a slot. A worker's slot wakes the poller to use it,
// unless nudge is false (a slot the poller took but found no work for:
// waking would make an idle poller spin).
func (p *Proxy) endDelivery(inline, nudge bool) {
	if inline {
		<-p.inline
	} else {
		<-p.slots
	}
	p.wg.Done()
	if nudge && !inline {
		p.kick()
	}
}

// kick wakes the poller.
func (p *Proxy) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// poll claims due rows while slots are free and hands each to a delivery.
func (p *Proxy) poll() {
	defer p.wg.Done()
	timer := time.NewTimer(p.pollInterval)
	defer timer.Stop()
	for {
		p.beat.Store(time.Now().UnixNano())
		n := 0
		for n < p.workers && p.startDelivery(false) {
			n++
		}
		claimed := 0
		if n > 0 {
			ctx, cancel := dbContext()
			jobs, err := p.claim(ctx, n)
			cancel()
			if err != nil {
				p.logClaim.Do(func() {
					p.log.Error("outbox claim failed; retrying (logged at most every 10 s)", "err", err)
				})
			}
			for _, j := range jobs {
				go func() {
					defer p.endDelivery(false, true)
					p.deliver(j)
				}()
			}
			claimed = len(jobs)
			for range n - claimed {
				p.endDelivery(false, false)
			}
		}
		if n > 0 && claimed == n {
			select {
			case <-p.quit:
				return
			default:
				continue // a full batch: more may be due
			}
		}
		timer.Reset(p.pollInterval)
		select {
		case <-p.quit:
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// statsLoop refreshes the outbox gauges now and every statsInterval.
func (p *Proxy) statsLoop() {
	defer p.wg.Done()
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-p.quit:
				return
			case <-t.C:
			}
		}
		ctx, cancel := dbContext()
		if err := p.refreshStats(ctx); err != nil {
			p.log.Warn("outbox stats", "err", err)
		}
		cancel()
	}
}

// redact keeps the first 8 characters of an id, endpoint or token.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
