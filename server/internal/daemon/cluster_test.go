package daemon_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/daemon"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m, postgres.MigrateDSN) }

// freePort returns a port free for both TCP and UDP on 127.0.0.1, as
// gossip needs both.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestNodesFindEachOtherThroughTheDatabase starts three daemons with
// clustering on and no peer list: they find each other through the
// discovery table, gossip encrypted, and each lists all three.
func TestNodesFindEachOtherThroughTheDatabase(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dsn := pgtest.New(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	var nodes []*daemon.Daemon
	hashes := map[string]string{} // hostname → config hash
	files := t.TempDir()          // shared, as a NAS would be
	for i := range 3 {
		cfg := config.Default()
		cfg.SqlSettings.DataSource = dsn
		cfg.ServiceSettings.ListenAddress = "127.0.0.1:0"
		cfg.FileSettings.Directory = files
		k := &cfg.ClusterSettings
		k.Enable, k.ClusterName, k.BindAddress, k.GossipPort = true, "test-site", "127.0.0.1", freePort(t)
		k.EnableGossipEncryption, k.GossipEncryptionKey = true, base64.StdEncoding.EncodeToString(key)
		k.OverrideHostname = "app" + strconv.Itoa(i+1)
		cfg.MetricsSettings.Enable = true
		cfg.MetricsSettings.ListenAddress = "127.0.0.1:" + strconv.Itoa(freePort(t))
		require.NoError(t, cfg.Validate())
		hashes[k.OverrideHostname] = cfg.Hash()
		d := daemon.New(cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, d.Start(context.Background()))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = d.Stop(ctx)
		})
		nodes = append(nodes, d)
	}
	// The first user is the system admin.
	base := "http://" + nodes[0].Addr().String() + "/api/v4"
	post := func(path, body string) *http.Response {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		return resp
	}
	resp := post("/users", `{"email":"admin@example.mil","username":"admin","password":"password1"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp.Body.Close()
	resp = post("/users/login", `{"login_id":"admin","password":"password1"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()
	token := resp.Header.Get("Token")

	status := func(d *daemon.Daemon) []map[string]any {
		req, _ := http.NewRequest("GET", "http://"+d.Addr().String()+"/api/v4/cluster/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		var out []map[string]any
		require.NoError(t, json.Unmarshal(b, &out))
		return out
	}
	for _, d := range nodes {
		require.Eventually(t, func() bool { return len(status(d)) == 3 }, 30*time.Second, 20*time.Millisecond)
		require.Eventually(t, func() bool { _, ok := d.App().Cluster().Sync(); return ok }, 30*time.Second, 20*time.Millisecond)
	}
	got := status(nodes[1])
	hosts := map[string]bool{}
	for _, n := range got {
		host := n["hostname"].(string)
		hosts[host] = true
		// Here the gossip ports differ, so the hashes do too; on a site
		// they differ only when the shared settings do.
		require.Equal(t, hashes[host], n["config_hash"])
		require.Equal(t, strconv.FormatInt(postgres.SchemaVersion(), 10), n["schema_version"])
		require.Contains(t, n["ipaddress"], "127.0.0.1:")
	}
	require.Equal(t, map[string]bool{"app1": true, "app2": true, "app3": true}, hosts)

	// Metrics, on their own listener, say the same.
	scrape := func(d *daemon.Daemon) string {
		resp, err := http.Get("http://" + d.MetricsAddr().String() + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	m := scrape(nodes[1])
	require.Contains(t, m, "garrison_cluster_nodes 3")
	require.Contains(t, m, "garrison_cluster_in_sync 1")
	require.Contains(t, m, "garrison_websocket_connections 0")

	// A node that stops leaves the others' status at once (it says so).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, nodes[2].Stop(ctx))
	require.Eventually(t, func() bool { return len(status(nodes[0])) == 2 }, 30*time.Second, 20*time.Millisecond)
}
