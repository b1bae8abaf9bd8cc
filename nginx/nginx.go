// Package nginx renders the nginx configuration that puts nginx in front of
// the Garrison app nodes: one upstream of app nodes with keepalive
// connections and passive health checks, a retry on another node for
// idempotent requests that fail, WebSocket upgrades for /api/v4/websocket,
// and the proxy headers the app reads.
//
// Render is a pure function of Config: the installer (from its inventory)
// and the multi-node testbed (test/testbed) fill a Config and write the
// result. Every path in the output can be relative to nginx's prefix, so
// the same file serves a system install and an unprivileged run from a
// scratch directory:
//
//	nginx -c /scratch/nginx.conf -p /scratch/ -e stderr -g 'daemon off;'
package nginx

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Config describes one nginx in front of the app nodes. Zero values take
// the defaults documented on each field; Render reports every invalid
// field at once.
//
// Later fields (TLS certificates, rate limits, the push proxy's routes)
// are meant to be added here as optional fields whose zero value renders
// nothing, so existing callers keep their output.
type Config struct {
	// PIDFile is where the master writes its pid; default "nginx.pid".
	PIDFile string
	// ErrorLog is the error log's path, or "stderr"; default
	// "logs/error.log".
	ErrorLog string
	// AccessLog is the access log's path, "stderr", or "off"; default
	// "logs/access.log". Lines carry the request id sent to the app.
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

	// Listen lists the IP:port addresses to accept clients on; at least
	// one is required.
	Listen []string
	// ServerName is the server_name; default "_" (any).
	ServerName string

	// App is the upstream of Garrison app nodes.
	App Upstream

	// ClientMaxBodySize is the largest request body accepted, in bytes:
	// the app's largest upload plus the multipart overhead. Required.
	ClientMaxBodySize int64

	// Timeouts bounds the proxied requests.
	Timeouts Timeouts
}

// Upstream is a group of app nodes that nginx balances requests over.
type Upstream struct {
	// Name names the upstream block; default "garrison_app".
	Name string
	// Servers are the app nodes; at least one is required.
	Servers []Server
	// Keepalive is the number of idle connections to the app nodes each
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
}

// Server is one app node of an Upstream.
type Server struct {
	// Addr is the node's IP:port, for example 10.200.7.11:8065.
	Addr string
}

// Timeouts are the proxy timeouts; zero fields take the defaults.
type Timeouts struct {
	// Connect bounds connecting to an app node; default 5s.
	Connect time.Duration
	// Read and Send bound the wait between two reads from, or writes to,
	// an app node for ordinary requests; default 90s each.
	Read, Send time.Duration
	// WebSocket bounds the wait between two reads or writes on a proxied
	// WebSocket. The app pings its clients far more often, so this only
	// ends connections to a dead node; default 1h.
	WebSocket time.Duration
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
	def(&c.PIDFile, "nginx.pid")
	def(&c.ErrorLog, "logs/error.log")
	def(&c.AccessLog, "logs/access.log")
	def(&c.TempDir, "tmp")
	def(&c.ServerName, "_")
	defInt(&c.WorkerConnections, 4096)
	def(&c.App.Name, "garrison_app")
	defInt(&c.App.Keepalive, 32)
	defInt(&c.App.MaxFails, 3)
	defDur(&c.App.FailTimeout, 10*time.Second)
	defInt(&c.App.NextUpstreamTries, 3)
	defDur(&c.App.NextUpstreamTimeout, 15*time.Second)
	defDur(&c.Timeouts.Connect, 5*time.Second)
	defDur(&c.Timeouts.Read, 90*time.Second)
	defDur(&c.Timeouts.Send, 90*time.Second)
	defDur(&c.Timeouts.WebSocket, time.Hour)
	return c
}

// check reports every invalid field of a Config with defaults applied.
func (c Config) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, p := range []struct{ field, v string }{
		{"PIDFile", c.PIDFile}, {"ErrorLog", c.ErrorLog}, {"AccessLog", c.AccessLog}, {"TempDir", c.TempDir},
	} {
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
	if len(c.Listen) == 0 {
		bad("Listen is empty: give at least one IP:port")
	}
	seen := map[netip.AddrPort]bool{}
	for _, l := range c.Listen {
		ap, ok := ipPort(l)
		switch {
		case !ok:
			bad("Listen %q is not an IP:port (no zone, port 1-65535)", l)
		case seen[ap]:
			bad("Listen %q is given twice", l)
		}
		seen[ap] = true
	}
	if c.ServerName != "_" && !name(c.ServerName) {
		bad("ServerName %q is not a host name", c.ServerName)
	}
	if !name(c.App.Name) {
		bad("App.Name %q: use letters, digits, '.', '-' and '_'", c.App.Name)
	}
	if len(c.App.Servers) == 0 {
		bad("App.Servers is empty: give at least one app node")
	}
	for _, s := range c.App.Servers {
		if _, ok := ipPort(s.Addr); !ok {
			bad("App.Servers: %q is not an IP:port (no zone, port 1-65535)", s.Addr)
		}
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"App.Keepalive", c.App.Keepalive}, {"App.MaxFails", c.App.MaxFails}, {"App.NextUpstreamTries", c.App.NextUpstreamTries}} {
		if n.v < 0 {
			bad("%s %d is negative", n.field, n.v)
		}
	}
	if c.ClientMaxBodySize <= 0 {
		bad("ClientMaxBodySize must be set to the largest request body accepted, in bytes")
	}
	// nginx reads a server's fail_timeout in whole seconds only.
	if c.App.FailTimeout < time.Second || c.App.FailTimeout%time.Second != 0 {
		bad("App.FailTimeout %v must be a positive whole number of seconds", c.App.FailTimeout)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"App.NextUpstreamTimeout", c.App.NextUpstreamTimeout},
		{"Timeouts.Connect", c.Timeouts.Connect}, {"Timeouts.Read", c.Timeouts.Read},
		{"Timeouts.Send", c.Timeouts.Send}, {"Timeouts.WebSocket", c.Timeouts.WebSocket},
	} {
		if d.v < time.Millisecond || d.v%time.Millisecond != 0 {
			bad("%s %v must be a positive whole number of milliseconds", d.field, d.v)
		}
	}
	return errors.Join(errs...)
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
	if err := tmpl.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("nginx: render: %w", err)
	}
	return b.Bytes(), nil
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

    # Passive health check: max_fails failures within fail_timeout leave a
    # node out for fail_timeout.
    upstream {{.App.Name}} {
{{- range .App.Servers}}
        server {{.Addr}} max_fails={{$.App.MaxFails}} fail_timeout={{dur $.App.FailTimeout}};
{{- end}}
        keepalive {{.App.Keepalive}};
    }

    server {
{{- range .Listen}}
        listen {{.}};
{{- end}}
        server_name {{.ServerName}};
        client_max_body_size {{size .ClientMaxBodySize}};

        proxy_http_version 1.1;
        proxy_connect_timeout {{dur .Timeouts.Connect}};
        # Another node is tried only for requests nginx may repeat: without
        # non_idempotent, a POST, PATCH or LOCK that reached a node is never
        # sent twice.
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries {{.App.NextUpstreamTries}};
        proxy_next_upstream_timeout {{dur .App.NextUpstreamTimeout}};

        location = /api/v4/websocket {
            proxy_pass http://{{.App.Name}};
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
{{- template "headers"}}
            proxy_read_timeout {{dur .Timeouts.WebSocket}};
            proxy_send_timeout {{dur .Timeouts.WebSocket}};
        }

        location / {
            proxy_pass http://{{.App.Name}};
            # An empty Connection header keeps the upstream connection alive.
            proxy_set_header Connection "";
{{- template "headers"}}
            proxy_read_timeout {{dur .Timeouts.Read}};
            proxy_send_timeout {{dur .Timeouts.Send}};
        }
    }
}
{{- define "headers"}}
            # The Host the client sent, port included: the app compares a
            # WebSocket's Origin with it ($host would drop the port).
            proxy_set_header Host $http_host;
            # nginx is the first hop: the client's own X-Forwarded-For is
            # replaced, so the app can trust the header.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Request-ID $request_id;
{{- end}}
`
