package install

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/test/debroot"
	"github.com/garrison-chat/garrison/test/testbed"
)

// A site with a backup node: the db node archives its WAL to the backup
// node's pgBackRest repository over pgBackRest's TLS protocol; both
// servers answer health; a second run changes nothing.
func TestBackupNode(t *testing.T) {
	ctx := t.Context()
	a := theArtefacts(t)
	base := debroot.Prepare(t)
	tb := testbed.New(t, testbed.Options{Machines: 2})
	nodes, err := tb.AddNodes(ctx, "admin", "box", "vault")
	require.NoError(t, err)
	var inv string
	for _, n := range nodes[1:] {
		m, err := n.Boot(ctx, base, testbed.BootOptions{})
		require.NoError(t, err)
		fp, err := m.HostKeyFingerprint(ctx)
		require.NoError(t, err)
		roles := "[app, db, proxy]"
		if n.Name() == "vault" {
			roles = "[backup]"
		}
		inv += fmt.Sprintf("  - {name: %s, address: %s, ssh: {host_key: '%s'}, roles: %s}\n", n.Name(), n.Addr(), fp, roles)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`site: vault
site_url: https://chat.vault.test
admin: {username: sysadmin, email: sysadmin@vault.test}
ssh: {user: root, key: %s}
options: {monitoring_networks: [%s]}
nodes:
%s`, tb.SSHKeyFile(), tb.Subnet(), inv)), 0o600))
	ad := &admin{t: t, node: nodes[0], a: a, state: filepath.Join(dir, "state")}

	out, code := ad.run(ctx, "plan", path)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "create the pgBackRest stanza in the backup node vault")

	start := time.Now()
	out, code = ad.run(ctx, "install", path, a.tar, "--pubkey", a.pubkey, "--relaxed-timings")
	require.Equal(t, 0, code, out)
	t.Logf("install with a backup node: %s", time.Since(start).Round(time.Second))
	require.Contains(t, out, "vault: created the pgBackRest stanza garrison")

	out, code = ad.run(ctx, "health", path)
	require.Equal(t, 0, code, out)
	require.Regexp(t, `(?m)^box +pgbackrest +green +TLS handshake OK`, out)
	require.Regexp(t, `(?m)^vault +pgbackrest +green +TLS handshake OK`, out)

	// The repository is on vault; box reads it over TLS.
	requireArchiving(ctx, t, nodes[2].Machine())
	requireArchiving(ctx, t, nodes[1].Machine())
	ls, err := nodes[2].Machine().Exec(ctx, "ls", "/var/lib/pgbackrest/archive/garrison", "/var/lib/pgbackrest/backup/garrison")
	require.NoError(t, err, ls)
	// The nightly backup runs on the backup node, from the db node.
	require.True(t, runBackupUnit(ctx, t, nodes[2].Machine()))
	require.Equal(t, 2, requireArchiving(ctx, t, nodes[2].Machine()))

	out, code = ad.run(ctx, "install", path, a.tar, "--pubkey", a.pubkey, "--relaxed-timings")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "install complete: nothing changed")
}
