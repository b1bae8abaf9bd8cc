// Package metrics serves Garrison's Prometheus metrics on their own
// listener (MetricsSettings.ListenAddress), never on the API port.
package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Replica is one read replica as the database layer sees it.
type Replica struct {
	Name       string
	Lag        time.Duration // negative: unknown
	InRotation bool
}

// Sources are read at every scrape; a nil source leaves its metrics out.
type Sources struct {
	// ClusterNodes counts the live nodes, this one included.
	ClusterNodes func() int
	// ClusterInSync reports whether this node may trust its caches.
	ClusterInSync func() bool
	// Replicas lists the read replicas.
	Replicas func() []Replica
	// WebSocketConnections counts this node's live sockets.
	WebSocketConnections func() int
	// Push reads this node's push notification counters (issue 5).
	Push func() Push
}

// Push are a node's push notification counters since it started.
type Push struct {
	// Queued is the number of jobs waiting for the senders now.
	Queued int
	// OK, Fail and Remove count the push proxy's answers; Error the
	// sends it did not answer; Dropped the jobs a full queue refused.
	OK, Fail, Remove, Error, Dropped uint64
}

var (
	descNodes = prometheus.NewDesc("garrison_cluster_nodes",
		"Live cluster nodes, this one included.", nil, nil)
	descInSync = prometheus.NewDesc("garrison_cluster_in_sync",
		"1 while this node has heard from every other node within the lease and may use its caches.", nil, nil)
	descLag = prometheus.NewDesc("garrison_db_replica_lag_seconds",
		"Replay lag of a read replica; -1 when unknown (unreachable or not a replica).", []string{"replica"}, nil)
	descRotation = prometheus.NewDesc("garrison_db_replica_in_rotation",
		"1 while a read replica serves reads (its lag is under SqlSettings.ReplicaLagMaxMilliseconds).", []string{"replica"}, nil)
	descSockets = prometheus.NewDesc("garrison_websocket_connections",
		"Live WebSocket connections on this node.", nil, nil)
	descPushQueued = prometheus.NewDesc("garrison_push_queue_length",
		"Push notification jobs waiting for the senders on this node.", nil, nil)
	descPushSent = prometheus.NewDesc("garrison_push_notifications_total",
		"Push notifications handed to the push proxy, by its answer (ok, fail, remove) or error (the proxy did not answer).",
		[]string{"result"}, nil)
	descPushDropped = prometheus.NewDesc("garrison_push_jobs_dropped_total",
		"Push notification jobs dropped because the queue (EmailSettings.PushNotificationBuffer) was full.", nil, nil)
)

// collector turns Sources into metrics at scrape time.
type collector struct{ s Sources }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodes, descInSync, descLag, descRotation, descSockets, descPushQueued, descPushSent, descPushDropped} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if c.s.ClusterNodes != nil {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(c.s.ClusterNodes()))
	}
	if c.s.ClusterInSync != nil {
		ch <- prometheus.MustNewConstMetric(descInSync, prometheus.GaugeValue, b2f(c.s.ClusterInSync()))
	}
	if c.s.Replicas != nil {
		for _, r := range c.s.Replicas() {
			lag := -1.0
			if r.Lag >= 0 {
				lag = r.Lag.Seconds()
			}
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, lag, r.Name)
			ch <- prometheus.MustNewConstMetric(descRotation, prometheus.GaugeValue, b2f(r.InRotation), r.Name)
		}
	}
	if c.s.WebSocketConnections != nil {
		ch <- prometheus.MustNewConstMetric(descSockets, prometheus.GaugeValue, float64(c.s.WebSocketConnections()))
	}
	if c.s.Push != nil {
		p := c.s.Push()
		ch <- prometheus.MustNewConstMetric(descPushQueued, prometheus.GaugeValue, float64(p.Queued))
		for _, r := range []struct {
			result string
			n      uint64
		}{{"ok", p.OK}, {"fail", p.Fail}, {"remove", p.Remove}, {"error", p.Error}} {
			ch <- prometheus.MustNewConstMetric(descPushSent, prometheus.CounterValue, float64(r.n), r.result)
		}
		ch <- prometheus.MustNewConstMetric(descPushDropped, prometheus.CounterValue, float64(p.Dropped))
	}
}

// Handler returns the /metrics handler: Garrison's metrics plus the Go
// runtime's and the process's.
func Handler(s Sources) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Server is the metrics listener.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	tls    bool // serves HTTPS
	served chan error
}

// Start listens on addr and serves /metrics there: over TLS when
// tlsConfig is not nil, else plain HTTP. The daemon passes the API
// listener's TLS settings, so both present the same certificate, from the
// same GetCertificate, with the same minimum version. Start uses a clone:
// http.Server writes its protocols into the settings it is given.
func Start(addr string, tlsConfig *tls.Config, s Sources, logger *slog.Logger) (*Server, error) {
	if tlsConfig != nil && len(tlsConfig.Certificates) == 0 && tlsConfig.GetCertificate == nil && tlsConfig.GetConfigForClient == nil {
		return nil, errors.New("metrics: the TLS settings hold no certificate")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(s))
	m := &Server{ln: ln, tls: tlsConfig != nil, served: make(chan error, 1), srv: &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog:  slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig: tlsConfig.Clone(), // nil stays nil
	}}
	if m.tls {
		// The certificate comes from TLSConfig, hence no file names.
		go func() { m.served <- m.srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { m.served <- m.srv.Serve(ln) }()
	}
	return m, nil
}

// Addr is the bound address.
func (m *Server) Addr() net.Addr { return m.ln.Addr() }

// URL is the base URL of the bound listener: https:// when it serves TLS,
// http:// otherwise.
func (m *Server) URL() string {
	scheme := "http"
	if m.tls {
		scheme = "https"
	}
	return scheme + "://" + m.ln.Addr().String()
}

// Stop closes the listener and waits for scrapes in flight, bounded by ctx.
func (m *Server) Stop(ctx context.Context) error {
	err := m.srv.Shutdown(ctx)
	if serr := <-m.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
