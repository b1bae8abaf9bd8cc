// Package pushservice is Garrison's on-premise push service: the RFC 8030
// push resource application servers POST encrypted messages to, and the
// WebSocket that devices (a stock desktop Firefox whose dom.push.serverURL
// points here) hold to receive them, speaking Firefox's push protocol.
//
// Everything lives in Postgres, so several proxy processes may serve one
// site: a device may hold its socket on one process while an application
// server POSTs to another. The process that accepts a message wakes the
// one holding the device's socket with a Postgres NOTIFY; a periodic
// re-scan delivers anything whose notification was lost.
//
// Messages wait in the mailbox until the device acknowledges them or their
// TTL runs out, and every unacknowledged message is replayed, in receive
// order, each time the device reconnects. The mailbox holds the RFC 8291
// ciphertext the application server sent and nothing the service could
// read. Logs never carry bodies, and capabilities, uaids and message ids
// only as their first eight characters.
//
// Retention: a sweeper deletes expired messages; a device that has not
// connected for Options.DeviceIdleTimeout (180 days by default) is forgotten,
// its subscriptions turned into tombstones (its endpoints answer 410) and
// its messages deleted; Firefox then gets a new uaid at its next hello and
// its sites resubscribe (pushsubscriptionchange). Tombstones are deleted
// after Options.TombstoneRetention (365 days), after which the endpoint
// answers 404, which senders treat the same way. A device with no live
// subscription is forgotten as soon as its socket closes (Firefox sends
// its uaid only while it has subscriptions), so anonymous sockets leave
// nothing behind.
//
// Rate limits are kept in memory, per process: behind a load balancer that
// spreads one sender over N proxies, the effective limit is up to N times
// the configured one.
//
// Protocol decisions where Firefox's protocol leaves a choice:
//   - ack deletes the message whatever its code (100 delivered, 101
//     decryption failed, 102 not delivered): all are final for the client;
//   - nack (the service worker failed: 301, 302, 303) also deletes it: the
//     client will not retry, and a replay at every reconnect would only fail
//     again;
//   - a hello with an unknown uaid gets a new one (Firefox then drops its
//     subscriptions and its sites resubscribe);
//   - close code 4774 ("do not reconnect automatically") is sent only to a
//     socket superseded by a newer hello of the same uaid, so two copies of
//     one profile cannot take the device from each other forever; shutdown
//     closes with 1001 and overload refuses the upgrade with 503, both of
//     which Firefox retries with backoff;
//   - re-registering a channel with another applicationServerKey is refused
//     with status 409, past MaxSubscriptionsPerDevice with 429.
//
// If PublicURL has a path, the reverse proxy in front must strip it: the
// routes are served at the root.
package pushservice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxTTL                     = 28 * 24 * time.Hour
	DefaultMaxMessagesPerSubscription = 100
	// Web Push senders pad every message to 4096 bytes (webpush-go
	// does), so the byte cap leaves room for the message cap to bind.
	DefaultMaxBytesPerSubscription   = 512 << 10
	DefaultMaxSubscriptionsPerDevice = 1000
	DefaultSubscriptionRate          = rate.Limit(2)
	DefaultSubscriptionBurst         = 60
	DefaultVAPIDKeyRate              = rate.Limit(300)
	DefaultVAPIDKeyBurst             = 600
	DefaultPingInterval              = 45 * time.Second
	DefaultPongTimeout               = 15 * time.Second
	DefaultWriteTimeout              = 10 * time.Second
	DefaultHelloTimeout              = 10 * time.Second
	DefaultMaxConnections            = 20000
	DefaultRescanInterval            = time.Minute
	DefaultSweepInterval             = time.Minute
	DefaultDeviceIdleTimeout         = 180 * 24 * time.Hour
	DefaultTombstoneRetention        = 365 * 24 * time.Hour
)

// MaxMessageSize is the largest body the push resource accepts: the 4096
// octets RFC 8030 requires and UnifiedPush allows.
const MaxMessageSize = 4096

// Options configure a Service. Pool and PublicURL are required; every other
// zero value means the default named after it.
type Options struct {
	// Pool is the database holding devices, subscriptions and the mailbox
	// (migrated by pushproxy/internal/schema). Its configuration is also
	// used to open the dedicated LISTEN connection.
	Pool *pgxpool.Pool
	// PublicURL is the base devices and application servers reach the
	// service at: push endpoints are <PublicURL>/push/<capability>, message
	// resources <PublicURL>/m/<id>, and a VAPID token's aud must be its
	// origin. An absolute http or https URL without query or fragment.
	PublicURL *url.URL
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the pushproxy_ps_* metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// Clock is the time source for TTLs, expiry and VAPID checks; nil is
	// time.Now.
	Clock func() time.Time

	// MaxTTL caps the TTL a sender may ask for; longer TTLs are shortened
	// and the applied TTL is echoed in the response.
	MaxTTL time.Duration
	// MaxMessagesPerSubscription and MaxBytesPerSubscription cap the
	// pending messages of one subscription; a POST past either gets 507.
	MaxMessagesPerSubscription int
	MaxBytesPerSubscription    int
	// MaxSubscriptionsPerDevice caps the live subscriptions of one device;
	// a register past it is refused with status 429.
	MaxSubscriptionsPerDevice int
	// SubscriptionRate and SubscriptionBurst are the token bucket of each
	// subscription; VAPIDKeyRate and VAPIDKeyBurst the one of each VAPID key
	// (shared by every subscription a sender pushes to). rate.Inf disables
	// a limit.
	SubscriptionRate  rate.Limit
	SubscriptionBurst int
	VAPIDKeyRate      rate.Limit
	VAPIDKeyBurst     int

	// PingInterval is how often a device socket is pinged; a socket that
	// sends nothing (not even a pong) for PingInterval+PongTimeout is
	// closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds each write to a device socket; a socket that
	// cannot take a frame in time is closed.
	WriteTimeout time.Duration
	// HelloTimeout is how long a new socket may take to send its hello.
	HelloTimeout time.Duration
	// MaxConnections caps the device sockets of this process; past it,
	// upgrades get 503 and Firefox retries with backoff.
	MaxConnections int

	// RescanInterval is how often the sockets of this process look for
	// messages whose NOTIFY was lost.
	RescanInterval time.Duration
	// SweepInterval is how often expired messages, idle devices and old
	// tombstones are deleted.
	SweepInterval time.Duration
	// DeviceIdleTimeout is how long a device may stay away before it is
	// forgotten; TombstoneRetention how long an unregistered endpoint keeps
	// answering 410 before it answers 404.
	DeviceIdleTimeout  time.Duration
	TombstoneRetention time.Duration
}

// withDefaults fills the zero values of o.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	defRate := func(d *rate.Limit, v rate.Limit) {
		if *d == 0 {
			*d = v
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	def(&o.MaxTTL, DefaultMaxTTL)
	defInt(&o.MaxMessagesPerSubscription, DefaultMaxMessagesPerSubscription)
	defInt(&o.MaxBytesPerSubscription, DefaultMaxBytesPerSubscription)
	defInt(&o.MaxSubscriptionsPerDevice, DefaultMaxSubscriptionsPerDevice)
	defRate(&o.SubscriptionRate, DefaultSubscriptionRate)
	defInt(&o.SubscriptionBurst, DefaultSubscriptionBurst)
	defRate(&o.VAPIDKeyRate, DefaultVAPIDKeyRate)
	defInt(&o.VAPIDKeyBurst, DefaultVAPIDKeyBurst)
	def(&o.PingInterval, DefaultPingInterval)
	def(&o.PongTimeout, DefaultPongTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.HelloTimeout, DefaultHelloTimeout)
	defInt(&o.MaxConnections, DefaultMaxConnections)
	def(&o.RescanInterval, DefaultRescanInterval)
	def(&o.SweepInterval, DefaultSweepInterval)
	def(&o.DeviceIdleTimeout, DefaultDeviceIdleTimeout)
	def(&o.TombstoneRetention, DefaultTombstoneRetention)
	return o
}

// validate reports every bad field at once.
func (o Options) validate() error {
	var errs []error
	if o.Pool == nil {
		errs = append(errs, errors.New("missing Pool"))
	}
	if o.PublicURL == nil {
		errs = append(errs, errors.New("missing PublicURL"))
	} else if _, err := originOf(o.PublicURL); err != nil {
		errs = append(errs, fmt.Errorf("PublicURL: %w", err))
	} else if o.PublicURL.RawQuery != "" || o.PublicURL.Fragment != "" || o.PublicURL.User != nil {
		errs = append(errs, errors.New("PublicURL: must not have a query, fragment or user info"))
	}
	for name, d := range map[string]time.Duration{
		"MaxTTL": o.MaxTTL, "PingInterval": o.PingInterval, "PongTimeout": o.PongTimeout,
		"WriteTimeout": o.WriteTimeout, "HelloTimeout": o.HelloTimeout, "RescanInterval": o.RescanInterval,
		"SweepInterval": o.SweepInterval, "DeviceIdleTimeout": o.DeviceIdleTimeout,
		"TombstoneRetention": o.TombstoneRetention,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", name))
		}
	}
	if o.MaxTTL > 0 && o.MaxTTL < time.Second {
		errs = append(errs, errors.New("MaxTTL: must be at least one second"))
	}
	for name, n := range map[string]int{
		"MaxMessagesPerSubscription": o.MaxMessagesPerSubscription,
		"MaxBytesPerSubscription":    o.MaxBytesPerSubscription,
		"MaxSubscriptionsPerDevice":  o.MaxSubscriptionsPerDevice,
		"SubscriptionBurst":          o.SubscriptionBurst,
		"VAPIDKeyBurst":              o.VAPIDKeyBurst,
		"MaxConnections":             o.MaxConnections,
	} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", name))
		}
	}
	if o.MaxBytesPerSubscription > 0 && o.MaxBytesPerSubscription < MaxMessageSize {
		errs = append(errs, fmt.Errorf("MaxBytesPerSubscription: must hold at least one %d-byte message", MaxMessageSize))
	}
	if o.SubscriptionRate < 0 || o.VAPIDKeyRate < 0 {
		errs = append(errs, errors.New("SubscriptionRate, VAPIDKeyRate: must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("pushservice: options: %w", errors.Join(errs...))
	}
	return nil
}

// Service is the push service. Handler serves its routes; Start runs its
// background parts (the LISTEN connection, the re-scan and the sweeper)
// and Stop ends them and every device socket.
type Service struct {
	opts    Options
	pool    *pgxpool.Pool
	log     *slog.Logger
	now     func() time.Time
	base    string // PublicURL without a trailing slash
	origin  string // the origin a VAPID aud must name
	node    string // this process, in ps_devices.node
	metrics *metrics
	hub     *hub
	subRate *limiters // per subscription
	keyRate *limiters // per VAPID key
	up      websocket.Upgrader
	handler http.Handler
	rescan  chan struct{} // asks the re-scan loop to run now; capacity 1

	mu      sync.Mutex // guards the fields below
	started bool
	stopped bool
	cancel  context.CancelFunc // ends the background loops
	done    chan struct{}      // closed by Stop: device sockets end
	sockets int                // live device sockets
	bg      sync.WaitGroup     // background loops
	conns   sync.WaitGroup     // device socket handlers; Add under mu while !stopped
}

// New checks opts and builds a Service. It registers the metrics but
// touches neither the database nor the network.
func New(opts Options) (*Service, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	origin, _ := originOf(opts.PublicURL)
	nodeBytes := make([]byte, 8)
	_, _ = rand.Read(nodeBytes)
	s := &Service{
		opts:    opts,
		pool:    opts.Pool,
		log:     opts.Logger,
		now:     opts.Clock,
		base:    strings.TrimRight(opts.PublicURL.String(), "/"),
		origin:  origin,
		node:    hex.EncodeToString(nodeBytes),
		metrics: newMetrics(),
		subRate: newLimiters(opts.SubscriptionRate, opts.SubscriptionBurst),
		keyRate: newLimiters(opts.VAPIDKeyRate, opts.VAPIDKeyBurst),
		rescan:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	s.hub = newHub(s.metrics)
	s.up = websocket.Upgrader{
		HandshakeTimeout: opts.HelloTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  8192, // a notification with a 4096-byte body is about 5.6 KB
		Subprotocols:     []string{subprotocol},
		// Firefox's push socket carries no ambient credential (no cookies;
		// the uaid comes from the client itself), so the origin, which
		// Firefox's chrome code does not set to a site anyway, grants
		// nothing and is not checked.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	if opts.Registerer != nil {
		if err := s.metrics.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("pushservice: metrics: %w", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the service's routes: POST and GET /push/{cap},
// DELETE /m/{id} and GET /ws. The caller serves it at the root of its
// listener, beside its own routes; with chi, Handle("/push/*", h),
// Handle("/m/*", h) and Handle("/ws", h).
func (s *Service) Handler() http.Handler { return s.handler }

// Start opens the LISTEN connection (returning its error if the first
// attempt fails, so a bad database shows at start) and starts the
// re-scan and sweeper loops. Start's ctx bounds only that first attempt;
// the loops run until Stop.
func (s *Service) Start(ctx context.Context) error {
	// Connect before taking the lock: sockets being accepted meanwhile
	// need it.
	conn, err := s.connectListener(ctx)
	if err != nil {
		return fmt.Errorf("pushservice: start: listen: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.started {
		_ = conn.Close(context.WithoutCancel(ctx))
		if s.stopped {
			return errors.New("pushservice: start: already stopped")
		}
		return errors.New("pushservice: start: already started")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.started = true
	s.bg.Add(3)
	go func() { defer s.bg.Done(); s.listenLoop(runCtx, conn) }()
	go func() { defer s.bg.Done(); s.rescanLoop(runCtx) }()
	go func() { defer s.bg.Done(); s.sweepLoop(runCtx) }()
	s.log.Info("push service started", "node", s.node, "public_url", s.base)
	return nil
}

// Stop closes every device socket with 1001 (going away, so Firefox
// reconnects, to another proxy if there is one), ends the background
// loops and waits for all of it, or for ctx. New sockets are refused with
// 503 from then on.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	close(s.done)
	cancel := s.cancel
	s.mu.Unlock()

	s.hub.closeAll(websocket.CloseGoingAway, "server shutting down")
	if cancel != nil {
		cancel()
	}
	finished := make(chan struct{})
	go func() {
		s.conns.Wait()
		s.bg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		s.log.Info("push service stopped", "node", s.node)
		return nil
	case <-ctx.Done():
		// Sockets that did not finish their close handshake in time are
		// cut; their handlers then return promptly.
		s.hub.abortAll()
		return fmt.Errorf("pushservice: stop: %w", ctx.Err())
	}
}

// Ready reports whether the service can work: the database answers and
// accepts writes (it is not a replica in recovery).
func (s *Service) Ready(ctx context.Context) error {
	var recovering bool
	if err := s.pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovering); err != nil {
		return fmt.Errorf("pushservice: ready: %w", err)
	}
	if recovering {
		return errors.New("pushservice: ready: the database is read-only (in recovery)")
	}
	return nil
}

// acquireSocket counts a new device socket, or says why it may not open.
func (s *Service) acquireSocket() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return errStopping
	case s.sockets >= s.opts.MaxConnections:
		return errTooManySockets
	}
	s.sockets++
	s.conns.Add(1)
	return nil
}

func (s *Service) releaseSocket() {
	s.mu.Lock()
	s.sockets--
	s.mu.Unlock()
	s.conns.Done()
}

var (
	errStopping       = errors.New("shutting down")
	errTooManySockets = errors.New("too many device connections")
)

// originOf returns the ASCII serialisation of u's origin, lower-cased and
// without a default port, which is what a VAPID aud is compared as.
func originOf(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", errors.New("must be an absolute http or https URL")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("must have a host")
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// redact shortens an identifier for logs: enough to correlate lines,
// never enough to use.
func redact(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
