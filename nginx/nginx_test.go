package nginx_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"net/netip"
	"net/url"
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
	// What the installer renders for a site of two app nodes (each with
	// its push proxy, over TLS with the site CA) behind one proxy node.
	{"production", nginx.Config{
		PIDFile:    "/run/nginx.pid",
		ErrorLog:   "/var/log/nginx/error.log",
		AccessLog:  "/var/log/nginx/access.log",
		TempDir:    "/var/lib/nginx",
		User:       "www-data",
		Listen:     []string{"10.0.0.21:80"},
		ServerName: "chat.example.mil",
		TLS: &nginx.TLS{
			Listen:   []string{"10.0.0.21:443"},
			CertFile: "/etc/garrison/tls/site.crt",
			KeyFile:  "/etc/garrison/tls/site.key",
		},
		App: nginx.Upstream{Servers: []nginx.Server{{Addr: "10.0.0.11:8065"}, {Addr: "10.0.0.12:8065"}}},
		Push: &nginx.Upstream{
			Servers: []nginx.Server{{Addr: "10.0.0.11:8066"}, {Addr: "10.0.0.12:8066"}},
			TLS:     &nginx.UpstreamTLS{CAFile: "/etc/garrison/tls/site-ca.crt", ServerName: "garrison-pushproxy"},
		},
		ClientMaxBodySize: 100<<20 + 1<<20,
		Limits: nginx.Limits{
			Login:  &nginx.RateLimit{},
			Exempt: []string{"10.0.0.11", "10.0.0.12"},
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
	for _, tc := range []struct {
		name        string
		c           nginx.Config
		want, avoid []string
	}{
		{"minimal", configs[0].c, []string{
			"server 10.200.7.11:8065 max_fails=3 fail_timeout=10s;",
			"keepalive 32;",
			"proxy_next_upstream error timeout http_502 http_503 http_504;",
			"location = /api/v4/websocket {",
			`proxy_set_header Connection "upgrade";`,
			"proxy_read_timeout 3600s;",
			"client_max_body_size 100m;",
			"proxy_set_header X-Request-ID $request_id;",
			"request_id=$request_id",
			"listen 10.200.7.20:80;",
			"server_tokens off;",
			"gzip_types application/json application/javascript text/javascript text/css;",
			"add_header X-Content-Type-Options nosniff always;",
			"add_header Referrer-Policy no-referrer always;",
			"location /static/ {",
			`200 "public, max-age=31536000, immutable";`,
		}, []string{
			// Every optional part is off.
			"ssl", "Strict-Transport-Security", "return 301", "limit_req ", "limit_conn ", "geo ", "garrison_push",
			"location /push/", "location = /ws",
		}},
		{"production", configs[2].c, []string{
			"listen 10.0.0.21:80;",
			"return 301 https://$host$request_uri;",
			"listen 10.0.0.21:443 ssl http2;",
			"ssl_certificate /etc/garrison/tls/site.crt;",
			"ssl_certificate_key /etc/garrison/tls/site.key;",
			"ssl_protocols TLSv1.2 TLSv1.3;",
			"ssl_prefer_server_ciphers off;",
			"ssl_session_tickets off;",
			"ssl_session_cache shared:garrison_tls:10m;",
			`add_header Strict-Transport-Security "max-age=63072000" always;`,
			"client_max_body_size 101m;",
			"limit_req_zone $garrison_limit_key zone=garrison_login:10m rate=10r/m;",
			"limit_req zone=garrison_login burst=10 nodelay;",
			"location = /api/v4/users/login {",
			"location = /api/v4/users/login/switch {",
			"error_page 429 = @garrison_rate_limited;",
			`return 429 '{"id":"api.context.rate_limit.app_error","message":"Too many requests","detailed_error":"","request_id":"$request_id","status_code":429}';`,
			"10.0.0.11 1;",
			"limit_req_zone $garrison_limit_key zone=garrison_push:10m rate=50r/s;",
			"limit_req zone=garrison_push burst=100 nodelay;",
			"limit_conn_zone $garrison_limit_key zone=garrison_push_ws:10m;",
			"limit_conn garrison_push_ws 20;",
			"server 10.0.0.12:8066 max_fails=3 fail_timeout=10s;",
			"proxy_pass https://garrison_push/push/;",
			"proxy_ssl_trusted_certificate /etc/garrison/tls/site-ca.crt;",
			"proxy_ssl_name garrison-pushproxy;",
			"proxy_ssl_verify on;",
			"proxy_buffering off;",
			"client_max_body_size 16k;",
		}, []string{"proxy_pass https://garrison_app", "ssl_ciphers ALL", "TLSv1.1", "TLSv1 "}},
		{"tls_port_no_hsts", nginx.Config{
			TLS: &nginx.TLS{
				Listen: []string{"127.0.0.1:8443"}, CertFile: "c.pem", KeyFile: "k.pem", HSTSMaxAge: -1,
			},
			App:               configs[0].c.App,
			ClientMaxBodySize: 1 << 20,
			Limits:            nginx.Limits{Login: &nginx.RateLimit{Rate: 3, Per: time.Second, Burst: 1}},
		}, []string{
			"listen 127.0.0.1:8443 ssl http2;",
			"limit_req_zone $binary_remote_addr zone=garrison_login:10m rate=3r/s;",
			"limit_req zone=garrison_login burst=1 nodelay;",
		}, []string{
			"Strict-Transport-Security", "return 301", // no plain listener: no redirect server
		}},
		{"tls_redirect_port", nginx.Config{
			Listen: []string{"127.0.0.1:8080"},
			TLS:    &nginx.TLS{Listen: []string{"[::1]:8443", "127.0.0.1:443"}, CertFile: "c.pem", KeyFile: "k.pem", HSTSMaxAge: time.Hour},
			App: nginx.Upstream{
				Servers: []nginx.Server{{Addr: "127.0.0.1:8065"}},
				TLS:     &nginx.UpstreamTLS{CAFile: "ca.pem", ServerName: "garrison"},
			},
			ClientMaxBodySize: 1 << 20,
		}, []string{
			"return 301 https://$host:8443$request_uri;",
			"proxy_pass https://garrison_app;",
			"proxy_ssl_trusted_certificate ca.pem;",
			"proxy_ssl_name garrison;",
			"listen [::1]:8443 ssl http2;",
			`add_header Strict-Transport-Security "max-age=3600" always;`,
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := nginx.Render(tc.c)
			require.NoError(t, err)
			s := string(got)
			for _, want := range tc.want {
				require.Contains(t, s, want)
			}
			for _, avoid := range tc.avoid {
				require.NotContains(t, s, avoid)
			}
			for _, line := range strings.Split(s, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "proxy_next_upstream ") {
					require.NotContains(t, line, "non_idempotent", "a POST must never be sent to two nodes")
				}
			}
			require.NotContains(t, s, "daemon", "daemon is left to the command line (-g 'daemon off;')")
		})
	}
}

// TestRenderRoutes checks, on the parsed output of every configuration,
// where nginx sends each kind of request: above all, that nothing reaches
// the push proxies' private /api/v1 and that the push proxies get only
// their public routes.
func TestRenderRoutes(t *testing.T) {
	t.Parallel()
	proxyHeaders := map[string]string{
		"Host":              "$http_host",
		"X-Forwarded-For":   "$remote_addr",
		"X-Forwarded-Proto": "$scheme",
		"X-Real-IP":         "$remote_addr",
		"X-Request-ID":      "$request_id",
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := nginx.Render(tc.c)
			require.NoError(t, err)
			conf := parseConf(t, string(out))
			http := conf.only(t, "http")
			app := "garrison_app"
			if tc.c.App.Name != "" {
				app = tc.c.App.Name
			}
			upstreams := map[string]bool{}
			for _, u := range http.all("upstream") {
				upstreams[u.args[1]] = true
				for _, s := range u.all("server") {
					ap, err := netip.ParseAddrPort(s.args[1])
					require.NoError(t, err)
					require.NotContains(t, []uint16{8067, 8069, 9100}, ap.Port(), "nginx never proxies to a metrics port")
				}
			}

			servers := http.all("server")
			if tc.c.TLS != nil {
				require.Len(t, servers, 2)
				redirect := servers[0]
				// Plain HTTP only redirects, but for nginx's own health
				// answer to loopback.
				locs := redirect.all("location")
				require.Len(t, locs, 2)
				require.Equal(t, []string{"location", "=", "/nginx-health"}, locs[0].args)
				require.Equal(t, []string{"deny", "all"}, locs[0].only(t, "deny").args)
				require.Equal(t, []string{"location", "/"}, locs[1].args)
				require.Equal(t, []string{"return", "301", "https://$host$request_uri"}, locs[1].only(t, "return").args)
			} else {
				require.Len(t, servers, 1)
			}
			server := servers[len(servers)-1]
			serverHeaders := server.values("add_header")

			for _, loc := range server.all("location") {
				require.NotContains(t, []string{"~", "~*"}, loc.args[1], "the route checks below assume no regex locations")
				if len(loc.all("add_header")) > 0 {
					require.Subset(t, loc.values("add_header"), serverHeaders,
						"location %v adds headers, so it must repeat the server's", loc.args[1:])
				}
				pass := loc.all("proxy_pass")
				if len(pass) == 0 {
					continue
				}
				u, err := url.Parse(pass[0].args[1])
				require.NoError(t, err)
				require.True(t, upstreams[u.Host], "location %v proxies to an upstream block, not an address", loc.args[1:])
				set := map[string]string{}
				for _, h := range loc.all("proxy_set_header") {
					set[h.args[1]] = h.args[2]
				}
				for k, v := range proxyHeaders {
					require.Equal(t, v, set[k], "location %v sets %s", loc.args[1:], k)
				}
				if u.Host == "garrison_push" {
					path := loc.args[len(loc.args)-1]
					require.Contains(t, []string{"/push/", "/m/", "/ws"}, path, "only the push service's public routes reach the push proxies")
					require.Equal(t, path, u.Path, "the push proxies see only normalized paths under the route's prefix")
				}
			}

			for _, r := range []struct {
				uri, to string // to: an upstream name, or "404"
			}{
				{"/api/v1", "404"}, {"/api/v1/", "404"}, {"/api/v1/send_push", "404"}, {"/api/v1/ack", "404"},
				{"/api/v1/webpush/registrations", "404"}, {"/api/v1/webpush/vapid_public_key", "404"},
				{"/metrics", "404"}, {"/debug/", "404"}, {"/debug/pprof/heap", "404"},
				{"/", app}, {"/api/v4/system/ping", app}, {"/api/v4/websocket", app},
				{"/api/v4/users/login", app}, {"/static/main.0123abcd.js", app}, {"/metrics2", app},
			} {
				require.Equal(t, r.to, route(t, server, r.uri), "%s", r.uri)
			}
			push := app // without Push the app answers these paths (404)
			if tc.c.Push != nil {
				push = "garrison_push"
			}
			for _, uri := range []string{"/push/abc", "/m/abc", "/ws"} {
				require.Equal(t, push, route(t, server, uri), "%s", uri)
			}
		})
	}
}

// route returns where server sends a request for the normalized uri: the
// upstream's name, or the status of a return. It follows nginx's choice
// of location without regexes: an exact match, else the longest prefix.
func route(t *testing.T, server *directive, uri string) string {
	t.Helper()
	var best *directive
	bestLen := -1
	for _, loc := range server.all("location") {
		switch {
		case len(loc.args) == 3 && loc.args[1] == "=":
			if loc.args[2] == uri {
				best, bestLen = loc, 1<<30
			}
		case len(loc.args) == 2 && strings.HasPrefix(loc.args[1], "@"):
		case len(loc.args) == 2 || len(loc.args) == 3 && loc.args[1] == "^~":
			p := loc.args[len(loc.args)-1]
			if strings.HasPrefix(uri, p) && len(p) > bestLen {
				best, bestLen = loc, len(p)
			}
		default:
			t.Fatalf("unexpected location %v", loc.args)
		}
	}
	require.NotNil(t, best, "no location for %s", uri)
	if r := best.all("return"); len(r) > 0 {
		require.Empty(t, best.all("proxy_pass"))
		return r[0].args[1]
	}
	u, err := url.Parse(best.only(t, "proxy_pass").args[1])
	require.NoError(t, err)
	return u.Host
}

func TestRenderInvalid(t *testing.T) {
	t.Parallel()
	_, err := nginx.Render(nginx.Config{
		PIDFile:    "run/nginx.pid; evil",
		User:       "a b",
		Listen:     []string{"chat.example.com:80", "10.0.0.2:0", "[fe80::1%eth0]:80", "10.0.0.3:80", "10.0.0.3:80"},
		ServerName: "x;y",
		TLS: &nginx.TLS{
			Listen:     []string{"10.0.0.3:80", "10.0.0.3:443"},
			KeyFile:    "key file.pem",
			HSTSMaxAge: 1500 * time.Millisecond,
		},
		App: nginx.Upstream{
			Servers:     []nginx.Server{{Addr: "10.0.0.1"}, {Addr: "10.0.0.1:0"}, {Addr: "10.0.0.1:8067"}},
			FailTimeout: 1500 * time.Millisecond,
			TLS:         &nginx.UpstreamTLS{CAFile: "ca.pem"},
		},
		Push: &nginx.Upstream{
			Name:                "garrison_app",
			Keepalive:           -1,
			NextUpstreamTimeout: time.Microsecond,
		},
		Timeouts: nginx.Timeouts{Read: time.Microsecond},
		Limits: nginx.Limits{
			Login:          &nginx.RateLimit{Rate: -1, Per: time.Hour, Burst: -2},
			Push:           nginx.RateLimit{Per: 30 * time.Second},
			PushWebSockets: -1,
			Exempt:         []string{"10.0.0.0/8", "fd00::1", "10.0.0.1/8", "fe80::1%eth0", "chat.example.com"},
		},
	})
	require.Error(t, err)
	for _, want := range []string{
		`PIDFile "run/nginx.pid; evil"`,
		`User "a b"`,
		`Listen "chat.example.com:80" is not an IP:port`,
		`Listen "10.0.0.2:0" is not an IP:port`,
		`Listen "[fe80::1%eth0]:80" is not an IP:port`,
		`Listen "10.0.0.3:80" is given twice`,
		`TLS.Listen "10.0.0.3:80" is given twice`,
		`TLS.CertFile ""`,
		`TLS.KeyFile "key file.pem"`,
		"TLS.HSTSMaxAge 1.5s must be a whole number of seconds",
		`ServerName "x;y"`,
		`App.Servers: "10.0.0.1" is not an IP:port`,
		`App.Servers: "10.0.0.1:0" is not an IP:port`,
		`App.Servers: "10.0.0.1:8067" is a metrics port`,
		`App.TLS.ServerName "" is not a host name`,
		"ClientMaxBodySize must be set",
		"App.FailTimeout 1.5s must be a positive whole number of seconds",
		"Timeouts.Read 1µs must be a positive whole number of milliseconds",
		"Push.Servers is empty",
		`Push.Name "garrison_app" is App.Name too`,
		"Push.Keepalive -1 is negative",
		"Push.NextUpstreamTimeout 1µs must be a positive whole number of milliseconds",
		"Limits.Login.Rate -1 is negative",
		"Limits.Login.Per 1h0m0s must be 1s or 1m0s",
		"Limits.Login.Burst -2 is negative",
		"Limits.Push.Per 30s must be 1s or 1m0s",
		"Limits.PushWebSockets -1 is negative",
		`Limits.Exempt "10.0.0.1/8": has bits set past the prefix length (did you mean 10.0.0.0/8?)`,
		`Limits.Exempt "fe80::1%eth0": an address must not have a zone`,
		`Limits.Exempt "chat.example.com": not an IP address or a CIDR prefix`,
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), `"10.0.0.0/8"`)
	require.NotContains(t, err.Error(), `"fd00::1"`)

	_, err = nginx.Render(nginx.Config{ClientMaxBodySize: 1})
	require.ErrorContains(t, err, "Listen is empty")
	require.ErrorContains(t, err, "App.Servers is empty")

	_, err = nginx.Render(nginx.Config{ClientMaxBodySize: 1, TLS: &nginx.TLS{CertFile: "c", KeyFile: "k"},
		App: configs[0].c.App})
	require.EqualError(t, err, "nginx: render: TLS.Listen is empty: give at least one IP:port to serve HTTPS on",
		"with TLS, plain HTTP is optional")
}

// TestNginxAccepts runs `nginx -t` on every golden configuration, from a
// scratch prefix the way the testbed runs it.
func TestNginxAccepts(t *testing.T) {
	t.Parallel()
	needNginx(t)
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prefix := t.TempDir() + "/"
			c := runnable(t, tc.c, prefix)
			conf, err := nginx.Render(c)
			require.NoError(t, err)
			file := filepath.Join(prefix, "nginx.conf")
			require.NoError(t, os.WriteFile(file, conf, 0o644))
			out, err := exec.Command(nginxBin, "-t", "-c", file, "-p", prefix, "-e", "stderr").CombinedOutput()
			require.NoError(t, err, "nginx -t:\n%s\n%s", out, conf)
			require.Contains(t, string(out), "test is successful")
			require.NotContains(t, string(out), "[warn]", "nginx -t:\n%s\n%s", out, conf)
		})
	}
}

// runnable returns c changed so that nginx can load it on this machine
// from prefix: nginx -t binds the listen addresses, so they become free
// ones here; paths outside the prefix become relative ones in it; the
// certificates are made up; the root-only user goes when unprivileged.
func runnable(t *testing.T, c nginx.Config, prefix string) nginx.Config {
	t.Helper()
	for _, d := range []string{"logs", "run", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(prefix, d), 0o755))
	}
	rel := func(p *string, v string) {
		if filepath.IsAbs(*p) {
			*p = v
		}
	}
	rel(&c.PIDFile, "run/nginx.pid")
	rel(&c.ErrorLog, "logs/error.log")
	rel(&c.AccessLog, "logs/access.log")
	c.TempDir = "tmp"
	if os.Geteuid() != 0 {
		c.User = ""
	}
	c.Listen = []string{freeAddr(t)}
	if c.TLS != nil {
		tls := *c.TLS
		tls.Listen = []string{freeAddr(t)}
		tls.CertFile, tls.KeyFile, _ = selfSigned(t, prefix)
		c.TLS = &tls
	}
	if c.Push != nil && c.Push.TLS != nil {
		push := *c.Push
		pushTLS := *push.TLS
		pushTLS.CAFile, _, _ = selfSigned(t, t.TempDir())
		push.TLS = &pushTLS
		c.Push = &push
	}
	return c
}

func needNginx(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v; CI=true, so this is a failure (apt-get install nginx)", nginxBin, err)
		}
		t.Skipf("%s: %v; skipping the nginx check (apt-get install nginx)", nginxBin, err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	return l.Addr().String()
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// and its key into dir, and returns their paths and the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "garrison test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, cert
}

// directive is one parsed nginx directive: its name and arguments, and
// the directives of its block if it has one.
type directive struct {
	args  []string
	block []*directive
}

// all returns the directives named name directly in d's block.
func (d *directive) all(name string) []*directive {
	var out []*directive
	for _, c := range d.block {
		if c.args[0] == name {
			out = append(out, c)
		}
	}
	return out
}

// only returns the one directive named name in d's block.
func (d *directive) only(t *testing.T, name string) *directive {
	t.Helper()
	all := d.all(name)
	require.Len(t, all, 1, "directives named %s in %v", name, d.args)
	return all[0]
}

// values returns the arguments of every directive named name, joined.
func (d *directive) values(name string) []string {
	var out []string
	for _, c := range d.all(name) {
		out = append(out, strings.Join(c.args[1:], " "))
	}
	return out
}

// parseConf parses an nginx configuration into a root directive whose
// block is the file's top level: enough of nginx's syntax (words, quoted
// strings, comments, blocks) for the files Render writes.
func parseConf(t *testing.T, s string) *directive {
	t.Helper()
	root := &directive{args: []string{"(root)"}}
	stack := []*directive{root}
	var words []string
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case ch == ';' || ch == '{':
			require.NotEmpty(t, words, "empty directive at byte %d", i)
			d := &directive{args: words}
			top := stack[len(stack)-1]
			top.block = append(top.block, d)
			if ch == '{' {
				stack = append(stack, d)
			}
			words = nil
			i++
		case ch == '}':
			require.Empty(t, words, "unterminated directive %v", words)
			require.Greater(t, len(stack), 1, "unbalanced } at byte %d", i)
			stack = stack[:len(stack)-1]
			i++
		case ch == '\'' || ch == '"':
			var w strings.Builder
			i++
			for i < len(s) && s[i] != ch {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				w.WriteByte(s[i])
				i++
			}
			require.Less(t, i, len(s), "unterminated string")
			i++
			words = append(words, w.String())
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n;{}", rune(s[j])) {
				j++
			}
			words = append(words, s[i:j])
			i = j
		}
	}
	require.Empty(t, words)
	require.Len(t, stack, 1, "unclosed block")
	return root
}
