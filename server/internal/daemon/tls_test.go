package daemon_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/internal/sdnotify/sdnotifytest"
	"github.com/garrison-chat/garrison/internal/tlstest"
	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/daemon"
)

// tlsConfig is a valid configuration whose API listener serves HTTPS with
// kp on a free port of 127.0.0.1.
func tlsConfig(t *testing.T, dsn string, kp tlstest.KeyPair) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.SqlSettings.DataSource = dsn
	cfg.FileSettings.Directory = t.TempDir()
	s := &cfg.ServiceSettings
	s.ListenAddress = "127.0.0.1:0"
	s.ConnectionSecurity, s.TLSCertFile, s.TLSKeyFile = config.ConnectionSecurityTLS, kp.CertFile, kp.KeyFile
	require.NoError(t, cfg.Validate())
	return cfg
}

// httpsClient connects with a copy of tc (the transport adds its ALPN
// protocols to it); with h2 it offers HTTP/2, else HTTP/1.1 only.
func httpsClient(t *testing.T, tc *tls.Config, h2 bool) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tc.Clone(), ForceAttemptHTTP2: h2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// ping asks GET /system/ping?get_server_status=true and returns the
// response with its decoded body.
func ping(t *testing.T, c *http.Client, base string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := c.Get(base + "/api/v4/system/ping?get_server_status=true")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp, body
}

func stopOnCleanup(t *testing.T, d *daemon.Daemon) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.Stop(ctx) // a no-op once stopped
	})
}

// TestTLSListener starts a daemon whose API listener serves HTTPS with a
// certificate made here: clients that trust it get the API over HTTP/1.1
// and HTTP/2 and the WebSocket, plain HTTP and TLS 1.1 are refused, the
// systemd watchdog is fed and never told of ill health, and the daemon
// stops cleanly. Not parallel: sdnotifytest sets NOTIFY_SOCKET with
// t.Setenv.
func TestTLSListener(t *testing.T) {
	sock := sdnotifytest.Listen(t)
	// A check at once, then every 15s: the socket holds only 10 unread
	// datagrams (net.unix.max_dgram_qlen), and this test reads it only
	// at the start and the end.
	t.Setenv("WATCHDOG_USEC", "30000000")
	kp := tlstest.NewKeyPair(t, t.TempDir(), "app1")
	d := daemon.New(tlsConfig(t, pgtest.New(t), kp), slog.New(slog.DiscardHandler))
	require.NoError(t, d.Start(context.Background()))
	stopOnCleanup(t, d)
	addr := d.Addr().String()
	require.Equal(t, "https://"+addr, d.URL())

	msgs := sock.Until(t, 10*time.Second, sdnotifytest.Holds("READY=1"))
	require.Equal(t, "READY=1\nSTATUS=serving on "+addr, msgs[len(msgs)-1])
	// The watchdog's health check is the database's, in process: TLS on
	// the listener does not change it.
	require.Equal(t, "WATCHDOG=1", sock.Next(t, 10*time.Second))

	trusting := &tls.Config{RootCAs: kp.Roots}
	t.Run("https over HTTP/1.1", func(t *testing.T) {
		resp, body := ping(t, httpsClient(t, trusting, false), d.URL())
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Equal(t, "OK", body["status"])
		require.Equal(t, "OK", body["database_status"])
		require.Equal(t, 1, resp.ProtoMajor)
		require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
		require.True(t, resp.TLS.PeerCertificates[0].Equal(kp.Leaf), "the configured certificate")
	})
	t.Run("https over HTTP/2", func(t *testing.T) {
		resp, body := ping(t, httpsClient(t, trusting, true), d.URL())
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Equal(t, "HTTP/2.0", resp.Proto)
	})
	t.Run("the name nginx checks", func(t *testing.T) {
		tc := &tls.Config{RootCAs: kp.Roots, ServerName: "garrison"}
		resp, _ := ping(t, httpsClient(t, tc, false), d.URL())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
	t.Run("a client that does not trust the certificate", func(t *testing.T) {
		_, err := httpsClient(t, &tls.Config{RootCAs: x509.NewCertPool()}, false).Get(d.URL() + "/api/v4/system/ping")
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
	})
	t.Run("plain http is refused", func(t *testing.T) {
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Get("http://" + addr + "/api/v4/system/ping")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, string(b), "Client sent an HTTP request to an HTTPS server")
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: kp.Roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
		}
		require.ErrorContains(t, err, "protocol version")
	})
	t.Run("websocket over wss", func(t *testing.T) {
		c := httpsClient(t, trusting, true)
		post := func(path, body string) *http.Response {
			resp, err := c.Post(d.URL()+"/api/v4"+path, "application/json", strings.NewReader(body))
			require.NoError(t, err)
			resp.Body.Close()
			return resp
		}
		// The first user needs no invitation.
		require.Equal(t, http.StatusCreated, post("/users", `{"email":"admin@example.mil","username":"admin","password":"password1"}`).StatusCode)
		resp := post("/users/login", `{"login_id":"admin","password":"password1"}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)

		dialer := websocket.Dialer{TLSClientConfig: trusting.Clone(), HandshakeTimeout: 30 * time.Second}
		ws, wsResp, err := dialer.Dial("wss://"+addr+"/api/v4/websocket", http.Header{"Authorization": {"Bearer " + resp.Header.Get("Token")}})
		require.NoError(t, err)
		defer ws.Close()
		require.Equal(t, http.StatusSwitchingProtocols, wsResp.StatusCode)
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(30*time.Second)))
		var hello struct {
			Event string `json:"event"`
		}
		require.NoError(t, ws.ReadJSON(&hello))
		require.Equal(t, "hello", hello.Event)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(ctx))
	// Healthy all along (only pings, if any, since the first), then
	// STOPPING=1.
	msgs = sock.Drain(t)
	require.NotEmpty(t, msgs)
	for _, m := range msgs[:len(msgs)-1] {
		require.Equal(t, "WATCHDOG=1", m)
	}
	require.Equal(t, "STOPPING=1\nSTATUS=stopping: draining requests", msgs[len(msgs)-1])
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.Error(t, err, "the listener is closed")
}

// TestTLSMinVersion13 starts a daemon with TLSMinVer "1.3": TLS 1.2
// clients are refused.
func TestTLSMinVersion13(t *testing.T) {
	t.Parallel()
	kp := tlstest.NewKeyPair(t, t.TempDir(), "app1")
	cfg := tlsConfig(t, pgtest.New(t), kp)
	cfg.ServiceSettings.TLSMinVer = "1.3"
	d := daemon.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, d.Start(context.Background()))
	stopOnCleanup(t, d)

	_, err := httpsClient(t, &tls.Config{RootCAs: kp.Roots, MaxVersion: tls.VersionTLS12}, false).Get(d.URL() + "/api/v4/system/ping")
	require.ErrorContains(t, err, "protocol version")

	resp, _ := ping(t, httpsClient(t, &tls.Config{RootCAs: kp.Roots}, false), d.URL())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, uint16(tls.VersionTLS13), resp.TLS.Version)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(ctx))
}

// TestTLSStartupErrors: a certificate or key that cannot serve stops Start
// before the database is touched, with an error naming the setting and
// the file, and never quoting the key.
func TestTLSStartupErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := tlstest.NewKeyPair(t, dir, "good")
	other := tlstest.NewKeyPair(t, dir, "other")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	block := func(typ string, b []byte, h map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b, Headers: h})
	}
	certField := func(p string) string { return `ServiceSettings.TLSCertFile "` + p + `"` }
	keyField := func(p string) string { return `ServiceSettings.TLSKeyFile "` + p + `"` }
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name           string
		cert, key      string
		want           []string
		notExist       bool
		wantNotContain string
	}{
		{name: "missing certificate", cert: missing, key: good.KeyFile, want: []string{certField(missing)}, notExist: true},
		{name: "missing key", cert: good.CertFile, key: missing, want: []string{keyField(missing)}, notExist: true},
		{name: "certificate not PEM", cert: write("junk.crt", []byte("hello")), key: good.KeyFile,
			want: []string{certField(filepath.Join(dir, "junk.crt")), "holds no PEM certificate"}},
		{name: "certificate garbled", cert: write("garbled.crt", block("CERTIFICATE", []byte("not DER"), nil)), key: good.KeyFile,
			want: []string{certField(filepath.Join(dir, "garbled.crt")), "certificate 1:"}},
		{name: "files swapped", cert: good.KeyFile, key: good.CertFile,
			want: []string{certField(good.KeyFile), "holds a private key"}},
		{name: "certificate as key", cert: good.CertFile, key: good.CertFile,
			want: []string{keyField(good.CertFile), "holds no PEM private key, only other PEM blocks"}},
		{name: "key not PEM", cert: good.CertFile, key: write("junk.key", []byte("hunter2")),
			want: []string{keyField(filepath.Join(dir, "junk.key")), "holds no PEM private key"}, wantNotContain: "hunter2"},
		{name: "key garbled", cert: good.CertFile, key: write("garbled.key", block("PRIVATE KEY", []byte("hunter2"), nil)),
			want: []string{keyField(filepath.Join(dir, "garbled.key")), "not a PKCS #1, PKCS #8 or SEC 1 private key"}},
		{name: "key encrypted (PKCS #8)", cert: good.CertFile, key: write("enc8.key", block("ENCRYPTED PRIVATE KEY", []byte("x"), nil)),
			want: []string{keyField(filepath.Join(dir, "enc8.key")), "encrypted private key"}},
		{name: "key encrypted (OpenSSL)", cert: good.CertFile,
			key:  write("enc1.key", block("RSA PRIVATE KEY", []byte("x"), map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"})),
			want: []string{keyField(filepath.Join(dir, "enc1.key")), "encrypted private key"}},
		{name: "key of another certificate", cert: good.CertFile, key: other.KeyFile,
			want: []string{keyField(other.KeyFile), "does not belong to the certificate in", certField(good.CertFile)},
			// The other key's PEM body must not leak.
			wantNotContain: strings.Split(string(other.KeyPEM), "\n")[1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			// Nothing listens on port 1: reaching the database would fail
			// with another error.
			cfg.SqlSettings.DataSource = "postgres://garrison@127.0.0.1:1/garrison?connect_timeout=1"
			cfg.ServiceSettings.ListenAddress = "127.0.0.1:0"
			s := &cfg.ServiceSettings
			s.ConnectionSecurity, s.TLSCertFile, s.TLSKeyFile = config.ConnectionSecurityTLS, tt.cert, tt.key
			require.NoError(t, cfg.Validate())

			d := daemon.New(cfg, slog.New(slog.DiscardHandler))
			err := d.Start(context.Background())
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.Equal(t, tt.notExist, errors.Is(err, fs.ErrNotExist), err)
			if tt.wantNotContain != "" {
				require.NotContains(t, err.Error(), tt.wantNotContain)
			}
			require.NoError(t, d.Stop(context.Background()), "Stop after a failed Start")
		})
	}
}
