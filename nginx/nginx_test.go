package nginx_test

import (
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/nginx"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// nginxBin is Debian's nginx, used to check the rendered files.
const nginxBin = "/usr/sbin/nginx"

var configs = []struct {
	name string
	c    nginx.Config
}{
	{"minimal", nginx.Config{
		Listen:            []string{"10.200.7.20:80"},
		App:               nginx.Upstream{Servers: []nginx.Server{{Addr: "10.200.7.11:8065"}}},
		ClientMaxBodySize: 100 << 20,
	}},
	{"three_nodes", nginx.Config{
		PIDFile:           "run/nginx.pid",
		ErrorLog:          "stderr",
		AccessLog:         "off",
		TempDir:           "/var/tmp/garrison-nginx",
		User:              "www-data",
		WorkerProcesses:   2,
		WorkerConnections: 1024,
		Listen:            []string{"10.200.7.20:80", "[fd00::20]:8080"},
		ServerName:        "chat.example.com",
		App: nginx.Upstream{
			Name: "app",
			Servers: []nginx.Server{
				{Addr: "10.200.7.11:8065"}, {Addr: "10.200.7.12:8065"}, {Addr: "10.200.7.13:8065"},
			},
			Keepalive:           64,
			MaxFails:            1,
			FailTimeout:         2 * time.Second,
			NextUpstreamTries:   2,
			NextUpstreamTimeout: 5 * time.Second,
		},
		ClientMaxBodySize: 52428801,
		Timeouts: nginx.Timeouts{
			Connect:   time.Second,
			Read:      2 * time.Minute,
			Send:      30 * time.Second,
			WebSocket: 10 * time.Minute,
		},
	}},
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := nginx.Render(tc.c)
			require.NoError(t, err)
			again, err := nginx.Render(tc.c)
			require.NoError(t, err)
			require.Equal(t, got, again, "the output is deterministic")

			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./nginx -update to create it")
			require.Equal(t, string(want), string(got), "run go test ./nginx -update if the change is intended")
		})
	}
}

func TestRenderContents(t *testing.T) {
	t.Parallel()
	got, err := nginx.Render(configs[0].c)
	require.NoError(t, err)
	s := string(got)
	for _, want := range []string{
		"server 10.200.7.11:8065 max_fails=3 fail_timeout=10s;",
		"keepalive 32;",
		"proxy_next_upstream error timeout http_502 http_503 http_504;",
		"location = /api/v4/websocket {",
		`proxy_set_header Connection "upgrade";`,
		"proxy_read_timeout 3600s;",
		"client_max_body_size 100m;",
		"proxy_set_header X-Request-ID $request_id;",
		"listen 10.200.7.20:80;",
	} {
		require.Contains(t, s, want)
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "proxy_next_upstream ") {
			require.NotContains(t, line, "non_idempotent", "a POST must never be sent to two nodes")
		}
	}
	require.NotContains(t, s, "daemon", "daemon is left to the command line (-g 'daemon off;')")
	// Each location repeats the headers: nginx drops inherited
	// proxy_set_header lines from a level that sets any.
	require.Equal(t, 2, strings.Count(s, "proxy_set_header X-Forwarded-Proto $scheme;"))
}

func TestRenderInvalid(t *testing.T) {
	t.Parallel()
	_, err := nginx.Render(nginx.Config{
		PIDFile:    "run/nginx.pid; evil",
		User:       "a b",
		Listen:     []string{"chat.example.com:80", "10.0.0.2:0", "[fe80::1%eth0]:80", "10.0.0.3:80", "10.0.0.3:80"},
		ServerName: "x;y",
		App: nginx.Upstream{
			Servers:     []nginx.Server{{Addr: "10.0.0.1"}, {Addr: "10.0.0.1:0"}},
			FailTimeout: 1500 * time.Millisecond,
		},
		Timeouts: nginx.Timeouts{Read: time.Microsecond},
	})
	require.Error(t, err)
	for _, want := range []string{
		`PIDFile "run/nginx.pid; evil"`,
		`User "a b"`,
		`Listen "chat.example.com:80" is not an IP:port`,
		`Listen "10.0.0.2:0" is not an IP:port`,
		`Listen "[fe80::1%eth0]:80" is not an IP:port`,
		`Listen "10.0.0.3:80" is given twice`,
		`ServerName "x;y"`,
		`App.Servers: "10.0.0.1" is not an IP:port`,
		`App.Servers: "10.0.0.1:0" is not an IP:port`,
		"ClientMaxBodySize must be set",
		"App.FailTimeout 1.5s must be a positive whole number of seconds",
		"Timeouts.Read 1µs must be a positive whole number of milliseconds",
	} {
		require.ErrorContains(t, err, want)
	}

	_, err = nginx.Render(nginx.Config{ClientMaxBodySize: 1})
	require.ErrorContains(t, err, "Listen is empty")
	require.ErrorContains(t, err, "App.Servers is empty")
}

// TestNginxAccepts runs `nginx -t` on every golden configuration, from a
// scratch prefix the way the testbed runs it.
func TestNginxAccepts(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(nginxBin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v; CI=true, so this is a failure (apt-get install nginx)", nginxBin, err)
		}
		t.Skipf("%s: %v; skipping the nginx -t check (apt-get install nginx)", nginxBin, err)
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.c
			prefix := t.TempDir() + "/"
			// nginx -t binds the listen addresses: use one this machine
			// has. Paths outside the prefix and the root-only user are
			// replaced so that the check also runs unprivileged.
			c.Listen = []string{freeAddr(t)}
			c.TempDir = "tmp"
			if os.Geteuid() != 0 {
				c.User = ""
			}
			for _, d := range []string{"logs", "run", "tmp"} {
				require.NoError(t, os.MkdirAll(filepath.Join(prefix, d), 0o755))
			}
			conf, err := nginx.Render(c)
			require.NoError(t, err)
			file := filepath.Join(prefix, "nginx.conf")
			require.NoError(t, os.WriteFile(file, conf, 0o644))
			out, err := exec.Command(nginxBin, "-t", "-q", "-c", file, "-p", prefix, "-e", "stderr").CombinedOutput()
			require.NoError(t, err, "nginx -t:\n%s\n%s", out, conf)
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	return l.Addr().String()
}
