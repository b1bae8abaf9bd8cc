package push

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// firefoxBin is Debian's Firefox ESR.
const firefoxBin = "/usr/bin/firefox-esr"

// Bounds of the browser steps. Firefox takes 2–4 s to start on the CI
// machine; the page retries its subscribe for up to 45 s.
const (
	registerWithin = 90 * time.Second
	pushWithin     = 60 * time.Second
)

// hygienePrefs keep a test browser on the loopback: every non-loopback
// request goes to a dead proxy, and the background services that would
// call home are off. They configure nothing about push.
var hygienePrefs = map[string]any{
	"network.proxy.type":                                1,
	"network.proxy.http":                                "127.0.0.1",
	"network.proxy.http_port":                           9,
	"network.proxy.ssl":                                 "127.0.0.1",
	"network.proxy.ssl_port":                            9,
	"network.proxy.no_proxies_on":                       "localhost, 127.0.0.1",
	"network.proxy.allow_hijacking_localhost":           false,
	"network.trr.mode":                                  5,
	"network.captive-portal-service.enabled":            false,
	"network.connectivity-service.enabled":              false,
	"browser.safebrowsing.malware.enabled":              false,
	"browser.safebrowsing.phishing.enabled":             false,
	"datareporting.policy.dataSubmissionEnabled":        false,
	"toolkit.telemetry.enabled":                         false,
	"app.update.enabled":                                false,
	"browser.shell.checkDefaultBrowser":                 false,
	"browser.startup.homepage_override.mstone":          "ignore",
	"browser.aboutwelcome.enabled":                      false,
	"extensions.update.enabled":                         false,
	"browser.newtabpage.enabled":                        false,
	"dom.push.loglevel":                                 "All",
	"devtools.console.stdout.chrome":                    true,
	"alerts.useSystemBackend":                           false, // headless: showNotification needs it
	"browser.sessionstore.resume_from_crash":            false,
	"toolkit.startup.max_resumed_crashes":               -1,
	"browser.tabs.warnOnClose":                          false,
	"browser.warnOnQuit":                                false,
	"dom.serviceWorkers.disable_open_click_delay":       0,
	"security.sandbox.content.headless":                 true,
	"browser.region.network.url":                        "",
	"services.settings.server":                          "http://127.0.0.1:9/",
	"browser.topsites.contile.enabled":                  false,
	"browser.newtabpage.activity-stream.feeds.topsites": false,
}

// pushPrefs point Firefox's push service at the site's proxy and grant
// the notification permission, as policies.json does in production.
func pushPrefs(proxyURL string) map[string]any {
	return map[string]any{
		"dom.push.serverURL":                       strings.Replace(proxyURL, "http://", "ws://", 1) + "/ws",
		"dom.push.testing.allowInsecureServerURL":  true, // ws:// on the loopback; production uses wss://
		"permissions.default.desktop-notification": 1,
	}
}

// newProfile writes a fresh Firefox profile with the given prefs.
func newProfile(t *testing.T, dir string, prefs ...map[string]any) string {
	t.Helper()
	p := filepath.Join(dir, "profile")
	require.NoError(t, os.MkdirAll(p, 0o700))
	var b strings.Builder
	for _, set := range prefs {
		for k, v := range set {
			val, err := json.Marshal(v)
			require.NoError(t, err)
			fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, val)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(p, "user.js"), []byte(b.String()), 0o600))
	return p
}

// firefox starts a headless Firefox on url with profile, optionally
// through a wrapper (the mount-namespace case). It is ended by PID at
// cleanup.
func firefox(t *testing.T, dir, profile, url string, wrapper ...string) *process {
	t.Helper()
	_, err := os.Stat(firefoxBin)
	need(t, err, "firefox-esr")
	args := []string{"--headless", "--no-remote", "--profile", profile, url}
	bin := firefoxBin
	if len(wrapper) > 0 {
		bin = wrapper[0]
		args = append(append(wrapper[1:], firefoxBin), args...)
	}
	env := []string{"MOZ_HEADLESS=1", "HOME=" + dir, "MOZ_CRASHREPORTER_DISABLE=1", "XDG_RUNTIME_DIR=" + dir}
	p := newProcess(t, dir, "firefox-"+filepath.Base(filepath.Dir(profile)), bin, env, args...)
	p.start(t)
	return p
}

// quit ends Firefox. SIGTERM makes it shut down as if the user quit it,
// flushing its push state to the profile; Firefox reports the signal in
// its exit status, so the status is not checked.
func (p *process) quit(t *testing.T) {
	t.Helper()
	require.True(t, p.running(), "%s is not running", p.name)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Logf("%s did not exit within %s of SIGTERM; killed it", p.name, stopTimeout)
	}
}

// subscribe opens the fixture page for u in Firefox and waits until the
// subscription is registered with garrison.
func (s *site) subscribe(t *testing.T, dir string, u user, prefs ...map[string]any) (*process, string) {
	t.Helper()
	profile := newProfile(t, dir, prefs...)
	page := s.origin.URL + "/?user=" + u.Username + "&password=" + u.password
	ff := firefox(t, dir, profile, page)
	var reg struct {
		Status   int    `json:"status"`
		Body     string `json:"body"`
		Endpoint string `json:"endpoint"`
	}
	require.NoError(t, json.Unmarshal(s.next(t, "registered", registerWithin), &reg))
	require.Less(t, reg.Status, 300, "registering the subscription with garrison: %s", reg.Body)
	require.True(t, strings.HasPrefix(reg.Endpoint, s.proxyURL+"/push/"), "the endpoint %q is the site's own push service", reg.Endpoint)
	return ff, profile
}

// pushReport is what the service worker reports for one push.
type pushReport struct {
	Payload map[string]any `json:"payload"`
	Ack     struct {
		Status int            `json:"status"`
		Body   map[string]any `json:"body"`
	} `json:"ack"`
}

// nextPush waits for the service worker's report of the push for post p.
func (s *site) nextPush(t *testing.T, p post) pushReport {
	t.Helper()
	deadline := time.Now().Add(pushWithin)
	for time.Now().Before(deadline) {
		var r pushReport
		require.NoError(t, json.Unmarshal(s.next(t, "push", time.Until(deadline)), &r))
		if r.Payload["post_id"] == p.ID {
			return r
		}
		t.Logf("push for another post: %v", r.Payload)
	}
	t.Fatalf("no push for post %s within %s", p.ID, pushWithin)
	return pushReport{}
}

// checkIDLoaded checks a push for post p carried only ids, and that the
// ack over the API returned the message.
func checkIDLoaded(t *testing.T, r pushReport, p post) {
	t.Helper()
	require.Equal(t, "message", r.Payload["type"])
	require.Equal(t, p.ChannelID, r.Payload["channel_id"])
	for _, k := range []string{"message", "sender_name", "channel_name"} {
		_, has := r.Payload[k]
		require.False(t, has, "the push payload carries %q under the id_only policy: %v", k, r.Payload)
	}
	require.NotContains(t, fmt.Sprint(r.Payload), p.Message)
	require.Equal(t, 200, r.Ack.Status, "POST /api/v4/notifications/ack: %v", r.Ack.Body)
	require.Equal(t, p.Message, r.Ack.Body["message"], "the ack returns the message to the recipient")
}

func TestFirefoxReceivesDirectMessage(t *testing.T) {
	s := startSite(t)
	_, _ = s.createUser(t, "admin")
	_, alice := s.createUser(t, "alice")
	bobc, bob := s.createUser(t, "bob")

	// Alice's browser subscribes through garrison, then closes (she is
	// offline, so the DM is pushed).
	dir := runDir(t)
	ff, profile := s.subscribe(t, dir, alice, hygienePrefs, pushPrefs(s.proxyURL))

	p := bobc.dm(t, bob.ID, alice.ID, "lunch at noon? #1")
	checkIDLoaded(t, s.nextPush(t, p), p)

	// The push sent while Firefox is closed waits in the push service's
	// mailbox and arrives when Firefox starts again, with no page open.
	ff.quit(t)
	p2 := bobc.dm(t, bob.ID, alice.ID, "sent while your browser was closed #2")
	db := s.proxyDB(t)
	waitFor(t, pushWithin, "the push waits in the mailbox", func() (bool, error) {
		return countRows(t, db, "ps_messages") == 1, nil
	})
	firefox(t, dir, profile, "about:blank")
	checkIDLoaded(t, s.nextPush(t, p2), p2)
	waitFor(t, pushWithin, "the mailbox empties once Firefox acknowledges", func() (bool, error) {
		return countRows(t, db, "ps_messages") == 0, nil
	})

	// Both daemons shut down cleanly with a browser still connected.
	s.garrison.stop(t)
	s.proxy.stop(t)
}

// TestFirefoxConfiguredByPolicy configures push only through an
// enterprise policies.json, the way a site rolls it out. The file goes to
// /etc/firefox/policies inside a private mount namespace, on an overlay
// of /etc, so the host's /etc is never touched.
func TestFirefoxConfiguredByPolicy(t *testing.T) {
	s := startSite(t)
	_, _ = s.createUser(t, "admin")
	_, carol := s.createUser(t, "carol")
	davec, dave := s.createUser(t, "dave")

	dir := runDir(t)
	policy, err := json.MarshalIndent(map[string]any{"policies": map[string]any{
		"Permissions": map[string]any{"Notifications": map[string]any{"Allow": []string{s.origin.URL}, "Locked": true}},
		"Preferences": map[string]any{
			"dom.push.serverURL":                      map[string]any{"Value": strings.Replace(s.proxyURL, "http://", "ws://", 1) + "/ws", "Status": "locked"},
			"dom.push.testing.allowInsecureServerURL": map[string]any{"Value": true, "Status": "locked"},
			"dom.push.connection.enabled":             map[string]any{"Value": true, "Status": "locked"},
			"dom.push.enabled":                        map[string]any{"Value": true, "Status": "locked"},
		},
	}}, "", "  ")
	require.NoError(t, err)
	policyFile := filepath.Join(dir, "policies.json")
	require.NoError(t, os.WriteFile(policyFile, policy, 0o644))
	for _, d := range []string{"etc-upper", "etc-work"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	_, err = exec.LookPath("unshare")
	need(t, err, "unshare")
	script := `set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir="$1/etc-upper",workdir="$1/etc-work" /etc
mkdir -p /etc/firefox/policies
cp "$1/policies.json" /etc/firefox/policies/policies.json
shift
exec "$@"`
	wrapper := []string{"/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", dir}

	profile := newProfile(t, dir, hygienePrefs) // no push prefs at all
	page := s.origin.URL + "/?user=" + carol.Username + "&password=" + carol.password
	firefox(t, dir, profile, page, wrapper...)
	var reg struct {
		Status   int    `json:"status"`
		Body     string `json:"body"`
		Endpoint string `json:"endpoint"`
	}
	require.NoError(t, json.Unmarshal(s.next(t, "registered", registerWithin), &reg))
	require.Less(t, reg.Status, 300, reg.Body)
	require.True(t, strings.HasPrefix(reg.Endpoint, s.proxyURL+"/push/"), "endpoint %q", reg.Endpoint)

	p := davec.dm(t, dave.ID, carol.ID, "configured by policy")
	checkIDLoaded(t, s.nextPush(t, p), p)

	_, err = os.Stat("/etc/firefox/policies/policies.json")
	require.True(t, os.IsNotExist(err), "the host's /etc/firefox must stay untouched")
}
