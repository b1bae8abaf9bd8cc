package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/pki"
	"github.com/garrison-chat/garrison/internal/sdnotify"
	"github.com/garrison-chat/garrison/internal/sdnotify/sdnotifytest"
)

// TestAccess: who may reach what. The test's clients come from 127.0.0.1
// (outside the monitoring network) or 127.0.0.2 (inside it).
func TestAccess(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	logger, logs := newLogger()
	etcd := s.tlsServer(t, &replay{file: "etcd-3.4.23-health-ok.http"})
	a := start(t, parse(t, map[string]any{
		"node": "app1", "listen": "127.0.0.1:0", "tls": tlsMap(s.files),
		"monitoring_networks": []string{"127.0.0.2/32"},
		"checks":              []map[string]any{{"name": "etcd", "kind": "etcd", "url": etcd.URL}},
	}), logger)
	base := "https://" + a.Addr()
	_, port, _ := net.SplitHostPort(a.Addr())
	baseInside := "https://127.0.0.1:" + port // dialled from 127.0.0.2

	mtls := s.client(&s.admin, false, "127.0.0.1")
	anonOutside := s.client(nil, false, "127.0.0.1")
	anonInside := s.client(nil, false, "127.0.0.2")
	tests := []struct {
		name   string
		client *http.Client
		method string
		url    string
		code   int
	}{
		{"mTLS health", mtls, "GET", base + "/health", 200},
		{"mTLS metrics", mtls, "GET", base + "/metrics", 200},
		{"mTLS livez", mtls, "GET", base + "/livez", 200},
		{"mTLS unknown path", mtls, "GET", base + "/nope", 404},
		{"no cert, outside: health", anonOutside, "GET", base + "/health", 403},
		{"no cert, outside: metrics", anonOutside, "GET", base + "/metrics", 403},
		{"no cert, inside: health", anonInside, "GET", baseInside + "/health", 200},
		{"no cert, inside: metrics", anonInside, "GET", baseInside + "/metrics", 200},
		{"no cert, inside: livez", anonInside, "GET", baseInside + "/livez", 403},
		{"no cert, inside: other path", anonInside, "GET", baseInside + "/debug/pprof/", 403},
		{"no cert, inside: POST health", anonInside, "POST", baseInside + "/health", 403},
		{"no cert, inside: HEAD health", anonInside, "HEAD", baseInside + "/health", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, tc.url, nil)
			require.NoError(t, err)
			resp, err := tc.client.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, tc.code, resp.StatusCode, "%s", body)
			if tc.code == 403 && tc.method != "HEAD" {
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				require.Contains(t, string(body), `"id":"agent.forbidden"`)
				require.Contains(t, string(body), `"status_code":403`)
			}
		})
	}

	t.Run("a client certificate from another CA", func(t *testing.T) {
		t.Parallel()
		// Forced: Go's client would not offer a certificate the server's
		// CA list does not name. Even from inside the monitoring network,
		// the handshake fails rather than falling back to no certificate.
		c := s.client(&s.foreign, true, "127.0.0.2")
		_, err := c.Get(baseInside + "/health")
		require.Error(t, err)
		require.Contains(t, err.Error(), "tls: ")
	})

	t.Run("logs", func(t *testing.T) {
		// Not parallel with the table: it reads what the table logged.
		t.Parallel()
		_, err := anonOutside.Get(base + "/secret")
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			return hasLine(logs.String(), `"msg":"refused request"`) && hasLine(logs.String(), `"path":"/secret"`)
		}, 10*time.Second, 10*time.Millisecond)
		require.True(t, hasLine(logs.String(), `"remote_addr":"127.0.0.1:`), "the refused client's address is logged")
	})

	t.Run("handshake failures are logged with the address", func(t *testing.T) {
		t.Parallel()
		_, _ = s.client(&s.foreign, true, "127.0.0.1").Get(base + "/health")
		require.Eventually(t, func() bool {
			return hasLine(logs.String(), "TLS handshake error from 127.0.0.1:")
		}, 10*time.Second, 10*time.Millisecond)
	})

	t.Cleanup(func() {
		require.NotContains(t, logs.String(), "PRIVATE KEY", "no key material in the logs")
	})
}

func TestHealthEndToEnd(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	logger, _ := newLogger()
	etcd := s.tlsServer(t, &replay{file: "etcd-3.4.23-health-ok.http"})
	patroni := s.tlsServer(t, &replay{file: "patroni-3.0.2-cluster-degraded.http"})
	minio := s.tlsServer(t, &replay{file: "minio-health-live.http"})

	checks := func(member string) []map[string]any {
		return []map[string]any{
			{"name": "etcd", "kind": "etcd", "url": etcd.URL},
			{"name": "postgres", "kind": "patroni", "url": patroni.URL, "member": member},
			{"name": "minio", "kind": "http", "url": minio.URL + "/minio/health/live"},
		}
	}
	tests := []struct {
		member   string
		code     int
		status   Status
		pgStatus Status
	}{
		{"n1", 200, Green, Green},
		{"n3", 200, Yellow, Yellow},
		{"n2", 503, Red, Red},
	}
	for _, tc := range tests {
		t.Run(tc.member, func(t *testing.T) {
			t.Parallel()
			a := start(t, parse(t, map[string]any{"node": "app1", "listen": "127.0.0.1:0", "tls": tlsMap(s.files), "checks": checks(tc.member)}), logger)
			var rep struct {
				Node      string    `json:"node"`
				Status    Status    `json:"status"`
				CheckedAt time.Time `json:"checked_at"`
				Services  []struct {
					Name    string         `json:"name"`
					Status  Status         `json:"status"`
					Reason  string         `json:"reason"`
					Details map[string]any `json:"details"`
				} `json:"services"`
			}
			code := getJSON(t, s.client(&s.admin, false, ""), "https://"+a.Addr()+"/health", &rep)
			require.Equal(t, tc.code, code)
			require.Equal(t, "app1", rep.Node)
			require.Equal(t, tc.status, rep.Status)
			require.False(t, rep.CheckedAt.IsZero())
			require.Len(t, rep.Services, 3)
			require.Equal(t, []string{"etcd", "postgres", "minio"}, []string{rep.Services[0].Name, rep.Services[1].Name, rep.Services[2].Name})
			require.Equal(t, tc.pgStatus, rep.Services[1].Status, rep.Services[1].Reason)
			require.NotEmpty(t, rep.Services[1].Reason)
			require.Equal(t, "n1", rep.Services[1].Details["leader"])
		})
	}

	t.Run("no checks is green", func(t *testing.T) {
		t.Parallel()
		a := start(t, parse(t, map[string]any{"node": "app1", "listen": "127.0.0.1:0", "tls": tlsMap(s.files)}), logger)
		var rep Report
		require.Equal(t, 200, getJSON(t, s.client(&s.admin, false, ""), "https://"+a.Addr()+"/health", &rep))
		require.Equal(t, Green, rep.Status)
		require.NotNil(t, rep.Services)
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	logger, _ := newLogger()
	etcd := s.tlsServer(t, &replay{file: "etcd-3.4.23-health-ok.http"})
	a := start(t, parse(t, map[string]any{
		"node": "app1", "listen": "127.0.0.1:0", "tls": tlsMap(s.files),
		"checks": []map[string]any{
			{"name": "etcd", "kind": "etcd", "url": etcd.URL},
			{"name": "garrison", "kind": "garrison", "url": closedURL(t)},
		},
	}), logger)
	resp, err := s.client(&s.admin, false, "").Get("https://" + a.Addr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	text := string(b)
	for _, want := range []string{
		`garrison_agent_check_status{check="etcd"} 0`,
		`garrison_agent_check_status{check="garrison"} 2`,
		`garrison_agent_check_duration_seconds{check="etcd"} `,
		`garrison_agent_status 2`,
		"node_cpu_seconds_total{",
		"node_memory_MemTotal_bytes ",
		"node_filesystem_size_bytes{",
		"node_load1 ",
		"node_network_receive_bytes_total{",
		"node_disk_",
		`node_scrape_collector_success{collector="cpu"} 1`,
		"process_resident_memory_bytes ",
	} {
		require.Contains(t, text, want)
	}
}

func TestNewTLSErrors(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	dir := t.TempDir()
	now := time.Now()
	// A server-only certificate: the agent also needs client use.
	_, _, err := s.ca.Ensure(dir, "server-only", pki.Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true}, now)
	require.NoError(t, err)
	other, _, err := pki.LoadOrCreate(filepath.Join(dir, "other"), "other", now)
	require.NoError(t, err)
	_, _, err = other.Ensure(dir, "foreign", pki.Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true, Client: true}, now)
	require.NoError(t, err)
	notPEM := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("junk"), 0o600))

	f := func(name string) TLSFiles {
		return TLSFiles{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: s.files.CA}
	}
	tests := []struct {
		name  string
		files TLSFiles
		want  []string
	}{
		{"server only", f("server-only"), []string{"tls.cert " + f("server-only").Cert, "not valid for TLS client use", "issue it for server and client use"}},
		{"another CA", f("foreign"), []string{"tls.cert " + f("foreign").Cert, "not valid for TLS server use", "unknown authority"}},
		{"missing CA", TLSFiles{Cert: s.files.Cert, Key: s.files.Key, CA: filepath.Join(dir, "nope.crt")}, []string{"tls.ca: ", filepath.Join(dir, "nope.crt")}},
		{"CA not PEM", TLSFiles{Cert: s.files.Cert, Key: s.files.Key, CA: notPEM}, []string{"tls.ca " + notPEM + ": no PEM certificate"}},
		{"key of another cert", TLSFiles{Cert: s.files.Cert, Key: f("foreign").Key, CA: s.files.CA}, []string{"tls.cert " + s.files.Cert, "tls.key " + f("foreign").Key}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logger, _ := newLogger()
			_, err := New(&Config{Node: "app1", Listen: "127.0.0.1:0", TLS: tc.files}, logger)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), "PRIVATE KEY")
		})
	}
}

func TestLive(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	logger, logs := newLogger()
	// The checks are red: the watchdog's check does not care.
	a := start(t, parse(t, map[string]any{"node": "app1", "listen": ":0", "tls": tlsMap(s.files),
		"checks": []map[string]any{{"name": "garrison", "kind": "garrison", "url": closedURL(t)}}}), logger)
	self := a.selfAddr()
	require.True(t, strings.HasPrefix(self, "127.0.0.1:") || strings.HasPrefix(self, "[::1]:"), "bound to every address, the request goes to loopback, not %s", self)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.Live(ctx))
	require.NotContains(t, logs.String(), "refused", "the watchdog's request is not refused")

	require.NoError(t, a.Stop(ctx))
	require.Error(t, a.Live(ctx), "a stopped listener fails the check")
}

func TestListenError(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	logger, _ := newLogger()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a, err := New(parse(t, map[string]any{"node": "app1", "listen": ln.Addr().String(), "tls": tlsMap(s.files)}), logger)
	require.NoError(t, err)
	err = a.Start(context.Background())
	require.ErrorContains(t, err, "agent: listen: ")
	require.NoError(t, a.Stop(context.Background()), "Stop without a successful Start")
}

// TestRunSystemd: READY=1 once the listener is bound, WATCHDOG=1 while it
// answers (with every service red), STOPPING=1 at the end. Not parallel:
// sdnotifytest sets the environment.
func TestRunSystemd(t *testing.T) {
	s := newSite(t)
	sock := sdnotifytest.Listen(t)
	t.Setenv("WATCHDOG_USEC", "200000") // a ping every 100ms
	logger, _ := newLogger()
	cfg := parse(t, map[string]any{"node": "app1", "listen": "127.0.0.1:0", "tls": tlsMap(s.files),
		"checks": []map[string]any{{"name": "postgres", "kind": "patroni", "url": closedURL(t), "member": "app1"}}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, logger, sdnotify.New(logger)) }()

	ready := sock.Next(t, 30*time.Second)
	require.True(t, sdnotifytest.Has(ready, "READY=1"), "%q", ready)
	status, _ := sdnotifytest.Status(ready)
	require.True(t, strings.HasPrefix(status, "serving on 127.0.0.1:"), status)

	// The listener answers: a client may connect at once.
	addr := strings.TrimPrefix(status, "serving on ")
	var rep Report
	require.Equal(t, 503, getJSON(t, s.client(&s.admin, false, ""), "https://"+addr+"/health", &rep))

	for range 3 {
		msg := sock.Next(t, 30*time.Second)
		require.Equal(t, "WATCHDOG=1", msg, "pinged while postgres is red")
	}

	cancel()
	sock.Until(t, 30*time.Second, sdnotifytest.Holds("STOPPING=1"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	_, err := s.client(&s.admin, false, "").Get("https://" + addr + "/health")
	require.Error(t, err, "stopped listening")
}

func TestRunNewError(t *testing.T) {
	t.Parallel()
	logger, _ := newLogger()
	err := Run(context.Background(), &Config{Node: "a", Listen: "127.0.0.1:0", TLS: TLSFiles{CA: "/nonexistent/ca.crt"}}, logger, sdnotify.New(logger))
	require.ErrorContains(t, err, "/nonexistent/ca.crt")
	var pe *os.PathError
	require.True(t, errors.As(err, &pe))
}
