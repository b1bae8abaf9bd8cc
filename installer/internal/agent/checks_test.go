package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/pki"
)

// newChecker is the checker an agent with these checks would use.
func newChecker(t *testing.T, s *site, timeout time.Duration, checks ...Check) *checker {
	t.Helper()
	m, err := loadTLS(s.files)
	require.NoError(t, err)
	for i := range checks {
		if checks[i].Kind == KindPatroni && checks[i].MaxLagBytes == 0 {
			checks[i].MaxLagBytes = DefaultMaxLagBytes
		}
	}
	return &checker{client: newClient(m, false), timeout: timeout, checks: checks, node: "app1", now: time.Now}
}

// closedURL is an address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

func TestChecks(t *testing.T) {
	t.Parallel()
	s := newSite(t)

	// Each case serves body (a recorded response) over https from a
	// certificate of the site CA, or over plain http.
	type tc struct {
		name    string
		check   Check // URL filled in
		file    string
		raw     []byte // instead of file
		plain   bool   // http instead of https
		status  Status
		reason  string
		details map[string]any
	}
	master := func(b string) string { return strings.Replace(b, `"role": "leader"`, `"role": "master"`, 1) }
	primary := func(b string) string { return strings.Replace(b, `"role": "leader"`, `"role": "primary"`, 1) }
	streaming := func(b string) string { return strings.ReplaceAll(b, `"state": "running"`, `"state": "streaming"`) }
	patroni := func(member string) Check { return Check{Name: "postgres", Kind: KindPatroni, Member: member} }
	tests := []tc{
		// http: MinIO's liveness, recorded from the pinned build.
		{name: "http minio live", check: Check{Name: "minio", Kind: KindHTTP}, file: "minio-health-live.http",
			status: Green, reason: "HTTP 200 OK", details: map[string]any{"http_status": 200.0}},
		{name: "http 503", check: Check{Name: "nginx", Kind: KindHTTP}, raw: []byte("HTTP/1.1 503 Service Unavailable\r\n\r\n"),
			status: Red, reason: "HTTP 503 Service Unavailable"},
		{name: "http redirect", check: Check{Name: "nginx", Kind: KindHTTP}, plain: true,
			raw:    []byte("HTTP/1.1 301 Moved Permanently\r\nLocation: https://chat.example.mil/\r\n\r\n"),
			status: Red, reason: "HTTP 301 Moved Permanently (redirects to https://chat.example.mil/"},

		// garrison: the server's ping.
		{name: "garrison ok", check: Check{Name: "garrison", Kind: KindGarrison}, file: "garrison-ping-ok.http", plain: true,
			status: Green, reason: "database and file store OK",
			details: map[string]any{"http_status": 200.0, "status": "OK", "database_status": "OK", "filestore_status": "OK"}},
		{name: "garrison database down", check: Check{Name: "garrison", Kind: KindGarrison}, file: "garrison-ping-database-down.http",
			status: Yellow, reason: "database UNHEALTHY",
			details: map[string]any{"http_status": 500.0, "status": "UNHEALTHY", "database_status": "UNHEALTHY", "filestore_status": "OK"}},
		{name: "garrison not a ping", check: Check{Name: "garrison", Kind: KindGarrison},
			raw:    []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>Welcome to nginx!</html>"),
			status: Red, reason: "HTTP 200 OK: not a Garrison ping reply"},

		// patroni: Debian's 3.0.2, from each member's point of view.
		{name: "patroni leader", check: patroni("n1"), file: "patroni-3.0.2-cluster.http", status: Green, reason: "leader, running",
			details: map[string]any{"http_status": 200.0, "member": "n1", "role": "leader", "state": "running", "lag": 0.0, "timeline": 2.0, "leader": "n1", "members": 3.0}},
		{name: "patroni sync standby", check: patroni("n2"), file: "patroni-3.0.2-cluster.http", status: Green, reason: "sync_standby, running, lag 0 bytes",
			details: map[string]any{"http_status": 200.0, "member": "n2", "role": "sync_standby", "state": "running", "lag": 0.0, "timeline": 2.0, "leader": "n1", "members": 3.0}},
		{name: "patroni replica under the bound", check: patroni("n3"), file: "patroni-3.0.2-cluster.http", status: Green,
			reason: "replica, running, lag 40960 bytes"},
		{name: "patroni replica over a small bound", check: Check{Name: "postgres", Kind: KindPatroni, Member: "n3", MaxLagBytes: 4096},
			file: "patroni-3.0.2-cluster.http", status: Yellow, reason: "replication lag 40960 bytes, above 4096"},
		{name: "patroni member missing", check: patroni("n9"), file: "patroni-3.0.2-cluster.http", status: Red,
			reason: `member "n9" is not in the cluster (members: n1, n2, n3)`},
		{name: "patroni stopped", check: patroni("n2"), file: "patroni-3.0.2-cluster-degraded.http", status: Red, reason: "Postgres is stopped",
			details: map[string]any{"http_status": 200.0, "member": "n2", "role": "replica", "state": "stopped", "lag": "unknown", "leader": "n1", "members": 3.0}},
		{name: "patroni lagging", check: patroni("n3"), file: "patroni-3.0.2-cluster-degraded.http", status: Yellow,
			reason: "replication lag 52428800 bytes, above 16777216"},
		{name: "patroni leader of a degraded cluster", check: patroni("n1"), file: "patroni-3.0.2-cluster-degraded.http", status: Green},
		{name: "patroni starting, paused", check: patroni("n2"), file: "patroni-3.0.2-cluster-paused.http", status: Yellow,
			reason: "Postgres is starting, not running; the cluster is paused: no automatic failover"},
		{name: "patroni paused leader", check: patroni("n1"), file: "patroni-3.0.2-cluster-paused.http", status: Yellow,
			reason: "the cluster is paused"},
		{name: "patroni no leader", check: patroni("n2"), file: "patroni-3.0.2-cluster-noleader.http", status: Red,
			reason: "the cluster has no leader"},
		// Other Patroni versions: "master" (2.x) or "primary" for the
		// leader, "streaming" for a replica (3.0.4 and later).
		{name: "patroni master", check: patroni("n3"), raw: recorded(t, "patroni-3.0.2-cluster.http", master), status: Green,
			details: map[string]any{"http_status": 200.0, "member": "n3", "role": "replica", "state": "running", "lag": 40960.0, "timeline": 2.0, "leader": "n1", "members": 3.0}},
		{name: "patroni primary", check: patroni("n1"), raw: recorded(t, "patroni-3.0.2-cluster.http", primary), status: Green, reason: "primary, running"},
		{name: "patroni streaming", check: patroni("n2"), raw: recorded(t, "patroni-3.0.2-cluster.http", streaming), status: Green,
			reason: "sync_standby, streaming, lag 0 bytes"},
		{name: "patroni not patroni", check: patroni("n1"), raw: []byte("HTTP/1.1 404 Not Found\r\n\r\nnope"), status: Red,
			reason: "HTTP 404 Not Found: not a Patroni /cluster reply"},

		// etcd 3.4 from Debian, recorded.
		{name: "etcd ok", check: Check{Name: "etcd", Kind: KindEtcd}, file: "etcd-3.4.23-health-ok.http", status: Green, reason: "healthy",
			details: map[string]any{"http_status": 200.0, "health": "true"}},
		{name: "etcd no leader", check: Check{Name: "etcd", Kind: KindEtcd}, file: "etcd-3.4.23-health-noleader.http", status: Red,
			reason: "etcd reports unhealthy", details: map[string]any{"http_status": 503.0, "health": "false"}},
		// etcd 3.5 adds a reason.
		{name: "etcd 3.5 reason", check: Check{Name: "etcd", Kind: KindEtcd},
			raw:    []byte("HTTP/1.1 503 Service Unavailable\r\n\r\n{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}"),
			status: Red, reason: "etcd reports unhealthy: RAFT NO LEADER"},
		{name: "etcd not etcd", check: Check{Name: "etcd", Kind: KindEtcd}, raw: []byte("HTTP/1.1 200 OK\r\n\r\nok"), status: Red,
			reason: "not an etcd health reply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h http.Handler
			rp := &replay{}
			if tc.file != "" {
				rp.set(tc.file)
				h = rp
			} else {
				h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeRecorded(w, tc.raw) })
			}
			check := tc.check
			if tc.plain {
				srv := http.Server{Handler: h}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				go func() { _ = srv.Serve(ln) }()
				t.Cleanup(func() { _ = srv.Close() })
				check.URL = "http://" + ln.Addr().String()
			} else {
				check.URL = s.tlsServer(t, h).URL
			}
			rep := newChecker(t, s, 10*time.Second, check).run(context.Background())
			require.Len(t, rep.Services, 1)
			got := rep.Services[0]
			require.Equal(t, check.Name, got.Name)
			require.Equal(t, tc.status, got.Status, "reason: %s", got.Reason)
			require.Equal(t, tc.status, rep.Status)
			require.Contains(t, got.Reason, tc.reason)
			if tc.details != nil {
				// Compare as /health's JSON shows them.
				b, err := json.Marshal(got.Details)
				require.NoError(t, err)
				var d map[string]any
				require.NoError(t, json.Unmarshal(b, &d))
				require.Equal(t, tc.details, d)
			}
			if check.Kind == KindGarrison && tc.file != "" {
				require.Equal(t, "/api/v4/system/ping?get_server_status=true", rp.lastURL())
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		rep := newChecker(t, s, 10*time.Second, Check{Name: "nginx", Kind: KindHTTP, URL: closedURL(t)}).run(context.Background())
		require.Equal(t, Red, rep.Services[0].Status)
		require.Contains(t, rep.Services[0].Reason, "unreachable: ")
		require.Contains(t, rep.Services[0].Reason, "connection refused")
	})

	t.Run("a server certificate from another CA", func(t *testing.T) {
		t.Parallel()
		other := newSite(t)
		srv := other.tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
		rep := newChecker(t, s, 10*time.Second, Check{Name: "minio", Kind: KindHTTP, URL: srv.URL}).run(context.Background())
		require.Equal(t, Red, rep.Services[0].Status)
		require.Contains(t, rep.Services[0].Reason, "certificate signed by unknown authority")
	})
}

// TestHungCheck: a service that accepts but never answers (as an etcd
// member that never joined its cluster does) is red after the timeout,
// and neither the other checks nor the reply wait for it.
func TestHungCheck(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	hung := s.tlsServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release // until the test ends, whatever the client does
	}))
	t.Cleanup(func() { close(release) }) // runs before hung.Close, registered earlier
	ok := s.tlsServer(t, &replay{file: "etcd-3.4.23-health-ok.http"})

	const timeout = 300 * time.Millisecond
	c := newChecker(t, s, timeout,
		Check{Name: "etcd", Kind: KindEtcd, URL: ok.URL},
		Check{Name: "postgres", Kind: KindPatroni, URL: hung.URL, Member: "n1"},
	)
	done := make(chan Report, 1)
	go func() { done <- c.run(context.Background()) }()
	var rep Report
	select {
	case rep = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the report waited for the hung service")
	}
	<-entered // the request did reach it
	require.Equal(t, Red, rep.Status)
	require.Equal(t, Green, rep.Services[0].Status)
	require.Equal(t, Red, rep.Services[1].Status)
	require.Equal(t, "no answer within 300ms", rep.Services[1].Reason)
}

// A tls check completes a handshake against the site CA: green from a
// server with a site certificate, red from one with another CA's or from
// nothing listening.
func TestTLSCheck(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	serve := func(cert tls.Certificate) string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: s.pool, MinVersion: tls.VersionTLS12})
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		return "tls://" + ln.Addr().String()
	}
	own := serve(keyPair(t, s.ca, pki.Request{CommonName: "app1", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}))
	foreign := serve(s.foreign)

	c := newChecker(t, s, 5*time.Second,
		Check{Name: "own", Kind: KindTLS, URL: own},
		Check{Name: "foreign", Kind: KindTLS, URL: foreign},
		Check{Name: "closed", Kind: KindTLS, URL: "tls" + strings.TrimPrefix(closedURL(t), "http")},
	)
	r := c.run(t.Context())
	require.Equal(t, Green, r.Services[0].Status, r.Services[0].Reason)
	require.Equal(t, "TLS handshake OK", r.Services[0].Reason)
	require.Equal(t, Red, r.Services[1].Status)
	require.Contains(t, r.Services[1].Reason, "certificate")
	require.Equal(t, Red, r.Services[2].Status)
	require.Equal(t, Red, r.Status)
}
