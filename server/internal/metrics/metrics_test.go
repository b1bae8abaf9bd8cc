package metrics_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/tlstest"
	"github.com/garrison-chat/garrison/server/internal/metrics"
)

func TestServe(t *testing.T) {
	t.Parallel()
	inSync := true
	m, err := metrics.Start("127.0.0.1:0", nil, metrics.Sources{
		ClusterNodes:  func() int { return 3 },
		ClusterInSync: func() bool { return inSync },
		Replicas: func() []metrics.Replica {
			return []metrics.Replica{{Name: "db2:5432", Lag: 250 * time.Millisecond, InRotation: true},
				{Name: "db3:5432", Lag: -1}}
		},
		WebSocketConnections: func() int { return 42 },
		Push:                 func() metrics.Push { return metrics.Push{Queued: 3, OK: 10, Fail: 2, Remove: 1, Error: 4, Dropped: 5} },
	}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	require.Equal(t, "http://"+m.Addr().String(), m.URL())

	scrape := func() string {
		resp, err := http.Get("http://" + m.Addr().String() + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	out := scrape()
	for _, line := range []string{
		"garrison_cluster_nodes 3",
		"garrison_cluster_in_sync 1",
		`garrison_db_replica_lag_seconds{replica="db2:5432"} 0.25`,
		`garrison_db_replica_in_rotation{replica="db2:5432"} 1`,
		`garrison_db_replica_lag_seconds{replica="db3:5432"} -1`,
		`garrison_db_replica_in_rotation{replica="db3:5432"} 0`,
		"garrison_websocket_connections 42",
		"garrison_push_queue_length 3",
		`garrison_push_notifications_total{result="ok"} 10`,
		`garrison_push_notifications_total{result="fail"} 2`,
		`garrison_push_notifications_total{result="remove"} 1`,
		`garrison_push_notifications_total{result="error"} 4`,
		"garrison_push_jobs_dropped_total 5",
		"go_goroutines ",
	} {
		require.Contains(t, out, line)
	}
	inSync = false
	require.Contains(t, scrape(), "garrison_cluster_in_sync 0", "read at every scrape")

	resp, err := http.Get("http://" + m.Addr().String() + "/api/v4/system/ping")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "only /metrics is served")
}

// TestServeTLS: given TLS settings, the listener serves HTTPS with them
// and refuses plain HTTP.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	kp := tlstest.NewKeyPair(t, t.TempDir(), "app1")
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	require.NoError(t, err)
	m, err := metrics.Start("127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		metrics.Sources{ClusterNodes: func() int { return 3 }}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	require.Equal(t, "https://"+m.Addr().String(), m.URL())

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: kp.Roots}}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(m.URL() + "/metrics")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotNil(t, resp.TLS)
	require.Contains(t, string(b), "garrison_cluster_nodes 3")

	resp, err = (&http.Client{Timeout: 30 * time.Second}).Get("http://" + m.Addr().String() + "/metrics")
	require.NoError(t, err)
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.NotContains(t, string(b), "garrison_cluster_nodes")
}

// TestStartTLSWithoutCertificate: TLS settings without a certificate are
// refused at once rather than by a listener that never serves.
func TestStartTLSWithoutCertificate(t *testing.T) {
	t.Parallel()
	_, err := metrics.Start("127.0.0.1:0", &tls.Config{}, metrics.Sources{}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "no certificate")
}
