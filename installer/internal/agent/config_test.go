package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const goodConfig = `{
  "node": "app1",
  "tls": {"cert": "/etc/garrison/agent/node.crt", "key": "/etc/garrison/agent/node.key", "ca": "/etc/garrison/agent/ca.crt"},
  "monitoring_networks": ["10.0.0.0/24", "fd00::/64"],
  "checks": [
    {"name": "garrison", "kind": "garrison", "url": "http://127.0.0.1:8065"},
    {"name": "pushproxy", "kind": "http", "url": "http://127.0.0.1:8066/"},
    {"name": "postgres", "kind": "patroni", "url": "https://127.0.0.1:8008", "member": "app1"},
    {"name": "etcd", "kind": "etcd", "url": "https://127.0.0.1:2379"},
    {"name": "minio", "kind": "http", "url": "https://127.0.0.1:9000/minio/health/live"}
  ]
}`

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(goodConfig))
	require.NoError(t, err)
	require.Equal(t, "app1", cfg.Node)
	require.Equal(t, ":9100", cfg.Listen)
	require.Equal(t, 3*time.Second, cfg.timeout())
	require.Equal(t, int64(16<<20), cfg.Checks[2].MaxLagBytes)
	require.Len(t, cfg.networks(), 2)

	targets := []string{
		"http://127.0.0.1:8065/api/v4/system/ping?get_server_status=true",
		"http://127.0.0.1:8066/",
		"https://127.0.0.1:8008/cluster",
		"https://127.0.0.1:2379/health",
		"https://127.0.0.1:9000/minio/health/live",
	}
	for i, want := range targets {
		require.Equal(t, want, cfg.Checks[i].target(), cfg.Checks[i].Name)
	}
	ch := Check{Kind: KindGarrison, URL: "https://10.0.0.11:8065/api/v4/system/ping?use_rest_semantics=true"}
	require.Equal(t, "https://10.0.0.11:8065/api/v4/system/ping?get_server_status=true&use_rest_semantics=true", ch.target())
}

func TestParseConfigEveryProblem(t *testing.T) {
	t.Parallel()
	bad := `{
  "node": "",
  "nodes": "typo",
  "listen": "9100",
  "tls": {"cert": "/c", "crt": "/x"},
  "monitoring_networks": ["10.0.0.0/33", "10.0.0.5", 7],
  "check_timeout": "soon",
  "checks": [
    {"name": "garrison", "kind": "nope", "url": "http://127.0.0.1:8065"},
    {"name": "Bad Name", "kind": "http", "url": "ftp://x", "extra": 1},
    {"name": "postgres", "kind": "patroni", "url": "https://127.0.0.1:8008", "max_lag_bytes": -5},
    {"name": "etcd", "kind": "etcd", "url": "https://127.0.0.1:2379", "member": "app1", "max_lag_bytes": "big"},
    {"name": "etcd", "kind": "http", "url": "https://user:secret@127.0.0.1/"},
    {"kind": "", "url": ""},
    "not an object",
    {"name": "pgbackrest", "kind": "tls", "url": "https://127.0.0.1:8432"},
    {"name": "pgbackrest2", "kind": "tls", "url": "tls://127.0.0.1"}
  ]
}`
	_, err := ParseConfig([]byte(bad))
	var ce *ConfigError
	require.True(t, errors.As(err, &ce), "%v", err)
	want := []string{
		"node: required",
		"nodes: unknown field",
		`listen: "9100" is not host:port`,
		"tls.crt: unknown field",
		"tls.key: required",
		"tls.ca: required",
		`monitoring_networks[0]: "10.0.0.0/33" is not a CIDR`,
		`monitoring_networks[1]: "10.0.0.5" is not a CIDR (a single address is written with /32 or /128)`,
		"monitoring_networks[2]: want a string, have a number",
		`check_timeout: "soon" is not a positive duration`,
		`checks[0].kind: "nope" is not http, garrison, patroni, etcd or tls`,
		`checks[1].name: "Bad Name": use lower-case`,
		`checks[1].url: "ftp://x" is not an http:// or https:// URL`,
		"checks[1].extra: unknown field",
		"checks[2].member: required for kind patroni",
		"checks[2].max_lag_bytes: -5 is negative",
		"checks[3].max_lag_bytes: want an integer, have a string",
		"checks[3].member: only for kind patroni",
		"checks[4].url: credentials in the URL are not supported",
		`checks[4].name: "etcd" is used by checks[3] too`,
		"checks[5].name: required",
		"checks[5].kind: required",
		"checks[5].url: required",
		"checks[6]: want an object, have a string",
		`checks[7].url: "https://127.0.0.1:8432" is not a tls://host:port URL`,
		`checks[8].url: "tls://127.0.0.1" is not a tls://host:port URL`,
	}
	for _, w := range want {
		require.True(t, hasProblem(ce.Problems, w), "missing %q in:\n%s", w, err)
	}
	require.Len(t, ce.Problems, len(want), "%s", err)
	require.NotContains(t, err.Error(), "secret", "a URL's password is not repeated")
}

func hasProblem(list []string, prefix string) bool {
	for _, p := range list {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func TestParseConfigNotJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"{\n\"node\": \"a\",\n}", "not JSON: line 3"},
		{`{"node":"a"} {}`, "more than one value"},
		{`[]`, "(top level): want an object, have an array"},
		{``, "not JSON"},
	}
	for _, tc := range tests {
		_, err := ParseConfig([]byte(tc.in))
		require.ErrorContains(t, err, tc.want, "%q", tc.in)
	}
}

func TestLoadConfigNamesTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"node":"a","bogus":1}`), 0o600))
	_, err := LoadConfig(path)
	require.ErrorContains(t, err, "agent config "+path+": ")
	require.ErrorContains(t, err, "bogus: unknown field")
	_, err = LoadConfig(filepath.Join(dir, "missing.json"))
	require.ErrorContains(t, err, filepath.Join(dir, "missing.json"))
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(`{"checks":[{"kind":"patroni"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err == nil {
			require.NotEmpty(t, cfg.Node)
			require.NotEmpty(t, cfg.Listen)
		}
	})
}
