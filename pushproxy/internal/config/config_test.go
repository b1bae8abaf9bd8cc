package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func host() (string, error) { return "push1.site.example", nil }

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pushproxy.json")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadDefaultsAndEnv(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.json")
	cfg, warnings, err := Load(missing, false, env(map[string]string{
		"GARRISON_PUSHPROXY_DATASOURCE":       "postgres://push:pw@db1,db2/push?target_session_attrs=read-write",
		"GARRISON_PUSHPROXY_THROTTLEPERSEC":   "10",
		"GARRISON_PUSHPROXY_ALLOWEDPUSHHOSTS": "push.site.example, push2.site.example:8443",
		"GARRISON_PUSHPROXY_TRUSTEDPROXIES":   "10.0.0.0/8,192.0.2.7",
	}), host)
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Equal(t, ":8066", cfg.ListenAddress)
	require.Equal(t, "127.0.0.1:8069", cfg.MetricsListenAddress)
	require.Equal(t, "http://push1.site.example:8066", cfg.PublicURL, "PublicURL defaults to the host name and listen port")
	require.Equal(t, 10, cfg.ThrottlePerSec)
	require.Equal(t, 600, cfg.ThrottleBurst)
	require.Equal(t, []string{"push.site.example", "push2.site.example:8443"}, cfg.PushHosts())
	require.Len(t, cfg.Proxies(), 2)
	require.Equal(t, "192.0.2.7/32", cfg.Proxies()[1].String())
	require.Equal(t, ContentIDOnly, cfg.ContentPolicy)
}

func TestPushHostsDefaultToPublicURL(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `{"DataSource":"host=db","PublicURL":"https://push.site.example/"}`)
	cfg, _, err := Load(p, true, env(nil), host)
	require.NoError(t, err)
	require.Equal(t, []string{"push.site.example"}, cfg.PushHosts())
	require.Equal(t, "https://push.site.example", cfg.Public().String())
}

func TestUpstreamKeysWarn(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `{"DataSource":"host=db","ListenAddress":"127.0.0.1:9066",
		"ApplePushSettings":[{"Type":"apple_rn"}],"ThrottleVaryByHeader":"X-Forwarded-For","EnableMetrics":true}`)
	cfg, warnings, err := Load(p, true, env(nil), host)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:9066", cfg.PublicURL)
	require.Len(t, warnings, 3)
	require.Contains(t, warnings[0], "ApplePushSettings")
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		explicit   bool
		want       []string
	}{
		{name: "explicit file missing", explicit: true, want: []string{"no such file"}},
		{name: "not json", file: `{`, want: []string{"not a JSON object"}},
		{name: "typo", file: `{"DataSource":"x","ListenAdress":":1"}`, want: []string{"unknown key(s) ListenAdress"}},
		{name: "wrong type", file: `{"DataSource":"x","ThrottlePerSec":"many"}`, want: []string{"ThrottlePerSec: want int"}},
		{name: "env not int", file: `{"DataSource":"x"}`, env: map[string]string{"GARRISON_PUSHPROXY_SENDTIMEOUTSEC": "soon"}, want: []string{"GARRISON_PUSHPROXY_SENDTIMEOUTSEC"}},
		{
			name: "every bad field at once",
			file: `{"ListenAddress":"8066","MetricsListenAddress":"nope","PublicURL":"ftp://x","VAPIDSubject":"root@x",
				"ContentPolicy":"some","ThrottlePerSec":0,"ThrottleBurst":0,"TrustedProxies":["10.0.0.0/33"],"SendTimeoutSec":0,
				"AllowedPushHosts":["https://x/"],"TLSCertFile":"/c.pem","LogLevel":"loud","LogFormat":"xml"}`,
			want: []string{"ListenAddress", "MetricsListenAddress", "DataSource: is required", "PublicURL", "VAPIDSubject",
				"ContentPolicy", "ThrottlePerSec", "ThrottleBurst", "TrustedProxies", "SendTimeoutSec", "AllowedPushHosts",
				"TLSCertFile", "LogLevel", "LogFormat"},
		},
		{name: "doubled mailto", file: `{"DataSource":"x","VAPIDSubject":"mailto:mailto:a@b"}`, want: []string{"doubled mailto"}},
		{name: "metrics on the public listener", file: `{"DataSource":"x","ListenAddress":":8066","MetricsListenAddress":":8066"}`, want: []string{"must differ"}},
		{name: "PublicURL with a path", file: `{"DataSource":"x","PublicURL":"https://x/push"}`, want: []string{"PublicURL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "missing.json")
			if tc.file != "" {
				p = writeFile(t, tc.file)
			}
			_, _, err := Load(p, tc.explicit || tc.file != "", env(tc.env), host)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestHostnameFailure(t *testing.T) {
	t.Parallel()
	_, _, err := Load(filepath.Join(t.TempDir(), "x.json"), false, env(map[string]string{"GARRISON_PUSHPROXY_DATASOURCE": "x"}),
		func() (string, error) { return "", errors.New("no uts") })
	require.ErrorContains(t, err, "PublicURL is not set")
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://push:s3cret@db1,db2/push":       "postgres://push:%2A%2A%2A%2A%2A%2A%2A%2A@db1,db2/push",
		"postgres://db/push?password=s3cret":        "postgres://db/push?password=%2A%2A%2A%2A%2A%2A%2A%2A",
		"host=db user=push password=s3cret":         "host=db user=push password=********",
		"host=db user=push PASSWORD=s3cret sslmode": "host=db user=push PASSWORD=******** sslmode",
	} {
		c := Config{DataSource: dsn, SenderSecret: "topsecret"}.Redacted()
		require.Equal(t, want, c.DataSource)
		require.NotContains(t, c.DataSource, "s3cret")
		require.False(t, strings.Contains(c.SenderSecret, "topsecret"))
	}
}
