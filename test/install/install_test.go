// Package install holds the installer's end-to-end scenarios: garrisonctl
// installs a site from the real bundle, over SSH, onto booted Debian
// machines of the testbed (systemd-nspawn nodes in network namespaces with
// no route anywhere but the testbed's subnet), and the site is then used
// the way its users and admins would.
//
// The tests need root, the bundle (GARRISON_DIST, built by make bundle) and
// the garrisonctl binary (GARRISONCTL_BIN); `make test` provides both. They
// skip when those are missing, and fail under CI=true.
package install

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/test/debroot"
	"github.com/garrison-chat/garrison/test/testbed"
)

// need returns the value of an environment variable the scenario cannot
// run without.
func need(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; run the scenarios through make test", name)
		}
		t.Skipf("%s is not set; run through make test (or make test-install)", name)
	}
	return v
}

// artefacts are the bundle and tools a scenario installs with.
type artefacts struct {
	tar, pubkey, garrisonctl string
}

func theArtefacts(t *testing.T) artefacts {
	t.Helper()
	dist := need(t, "GARRISON_DIST")
	ctl := need(t, "GARRISONCTL_BIN")
	tars, err := filepath.Glob(filepath.Join(dist, "garrison-*-bookworm-amd64.tar"))
	require.NoError(t, err)
	require.Len(t, tars, 1, "want exactly one bundle tar in %s (make bundle cleans old ones)", dist)
	return artefacts{tar: tars[0], pubkey: filepath.Join(dist, "garrison-signing.pub"), garrisonctl: ctl}
}

// admin runs garrisonctl from the admin node's namespace, as a site admin
// would from their workstation.
type admin struct {
	t     *testing.T
	node  *testbed.Node
	a     artefacts
	state string
}

func (a *admin) run(ctx context.Context, args ...string) (string, int) {
	a.t.Helper()
	cmd := a.node.Command(ctx, a.a.garrisonctl, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "GARRISONCTL_STATE_DIR="+a.state)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		a.t.Fatalf("garrisonctl %s: %v", strings.Join(args, " "), err)
	}
	a.t.Logf("garrisonctl %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	return out.String(), code
}

// siteClient speaks HTTPS to the site through nginx on proxy, from the
// admin node, with the site's name and trusting the site CA.
func siteClient(t *testing.T, from *testbed.Node, caFile, host string, proxy *testbed.Node) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return from.DialContext(ctx, network, proxy.HostPort(443))
			},
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12},
		},
	}
}

type rest struct {
	t     *testing.T
	hc    *http.Client
	base  string
	token string
}

func (r *rest) call(ctx context.Context, method, path string, body io.Reader, contentType string, want int, out any) http.Header {
	r.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	require.NoError(r.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.hc.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	require.Equal(r.t, want, resp.StatusCode, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(r.t, json.Unmarshal(data, out), "%s %s: %s", method, path, data)
	}
	return resp.Header
}

func (r *rest) json(ctx context.Context, method, path string, in any, want int, out any) http.Header {
	r.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(r.t, err)
		body = bytes.NewReader(b)
	}
	return r.call(ctx, method, path, body, "application/json", want, out)
}

// useSite logs in as the first admin through nginx, makes a team and a
// channel, uploads a file, posts with it, and reads both back.
func useSite(ctx context.Context, t *testing.T, r *rest, username, password string) {
	h := r.json(ctx, http.MethodPost, "/api/v4/users/login", map[string]string{"login_id": username, "password": password}, http.StatusOK, nil)
	r.token = h.Get("Token")
	require.NotEmpty(t, r.token)

	var team struct{ ID string }
	r.json(ctx, http.MethodPost, "/api/v4/teams", map[string]string{"name": "ops", "display_name": "Ops", "type": "O"}, http.StatusCreated, &team)
	var ch struct{ ID string }
	r.json(ctx, http.MethodPost, "/api/v4/channels", map[string]string{"team_id": team.ID, "name": "install", "display_name": "Install", "type": "O"}, http.StatusCreated, &ch)

	content := bytes.Repeat([]byte("garrison install scenario\n"), 4096)
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("channel_id", ch.ID))
	fw, err := mw.CreateFormFile("files", "report.txt")
	require.NoError(t, err)
	_, err = fw.Write(content)
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	var up struct {
		FileInfos []struct{ ID string } `json:"file_infos"`
	}
	r.call(ctx, http.MethodPost, "/api/v4/files", &form, mw.FormDataContentType(), http.StatusCreated, &up)
	require.Len(t, up.FileInfos, 1)

	var post struct{ ID, Message string }
	r.json(ctx, http.MethodPost, "/api/v4/posts", map[string]any{"channel_id": ch.ID, "message": "installed from the bundle", "file_ids": []string{up.FileInfos[0].ID}}, http.StatusCreated, &post)
	var got struct{ Message string }
	r.json(ctx, http.MethodGet, "/api/v4/posts/"+post.ID, nil, http.StatusOK, &got)
	require.Equal(t, "installed from the bundle", got.Message)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/api/v4/files/"+up.FileInfos[0].ID, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, content, body, "the file comes back byte for byte")
}

// poll calls check, each attempt bounded by 20 s, until it returns nil
// or timeout passes; the error then carries the last attempt's reason.
func poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		actx, acancel := context.WithTimeout(ctx, 20*time.Second)
		err := check(actx)
		acancel()
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err // not the error of an attempt cut short by the deadline
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// secrets reads the admin password garrisonctl keeps for the site.
func secrets(t *testing.T, state, site string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(state, "sites", site, "secrets.json"))
	require.NoError(t, err)
	var s map[string]string
	require.NoError(t, json.Unmarshal(data, &s))
	return s
}

// Scenario 1: one node with every role, no route anywhere, installed from
// the bundle as a user with passwordless sudo; WAL reaches the pgBackRest
// repository on the node; a user logs in, posts and uploads through nginx;
// health is green; a second run changes nothing; a run over a site without
// WAL archiving (as an older garrisonctl left it) restarts PostgreSQL to
// turn it on.
func TestAllInOne(t *testing.T) {
	ctx := t.Context()
	a := theArtefacts(t)
	base := debroot.Prepare(t)
	tb := testbed.New(t, testbed.Options{Machines: 1})
	nodes, err := tb.AddNodes(ctx, "admin", "box")
	require.NoError(t, err)
	adminNode, boxNode := nodes[0], nodes[1]
	box, err := boxNode.Boot(ctx, base, testbed.BootOptions{})
	require.NoError(t, err)
	fp, err := box.HostKeyFingerprint(ctx)
	require.NoError(t, err)
	// This site forbids nothing, but many do forbid root logins: install
	// as an admin user with passwordless sudo (the HA scenario uses root).
	out, err := box.Exec(ctx, "sh", "-euc", `useradd -m -s /bin/bash siteadmin
echo 'siteadmin ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/siteadmin
chmod 440 /etc/sudoers.d/siteadmin
install -d -o siteadmin -g siteadmin -m 700 /home/siteadmin/.ssh
install -o siteadmin -g siteadmin -m 600 /root/.ssh/authorized_keys /home/siteadmin/.ssh/authorized_keys`)
	require.NoError(t, err, out)

	dir := t.TempDir()
	inv := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(inv, []byte(fmt.Sprintf(`site: lab
site_url: https://chat.lab.test
admin: {username: sysadmin, email: sysadmin@lab.test}
ssh: {user: siteadmin, key: %s}
options: {monitoring_networks: [%s]}
nodes:
  - {name: box, address: %s, ssh: {host_key: '%s'}, roles: [app, db, storage, proxy]}
`, tb.SSHKeyFile(), tb.Subnet(), boxNode.Addr(), fp)), 0o600))

	ad := &admin{t: t, node: adminNode, a: a, state: filepath.Join(dir, "state")}
	out, code := ad.run(ctx, "plan", inv)
	require.Equal(t, 0, code, out)

	start := time.Now()
	out, code = ad.run(ctx, "install", inv, a.tar, "--pubkey", a.pubkey, "--relaxed-timings")
	require.Equal(t, 0, code, out)
	t.Logf("all-in-one install: %s", time.Since(start).Round(time.Second))
	require.Contains(t, out, "Site lab is up at https://chat.lab.test")
	require.Contains(t, out, "First admin: sysadmin")

	out, code = ad.run(ctx, "health", inv)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "site: GREEN")
	for _, svc := range []string{"garrison", "pushproxy", "postgres", "etcd", "nginx"} {
		require.Contains(t, out, "box   "+svc, "health lists %s", svc)
	}

	requireArchiving(ctx, t, box)
	require.True(t, runBackupUnit(ctx, t, box), "the only db node backs up")
	require.Equal(t, 2, requireArchiving(ctx, t, box))

	hc := siteClient(t, adminNode, filepath.Join(ad.state, "sites", "lab", "ca", "ca.crt"), "chat.lab.test", boxNode)
	useSite(ctx, t, &rest{t: t, hc: hc, base: "https://chat.lab.test"}, "sysadmin", secrets(t, ad.state, "lab")["admin_password"])

	start = time.Now()
	out, code = ad.run(ctx, "install", inv, a.tar, "--pubkey", a.pubkey, "--relaxed-timings")
	require.Equal(t, 0, code, out)
	t.Logf("second run: %s", time.Since(start).Round(time.Second))
	require.Contains(t, out, "install complete: nothing changed")

	// A site an older garrisonctl installed, without WAL archiving: the
	// next run turns it on, which PostgreSQL only applies on a restart.
	showArchiveMode := func(want string) func(context.Context) error {
		return func(ctx context.Context) error {
			got, err := box.Exec(ctx, "runuser", "-u", "postgres", "--", "psql", "-XqtA", "-c", "show archive_mode")
			if err != nil || strings.TrimSpace(got) != want {
				return fmt.Errorf("archive_mode %q (want %s): %v", strings.TrimSpace(got), want, err)
			}
			return nil
		}
	}
	out, err = box.Exec(ctx, "sh", "-euc", `sed -i 's/archive_mode: .on./archive_mode: "off"/' /etc/patroni/config.yml
grep -q 'archive_mode: "off"' /etc/patroni/config.yml
systemctl reload patroni`)
	require.NoError(t, err, out)
	require.NoError(t, poll(ctx, time.Minute, "archive_mode off after a restart", func(ctx context.Context) error {
		// The reload reaches Patroni on its next loop; restart once it has.
		if out, err := box.Exec(ctx, "patronictl", "-c", "/etc/patroni/config.yml", "restart", "lab", "box", "--pending", "--force"); err != nil {
			return fmt.Errorf("patronictl restart: %v: %s", err, out)
		}
		return showArchiveMode("off")(ctx)
	}))
	out, code = ad.run(ctx, "install", inv, a.tar, "--pubkey", a.pubkey, "--relaxed-timings")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "box: restarted PostgreSQL through Patroni to apply settings that need a restart")
	require.NoError(t, showArchiveMode("on")(ctx))
	out, code = ad.run(ctx, "install", inv, a.tar, "--pubkey", a.pubkey, "--relaxed-timings")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "install complete: nothing changed")
}

// requireArchiving checks on machine m (a db node, or the backup node)
// that the site's pgBackRest repository holds the stanza, the first full
// backup and WAL segments PostgreSQL archived; it returns the number of
// backups.
func requireArchiving(ctx context.Context, t *testing.T, m *testbed.Machine) int {
	t.Helper()
	out, err := m.Exec(ctx, "runuser", "-u", "postgres", "--", "pgbackrest", "--stanza=garrison", "--log-level-console=warn", "info", "--output=json")
	require.NoError(t, err, out)
	var info []struct {
		Name    string `json:"name"`
		Archive []struct {
			Min string `json:"min"`
			Max string `json:"max"`
		} `json:"archive"`
		Backup []struct {
			Type string `json:"type"`
		} `json:"backup"`
		Status struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &info), out)
	require.Len(t, info, 1, out)
	require.Equal(t, 0, info[0].Status.Code, "stanza status: %s", info[0].Status.Message)
	require.NotEmpty(t, info[0].Backup, "no backup: %s", out)
	require.Equal(t, "full", info[0].Backup[0].Type, "the first backup is a full one")
	require.NotEmpty(t, info[0].Archive, "no WAL archived: %s", out)
	require.NotEmpty(t, info[0].Archive[0].Max, "no WAL archived: %s", out)
	t.Logf("%s: pgBackRest holds %d backup(s) and WAL %s to %s", m.Name(), len(info[0].Backup), info[0].Archive[0].Min, info[0].Archive[0].Max)
	return len(info[0].Backup)
}

// runBackupUnit runs the nightly backup service on m now, as its timer
// would, and reports whether it backed up (on a replica its condition
// skips it).
func runBackupUnit(ctx context.Context, t *testing.T, m *testbed.Machine) bool {
	t.Helper()
	out, err := m.Exec(ctx, "systemctl", "is-enabled", "garrison-pgbackrest-backup.timer")
	require.NoError(t, err, out)
	out, err = m.Exec(ctx, "systemctl", "start", "garrison-pgbackrest-backup.service")
	require.NoError(t, err, out)
	out, err = m.Exec(ctx, "systemctl", "show", "-P", "Result", "garrison-pgbackrest-backup.service")
	require.NoError(t, err, out)
	journal, _ := m.Journal(ctx, "garrison-pgbackrest-backup.service", 30)
	switch result := strings.TrimSpace(out); result {
	case "exec-condition": // a replica: not the primary, nothing to do
		return false
	case "success":
		require.Contains(t, journal, "backup command end: completed successfully")
		return true
	default:
		t.Fatalf("the backup service ended %q:\n%s", result, journal)
		return false
	}
}
