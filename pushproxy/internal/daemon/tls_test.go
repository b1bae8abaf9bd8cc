package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/internal/tlstest"
	"github.com/garrison-chat/garrison/pushproxy/internal/config"
)

// fetch asks GET url with c and returns the response with its body.
func fetch(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestListenersTLS: with TLSCertFile and TLSKeyFile, the public and the
// metrics listener both serve HTTPS with that certificate and refuse
// plain HTTP; without them, both serve plain HTTP.
func TestListenersTLS(t *testing.T) {
	t.Parallel()
	plain := &http.Client{Timeout: 30 * time.Second}
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		kp := tlstest.NewKeyPair(t, t.TempDir(), "push1")
		d := startDaemonWith(t, func(c *config.Config) {
			c.TLSCertFile, c.TLSKeyFile = kp.CertFile, kp.KeyFile
			c.PublicURL = "https://" + c.ListenAddress
		})
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: kp.Roots}}
		t.Cleanup(tr.CloseIdleConnections)
		trusting := &http.Client{Transport: tr, Timeout: 30 * time.Second}

		for _, u := range []struct{ name, url, want string }{
			{"public", "https://" + d.Addr() + "/healthz", `"healthy":true`},
			{"metrics", "https://" + d.MetricsAddr() + "/metrics", "pushproxy_outbox_depth"},
		} {
			resp, body := fetch(t, trusting, u.url)
			require.Equal(t, http.StatusOK, resp.StatusCode, u.name)
			require.Contains(t, body, u.want, u.name)
			require.NotNil(t, resp.TLS, u.name)
			require.True(t, resp.TLS.PeerCertificates[0].Equal(kp.Leaf), "%s: the configured certificate", u.name)
			require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12), u.name)
		}

		// A client that does not trust the certificate stops at the
		// handshake.
		distrust := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}
		t.Cleanup(distrust.CloseIdleConnections)
		_, err := (&http.Client{Transport: distrust, Timeout: 30 * time.Second}).Get("https://" + d.MetricsAddr() + "/metrics")
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)

		// Plain HTTP gets Go's answer to a cleartext request on a TLS
		// port, never the metrics.
		for _, addr := range []string{d.Addr(), d.MetricsAddr()} {
			resp, body := fetch(t, plain, "http://"+addr+"/metrics")
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, addr)
			require.Contains(t, body, "Client sent an HTTP request to an HTTPS server", addr)
			require.NotContains(t, body, "pushproxy_", addr)
		}
	})
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t)
		resp, body := fetch(t, plain, "http://"+d.MetricsAddr()+"/metrics")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Nil(t, resp.TLS)
		require.Contains(t, body, "pushproxy_outbox_depth")
	})
}

// TestStartTLSError: a certificate that cannot be read stops Start before
// any listener is bound, with an error naming the settings.
func TestStartTLSError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kp := tlstest.NewKeyPair(t, dir, "push1")
	cfg := config.Defaults()
	cfg.ListenAddress = freeLoopback(t)
	cfg.MetricsListenAddress = freeLoopback(t)
	cfg.DataSource = pgtest.New(t)
	cfg.PublicURL = "https://" + cfg.ListenAddress
	cfg.VAPIDKeyFile = filepath.Join(dir, "vapid.json")
	cfg.TLSCertFile, cfg.TLSKeyFile = filepath.Join(dir, "missing.crt"), kp.KeyFile
	require.NoError(t, cfg.Validate())
	ctx := context.Background()
	d, err := New(ctx, Options{Config: &cfg, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	// Nothing started: only the pool New opened is left to close.
	t.Cleanup(d.pool.Close)

	err = d.Start(ctx)
	require.ErrorContains(t, err, "TLSCertFile/TLSKeyFile")
	require.ErrorIs(t, err, fs.ErrNotExist)
	for _, addr := range []string{cfg.ListenAddress, cfg.MetricsListenAddress} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			_ = c.Close()
		}
		require.Error(t, err, "%s is not bound", addr)
	}
}
