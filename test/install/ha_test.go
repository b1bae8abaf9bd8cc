package install

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/test/debroot"
	"github.com/garrison-chat/garrison/test/testbed"
)

// haNodes are the machines of the highly available site: three nodes with
// the app, db and storage roles, and one proxy.
var haNodes = []string{"app1", "app2", "app3", "edge"}

// haSite is a booted, not yet installed, highly available site: the
// testbed, its admin node (no machine: the admin's workstation), the
// machines and the inventory that names them.
type haSite struct {
	name     string // the site's name
	tb       *testbed.Testbed
	admin    *admin
	nodes    map[string]*testbed.Node
	machines map[string]*testbed.Machine
	inv      string
}

// bootHA makes a testbed with the four machines of haNodes, booted in
// parallel, and writes the site's inventory (synchronous replication,
// MinIO over two drives on each storage node).
func bootHA(ctx context.Context, t *testing.T, a artefacts, base *debroot.Base, site string) *haSite {
	t.Helper()
	tb := testbed.New(t, testbed.Options{Machines: len(haNodes)})
	all, err := tb.AddNodes(ctx, append([]string{"admin"}, haNodes...)...)
	require.NoError(t, err)
	s := &haSite{name: site, tb: tb, nodes: map[string]*testbed.Node{}, machines: map[string]*testbed.Machine{}}
	for _, n := range all {
		s.nodes[n.Name()] = n
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, name := range haNodes {
		wg.Go(func() {
			m, err := s.nodes[name].Boot(ctx, base, testbed.BootOptions{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			s.machines[name] = m
		})
	}
	wg.Wait()
	require.Empty(t, errs)

	var nodes strings.Builder
	for _, name := range haNodes {
		fp, err := s.machines[name].HostKeyFingerprint(ctx)
		require.NoError(t, err)
		roles, drives := "[app, db, storage]", ", drives: [/srv/minio/d1, /srv/minio/d2]"
		if name == "edge" {
			roles, drives = "[proxy]", ""
		}
		fmt.Fprintf(&nodes, "  - {name: %s, address: %s, ssh: {host_key: '%s'}, roles: %s%s}\n", name, s.nodes[name].Addr(), fp, roles, drives)
	}
	dir := t.TempDir()
	s.inv = filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(s.inv, []byte(fmt.Sprintf(`site: %s
site_url: https://chat.%s.test
admin: {username: sysadmin, email: sysadmin@%s.test}
ssh: {user: root, key: %s}
options:
  synchronous_replication: true
  monitoring_networks: [%s]
  # The testbed's machines have one disk; a real site gives MinIO its own.
  allow_drives_on_root_disk: true
nodes:
%s`, site, site, site, tb.SSHKeyFile(), tb.Subnet(), nodes.String())), 0o600))
	s.admin = &admin{t: t, node: s.nodes["admin"], a: a, state: filepath.Join(dir, "state")}
	return s
}

// install runs garrisonctl install with extra arguments and requires
// exit status 0.
func (s *haSite) install(ctx context.Context, extra ...string) string {
	s.admin.t.Helper()
	args := append([]string{"install", s.inv, s.admin.a.tar, "--pubkey", s.admin.a.pubkey, "--relaxed-timings"}, extra...)
	out, code := s.admin.run(ctx, args...)
	require.Equal(s.admin.t, 0, code, out)
	return out
}

// receipt reads the newest install receipt of the site.
func (s *haSite) receipt(t *testing.T) receiptShape {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(s.admin.state, "receipts", "install-*-"+s.name+".json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, "no install receipt for %s", s.name)
	sort.Strings(paths)
	data, err := os.ReadFile(paths[len(paths)-1])
	require.NoError(t, err)
	var r struct {
		Nodes []struct {
			Name     string            `json:"name"`
			Roles    []string          `json:"roles"`
			Packages map[string]string `json:"packages"`
			Files    map[string]string `json:"files"`
		} `json:"nodes"`
		Health []struct {
			Node     string `json:"node"`
			Status   string `json:"status"`
			Services []struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			} `json:"services"`
		} `json:"health"`
	}
	require.NoError(t, json.Unmarshal(data, &r))
	shape := receiptShape{}
	for _, n := range r.Nodes {
		var files []string
		for f := range n.Files {
			files = append(files, f)
		}
		sort.Strings(files)
		shape[n.Name] = append(shape[n.Name], "roles "+strings.Join(n.Roles, ","), "files "+strings.Join(files, " "))
		for p, v := range n.Packages {
			shape[n.Name] = append(shape[n.Name], "package "+p+" "+v)
		}
	}
	for _, h := range r.Health {
		shape[h.Node] = append(shape[h.Node], "health "+h.Status)
		for _, svc := range h.Services {
			shape[h.Node] = append(shape[h.Node], "service "+svc.Name+" "+svc.Status)
		}
	}
	for _, lines := range shape {
		sort.Strings(lines)
	}
	return shape
}

// receiptShape is what two installs of the same inventory on different
// machines must have in common: per node, its roles, the files
// garrisonctl wrote, the package versions and every service's health.
// (File contents differ: each site has its own secrets and certificates.)
type receiptShape map[string][]string

// caFile is the site CA's certificate, which garrisonctl keeps.
func (s *haSite) caFile() string {
	return filepath.Join(s.admin.state, "sites", s.name, "ca", "ca.crt")
}

// Scenarios 2, 4 and 3 on two sites of four machines each:
//   - install: three app+db+storage nodes and a proxy, in synchronous
//     mode. A second run changes nothing; the official Mattermost driver
//     logs in through the proxy and posts; posts made on each app node
//     reach WebSocket clients on the others; health is green.
//   - resume: a second site's install stops after the database step; the
//     rerun finishes from there, and the site it makes has the same shape
//     as the first (receipts compared without secrets and times).
//   - partition: the first site's Patroni leader is cut off under load.
func TestHA(t *testing.T) {
	ctx := t.Context()
	a := theArtefacts(t)
	mmsite := need(t, "MMSITE_BIN")
	base := debroot.Prepare(t)
	s := bootHA(ctx, t, a, base, "ha")
	var r *rest
	ok := t.Run("install", func(t *testing.T) {
		s.admin.t = t
		installHA(ctx, t, s, mmsite)
		r = &rest{t: t, hc: siteClient(t, s.nodes["admin"], s.caFile(), "chat.ha.test", s.nodes["edge"]), base: "https://chat.ha.test"}
	})
	if !ok {
		return
	}
	t.Run("resume", func(t *testing.T) {
		b := bootHA(ctx, t, a, base, "ha")
		defer func() { require.NoError(t, b.tb.Close(context.WithoutCancel(ctx))) }()
		resumeHA(ctx, t, b, s)
	})
	t.Run("partition", func(t *testing.T) {
		r.t = t
		h := r.json(ctx, http.MethodPost, "/api/v4/users/login", map[string]string{"login_id": "sysadmin", "password": secrets(t, s.admin.state, s.name)["admin_password"]}, http.StatusOK, nil)
		r.token = h.Get("Token")
		var team struct{ ID string }
		r.json(ctx, http.MethodPost, "/api/v4/teams", map[string]string{"name": "load", "display_name": "Load", "type": "O"}, http.StatusCreated, &team)
		var ch struct{ ID string }
		r.json(ctx, http.MethodPost, "/api/v4/channels", map[string]string{"team_id": team.ID, "name": "writes", "display_name": "Writes", "type": "O"}, http.StatusCreated, &ch)
		partitionLeader(ctx, t, s, r, ch.ID)
	})
}

// installHA is scenario 2 on s.
func installHA(ctx context.Context, t *testing.T, s *haSite, mmsite string) {
	out, code := s.admin.run(ctx, "plan", s.inv)
	require.Equal(t, 0, code, out)

	start := time.Now()
	out = s.install(ctx)
	t.Logf("HA install (4 machines): %s", time.Since(start).Round(time.Second))
	require.Contains(t, out, "Site ha is up at https://chat.ha.test")
	require.Contains(t, out, "First admin: sysadmin")

	out, code = s.admin.run(ctx, "health", s.inv)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "site: GREEN")
	for _, name := range dbNodes {
		for _, svc := range []string{"garrison", "pushproxy", "postgres", "etcd", "minio"} {
			require.Regexp(t, `(?m)^`+name+` +`+svc+` +green`, out, "health lists %s on %s, green", svc, name)
		}
	}
	require.Regexp(t, `(?m)^edge +nginx +green`, out)
	for _, name := range dbNodes {
		requireArchiving(ctx, t, s.machines[name])
	}
	// The nightly backup, run now on every db node: the primary alone
	// backs up.
	ran := 0
	for _, name := range dbNodes {
		if runBackupUnit(ctx, t, s.machines[name]) {
			ran++
		}
	}
	require.Equal(t, 1, ran, "exactly one db node (the primary) backed up")
	require.Equal(t, 2, requireArchiving(ctx, t, s.machines["app1"]))

	start = time.Now()
	out = s.install(ctx)
	t.Logf("second run: %s", time.Since(start).Round(time.Second))
	require.Contains(t, out, "install complete: nothing changed")

	// The official driver, from the admin's workstation: through nginx,
	// then every pair of app nodes directly.
	args := []string{"-site", "https://chat.ha.test", "-resolve", s.nodes["edge"].HostPort(443), "-ca", s.caFile(), "-user", "sysadmin"}
	for _, name := range dbNodes {
		args = append(args, "-app", "https://"+s.nodes[name].HostPort(8065))
	}
	cmd := s.nodes["admin"].Command(ctx, mmsite, args...)
	cmd.Env = append(os.Environ(), "MMSITE_PASSWORD="+secrets(t, s.admin.state, s.name)["admin_password"])
	drv, err := cmd.CombinedOutput()
	t.Logf("mmsite:\n%s", drv)
	require.NoError(t, err, "the Mattermost driver against the site")
	require.Contains(t, string(drv), "posted with a file")
	require.Equal(t, 6, strings.Count(string(drv), "reached a WebSocket"), "every ordered pair of app nodes")
}

// resumeHA is scenario 4: b's install stops after the database tier is up
// and before garrison starts; the rerun completes from there without
// redoing what was done, and b ends up like ref.
func resumeHA(ctx context.Context, t *testing.T, b, ref *haSite) {
	b.admin.t = t
	start := time.Now()
	out := b.install(ctx, "--stop-after", "database")
	first := time.Since(start)
	require.Contains(t, out, "stopping after step database as asked")
	require.NotContains(t, out, "step db-roles")
	for _, n := range dbNodes {
		st, _ := b.machines[n].Exec(ctx, "systemctl", "is-active", "patroni.service", "garrison.service")
		require.Equal(t, "active\ninactive", strings.TrimSpace(st), "%s: Patroni runs, garrison does not, after the stop", n)
	}

	start = time.Now()
	out = b.install(ctx)
	t.Logf("resumed install: %s until the stop, then %s", first.Round(time.Second), time.Since(start).Round(time.Second))
	for _, step := range []string{"repo", "packages", "tls", "etcd", "storage", "database"} {
		require.Contains(t, out, "step "+step+": done, nothing changed", "the rerun redoes nothing of what the first run did")
	}
	require.Contains(t, out, "Site ha is up at https://chat.ha.test")
	require.Equal(t, ref.receipt(t), b.receipt(t), "the resumed site has the same shape as the one installed in one run")
}
