package preflight_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/install"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/preflight"
)

// TestPortsMatchInstall keeps preflight's port table in step with the
// ports the installer configures (install imports preflight, so preflight
// cannot import install's constants).
func TestPortsMatchInstall(t *testing.T) {
	t.Parallel()
	inv, err := inventory.Parse([]byte(`
site: ports
site_url: https://chat.ports.test
admin: {username: admin, email: admin@ports.test}
ssh: {key: id_ed25519}
nodes:
  - {name: all, address: 192.0.2.10, roles: [app, db, storage, proxy, backup], drives: [/srv/d1]}
`))
	require.NoError(t, err)
	got := map[int]string{}
	for _, p := range preflight.NodePorts(inv, inv.Nodes[0]) {
		got[p.Number] = p.Service
	}
	require.Equal(t, map[int]string{
		install.PortHTTP:       "nginx",
		install.PortHTTPS:      "nginx",
		install.PortAPI:        "garrison",
		install.PortMetrics:    "garrison",
		install.PortGossip:     "garrison",
		install.PortPush:       "garrison-pushproxy",
		install.PortPushMetric: "garrison-pushproxy",
		install.PortAgent:      "garrisonctl",
		install.PortPostgres:   "postgres",
		install.PortPatroni:    "patroni",
		install.PortEtcdClient: "etcd",
		install.PortEtcdPeer:   "etcd",
		install.PortMinIO:      "minio",
		install.PortMinIOAdmin: "minio",
		install.PortPGBackRest: "pgbackrest",
	}, got)
}
