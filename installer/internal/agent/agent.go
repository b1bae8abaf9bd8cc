// Package agent is the node agent, `garrisonctl agent`: on every node it
// serves, over HTTPS on port 9100, GET /health (the node's services,
// checked on request: green, yellow or red with reasons) and GET /metrics
// (host metrics from node_exporter's collectors through hostmetrics, and
// the checks as gauges), for the admin's garrisonctl and for monitoring.
//
// Clients with a certificate from the site CA may use everything; clients
// without one may only GET /health and /metrics, and only from the
// configured monitoring networks. Under systemd the agent sends READY=1
// once it listens and pings the watchdog while its own listener answers,
// whatever the services it reports on are doing.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/garrison-chat/garrison/installer/internal/hostmetrics"
	"github.com/garrison-chat/garrison/internal/sdnotify"
)

// stopTimeout bounds a clean shutdown in Run (the unit allows 30 s).
const stopTimeout = 10 * time.Second

// Agent is a node agent: built by New, serving between Start and Stop.
type Agent struct {
	cfg      *Config
	log      *slog.Logger
	checker  *checker
	registry *prometheus.Registry
	networks []netip.Prefix
	tls      *tls.Config // the server's
	self     *http.Client
	selfName string // a name in the node certificate, for the request to itself

	srv      *http.Server
	ln       net.Listener
	served   chan struct{} // closed when Serve returns
	serveErr error         // why Serve returned; read after served is closed

	stopOnce sync.Once
	stopErr  error
}

// New loads the TLS material and builds the agent; nothing listens until
// Start. Errors name the configuration field and the file.
func New(cfg *Config, logger *slog.Logger) (*Agent, error) {
	m, err := loadTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:      cfg,
		log:      logger,
		networks: cfg.networks(),
		selfName: m.name,
		tls: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{m.cert},
			ClientCAs:    m.pool,
			ClientAuth:   tls.VerifyClientCertIfGiven,
		},
	}
	a.checker = &checker{
		client:  newClient(m, false),
		timeout: cfg.timeout(),
		checks:  cfg.Checks,
		node:    cfg.Node,
		now:     time.Now,
	}
	a.self = newClient(m, true)

	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCheckCollector(a.checker),
	)
	// Without host metrics the agent still reports health: say so loudly
	// and go on.
	if hm, err := hostmetrics.NewCollector(logger.With("component", "hostmetrics")); err != nil {
		logger.Error("host metrics unavailable", "err", err)
	} else if err := a.registry.Register(hm); err != nil {
		logger.Error("host metrics unavailable", "err", err)
	}
	return a, nil
}

// tlsMaterial is the agent's certificate, the site CA pool, and a name
// the certificate is valid for.
type tlsMaterial struct {
	cert tls.Certificate
	pool *x509.CertPool
	name string
}

func loadTLS(f TLSFiles) (tlsMaterial, error) {
	var m tlsMaterial
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return m, fmt.Errorf("tls.ca: %w", err)
	}
	m.pool = x509.NewCertPool()
	if !m.pool.AppendCertsFromPEM(caPEM) {
		return m, fmt.Errorf("tls.ca %s: no PEM certificate", f.CA)
	}
	m.cert, err = tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return m, fmt.Errorf("tls.cert %s, tls.key %s: %w", f.Cert, f.Key, err)
	}
	leaf := m.cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(m.cert.Certificate[0]); err != nil {
			return m, fmt.Errorf("tls.cert %s: %w", f.Cert, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range m.cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	// The agent serves with this certificate and presents it to the local
	// services it checks and to itself (the watchdog's request): it must be
	// the site CA's, for both uses.
	for _, u := range []struct {
		usage x509.ExtKeyUsage
		name  string
	}{{x509.ExtKeyUsageServerAuth, "server"}, {x509.ExtKeyUsageClientAuth, "client"}} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u.usage}}); err != nil {
			return m, fmt.Errorf("tls.cert %s: not valid for TLS %s use with the site CA in %s (issue it for server and client use): %w", f.Cert, u.name, f.CA, err)
		}
	}
	switch {
	case len(leaf.DNSNames) > 0:
		m.name = leaf.DNSNames[0]
	case len(leaf.IPAddresses) > 0:
		m.name = leaf.IPAddresses[0].String()
	default:
		return m, fmt.Errorf("tls.cert %s: names no host (no DNS or IP subject alternative name)", f.Cert)
	}
	return m, nil
}

// newClient is an HTTP client that trusts the site CA and presents the
// node certificate when asked. It never uses a proxy from the environment
// and never follows redirects. self is the watchdog's client: a new
// connection every time, verified against the node certificate's name.
func newClient(m tlsMaterial, self bool) *http.Client {
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      m.pool,
		Certificates: []tls.Certificate{m.cert},
	}
	if self {
		tc.ServerName = m.name
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			DisableKeepAlives:   self,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Start binds the listener and serves; the caller may send READY=1 once it
// returns.
func (a *Agent) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: listen: %w", err)
	}
	a.ln = ln
	a.srv = &http.Server{
		Handler:           a.routes(),
		TLSConfig:         a.tls,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2*a.checker.timeout + 30*time.Second,
		IdleTimeout:       120 * time.Second,
		// TLS handshake errors (a client of another CA) land here, with the
		// client's address.
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.served = make(chan struct{})
	go func() {
		defer close(a.served)
		err := a.srv.Serve(tls.NewListener(ln, a.tls))
		if !errors.Is(err, http.ErrServerClosed) {
			a.serveErr = err
			a.log.Error("listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	a.log.Info("agent started", "node", a.cfg.Node, "listen", ln.Addr().String(), "checks", len(a.cfg.Checks),
		"monitoring_networks", a.cfg.MonitoringNetworks, "check_timeout", a.checker.timeout.String())
	return nil
}

// Addr is the listener's address (useful with port 0).
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// Stop stops serving, waiting for requests in progress until ctx ends. It
// may be called more than once.
func (a *Agent) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		if a.srv == nil {
			return
		}
		a.stopErr = a.srv.Shutdown(ctx)
		select {
		case <-a.served:
		case <-ctx.Done():
			a.stopErr = errors.Join(a.stopErr, ctx.Err())
		}
	})
	return a.stopErr
}

// Live is the watchdog's check: a request to the agent's own listener (a
// new TCP connection, a TLS handshake, GET /livez) answers 200. It does not
// look at the services /health reports on: a red Postgres is no reason to
// restart the agent.
func (a *Agent) Live(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+a.selfAddr()+"/livez", nil)
	if err != nil {
		return err
	}
	resp, err := a.self.Do(req)
	if err != nil {
		return fmt.Errorf("agent: own listener: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent: own listener: GET /livez: HTTP %d", resp.StatusCode)
	}
	return nil
}

// selfAddr is where the agent reaches its own listener: the bound address,
// or loopback when bound to every address.
func (a *Agent) selfAddr() string {
	ap, err := netip.ParseAddrPort(a.ln.Addr().String())
	if err != nil {
		return a.ln.Addr().String()
	}
	ip := ap.Addr()
	if ip.IsUnspecified() {
		if ip.Is4() {
			ip = netip.MustParseAddr("127.0.0.1")
		} else {
			ip = netip.IPv6Loopback()
		}
	}
	return netip.AddrPortFrom(ip, ap.Port()).String()
}

// Run runs the agent until ctx ends: it binds, tells systemd READY=1, pings
// the watchdog while the listener answers, and on ctx's end says
// STOPPING=1 and stops. It returns early with an error if the listener
// fails.
func Run(ctx context.Context, cfg *Config, logger *slog.Logger, n *sdnotify.Notifier) error {
	a, err := New(cfg, logger)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	status := "serving on " + a.Addr()
	if err := n.Ready(status); err != nil {
		logger.Warn("systemd: ready", "err", err)
	}
	wd := n.Watchdog(sdnotify.WatchdogOptions{Check: a.Live, Status: status})
	if err := wd.Start(ctx); err != nil {
		_ = a.Stop(context.WithoutCancel(ctx))
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case <-a.served:
		runErr = fmt.Errorf("agent: listener failed: %w", a.serveErr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	werr := wd.Stop(sctx)
	if err := n.Stopping("stopping"); err != nil {
		logger.Warn("systemd: stopping", "err", err)
	}
	logger.Info("agent stopping")
	return errors.Join(runErr, werr, a.Stop(sctx))
}

// routes lists every route; authorize decides who may reach them.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", a.health)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "agent.not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a.authorize(mux)
}

// authorize lets through a client with a certificate the site CA verified;
// without one, only GET /health and GET /metrics from a monitoring
// network. Everything else is 403, logged with the client's address.
func (a *Agent) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			next.ServeHTTP(w, r)
			return
		}
		reason := a.refusal(r)
		if reason == "" {
			next.ServeHTTP(w, r)
			return
		}
		path := r.URL.Path
		if len(path) > 200 {
			path = path[:200] + "..."
		}
		a.log.Warn("refused request", "remote_addr", r.RemoteAddr, "method", r.Method, "path", path, "reason", reason)
		writeError(w, http.StatusForbidden, "agent.forbidden", reason)
	})
}

// refusal says why a request without a client certificate is refused, or
// "" when it may go on.
func (a *Agent) refusal(r *http.Request) string {
	if r.Method != http.MethodGet || (r.URL.Path != "/health" && r.URL.Path != "/metrics") {
		return "a client certificate from the site CA is required (without one: GET /health and /metrics only)"
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return "unknown client address"
	}
	ip := ap.Addr().Unmap()
	for _, n := range a.networks {
		if n.Contains(ip) {
			return ""
		}
	}
	return "a client certificate from the site CA is required (this address is not in monitoring_networks)"
}

func (a *Agent) health(w http.ResponseWriter, r *http.Request) {
	rep := a.checker.run(r.Context())
	code := http.StatusOK
	if rep.Status == Red {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"id":"agent.internal","message":"cannot encode the reply","status_code":500}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// apiError is the agent's error reply, shaped like Mattermost's AppError.
type apiError struct {
	ID         string `json:"id"`
	Message    string `json:"message"`
	StatusCode int    `json:"status_code"`
}

func writeError(w http.ResponseWriter, code int, id, msg string) {
	writeJSON(w, code, apiError{ID: id, Message: msg, StatusCode: code})
}

// checkCollector runs the checks at each scrape and reports them.
type checkCollector struct {
	c                      *checker
	status, duration, node *prometheus.Desc
}

func newCheckCollector(c *checker) *checkCollector {
	return &checkCollector{
		c: c,
		status: prometheus.NewDesc("garrison_agent_check_status",
			"Outcome of the agent's check of a local service at this scrape: 0 green, 1 yellow, 2 red.", []string{"check"}, nil),
		duration: prometheus.NewDesc("garrison_agent_check_duration_seconds",
			"How long the agent's check of a local service took at this scrape.", []string{"check"}, nil),
		node: prometheus.NewDesc("garrison_agent_status",
			"The node's overall health at this scrape, the worst of its checks: 0 green, 1 yellow, 2 red.", nil, nil),
	}
}

func (cc *checkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.status
	ch <- cc.duration
	ch <- cc.node
}

func (cc *checkCollector) Collect(ch chan<- prometheus.Metric) {
	// A scrape has no context; each check is bounded by the timeout.
	ctx, cancel := context.WithTimeout(context.Background(), cc.c.timeout+time.Second)
	defer cancel()
	rep := cc.c.run(ctx)
	for _, s := range rep.Services {
		ch <- prometheus.MustNewConstMetric(cc.status, prometheus.GaugeValue, float64(s.Status.rank()), s.Name)
		ch <- prometheus.MustNewConstMetric(cc.duration, prometheus.GaugeValue, s.duration.Seconds(), s.Name)
	}
	ch <- prometheus.MustNewConstMetric(cc.node, prometheus.GaugeValue, float64(rep.Status.rank()))
}
