package install

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/pki"
	"github.com/garrison-chat/garrison/installer/internal/preflight"
	"github.com/garrison-chat/garrison/installer/internal/remote"
	"github.com/garrison-chat/garrison/systemd"
)

// --- connect ---------------------------------------------------------------

func (in *Installer) connect(ctx context.Context) error {
	inv := in.site.Inv
	errs := make([]error, len(inv.Nodes))
	clients := make([]*remote.Client, len(inv.Nodes))
	var wg sync.WaitGroup
	for i, n := range inv.Nodes {
		if in.nodes[n.Name] != nil {
			continue
		}
		wg.Go(func() {
			t := remote.Target{
				Name: n.Name, Address: n.Address, Port: n.SSH.Port, User: n.SSH.User,
				KeyFile: inv.Path(n.SSH.Key), HostKeyFingerprint: n.SSH.HostKey,
			}
			clients[i], errs[i] = remote.Dial(ctx, t, remote.Options{HostKeys: in.keys, Dial: in.opts.Dial, Logf: in.log.Printf})
		})
	}
	wg.Wait()
	for i, n := range inv.Nodes {
		if clients[i] != nil {
			in.nodes[n.Name] = &node{Node: n, c: clients[i]}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return in.preflight(ctx)
}

// preflight checks every node before anything changes; a failed check
// stops the install unless --force.
func (in *Installer) preflight(ctx context.Context) error {
	clients := map[string]*remote.Client{}
	for name, n := range in.nodes {
		clients[name] = n.c
	}
	size, err := dirSize(filepath.Join(in.opts.BundleDir, "repo"))
	if err != nil {
		return err
	}
	rep := preflight.Run(ctx, in.site.Inv, clients, preflight.Options{BundleSize: size, HostKeys: in.keys, Now: in.opts.Now})
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		return err
	}
	in.log.Printf("preflight:\n%s", strings.TrimRight(b.String(), "\n"))
	in.preflightReport = rep
	if rep.Failed() {
		if !in.opts.Force {
			return errors.New("preflight failed (see the table above); fix the nodes, or run with --force to install anyway")
		}
		in.log.Printf("preflight failed; going on because of --force")
	}
	return nil
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// --- repo ------------------------------------------------------------------

// policyRC keeps package installation from starting services: the
// installer starts them itself, in order and configured.
const policyRC = "#!/bin/sh\n# garrisonctl: no service starts during package installation (removed afterwards)\nexit 101\n"

// aptOpts point apt at the bundle's repository alone, whatever else the
// node's sources list, so nothing waits on an unreachable mirror.
const aptOpts = "-o Dir::Etc::SourceList=/etc/garrison/apt/garrison.list -o Dir::Etc::SourceParts=/etc/garrison/apt/empty.d -o APT::Get::List-Cleanup=0"

func (in *Installer) repo(ctx context.Context) error {
	repoDir := filepath.Join(in.opts.BundleDir, "repo")
	var files []string
	sizes := map[string]int64{}
	err := filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(repoDir, p)
			files = append(files, rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			sizes[rel] = info.Size()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the bundle's repository: %w", err)
	}
	local, err := hashTree(repoDir, files)
	if err != nil {
		return err
	}
	keyring, err := os.ReadFile(filepath.Join(in.opts.BundleDir, "keys", "garrison-archive-keyring.gpg"))
	if err != nil {
		return fmt.Errorf("the bundle's archive key: %w", err)
	}
	dest := RepoDir + "/" + in.opts.Version
	return in.each(ctx, in.site.Inv.Nodes, func(ctx context.Context, n *node) error {
		// One listing of what the node already has, then only what differs.
		out, err := in.sh(ctx, n, "mkdir -p "+remote.Quote(dest)+" && cd "+remote.Quote(dest)+" && find . -type f ! -name '*.part' -exec sha256sum {} + 2>/dev/null || true")
		if err != nil {
			return err
		}
		have := parseSums(out)
		var todo []string
		var total int64
		for _, f := range files {
			if have[f] != local[f] {
				todo = append(todo, f)
				total += sizes[f]
			}
		}
		pr := &copyProgress{log: in.log, node: n.Name, total: total}
		for _, f := range todo {
			if _, err := n.c.Upload(ctx, filepath.Join(repoDir, f), dest+"/"+f, 0o644, pr.file(sizes[f])); err != nil {
				return err
			}
		}
		if len(todo) > 0 {
			in.changed(n, "copied %d file(s) of the bundle's repository (%s) to %s", len(todo), mib(total), dest)
		}
		list := "# Written by garrisonctl install.\ndeb [signed-by=" + KeyringDir + "/garrison-archive-keyring.gpg] file:" + dest + " ./\n"
		for _, f := range []struct {
			path string
			data []byte
		}{
			{KeyringDir + "/garrison-archive-keyring.gpg", keyring},
			{"/etc/apt/sources.list.d/garrison.sources", AptSource(in.opts.Version)},
			{"/etc/apt/preferences.d/garrison.pref", AptPreferences()},
			{"/etc/garrison/apt/garrison.list", []byte(list)},
			{"/etc/postgresql-common/createcluster.d/garrison.conf", CreateClusterConf},
		} {
			if _, err := in.write(ctx, n, f.path, f.data, 0o644, ""); err != nil {
				return err
			}
		}
		if _, err := in.sh(ctx, n, "mkdir -p /etc/garrison/apt/empty.d && apt-get -q "+aptOpts+" update >/dev/null"); err != nil {
			return fmt.Errorf("apt-get update from the bundle's repository: %w", err)
		}
		return nil
	})
}

// copyProgress logs a node's repository copy every tenth of the way
// (resumed files count from where they resume).
type copyProgress struct {
	log   *logger
	node  string
	total int64

	mu     sync.Mutex
	done   int64 // bytes of the files finished
	logged int64 // the last tenth logged
}

// file returns the Upload progress callback of the next file, of size.
// A file counts once even when Upload starts it over.
func (p *copyProgress) file(size int64) func(sent, total int64) {
	finished := false
	return func(sent, _ int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if finished {
			return
		}
		at := p.done + sent
		if sent == size {
			p.done += size
			finished = true
		}
		if p.total == 0 {
			return
		}
		if tenth := at * 10 / p.total; tenth > p.logged {
			p.logged = tenth
			p.log.Printf("  %s: copying the repository: %s of %s (%d%%)", p.node, mib(at), mib(p.total), at*100/p.total)
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func hashTree(dir string, files []string) (map[string]string, error) {
	out := make(map[string]string, len(files))
	for _, f := range files {
		sum, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		out[f] = sum
	}
	return out, nil
}

// parseSums reads `sha256sum` output into path → digest; a leading ./
// (from find .) is dropped, absolute paths stay as they are.
func parseSums(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if ok {
			m[strings.TrimPrefix(path, "./")] = sum
		}
	}
	return m
}

// --- packages --------------------------------------------------------------

func (in *Installer) packages(ctx context.Context) error {
	return in.each(ctx, in.site.Inv.Nodes, func(ctx context.Context, n *node) error {
		// Never downgrade silently.
		out, err := in.sh(ctx, n, `dpkg-query -W -f='${Version}' garrisonctl 2>/dev/null | head -c 64; true`)
		if err != nil {
			return err
		}
		if cur := strings.TrimSpace(out); cur != "" && cur != in.opts.Version {
			older, err := in.sh(ctx, n, "dpkg --compare-versions "+remote.Quote(cur)+" gt "+remote.Quote(in.opts.Version)+" && echo newer || true")
			if err != nil {
				return err
			}
			if strings.TrimSpace(older) == "newer" && !in.opts.Force {
				return fmt.Errorf("runs Garrison %s, newer than this bundle's %s; installing would downgrade it (use --force if you mean to)", cur, in.opts.Version)
			}
		}
		pkgs := strings.Join(in.site.Packages(n.Node), " ")
		script := `set -e
if grep -qs '^# garrisonctl:' /usr/sbin/policy-rc.d; then rm -f /usr/sbin/policy-rc.d; fi
missing=
for p in ` + pkgs + `; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
ours=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '%s' ` + remote.Quote(policyRC) + ` > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && ours=1
fi
trap '[ -z "$ours" ] || rm -f /usr/sbin/policy-rc.d' EXIT HUP INT TERM
DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends ` + aptOpts + ` -o Dpkg::Options::=--force-confold install $missing >&2
echo "$missing"
`
		out, err = in.sh(ctx, n, script)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(out); got != "" {
			in.changed(n, "installed %s", got)
		}
		return nil
	})
}

// --- tls -------------------------------------------------------------------

func (in *Installer) nodeCert(n inventory.Node) (pki.Cert, bool, error) {
	req := pki.Request{
		CommonName: n.Name,
		DNSNames:   in.site.CertNames(n),
		IPs:        []net.IP{net.ParseIP("127.0.0.1")},
		Server:     true,
		Client:     true,
	}
	if ip := net.ParseIP(n.Address); ip != nil {
		req.IPs = append(req.IPs, ip)
	}
	return in.ca.Ensure(filepath.Join(in.dir, "certs"), n.Name, req, in.opts.Now())
}

func (in *Installer) tls(ctx context.Context) error {
	return in.each(ctx, in.site.Inv.Nodes, func(ctx context.Context, n *node) error {
		cert, _, err := in.nodeCert(n.Node)
		if err != nil {
			return err
		}
		if _, err := in.write(ctx, n, CAFile, in.ca.CertPEM(), 0o644, "root:root"); err != nil {
			return err
		}
		if _, err := in.write(ctx, n, NodeCertFile, cert.CertPEM, 0o644, "root:root"); err != nil {
			return err
		}
		for _, owner := range in.site.KeyOwners(n.Node) {
			if _, err := in.write(ctx, n, KeyFile(owner), cert.KeyPEM, 0o600, owner+":"+owner); err != nil {
				return err
			}
		}
		reload := false
		for _, unit := range []string{"garrison.service", "garrison-pushproxy.service", "garrison-minio.service"} {
			if !slices.Contains(in.site.Units(n.Node), unit) {
				continue
			}
			ch, err := in.write(ctx, n, "/etc/systemd/system/"+unit+".d/garrison-site-ca.conf", TrustDropIn, 0o644, "root:root")
			if err != nil {
				return err
			}
			reload = reload || ch
		}
		if reload {
			_, err := in.sh(ctx, n, "systemctl daemon-reload")
			return err
		}
		return nil
	})
}

// --- units -----------------------------------------------------------------

// ensureUnit enables unit and makes it run: started when stopped,
// restarted when restart says its configuration changed. It does not wait
// (--no-block): etcd members and MinIO nodes only come up together.
func (in *Installer) ensureUnit(ctx context.Context, n *node, unit string, restart bool) error {
	_, err := in.ensureUnitStarted(ctx, n, unit, restart)
	return err
}

// ensureUnitStarted is ensureUnit that also says whether this call
// started (or restarted) the unit, which then reads its configuration
// anew: a reload on top would race the daemon's start (a SIGHUP before
// Patroni installs its handler ends it).
func (in *Installer) ensureUnitStarted(ctx context.Context, n *node, unit string, restart bool) (bool, error) {
	out, err := in.sh(ctx, n, "systemctl is-enabled "+unit+" 2>/dev/null; systemctl is-active "+unit+" 2>/dev/null; true")
	if err != nil {
		return false, err
	}
	f := strings.Fields(out)
	enabled := len(f) > 0 && f[0] == "enabled"
	active := len(f) > 1 && (f[1] == "active" || f[1] == "activating" || f[1] == "reloading")
	if !enabled {
		if _, err := in.sh(ctx, n, "systemctl enable --quiet "+unit); err != nil {
			return false, err
		}
		in.changed(n, "enabled %s", unit)
	}
	switch {
	case !active:
		if _, err := in.sh(ctx, n, "systemctl reset-failed "+unit+" 2>/dev/null; systemctl start --no-block "+unit); err != nil {
			return false, err
		}
		in.changed(n, "started %s", unit)
		return true, nil
	case restart:
		if _, err := in.sh(ctx, n, "systemctl restart --no-block "+unit); err != nil {
			return false, err
		}
		in.changed(n, "restarted %s (its configuration changed)", unit)
		return true, nil
	}
	return false, nil
}

// unitFailed returns an error with the unit's journal when it failed or
// stopped, so a wait does not run into its timeout on a unit that will
// not come up.
func (in *Installer) unitFailed(ctx context.Context, n *node, unit string) error {
	out, _ := in.sh(ctx, n, "systemctl is-active "+unit+" 2>/dev/null || true")
	if st := strings.TrimSpace(out); st != "failed" && st != "inactive" {
		return nil
	}
	j, _ := in.sh(ctx, n, "journalctl -u "+unit+" -n 15 --no-pager -o cat 2>&1 || true")
	return fmt.Errorf("%s is %s on %s; its last log lines:\n%s", unit, strings.TrimSpace(out), n.Name, j)
}

// --- etcd ------------------------------------------------------------------

func (in *Installer) etcd(ctx context.Context) error {
	members := in.site.Inv.EtcdMembers()
	err := in.each(ctx, members, func(ctx context.Context, n *node) error {
		// Debian's package started nothing (policy-rc.d), but an older run
		// may have: a changed environment needs a restart.
		ch, err := in.write(ctx, n, EtcdEnvFile, in.site.EtcdEnv(n.Node), 0o644, "root:root")
		if err != nil {
			return err
		}
		if _, err := in.sh(ctx, n, "install -d -o etcd -g etcd -m 700 "+EtcdData); err != nil {
			return err
		}
		return in.ensureUnit(ctx, n, "etcd.service", ch)
	})
	if err != nil {
		return err
	}
	return in.each(ctx, members, func(ctx context.Context, n *node) error {
		hc := plainClient(n)
		return in.waitFor(ctx, "etcd on "+n.Name, func(ctx context.Context) error {
			if err := in.unitFailed(ctx, n, "etcd.service"); err != nil {
				return err
			}
			var h struct {
				Health string `json:"health"`
			}
			if err := getJSON(ctx, hc, "http://127.0.0.1:2381/health", &h); err != nil {
				return err
			}
			if h.Health != "true" {
				return fmt.Errorf("etcd health is %q", h.Health)
			}
			return nil
		})
	})
}

// plainClient is an HTTP client for loopback endpoints of node n.
func plainClient(n *node) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DialContext: n.c.DialContext, DisableKeepAlives: true},
	}
}

func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

// --- database --------------------------------------------------------------

// patroniMember is one member of Patroni's GET /cluster.
type patroniMember struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Timeline int    `json:"timeline"`
	Lag      any    `json:"lag"`
}

func isLeaderRole(r string) bool {
	return r == "leader" || r == "master" || r == "primary" || r == "standby_leader"
}

func (in *Installer) database(ctx context.Context) error {
	db := in.site.Inv.With(inventory.RoleDB)
	// pgBackRest's first: Patroni's archive_command reads it, and with a
	// backup node the repository must answer before the first WAL segment.
	pgbr := db
	if b, ok := in.site.BackupHost(); ok && !b.Has(inventory.RoleDB) {
		pgbr = append(slices.Clone(db), b)
	}
	err := in.each(ctx, pgbr, func(ctx context.Context, n *node) error {
		ch, err := in.write(ctx, n, PGBackRestConfig, in.site.PGBackRest(n.Node, in.sec), 0o640, "postgres:postgres")
		if err != nil {
			return err
		}
		if !slices.Contains(in.site.Units(n.Node), "pgbackrest.service") {
			return nil
		}
		if err := in.ensureUnit(ctx, n, "pgbackrest.service", ch); err != nil {
			return err
		}
		return in.waitPGBackRestServer(ctx, n)
	})
	if err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		reloaded bool // a running Patroni got a new configuration
	)
	err = in.each(ctx, db, func(ctx context.Context, n *node) error {
		cfg, err := in.site.Patroni(n.Node, in.sec)
		if err != nil {
			return err
		}
		ch, err := in.write(ctx, n, PatroniConfig, cfg, 0o600, "postgres:postgres")
		if err != nil {
			return err
		}
		if _, err := in.sh(ctx, n, "install -d -o postgres -g postgres -m 700 /var/lib/postgresql/15"); err != nil {
			return err
		}
		// Patroni reloads its own configuration on SIGHUP; a restart of
		// the unit would needlessly fail over a running primary.
		started, err := in.ensureUnitStarted(ctx, n, "patroni.service", false)
		if err != nil {
			return err
		}
		if ch && !started {
			if _, err := in.sh(ctx, n, "systemctl reload patroni.service 2>/dev/null || true"); err != nil {
				return err
			}
			mu.Lock()
			reloaded = true
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := in.waitCluster(ctx, db); err != nil {
		return err
	}
	return in.restartPending(ctx, db, reloaded)
}

// waitCluster waits until Patroni has a leader and every db node runs.
func (in *Installer) waitCluster(ctx context.Context, db []inventory.Node) error {
	first := in.nodes[db[0].Name]
	hc := in.httpClient(first, first.Name, nil)
	url := "https://" + hostPort(first.Address, PortPatroni) + "/cluster"
	return in.waitFor(ctx, "a Patroni leader and every replica running", func(ctx context.Context) error {
		for _, n := range db {
			if err := in.unitFailed(ctx, in.nodes[n.Name], "patroni.service"); err != nil {
				return err
			}
		}
		var c struct {
			Members []patroniMember `json:"members"`
		}
		if err := getJSON(ctx, hc, url, &c); err != nil {
			return err
		}
		return clusterReady(c.Members, names(db), in.site.Inv.Sync())
	})
}

// restartPending restarts PostgreSQL, through Patroni, on the members
// that wait for a restart to apply a setting (archive_mode, say, on a site
// installed before garrisonctl set it): replicas first, the leader last,
// each once the cluster is whole again. Patroni applies a reload on its
// next loop, so after one (reloaded) it watches for a pending restart for
// a loop and a bit; otherwise it asks once.
func (in *Installer) restartPending(ctx context.Context, db []inventory.Node, reloaded bool) error {
	todo, err := in.pendingRestarts(ctx, db)
	if err != nil {
		return err
	}
	if reloaded {
		deadline := time.Now().Add(time.Duration(in.site.Timings.LoopWait+5) * time.Second)
		for len(todo) == 0 && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			// A member busy with the reload may not answer: ask again.
			todo, _ = in.pendingRestarts(ctx, db)
		}
	}
	for _, n := range todo {
		if err := in.patroniRestart(ctx, n); err != nil {
			return err
		}
		in.changed(n, "restarted PostgreSQL through Patroni to apply settings that need a restart")
		if err := in.waitCluster(ctx, db); err != nil {
			return err
		}
	}
	return nil
}

// pendingRestarts lists the db nodes whose Patroni reports a pending
// restart, replicas before the leader.
func (in *Installer) pendingRestarts(ctx context.Context, db []inventory.Node) ([]*node, error) {
	var replicas, leaders []*node
	for _, dn := range db {
		n := in.nodes[dn.Name]
		var p struct {
			Role    string `json:"role"`
			Pending bool   `json:"pending_restart"`
		}
		if err := getJSON(ctx, in.httpClient(n, n.Name, nil), "https://"+hostPort(n.Address, PortPatroni)+"/patroni", &p); err != nil {
			return nil, err
		}
		switch {
		case !p.Pending:
		case isLeaderRole(p.Role):
			leaders = append(leaders, n)
		default:
			replicas = append(replicas, n)
		}
	}
	return append(replicas, leaders...), nil
}

// patroniRestart asks n's Patroni to restart its PostgreSQL if a restart
// is pending; Patroni answers once it is done.
func (in *Installer) patroniRestart(ctx context.Context, n *node) error {
	// Patroni's REST API takes a change only from a client certificate of
	// the site CA (verify_client: optional) with its password.
	cert, err := in.clientCert()
	if err != nil {
		return err
	}
	hc := in.httpClient(n, n.Name, &cert)
	hc.Timeout = in.opts.StageTimeout
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+hostPort(n.Address, PortPatroni)+"/restart", strings.NewReader(`{"restart_pending": true}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("patroni", in.sec.PatroniREST)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("restart PostgreSQL on %s through Patroni: %w", n.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("restart PostgreSQL on %s through Patroni: %s: %s", n.Name, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// clusterReady says why a Patroni cluster is not ready yet: a running
// leader, every db node a running or streaming member, and with
// synchronous replication a synchronous standby.
func clusterReady(members []patroniMember, want []string, sync bool) error {
	leaders, syncs := 0, 0
	seen := map[string]patroniMember{}
	for _, m := range members {
		seen[m.Name] = m
		if isLeaderRole(m.Role) && m.State == "running" {
			leaders++
		}
		if m.Role == "sync_standby" && (m.State == "running" || m.State == "streaming") {
			syncs++
		}
	}
	if leaders != 1 {
		return fmt.Errorf("%d running leaders", leaders)
	}
	for _, w := range want {
		m, ok := seen[w]
		if !ok {
			return fmt.Errorf("%s is not a member yet", w)
		}
		if m.State != "running" && m.State != "streaming" {
			return fmt.Errorf("%s is %s", w, m.State)
		}
	}
	if sync && len(want) > 1 && syncs == 0 {
		return errors.New("no synchronous standby yet")
	}
	return nil
}

// leader returns the db node that is the Patroni leader now.
func (in *Installer) leader(ctx context.Context) (*node, error) {
	var errs []error
	for _, n := range in.site.Inv.With(inventory.RoleDB) {
		nd := in.nodes[n.Name]
		hc := in.httpClient(nd, nd.Name, nil)
		var p struct {
			Role string `json:"role"`
		}
		if err := getJSON(ctx, hc, "https://"+hostPort(n.Address, PortPatroni)+"/patroni", &p); err != nil {
			errs = append(errs, err)
			continue
		}
		if isLeaderRole(p.Role) {
			return nd, nil
		}
	}
	return nil, fmt.Errorf("no Patroni leader: %w", errors.Join(errs...))
}

// --- db-roles --------------------------------------------------------------

// waitLeader waits until a db node is the Patroni leader and returns it.
func (in *Installer) waitLeader(ctx context.Context) (*node, error) {
	var lead *node
	err := in.waitFor(ctx, "the Patroni leader", func(ctx context.Context) error {
		var err error
		lead, err = in.leader(ctx)
		return err
	})
	return lead, err
}

func (in *Installer) dbRoles(ctx context.Context) error {
	lead, err := in.waitLeader(ctx)
	if err != nil {
		return err
	}
	type role struct{ user, password, db string }
	roles := []role{{"garrison", in.sec.Garrison, DBGarrison}}
	if in.site.Inv.Push() {
		roles = append(roles, role{DBPush, in.sec.Push, DBPush})
	}
	for _, r := range roles {
		// Through stdin, never the command line: the password is in it.
		sql := fmt.Sprintf(`\set ON_ERROR_STOP on
SELECT 'CREATE ROLE %[1]s LOGIN PASSWORD ''%[2]s''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') \gexec
SELECT 'CREATE DATABASE %[3]s OWNER %[1]s' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%[3]s') \gexec
`, r.user, r.password, r.db)
		res, err := lead.c.Run(ctx, "cd / && runuser -u postgres -- psql -X -d postgres -v ON_ERROR_STOP=1", strings.NewReader(sql))
		if err != nil {
			return err
		}
		// \gexec prints the command tag of what it ran: CREATE ROLE, CREATE DATABASE.
		if out := string(res.Stdout); strings.Contains(out, "CREATE ROLE") || strings.Contains(out, "CREATE DATABASE") {
			in.changed(lead, "created role and database %s", r.db)
		}
	}
	return nil
}

// --- storage ---------------------------------------------------------------

func (in *Installer) storage(ctx context.Context) error {
	if !in.site.Inv.UsesMinIO() {
		return nil
	}
	st := in.site.Inv.With(inventory.RoleStorage)
	err := in.each(ctx, st, func(ctx context.Context, n *node) error {
		cert, _, err := in.nodeCert(n.Node)
		if err != nil {
			return err
		}
		ch := false
		for _, f := range []struct {
			path  string
			data  []byte
			mode  os.FileMode
			owner string
		}{
			{MinIOCerts + "/public.crt", cert.CertPEM, 0o644, "root:root"},
			{MinIOCerts + "/private.key", cert.KeyPEM, 0o600, "garrison-minio:garrison-minio"},
			{MinIOCerts + "/CAs/ca.crt", in.ca.CertPEM(), 0o644, "root:root"},
			{MinIOEnvFile, in.site.MinIOEnv(in.sec), 0o640, "root:garrison-minio"},
		} {
			c, err := in.write(ctx, n, f.path, f.data, f.mode, f.owner)
			if err != nil {
				return err
			}
			ch = ch || c
		}
		dropIn, err := systemd.MinIODrives(n.Drives)
		if err != nil {
			return err
		}
		c, err := in.write(ctx, n, systemd.MinIODropInPath, dropIn, 0o644, "root:root")
		if err != nil {
			return err
		}
		if c {
			if _, err := in.sh(ctx, n, "systemctl daemon-reload"); err != nil {
				return err
			}
		}
		ch = ch || c
		for _, d := range n.Drives {
			if _, err := in.sh(ctx, n, "install -d -o garrison-minio -g garrison-minio -m 750 "+remote.Quote(d)); err != nil {
				return err
			}
		}
		return in.ensureUnit(ctx, n, "garrison-minio.service", ch)
	})
	if err != nil {
		return err
	}
	first := in.nodes[st[0].Name]
	hc := in.httpClient(first, "localhost", nil)
	err = in.waitFor(ctx, "MinIO's quorum", func(ctx context.Context) error {
		for _, n := range st {
			if err := in.unitFailed(ctx, in.nodes[n.Name], "garrison-minio.service"); err != nil {
				return err
			}
		}
		return getJSON(ctx, hc, "https://127.0.0.1:9000/minio/health/cluster", nil)
	})
	if err != nil {
		return err
	}
	if _, ok := in.site.BackupHost(); ok {
		return nil // the WAL archive lives on the backup node
	}
	return in.ensureBackupBucket(ctx)
}

// --- app -------------------------------------------------------------------

const vapidFile = "/var/lib/garrison-pushproxy/vapid.json"

func (in *Installer) app(ctx context.Context) error {
	apps := in.site.Inv.With(inventory.RoleApp)
	// Configuration everywhere first.
	changedCfg := map[string]map[string]bool{}
	err := in.each(ctx, apps, func(ctx context.Context, n *node) error {
		ch := map[string]bool{}
		cfg, err := in.site.GarrisonConfig(n.Node, in.sec)
		if err != nil {
			return err
		}
		if ch["garrison.service"], err = in.write(ctx, n, GarrisonConfig, cfg, 0o640, "root:garrison"); err != nil {
			return err
		}
		if in.site.Inv.Push() {
			pc, err := in.site.PushProxyConfig(n.Node, in.sec)
			if err != nil {
				return err
			}
			if ch["garrison-pushproxy.service"], err = in.write(ctx, n, PushProxyConfig, pc, 0o640, "root:garrison-pushproxy"); err != nil {
				return err
			}
		}
		in.mu.Lock()
		changedCfg[n.Name] = ch
		in.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	first := in.nodes[apps[0].Name]
	if in.site.Inv.Push() {
		// Every proxy must sign with the same VAPID key: the first makes
		// it, the others get a copy before they start.
		if err := in.startPush(ctx, first, changedCfg[first.Name]["garrison-pushproxy.service"]); err != nil {
			return err
		}
		vapid, err := first.c.ReadFile(ctx, vapidFile)
		if err != nil {
			return fmt.Errorf("%s: the push proxy's VAPID key: %w", first.Name, err)
		}
		err = in.each(ctx, apps[1:], func(ctx context.Context, n *node) error {
			ch, err := in.write(ctx, n, vapidFile, vapid, 0o600, "garrison-pushproxy:garrison-pushproxy")
			if err != nil {
				return err
			}
			return in.startPush(ctx, n, ch || changedCfg[n.Name]["garrison-pushproxy.service"])
		})
		clear(vapid)
		if err != nil {
			return err
		}
	}
	// The first garrison applies the migrations; the others follow.
	if err := in.startGarrison(ctx, first, changedCfg[first.Name]["garrison.service"]); err != nil {
		return err
	}
	return in.each(ctx, apps[1:], func(ctx context.Context, n *node) error {
		return in.startGarrison(ctx, n, changedCfg[n.Name]["garrison.service"])
	})
}

func (in *Installer) startPush(ctx context.Context, n *node, restart bool) error {
	if err := in.ensureUnit(ctx, n, "garrison-pushproxy.service", restart); err != nil {
		return err
	}
	hc := in.httpClient(n, n.Name, nil)
	url := "https://" + hostPort(n.Address, PortPush) + "/readyz"
	return in.waitFor(ctx, "the push proxy on "+n.Name, func(ctx context.Context) error {
		if err := in.unitFailed(ctx, n, "garrison-pushproxy.service"); err != nil {
			return err
		}
		return getJSON(ctx, hc, url, nil)
	})
}

func (in *Installer) startGarrison(ctx context.Context, n *node, restart bool) error {
	if err := in.ensureUnit(ctx, n, "garrison.service", restart); err != nil {
		return err
	}
	hc := in.httpClient(n, n.Name, nil)
	url := "https://" + hostPort(n.Address, PortAPI) + "/api/v4/system/ping?get_server_status=true"
	return in.waitFor(ctx, "garrison on "+n.Name, func(ctx context.Context) error {
		if err := in.unitFailed(ctx, n, "garrison.service"); err != nil {
			return err
		}
		var p map[string]any
		if err := getJSON(ctx, hc, url, &p); err != nil {
			return err
		}
		for _, k := range []string{"status", "database_status", "filestore_status"} {
			if v, _ := p[k].(string); v != "OK" {
				return fmt.Errorf("ping: %s is %v", k, p[k])
			}
		}
		return nil
	})
}

// --- admin -----------------------------------------------------------------

func (in *Installer) admin(ctx context.Context) error {
	first := in.nodes[in.site.Inv.With(inventory.RoleApp)[0].Name]
	hc := in.httpClient(first, first.Name, nil)
	base := "https://" + hostPort(first.Address, PortAPI) + "/api/v4"
	inv := in.site.Inv
	login := func() (int, error) {
		body, _ := json.Marshal(map[string]string{"login_id": inv.Admin.Username, "password": in.sec.AdminPassword})
		return post(ctx, hc, base+"/users/login", body, nil)
	}
	if code, err := login(); err == nil && code == http.StatusOK {
		return nil // the admin exists with our password
	}
	body, _ := json.Marshal(map[string]string{"username": inv.Admin.Username, "email": inv.Admin.Email, "password": in.sec.AdminPassword})
	var u struct {
		Roles string `json:"roles"`
	}
	code, err := post(ctx, hc, base+"/users", body, &u)
	if err != nil {
		return err
	}
	if code != http.StatusCreated {
		return fmt.Errorf("create the first admin %s: status %d (does the site already have users? then sign in with an existing admin)", inv.Admin.Username, code)
	}
	if !strings.Contains(u.Roles, "system_admin") {
		return fmt.Errorf("created %s, but it is not a system admin: another user was created first; check who before going on", inv.Admin.Username)
	}
	in.changed(first, "created the first admin %s", inv.Admin.Username)
	in.adminCreated = true
	return nil
}

func post(ctx context.Context, hc *http.Client, url string, body []byte, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if v != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, v); err != nil {
			return 0, err
		}
	}
	return resp.StatusCode, nil
}

// --- proxy -----------------------------------------------------------------

func (in *Installer) publicCert() (certPEM, keyPEM []byte, err error) {
	inv := in.site.Inv
	if inv.TLS.PublicCert != "" {
		if certPEM, err = os.ReadFile(inv.Path(inv.TLS.PublicCert)); err != nil {
			return nil, nil, fmt.Errorf("tls.public_cert: %w", err)
		}
		if keyPEM, err = os.ReadFile(inv.Path(inv.TLS.PublicKey)); err != nil {
			return nil, nil, fmt.Errorf("tls.public_key: %w", err)
		}
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			return nil, nil, fmt.Errorf("tls.public_cert and tls.public_key do not make a pair: %w", err)
		}
		return certPEM, keyPEM, nil
	}
	req := pki.Request{CommonName: in.site.SiteHost(), Server: true}
	if ip := net.ParseIP(in.site.SiteHost()); ip != nil {
		req.IPs = []net.IP{ip}
	} else {
		req.DNSNames = []string{in.site.SiteHost()}
	}
	c, _, err := in.ca.Ensure(filepath.Join(in.dir, "certs"), "public", req, in.opts.Now())
	if err != nil {
		return nil, nil, err
	}
	return append(slices.Clone(c.CertPEM), in.ca.CertPEM()...), c.KeyPEM, nil
}

func (in *Installer) proxy(ctx context.Context) error {
	certPEM, keyPEM, err := in.publicCert()
	if err != nil {
		return err
	}
	conf, err := in.site.NginxConfig()
	if err != nil {
		return err
	}
	return in.each(ctx, in.site.Inv.With(inventory.RoleProxy), func(ctx context.Context, n *node) error {
		ch := false
		for _, f := range []struct {
			path string
			data []byte
			mode os.FileMode
		}{
			{PublicCert, certPEM, 0o644},
			{PublicKey, keyPEM, 0o600},
			{NginxConfig, conf, 0o644},
		} {
			c, err := in.write(ctx, n, f.path, f.data, f.mode, "root:root")
			if err != nil {
				return err
			}
			ch = ch || c
		}
		if _, err := in.sh(ctx, n, "install -d -o www-data -g www-data -m 700 /var/lib/nginx/garrison && nginx -t -q"); err != nil {
			return fmt.Errorf("nginx -t refused the configuration: %w", err)
		}
		started, err := in.ensureUnitStarted(ctx, n, "nginx.service", false)
		if err != nil {
			return err
		}
		if ch && !started {
			if _, err := in.sh(ctx, n, "systemctl reload nginx.service"); err != nil {
				return err
			}
		}
		return in.waitFor(ctx, "the site through nginx on "+n.Name, func(ctx context.Context) error {
			return in.checkThroughProxy(ctx, n, certPEM)
		})
	})
}

// checkThroughProxy fetches the ping through nginx on proxy node n, with
// the site's host name, trusting exactly the certificate nginx shows.
func (in *Installer) checkThroughProxy(ctx context.Context, n *node, certPEM []byte) error {
	hc := in.httpClient(n, in.site.SiteHost(), nil)
	tr := hc.Transport.(*http.Transport)
	tr.TLSClientConfig.RootCAs.AppendCertsFromPEM(certPEM)
	host := in.site.SiteHost()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return n.c.DialContext(ctx, network, hostPort(n.Address, PortHTTPS))
	}
	var p map[string]any
	if err := getJSON(ctx, hc, "https://"+host+"/api/v4/system/ping", &p); err != nil {
		return err
	}
	if p["status"] != "OK" {
		return fmt.Errorf("ping through nginx: status %v", p["status"])
	}
	return nil
}
