package daemon_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/internal/tlstest"
	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/daemon"
)

// scrapeMetrics asks GET /metrics at base and returns the response with
// its body.
func scrapeMetrics(t *testing.T, c *http.Client, base string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestTLSMetrics starts a daemon whose API listener serves TLS with
// TLSMinVer "1.3": the metrics listener serves HTTPS too, with the same
// certificate and minimum version, and refuses plain HTTP.
func TestTLSMetrics(t *testing.T) {
	t.Parallel()
	kp := tlstest.NewKeyPair(t, t.TempDir(), "app1")
	cfg := tlsConfig(t, pgtest.New(t), kp)
	cfg.ServiceSettings.TLSMinVer = "1.3"
	cfg.MetricsSettings.Enable = true
	cfg.MetricsSettings.ListenAddress = "127.0.0.1:" + strconv.Itoa(freePort(t))
	require.NoError(t, cfg.Validate())
	d := daemon.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, d.Start(context.Background()))
	stopOnCleanup(t, d)
	addr := d.MetricsAddr().String()
	require.Equal(t, "https://"+addr, d.MetricsURL())

	t.Run("https with the API's certificate", func(t *testing.T) {
		resp, body := scrapeMetrics(t, httpsClient(t, &tls.Config{RootCAs: kp.Roots}, false), d.MetricsURL())
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Contains(t, body, "garrison_cluster_nodes 1")
		require.True(t, resp.TLS.PeerCertificates[0].Equal(kp.Leaf), "the configured certificate")
		require.Equal(t, uint16(tls.VersionTLS13), resp.TLS.Version)
	})
	t.Run("the API's minimum version", func(t *testing.T) {
		_, err := httpsClient(t, &tls.Config{RootCAs: kp.Roots, MaxVersion: tls.VersionTLS12}, false).Get(d.MetricsURL() + "/metrics")
		require.ErrorContains(t, err, "protocol version")
	})
	t.Run("a client that does not trust the certificate", func(t *testing.T) {
		_, err := httpsClient(t, &tls.Config{RootCAs: x509.NewCertPool()}, false).Get(d.MetricsURL() + "/metrics")
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
	})
	t.Run("plain http is refused", func(t *testing.T) {
		resp, body := scrapeMetrics(t, &http.Client{Timeout: 30 * time.Second}, "http://"+addr)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, body, "Client sent an HTTP request to an HTTPS server")
		require.NotContains(t, body, "garrison_")
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(ctx))
}

// TestPlainMetrics: with ConnectionSecurity "" the metrics listener
// serves plain HTTP, as before.
func TestPlainMetrics(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.SqlSettings.DataSource = pgtest.New(t)
	cfg.FileSettings.Directory = t.TempDir()
	cfg.ServiceSettings.ListenAddress = "127.0.0.1:0"
	cfg.MetricsSettings.Enable = true
	cfg.MetricsSettings.ListenAddress = "127.0.0.1:" + strconv.Itoa(freePort(t))
	require.NoError(t, cfg.Validate())
	d := daemon.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, d.Start(context.Background()))
	stopOnCleanup(t, d)
	require.True(t, strings.HasPrefix(d.URL(), "http://"), d.URL())
	require.Equal(t, "http://"+d.MetricsAddr().String(), d.MetricsURL())

	resp, body := scrapeMetrics(t, &http.Client{Timeout: 30 * time.Second}, d.MetricsURL())
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Nil(t, resp.TLS)
	require.Contains(t, body, "garrison_cluster_nodes 1")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(ctx))
}
