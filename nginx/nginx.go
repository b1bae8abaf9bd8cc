// Package nginx renders the nginx configuration that puts nginx in front of
// a Garrison site: the app nodes, and optionally the push proxies' public
// push service.
//
// What the rendered file does:
//
//   - one upstream of app nodes with keepalive connections, passive health
//     checks (max_fails, fail_timeout) and a retry on another node for
//     idempotent requests that fail;
//   - WebSocket upgrades for /api/v4/websocket with long timeouts;
//   - the proxy headers the app reads (Host, X-Forwarded-For,
//     X-Forwarded-Proto, X-Real-IP) and nginx's own $request_id as
//     X-Request-ID, which the access log records too;
//   - client_max_body_size from the app's largest upload;
//   - /static/ (the web client's assets, content-addressed) proxied to the
//     app with a year-long immutable Cache-Control;
//   - /metrics, /debug/ and /api/v1 answered 404 by nginx itself: metrics
//     are served on their own ports, which no upstream here may point at,
//     and /api/v1 is the push proxies' private sender API;
//   - with TLS: HTTPS (HTTP/2) on TLS.Listen with modern protocols and
//     ciphers and HSTS, while the plain Listen addresses only redirect;
//   - with Limits.Login: a per-address rate limit on the login routes whose
//     refusal is a Mattermost AppError JSON body with status 429;
//   - with Push: /push/ and /m/ (RFC 8030 push and message resources) and
//     /ws (Firefox's push WebSocket) routed to the push proxies, with a
//     request rate limit and a WebSocket count limit per address;
//   - server_tokens off, X-Content-Type-Options and Referrer-Policy on every
//     response, gzip for JSON, JavaScript and CSS.
//
// Render is a pure function of Config: the installer (from its inventory)
// and the multi-node testbed (test/testbed) fill a Config and write the
// result. Every path in the output can be relative to nginx's prefix, so
// the same file serves a system install and an unprivileged run from a
// scratch directory:
//
//	nginx -c /scratch/nginx.conf -p /scratch/ -e stderr -g 'daemon off;'
//
// The output targets Debian bookworm's nginx 1.22 (HTTP/2 is switched on
// with "listen ... ssl http2", not the later "http2 on").
package nginx

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Config describes one nginx in front of a Garrison site. Zero values take
// the defaults documented on each field; nil optional parts (TLS, Push,
// Limits.Login) render nothing. Render reports every invalid field at
// once.
//
// Listen addresses: without TLS, Listen serves the site over plain HTTP.
// With TLS, TLS.Listen serves the site over HTTPS and Listen (which may
// then be empty) only answers 301 redirects to HTTPS.
type Config struct {
	// PIDFile is where the master writes its pid; default "nginx.pid".
	PIDFile string
	// ErrorLog is the error log's path, or "stderr"; default
	// "logs/error.log".
	ErrorLog string
	// AccessLog is the access log's path, "stderr", or "off"; default
	// "logs/access.log". Lines carry the request id sent to the upstream.
	AccessLog string
	// TempDir holds the temporary files of buffered request and response
	// bodies (nginx creates its subdirectories); default "tmp".
	TempDir string
	// User is the user the workers run as when the master runs as root;
	// empty leaves nginx's default (nobody).
	User string

	// WorkerProcesses is the number of workers; 0 means one per core
	// ("auto").
	WorkerProcesses int
	// WorkerConnections bounds each worker's connections, client and
	// upstream together (a proxied WebSocket holds two); default 4096.
	WorkerConnections int

	// Listen lists the IP:port addresses that accept plain HTTP. Without
	// TLS they serve the site and at least one is required; with TLS they
	// only redirect to HTTPS, and may be empty.
	Listen []string
	// ServerName is the server_name; default "_" (any).
	ServerName string

	// TLS, when set, serves the site over HTTPS on TLS.Listen.
	TLS *TLS

	// App is the upstream of Garrison app nodes (port 8065).
	App Upstream

	// Push, when set, is the upstream of push proxies (port 8066): only
	// their public push service (/push/, /m/, /ws) is routed to it, never
	// their sender API (/api/v1). Its Name defaults to "garrison_push".
	Push *Upstream

	// ClientMaxBodySize is the largest request body accepted, in bytes:
	// the app's largest upload (FileSettings.MaxFileSize) plus the
	// multipart overhead. Required.
	ClientMaxBodySize int64

	// Timeouts bounds the proxied requests.
	Timeouts Timeouts

	// Limits are the per-client-address limits.
	Limits Limits
}

// TLS is the site's HTTPS listener.
type TLS struct {
	// Listen lists the IP:port addresses that serve HTTPS (HTTP/2 and
	// HTTP/1.1); at least one is required. The redirect from plain HTTP
	// goes to the port of the first: https://<host><request uri> for 443,
	// https://<host>:<port><request uri> otherwise.
	Listen []string
	// CertFile is the PEM certificate chain, leaf first, and KeyFile its
	// private key; both required. The master reads them when it starts
	// or reloads.
	CertFile, KeyFile string
	// HSTSMaxAge is the max-age of the Strict-Transport-Security header,
	// in whole seconds; default two years (63072000s). A negative value
	// sends no header.
	HSTSMaxAge time.Duration
}

// Upstream is a group of nodes that nginx balances requests over.
type Upstream struct {
	// Name names the upstream block; default "garrison_app" for App and
	// "garrison_push" for Push.
	Name string
	// Servers are the nodes; at least one is required.
	Servers []Server
	// Keepalive is the number of idle connections to the nodes each
	// worker keeps open; default 32.
	Keepalive int
	// MaxFails failed attempts within FailTimeout mark a node down for
	// FailTimeout (passive health check); default 3.
	MaxFails int
	// FailTimeout is both the window for MaxFails and how long a failed
	// node is left out, in whole seconds; default 10s.
	FailTimeout time.Duration
	// NextUpstreamTries bounds the nodes one request is tried on;
	// default 3.
	NextUpstreamTries int
	// NextUpstreamTimeout bounds the time spent trying nodes for one
	// request; default 15s.
	NextUpstreamTimeout time.Duration
	// TLS, when set, makes nginx reach the nodes over HTTPS and verify
	// their certificates (a push proxy with TLSCertFile serves only
	// HTTPS).
	TLS *UpstreamTLS
}

// UpstreamTLS is how nginx verifies the nodes of an Upstream over HTTPS.
type UpstreamTLS struct {
	// CAFile is the PEM file of the CA certificates (the site CA) the
	// nodes' certificates must chain to; required.
	CAFile string
	// ServerName is sent as SNI and must be a name in every node's
	// certificate; required (nginx checks one name for the whole
	// upstream, so the nodes' certificates share it).
	ServerName string
}

// Server is one node of an Upstream.
type Server struct {
	// Addr is the node's IP:port, for example 10.200.7.11:8065. The
	// metrics ports (8067, 8069, 9100) are refused: nginx never proxies
	// to them.
	Addr string
}

// Timeouts are the proxy timeouts; zero fields take the defaults.
type Timeouts struct {
	// Connect bounds connecting to a node; default 5s.
	Connect time.Duration
	// Read and Send bound the wait between two reads from, or writes to,
	// a node for ordinary requests; default 90s each.
	Read, Send time.Duration
	// WebSocket bounds the wait between two reads or writes on a proxied
	// WebSocket (/api/v4/websocket and the push /ws). The app and the
	// push service ping their clients far more often, so this only ends
	// connections to a dead node; default 1h.
	WebSocket time.Duration
}

// Limits are the limits nginx applies per client address. A request over
// a limit is refused with 429.
type Limits struct {
	// Login, when set, limits the login routes (/api/v4/users/login and
	// /api/v4/users/login/switch) per client address, and nginx answers
	// a refused login with Mattermost's AppError JSON. Zero fields take
	// 10 per minute, burst 10. nil leaves logins unlimited, which a
	// caller logging in many users from one address (the testbed) needs.
	Login *RateLimit
	// Push limits requests to /push/ and /m/ per client address when
	// Push is set. Zero fields take 50 per second, burst 100.
	Push RateLimit
	// PushWebSockets bounds the open /ws connections per client address
	// when Push is set; default 20.
	PushWebSockets int
	// Exempt lists client addresses and CIDR prefixes (10.0.0.11,
	// 10.0.0.0/24, fd00::/64) that no limit applies to: the app nodes,
	// whose push proxies post to /push/ through nginx, and any forward
	// proxy or NAT many users share.
	Exempt []string
}

// RateLimit is a request rate per client address with a burst: Burst
// requests beyond the rate are served at once, any more are refused.
type RateLimit struct {
	// Rate is the number of requests per Per a client address may make.
	Rate int
	// Per is time.Second or time.Minute.
	Per time.Duration
	// Burst is the number of requests beyond Rate served without delay.
	Burst int
}

// pushMaxBody bounds a push message's body at nginx: the push service
// takes at most 4096 bytes and answers larger ones 413 itself; nginx
// refuses anything much larger before buffering it.
const pushMaxBody = 16 << 10

// metricsPort reports whether p is one of the ports the DESIGN ports
// table gives to metrics: garrison's, the push proxy's, and
// garrison-agent's.
func metricsPort(p uint16) bool {
	return p == 8067 || p == 8069 || p == 9100
}

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defRate := func(r *RateLimit, rate int, per time.Duration, burst int) {
		defInt(&r.Rate, rate)
		defDur(&r.Per, per)
		defInt(&r.Burst, burst)
	}
	defUpstream := func(u *Upstream, name string) {
		def(&u.Name, name)
		defInt(&u.Keepalive, 32)
		defInt(&u.MaxFails, 3)
		defDur(&u.FailTimeout, 10*time.Second)
		defInt(&u.NextUpstreamTries, 3)
		defDur(&u.NextUpstreamTimeout, 15*time.Second)
	}
	def(&c.PIDFile, "nginx.pid")
	def(&c.ErrorLog, "logs/error.log")
	def(&c.AccessLog, "logs/access.log")
	def(&c.TempDir, "tmp")
	def(&c.ServerName, "_")
	defInt(&c.WorkerConnections, 4096)
	if c.TLS != nil {
		t := *c.TLS
		defDur(&t.HSTSMaxAge, 2*365*24*time.Hour)
		c.TLS = &t
	}
	defUpstream(&c.App, "garrison_app")
	if c.Push != nil {
		p := *c.Push
		defUpstream(&p, "garrison_push")
		c.Push = &p
	}
	defDur(&c.Timeouts.Connect, 5*time.Second)
	defDur(&c.Timeouts.Read, 90*time.Second)
	defDur(&c.Timeouts.Send, 90*time.Second)
	defDur(&c.Timeouts.WebSocket, time.Hour)
	if c.Limits.Login != nil {
		l := *c.Limits.Login
		defRate(&l, 10, time.Minute, 10)
		c.Limits.Login = &l
	}
	defRate(&c.Limits.Push, 50, time.Second, 100)
	defInt(&c.Limits.PushWebSockets, 20)
	return c
}

// check reports every invalid field of a Config with defaults applied.
func (c Config) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	paths := []struct{ field, v string }{
		{"PIDFile", c.PIDFile}, {"ErrorLog", c.ErrorLog}, {"AccessLog", c.AccessLog}, {"TempDir", c.TempDir},
	}
	if c.TLS != nil {
		paths = append(paths, struct{ field, v string }{"TLS.CertFile", c.TLS.CertFile},
			struct{ field, v string }{"TLS.KeyFile", c.TLS.KeyFile})
	}
	for _, p := range paths {
		if !safeWord(p.v) {
			bad("%s %q: a path must not be empty or contain spaces, quotes, ';', '{', '}', '#' or '$'", p.field, p.v)
		}
	}
	if c.User != "" && !name(c.User) {
		bad("User %q is not a user name", c.User)
	}
	if c.WorkerProcesses < 0 {
		bad("WorkerProcesses %d is negative", c.WorkerProcesses)
	}
	if c.WorkerConnections < 0 {
		bad("WorkerConnections %d is negative", c.WorkerConnections)
	}
	if len(c.Listen) == 0 && c.TLS == nil {
		bad("Listen is empty: give at least one IP:port")
	}
	seen := map[netip.AddrPort]bool{}
	listen := func(field string, addrs []string) {
		for _, l := range addrs {
			ap, ok := ipPort(l)
			switch {
			case !ok:
				bad("%s %q is not an IP:port (no zone, port 1-65535)", field, l)
			case seen[ap]:
				bad("%s %q is given twice", field, l)
			}
			seen[ap] = true
		}
	}
	listen("Listen", c.Listen)
	if c.TLS != nil {
		if len(c.TLS.Listen) == 0 {
			bad("TLS.Listen is empty: give at least one IP:port to serve HTTPS on")
		}
		listen("TLS.Listen", c.TLS.Listen)
		if c.TLS.HSTSMaxAge > 0 && c.TLS.HSTSMaxAge%time.Second != 0 {
			bad("TLS.HSTSMaxAge %v must be a whole number of seconds", c.TLS.HSTSMaxAge)
		}
	}
	if c.ServerName != "_" && !name(c.ServerName) {
		bad("ServerName %q is not a host name", c.ServerName)
	}
	c.App.check("App", bad)
	if c.Push != nil {
		c.Push.check("Push", bad)
		if c.Push.Name == c.App.Name {
			bad("Push.Name %q is App.Name too: the upstreams need two names", c.Push.Name)
		}
	}
	if c.ClientMaxBodySize <= 0 {
		bad("ClientMaxBodySize must be set to the largest request body accepted, in bytes")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"Timeouts.Connect", c.Timeouts.Connect}, {"Timeouts.Read", c.Timeouts.Read},
		{"Timeouts.Send", c.Timeouts.Send}, {"Timeouts.WebSocket", c.Timeouts.WebSocket},
	} {
		if d.v < time.Millisecond || d.v%time.Millisecond != 0 {
			bad("%s %v must be a positive whole number of milliseconds", d.field, d.v)
		}
	}
	if c.Limits.Login != nil {
		c.Limits.Login.check("Limits.Login", bad)
	}
	c.Limits.Push.check("Limits.Push", bad)
	if c.Limits.PushWebSockets < 0 {
		bad("Limits.PushWebSockets %d is negative", c.Limits.PushWebSockets)
	}
	for _, e := range c.Limits.Exempt {
		if _, err := exempt(e); err != nil {
			bad("Limits.Exempt %q: %v", e, err)
		}
	}
	return errors.Join(errs...)
}

// check reports the invalid fields of an Upstream with defaults applied;
// field is its name in Config.
func (u Upstream) check(field string, bad func(string, ...any)) {
	if !name(u.Name) {
		bad("%s.Name %q: use letters, digits, '.', '-' and '_'", field, u.Name)
	}
	if len(u.Servers) == 0 {
		bad("%s.Servers is empty: give at least one node", field)
	}
	for _, s := range u.Servers {
		ap, ok := ipPort(s.Addr)
		switch {
		case !ok:
			bad("%s.Servers: %q is not an IP:port (no zone, port 1-65535)", field, s.Addr)
		case metricsPort(ap.Port()):
			bad("%s.Servers: %q is a metrics port (8067, 8069, 9100), which nginx never proxies to", field, s.Addr)
		}
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"Keepalive", u.Keepalive}, {"MaxFails", u.MaxFails}, {"NextUpstreamTries", u.NextUpstreamTries}} {
		if n.v < 0 {
			bad("%s.%s %d is negative", field, n.field, n.v)
		}
	}
	// nginx reads a server's fail_timeout in whole seconds only.
	if u.FailTimeout < time.Second || u.FailTimeout%time.Second != 0 {
		bad("%s.FailTimeout %v must be a positive whole number of seconds", field, u.FailTimeout)
	}
	if u.NextUpstreamTimeout < time.Millisecond || u.NextUpstreamTimeout%time.Millisecond != 0 {
		bad("%s.NextUpstreamTimeout %v must be a positive whole number of milliseconds", field, u.NextUpstreamTimeout)
	}
	if u.TLS != nil {
		if !safeWord(u.TLS.CAFile) {
			bad("%s.TLS.CAFile %q: a path must not be empty or contain spaces, quotes, ';', '{', '}', '#' or '$'", field, u.TLS.CAFile)
		}
		if !name(u.TLS.ServerName) {
			bad("%s.TLS.ServerName %q is not a host name", field, u.TLS.ServerName)
		}
	}
}

// check reports the invalid fields of a RateLimit with defaults applied.
func (r RateLimit) check(field string, bad func(string, ...any)) {
	if r.Rate < 0 {
		bad("%s.Rate %d is negative", field, r.Rate)
	}
	if r.Per != time.Second && r.Per != time.Minute {
		bad("%s.Per %v must be 1s or 1m0s (nginx counts requests per second or per minute)", field, r.Per)
	}
	if r.Burst < 0 {
		bad("%s.Burst %d is negative", field, r.Burst)
	}
}

// exempt parses an entry of Limits.Exempt as nginx's geo block takes it.
func exempt(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", errors.New("an address must not have a zone")
		}
		return a.String(), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", errors.New("not an IP address or a CIDR prefix")
	}
	if p != p.Masked() {
		return "", fmt.Errorf("has bits set past the prefix length (did you mean %s?)", p.Masked())
	}
	return p.String(), nil
}

// ipPort parses s as an IP:port nginx accepts: a non-zero port and no
// IPv6 zone, which listen and server reject at startup.
func ipPort(s string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, false
	}
	return ap, true
}

// safeWord reports whether s can stand unquoted as one nginx argument.
func safeWord(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n\"'\\;{}#$")
}

// name reports whether s is a plain name: letters, digits, '.', '-', '_'.
func name(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Render returns the nginx.conf for c, or an error listing every invalid
// field. The output is deterministic: the same Config gives the same bytes.
func Render(c Config) ([]byte, error) {
	c = c.withDefaults()
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("nginx: render: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, newView(c)); err != nil {
		return nil, fmt.Errorf("nginx: render: %w", err)
	}
	return b.Bytes(), nil
}

// view is a checked Config with the values the template derives from it.
type view struct {
	Config
	// LimitKey is the key of the per-address limits: empty for an exempt
	// address, which no limit then counts.
	LimitKey string
	// Exempt are Limits.Exempt as geo takes them.
	Exempt []string
	// Redirect is the target of plain HTTP's 301 when TLS is set.
	Redirect string
	// AddHeaders are the add_header directives of every response, and
	// HideHeaders the upstream headers they replace. A level that adds
	// or hides any header must repeat these: nginx then drops the ones
	// it would inherit.
	AddHeaders, HideHeaders []string
	// PlainHeaders are the AddHeaders that mean something over plain
	// HTTP: all but Strict-Transport-Security, which browsers ignore
	// there.
	PlainHeaders []string
}

func newView(c Config) view {
	v := view{Config: c, LimitKey: "$binary_remote_addr"}
	if len(c.Limits.Exempt) > 0 {
		v.LimitKey = "$garrison_limit_key"
		for _, e := range c.Limits.Exempt {
			s, _ := exempt(e) // checked
			v.Exempt = append(v.Exempt, s)
		}
	}
	v.HideHeaders = []string{"X-Content-Type-Options", "Referrer-Policy"}
	v.AddHeaders = []string{
		"add_header X-Content-Type-Options nosniff always;",
		"add_header Referrer-Policy no-referrer always;",
	}
	v.PlainHeaders = slices.Clone(v.AddHeaders)
	if c.TLS != nil {
		ap, _ := ipPort(c.TLS.Listen[0]) // checked
		v.Redirect = "https://$host$request_uri"
		if ap.Port() != 443 {
			v.Redirect = "https://$host:" + strconv.Itoa(int(ap.Port())) + "$request_uri"
		}
		if c.TLS.HSTSMaxAge >= 0 {
			v.HideHeaders = append(v.HideHeaders, "Strict-Transport-Security")
			v.AddHeaders = append(v.AddHeaders, fmt.Sprintf(`add_header Strict-Transport-Security "max-age=%d" always;`,
				int64(c.TLS.HSTSMaxAge/time.Second)))
		}
	}
	return v
}

var tmpl = template.Must(template.New("nginx.conf").Funcs(template.FuncMap{
	"dur":  duration,
	"size": size,
	"workers": func(n int) string {
		if n == 0 {
			return "auto"
		}
		return strconv.Itoa(n)
	},
	"rate": func(r RateLimit) string {
		if r.Per == time.Minute {
			return strconv.Itoa(r.Rate) + "r/m"
		}
		return strconv.Itoa(r.Rate) + "r/s"
	},
	"scheme": func(u Upstream) string {
		if u.TLS != nil {
			return "https"
		}
		return "http"
	},
	"pushMaxBody": func() string { return size(pushMaxBody) },
	"list":        func(s ...string) []string { return s },
}).Parse(confTemplate))

// duration renders d as an nginx time: whole seconds, else milliseconds.
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// size renders n bytes as an nginx size, in the largest exact unit.
func size(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "g"
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "m"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

// The ciphers for TLS 1.2: ECDHE key exchange and AEAD only (Mozilla's
// "intermediate" list without the DHE suites). TLS 1.3's suites are all
// modern and keep OpenSSL's defaults.
const confTemplate = `# Written by github.com/garrison-chat/garrison/nginx: edit the Config, not this file.
{{if .User}}user {{.User}};
{{end -}}
worker_processes {{workers .WorkerProcesses}};
pid {{.PIDFile}};
error_log {{.ErrorLog}} warn;

events {
    worker_connections {{.WorkerConnections}};
}

http {
    default_type application/octet-stream;
    server_tokens off;
    sendfile on;
    tcp_nodelay on;

    client_body_temp_path {{.TempDir}}/client_body;
    proxy_temp_path {{.TempDir}}/proxy;
    fastcgi_temp_path {{.TempDir}}/fastcgi;
    uwsgi_temp_path {{.TempDir}}/uwsgi;
    scgi_temp_path {{.TempDir}}/scgi;

    log_format garrison '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                        'request_id=$request_id upstream=$upstream_addr '
                        'upstream_status=$upstream_status request_time=$request_time';
{{- if eq .AccessLog "off"}}
    access_log off;
{{- else}}
    access_log {{.AccessLog}} garrison;
{{- end}}

    gzip on;
    gzip_proxied any;
    gzip_vary on;
    gzip_min_length 1024;
    gzip_types application/json application/javascript text/javascript text/css;

    # Limits per client address; a request over one is refused with 429.
    limit_req_status 429;
    limit_conn_status 429;
{{- if .Exempt}}
    # An exempt address gets an empty key, which no limit counts.
    geo $garrison_limit_exempt {
        default 0;
{{- range .Exempt}}
        {{.}} 1;
{{- end}}
    }
    map $garrison_limit_exempt $garrison_limit_key {
        1 "";
        default $binary_remote_addr;
    }
{{- end}}
{{- with .Limits.Login}}
    limit_req_zone {{$.LimitKey}} zone=garrison_login:10m rate={{rate .}};
{{- end}}
{{- if .Push}}
    limit_req_zone {{.LimitKey}} zone=garrison_push:10m rate={{rate .Limits.Push}};
    limit_conn_zone {{.LimitKey}} zone=garrison_push_ws:10m;
{{- end}}

    # The web client's assets have content-addressed names: a success is
    # cached for a year, anything else not at all.
    map $status $garrison_static_cache_control {
        200 "public, max-age=31536000, immutable";
        206 "public, max-age=31536000, immutable";
        304 "public, max-age=31536000, immutable";
        default "no-store";
    }

    # Passive health check: max_fails failures within fail_timeout leave a
    # node out for fail_timeout.
{{- template "upstream" .App}}
{{- with .Push}}

    # The push proxies. Only their public push service is routed to them.
{{- template "upstream" .}}
{{- end}}
{{- if and .TLS .Listen}}

    # Plain HTTP only redirects to HTTPS.
    server {
{{- range .Listen}}
        listen {{.}};
{{- end}}
        server_name {{.ServerName}};
{{- range .PlainHeaders}}
        {{.}}
{{- end}}

        # For the node agent's health check: nginx answers, on loopback only.
        location = /nginx-health {
            access_log off;
            allow 127.0.0.1;
            allow ::1;
            deny all;
            default_type text/plain;
            return 200 "ok\n";
        }

        location / {
            return 301 {{.Redirect}};
        }
    }
{{- end}}

    server {
{{- with .TLS}}
{{- range .Listen}}
        listen {{.}} ssl http2;
{{- end}}
{{- else}}
{{- range .Listen}}
        listen {{.}};
{{- end}}
{{- end}}
        server_name {{.ServerName}};
{{- with .TLS}}

        ssl_certificate {{.CertFile}};
        ssl_certificate_key {{.KeyFile}};
        ssl_protocols TLSv1.2 TLSv1.3;
        # TLS 1.2: forward secrecy and AEAD only.
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        # Every cipher offered is strong: the client picks (ChaCha20 where
        # it has no AES hardware).
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:garrison_tls:10m;
        ssl_session_timeout 1d;
        # One ticket key would serve every session until nginx restarts,
        # which undoes forward secrecy; the session cache resumes instead.
        ssl_session_tickets off;
{{- end}}
        client_max_body_size {{size .ClientMaxBodySize}};

        # One copy of each security header on every response, nginx's own
        # errors included; the upstreams' copies are dropped.
{{- range .HideHeaders}}
        proxy_hide_header {{.}};
{{- end}}
{{- range .AddHeaders}}
        {{.}}
{{- end}}

        proxy_http_version 1.1;
        proxy_connect_timeout {{dur .Timeouts.Connect}};
        # Another node is tried only for requests nginx may repeat: without
        # non_idempotent, a POST, PATCH or LOCK that reached a node is never
        # sent twice.
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries {{.App.NextUpstreamTries}};
        proxy_next_upstream_timeout {{dur .App.NextUpstreamTimeout}};

        # Never exposed: metrics are served on their own ports, which no
        # upstream here points at, and no debug handler is public.
        location = /metrics {
            return 404;
        }
        location /debug/ {
            return 404;
        }
        # The push proxies' sender API (/api/v1/send_push, /api/v1/ack, ...)
        # is for the app nodes only, on the push proxies' own port.
        location /api/v1 {
            return 404;
        }

        location = /api/v4/websocket {
            proxy_pass {{scheme .App}}://{{.App.Name}};
{{- template "upstream_tls" .App}}
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
{{- template "headers"}}
            proxy_read_timeout {{dur .Timeouts.WebSocket}};
            proxy_send_timeout {{dur .Timeouts.WebSocket}};
        }
{{- with .Limits.Login}}

        # Password guessing: logins are limited per client address, and a
        # refusal is the AppError JSON Mattermost clients read.
{{- range $path := list "/api/v4/users/login" "/api/v4/users/login/switch"}}
        location = {{$path}} {
            limit_req zone=garrison_login burst={{$.Limits.Login.Burst}} nodelay;
            error_page 429 = @garrison_rate_limited;
{{- template "app" $}}
        }
{{- end}}
        location @garrison_rate_limited {
            default_type application/json;
            return 429 '{"id":"api.context.rate_limit.app_error","message":"Too many requests","detailed_error":"","request_id":"$request_id","status_code":429}';
        }
{{- end}}

        location /static/ {
{{- template "app" .}}
            proxy_hide_header Cache-Control;
{{- range .HideHeaders}}
            proxy_hide_header {{.}};
{{- end}}
            add_header Cache-Control $garrison_static_cache_control always;
{{- range .AddHeaders}}
            {{.}}
{{- end}}
        }

        location / {
{{- template "app" .}}
        }
{{- with .Push}}

        # The push service's public routes, and nothing else of the push
        # proxies. The URI in proxy_pass makes nginx send the normalized
        # path, so a push proxy only ever sees paths under these prefixes.
        location /push/ {
            limit_req zone=garrison_push burst={{$.Limits.Push.Burst}} nodelay;
            client_max_body_size {{pushMaxBody}};
            proxy_pass {{scheme .}}://{{.Name}}/push/;
{{- template "push" $}}
        }
        location /m/ {
            limit_req zone=garrison_push burst={{$.Limits.Push.Burst}} nodelay;
            proxy_pass {{scheme .}}://{{.Name}}/m/;
{{- template "push" $}}
        }
        # Firefox's push WebSocket.
        location = /ws {
            limit_conn garrison_push_ws {{$.Limits.PushWebSockets}};
            proxy_pass {{scheme .}}://{{.Name}}/ws;
{{- template "upstream_tls" .}}
            proxy_next_upstream_tries {{.NextUpstreamTries}};
            proxy_next_upstream_timeout {{dur .NextUpstreamTimeout}};
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
{{- template "headers"}}
            proxy_buffering off;
            proxy_read_timeout {{dur $.Timeouts.WebSocket}};
            proxy_send_timeout {{dur $.Timeouts.WebSocket}};
        }
{{- end}}
    }
}
{{- define "upstream"}}
    upstream {{.Name}} {
{{- range .Servers}}
        server {{.Addr}} max_fails={{$.MaxFails}} fail_timeout={{dur $.FailTimeout}};
{{- end}}
        keepalive {{.Keepalive}};
    }
{{- end}}
{{- define "upstream_tls"}}
{{- with .TLS}}
            proxy_ssl_trusted_certificate {{.CAFile}};
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_name {{.ServerName}};
            proxy_ssl_server_name on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
{{- end}}
{{- end}}
{{- define "app"}}
            proxy_pass {{scheme .App}}://{{.App.Name}};
{{- template "upstream_tls" .App}}
            # An empty Connection header keeps the upstream connection alive.
            proxy_set_header Connection "";
{{- template "headers"}}
            proxy_read_timeout {{dur .Timeouts.Read}};
            proxy_send_timeout {{dur .Timeouts.Send}};
{{- end}}
{{- define "push"}}
{{- template "upstream_tls" .Push}}
            proxy_next_upstream_tries {{.Push.NextUpstreamTries}};
            proxy_next_upstream_timeout {{dur .Push.NextUpstreamTimeout}};
            proxy_set_header Connection "";
{{- template "headers"}}
            proxy_read_timeout {{dur .Timeouts.Read}};
            proxy_send_timeout {{dur .Timeouts.Send}};
{{- end}}
{{- define "headers"}}
            # The Host the client sent, port included: the app compares a
            # WebSocket's Origin with it ($host would drop the port).
            proxy_set_header Host $http_host;
            # nginx is the first hop: the client's own X-Forwarded-For is
            # replaced, so the upstream can trust the header.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Real-IP $remote_addr;
            # nginx's own request id, also in the access log; a client's
            # X-Request-ID is never passed on.
            proxy_set_header X-Request-ID $request_id;
{{- end}}
`
