// Package daemon wires garrison-pushproxy: the Postgres pool and schema,
// the Mattermost-facing front (proxy), the on-premise push service
// (pushservice), the public listener, health and metrics. It owns the
// start and stop order.
package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/garrison-chat/garrison/internal/sdnotify"
	"github.com/garrison-chat/garrison/pushproxy/internal/config"
	"github.com/garrison-chat/garrison/pushproxy/internal/schema"
)

// part is a long-running piece of the proxy that serves routes.
type part interface {
	Handler() http.Handler
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Ready(ctx context.Context) error
}

// Options are what the daemon needs beyond the configuration.
type Options struct {
	Config  *config.Config
	Logger  *slog.Logger
	Version string
	Hash    string
}

// Daemon is a running (or ready to run) push proxy.
type Daemon struct {
	cfg      *config.Config
	logger   *slog.Logger
	pool     *pgxpool.Pool
	registry *prometheus.Registry
	service  part   // the on-premise push service: /push/*, /m/*, /ws
	front    part   // the Mattermost-facing front: /, /version, /api/v1/*
	parts    []part // in start order: the service first, as the front delivers into it

	srv, metricsSrv *http.Server
	ln, metricsLn   net.Listener

	notify   *sdnotify.Notifier // systemd: READY=1, STATUS=, STOPPING=1
	watchdog *sdnotify.Watchdog // fed while ready; nil until Start succeeds

	stopOnce sync.Once
	stopErr  error
	served   sync.WaitGroup
}

// New connects to the database, applies the schema and builds every part.
// Nothing listens until Start.
func New(ctx context.Context, o Options) (_ *Daemon, err error) {
	d := &Daemon{cfg: o.Config, logger: o.Logger, registry: prometheus.NewRegistry(),
		notify: sdnotify.New(o.Logger.With("component", "systemd"))}
	d.status("connecting to the database")
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pcfg, err := pgxpool.ParseConfig(o.Config.DataSource)
	if err != nil {
		// pgx's parse error can quote the DSN, password included.
		return nil, errors.New("DataSource: cannot parse the Postgres DSN (its text is not repeated here because it may hold a password)")
	}
	pcfg.ConnConfig.ConnectTimeout = 10 * time.Second
	if d.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	defer func() {
		if err != nil {
			d.pool.Close()
		}
	}()
	d.status("applying the database schema")
	if err := schema.Migrate(ctx, d.pool, d.logger); err != nil {
		return nil, err
	}
	if err := d.buildParts(o); err != nil {
		return nil, err
	}
	d.parts = []part{d.service, d.front}
	return d, nil
}

// Start binds the listeners, then starts the parts and serves.
func (d *Daemon) Start(ctx context.Context) (err error) {
	// The certificate first: a bad file stops the start-up before
	// anything is bound or started.
	tlsConfig, err := d.listenerTLS()
	if err != nil {
		return err
	}
	if d.ln, err = net.Listen("tcp", d.cfg.ListenAddress); err != nil {
		return fmt.Errorf("ListenAddress: %w", err)
	}
	if d.cfg.MetricsListenAddress != "" {
		if d.metricsLn, err = net.Listen("tcp", d.cfg.MetricsListenAddress); err != nil {
			_ = d.ln.Close()
			return fmt.Errorf("MetricsListenAddress: %w", err)
		}
	}
	if tlsConfig != nil {
		// Both listeners: metrics cross the network as the sender API
		// does, and must not travel in clear either.
		d.ln = tls.NewListener(d.ln, tlsConfig)
		if d.metricsLn != nil {
			d.metricsLn = tls.NewListener(d.metricsLn, tlsConfig)
		}
	}
	for i, p := range d.parts {
		if err := p.Start(ctx); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = d.parts[j].Stop(ctx)
			}
			d.closeListeners()
			return err
		}
	}
	d.srv = &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
		// Set, without "h2" in it, so that Serve leaves it alone: both
		// listeners read it, and they serve HTTP/1.1 only.
		TLSConfig: tlsConfig,
	}
	d.serve(d.srv, d.ln)
	if d.metricsLn != nil {
		d.metricsSrv = &http.Server{
			Handler:           promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
			TLSConfig:         tlsConfig,
		}
		d.serve(d.metricsSrv, d.metricsLn)
	}
	d.logger.Info("push proxy started", "listen", d.ln.Addr().String(), "public_url", d.cfg.PublicURL,
		"metrics", d.MetricsAddr(), "content_policy", d.cfg.ContentPolicy, "tls", tlsConfig != nil)

	// Every listener is bound and serving: tell systemd, and feed its
	// watchdog only while /readyz would answer 200.
	status := "serving on " + d.ln.Addr().String()
	if err := d.notify.Ready(status); err != nil {
		d.logger.Warn("systemd: ready", "err", err)
	}
	d.watchdog = d.notify.Watchdog(sdnotify.WatchdogOptions{Check: d.ready, Status: status})
	if err := d.watchdog.Start(ctx); err != nil {
		_ = d.Stop(ctx)
		return err
	}
	return nil
}

// listenerTLS returns the TLS settings of the public and metrics
// listeners, read from TLSCertFile and TLSKeyFile now (a renewed
// certificate takes a restart), or nil when they are not set and both
// serve plain HTTP.
func (d *Daemon) listenerTLS() (*tls.Config, error) {
	if d.cfg.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(d.cfg.TLSCertFile, d.cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLSCertFile/TLSKeyFile: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// status tells systemd what the daemon is doing; a failure only logs.
func (d *Daemon) status(s string) {
	if err := d.notify.Status(s); err != nil {
		d.logger.Warn("systemd: status", "err", err)
	}
}

func (d *Daemon) serve(srv *http.Server, ln net.Listener) {
	d.served.Add(1)
	go func() {
		defer d.served.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.logger.Error("listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// Addr is the public listener's address (useful with ":0").
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// MetricsAddr is the metrics listener's address, or "" when disabled.
func (d *Daemon) MetricsAddr() string {
	if d.metricsLn == nil {
		return ""
	}
	return d.metricsLn.Addr().String()
}

// routes dispatches by path to the parts, whose paths do not overlap.
func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"healthy":true}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	svc := d.service.Handler()
	mux.Handle("/push/", svc)
	mux.Handle("/m/", svc)
	mux.Handle("/ws", svc)
	mux.Handle("/", d.front.Handler())
	return mux
}

// problems asks every part whether it is ready (each checks that the
// database is reachable and writable) and returns what is not.
func (d *Daemon) problems(ctx context.Context) []string {
	var problems []string
	for _, p := range d.parts {
		if err := p.Ready(ctx); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// ready is the systemd watchdog's health check: what /readyz reports.
func (d *Daemon) ready(ctx context.Context) error {
	if p := d.problems(ctx); len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

// readyz answers 200 only when every part says it is ready; the body
// names what is not.
func (d *Daemon) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	problems := d.problems(ctx)
	w.Header().Set("Content-Type", "application/json")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = jsonEncode(w, map[string]any{"ready": false, "problems": problems})
		return
	}
	_ = jsonEncode(w, map[string]any{"ready": true})
}

// Stop closes the listeners (device sockets get a clean close from the
// push service), stops the parts in reverse order and closes the pool.
// It is safe to call more than once.
func (d *Daemon) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() {
		var errs []error
		// No more watchdog pings, and systemd hears at once that
		// shutdown has begun.
		if d.watchdog != nil {
			errs = append(errs, d.watchdog.Stop(ctx))
		}
		if err := d.notify.Stopping("stopping: closing connections"); err != nil {
			d.logger.Warn("systemd: stopping", "err", err)
		}
		if d.srv != nil {
			// Shutdown does not wait for hijacked WebSocket connections;
			// the push service's Stop closes those.
			errs = append(errs, d.srv.Shutdown(ctx))
		}
		errs = append(errs, d.stopParts(ctx)...)
		if d.metricsSrv != nil {
			errs = append(errs, d.metricsSrv.Shutdown(ctx))
		}
		d.served.Wait()
		d.pool.Close()
		d.stopErr = errors.Join(errs...)
	})
	return d.stopErr
}

func (d *Daemon) stopParts(ctx context.Context) []error {
	var errs []error
	for i := len(d.parts) - 1; i >= 0; i-- {
		errs = append(errs, d.parts[i].Stop(ctx))
	}
	return errs
}

func (d *Daemon) closeListeners() {
	if d.ln != nil {
		_ = d.ln.Close()
	}
	if d.metricsLn != nil {
		_ = d.metricsLn.Close()
	}
}

func jsonEncode(w http.ResponseWriter, v any) error {
	return json.NewEncoder(w).Encode(v)
}
