package bundle_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/garrison-chat/garrison/systemd"
	"github.com/garrison-chat/garrison/test/debroot"
	"github.com/stretchr/testify/require"
)

const keyringPath = "/usr/share/keyrings/garrison-archive-keyring.gpg"

// The packages the issue names: everything a node of any role installs.
var nodePackages = []string{"garrison", "garrison-pushproxy", "garrisonctl", "garrison-minio",
	"nginx", "postgresql-15", "patroni", "etcd-server", "pgbackrest"}

// TestOfflineInstallAndUnits installs every package from the bundle's
// signed repository onto a Debian root with no network at all, checks
// the units where they will run (systemd-analyze verify and security
// inside that root), then boots the root with systemd and brings
// garrison, the push proxy and MinIO up to a passing health check.
func TestOfflineInstallAndUnits(t *testing.T) {
	b := theBundle(t)
	base := debroot.Prepare(t)
	ctx := t.Context()
	tree := filepath.Join(extractedTree(t, b), b.top())
	n := debroot.NewNode(t, base, "bundle-install")
	media := debroot.ChrootOptions{Binds: []debroot.Bind{{Host: tree, Node: "/media/garrison"}}}

	// The bundle's repository is the only apt source, trusted through
	// signed-by and nothing else.
	require.NoError(t, n.WriteFile("/etc/apt/sources.list",
		[]byte("deb [signed-by="+keyringPath+"] file:/media/garrison/repo ./\n"), 0o644))
	out, err := n.Chroot(ctx, "sh", "-c", "rm -f /etc/apt/sources.list.d/* /var/lib/apt/lists/*_* && ls /etc/apt/sources.list.d | wc -l")
	require.NoError(t, err, out)
	require.Equal(t, "0", strings.TrimSpace(out))

	// Without the right key apt refuses the repository.
	other, err := os.ReadFile("/usr/share/keyrings/debian-archive-keyring.gpg")
	if err != nil {
		need(t, "the host's debian-archive-keyring is missing: %v", err)
	}
	require.NoError(t, n.WriteFile(keyringPath, other, 0o644))
	out, _ = n.ChrootWith(ctx, media, "apt-get", "update")
	require.Contains(t, out, "NO_PUBKEY", "apt accepted a repository signed by a key it was not given")

	keyring, err := os.ReadFile(filepath.Join(tree, "keys", "garrison-archive-keyring.gpg"))
	require.NoError(t, err)
	require.NoError(t, n.WriteFile(keyringPath, keyring, 0o644))
	out, err = n.ChrootWith(ctx, media, "apt-get", "update")
	require.NoError(t, err, out)
	require.NotRegexp(t, `(?m)^(W|E):`, out, "apt-get update warned")

	start := time.Now()
	install := append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, nodePackages...)
	out, err = n.ChrootWith(ctx, media, install...)
	require.NoError(t, err, out)
	t.Logf("offline apt-get install of %d packages: %s", len(nodePackages), time.Since(start).Round(time.Second))
	out, err = n.Chroot(ctx, "dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n")
	require.NoError(t, err, out)
	installed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "ii" {
			installed[f[0]] = f[1]
		}
	}
	for _, p := range nodePackages {
		require.Contains(t, installed, p, "%s is installed", p)
	}
	require.Equal(t, b.info.Version, installed["garrison"])

	// The maintainer scripts made the users and data directories.
	for _, u := range []string{"garrison", "garrison-pushproxy", "garrison-agent", "garrison-minio"} {
		out, err := n.Chroot(ctx, "sh", "-c", fmt.Sprintf("getent passwd %[1]s && stat -c '%%U %%a' /var/lib/%[1]s", u))
		require.NoError(t, err, out)
		require.Contains(t, out, u+" 750", "%s owns its data directory", u)
	}
	out, err = n.Chroot(ctx, "stat", "-c", "%U:%G %a", "/etc/garrison/config.json")
	require.NoError(t, err, out)
	require.Equal(t, "root:garrison 640", strings.TrimSpace(out))

	checkUnits(t, n)
	bootAndCheckHealth(t, n)
}

// checkUnits runs systemd-analyze inside the installed root: verify with
// nothing on stderr, and the exposure scores the units promise.
func checkUnits(t *testing.T, n *debroot.Node) {
	ctx := t.Context()
	units, err := fs.Glob(systemd.Units, "*.service")
	require.NoError(t, err)
	require.Len(t, units, 4)
	for _, unit := range units {
		limit, ok := systemd.MaxExposure(unit)
		require.True(t, ok, unit)
		path := "/lib/systemd/system/" + unit
		out, err := n.Chroot(ctx, "systemd-analyze", "verify", path)
		require.NoError(t, err, out)
		require.Empty(t, strings.TrimSpace(out), "systemd-analyze verify %s printed something", unit)
		out, err = n.Chroot(ctx, "systemd-analyze", "security", "--offline=yes", path)
		require.NoError(t, err, out)
		got, err := systemd.ParseExposure(out)
		require.NoError(t, err)
		t.Logf("%s: exposure %.1f (limit %.1f)", unit, got, limit)
		require.LessOrEqual(t, got, limit, unit)
	}
}

// bootAndCheckHealth boots the node, gives each service the smallest
// real configuration and waits for its health check.
func bootAndCheckHealth(t *testing.T, n *debroot.Node) {
	ctx := t.Context()
	pushCfg := `{"ListenAddress": "127.0.0.1:8066", "PublicURL": "http://127.0.0.1:8066",
  "DataSource": "postgres:///garrison_push?host=/var/run/postgresql",
  "SenderSecret": "bundle-test-sender-secret-0123456789"}` + "\n"
	require.NoError(t, n.WriteFile("/etc/garrison/pushproxy.json", []byte(pushCfg), 0o640))
	minioEnv := "MINIO_VOLUMES=\"/var/lib/garrison-minio/data\"\n" +
		"MINIO_OPTS=\"--address 127.0.0.1:9000 --console-address 127.0.0.1:9001\"\n" +
		"MINIO_ROOT_USER=garrison-test\nMINIO_ROOT_PASSWORD=garrison-test-password\n"
	require.NoError(t, n.WriteFile("/etc/garrison/minio.env", []byte(minioEnv), 0o640))
	out, err := n.Chroot(ctx, "sh", "-c", "chown root:garrison-pushproxy /etc/garrison/pushproxy.json && chown root:garrison-minio /etc/garrison/minio.env")
	require.NoError(t, err, out)

	start := time.Now()
	require.NoError(t, n.Boot(ctx, debroot.BootOptions{}))
	t.Logf("boot to running: %s", time.Since(start).Round(100*time.Millisecond))

	// Debian's postgresql-common made the cluster at install; the roles
	// match the services' users, so they log in over the socket by peer.
	poll(t, ctx, "postgres accepts connections", func(ctx context.Context) (string, error) {
		return n.Exec(ctx, "runuser", "-u", "postgres", "--", "psql", "-Atc", "select 1")
	})
	for _, sql := range []string{`CREATE ROLE garrison LOGIN`, `CREATE DATABASE garrison OWNER garrison`,
		`CREATE ROLE "garrison-pushproxy" LOGIN`, `CREATE DATABASE garrison_push OWNER "garrison-pushproxy"`} {
		out, err = n.Exec(ctx, "runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-c", sql)
		require.NoError(t, err, out)
	}

	out, err = n.Exec(ctx, "systemctl", "start", "--no-block", "garrison-minio.service", "garrison-pushproxy.service", "garrison.service")
	require.NoError(t, err, out)
	for _, unit := range []string{"garrison-minio.service", "garrison-pushproxy.service", "garrison.service", "nginx.service"} {
		poll(t, ctx, unit+" is active", func(ctx context.Context) (string, error) {
			out, err := n.Exec(ctx, "systemctl", "is-active", unit)
			if err == nil && strings.TrimSpace(out) != "active" {
				err = fmt.Errorf("state %s", strings.TrimSpace(out))
			}
			return out, err
		})
	}
	checks := map[string]string{
		"garrison":           "http://127.0.0.1:8065/api/v4/system/ping?get_server_status=true",
		"garrison-pushproxy": "http://127.0.0.1:8066/readyz",
		"garrison-minio":     "http://127.0.0.1:9000/minio/health/live",
	}
	for name, url := range checks {
		poll(t, ctx, name+" passes its health check", func(ctx context.Context) (string, error) {
			return n.Exec(ctx, "curl", "-fsS", "--max-time", "5", url)
		})
	}
	out, err = n.Exec(ctx, "curl", "-fsS", "http://127.0.0.1:8065/api/v4/system/ping?get_server_status=true")
	require.NoError(t, err, out)
	require.Contains(t, out, `"database_status":"OK"`)
	// Type=notify: systemd saw READY=1 and the STATUS line.
	out, err = n.Exec(ctx, "systemctl", "show", "-p", "StatusText", "-p", "NRestarts", "garrison.service")
	require.NoError(t, err, out)
	require.Contains(t, out, "NRestarts=0")
	require.NotContains(t, out, "StatusText=\n")
}

// poll runs f until it succeeds or a generous deadline passes; the
// deadline bounds a hang, it does not measure speed.
func poll(t *testing.T, ctx context.Context, what string, f func(ctx context.Context) (string, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var out string
	var err error
	for {
		if out, err = f(ctx); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still failing at the deadline: %v\n%s", what, err, out)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
