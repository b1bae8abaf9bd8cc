package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultConfigPath is where the agent's unit points --config.
const DefaultConfigPath = "/etc/garrison/agent.json"

// Defaults for the optional fields.
const (
	DefaultListen       = ":9100"
	DefaultCheckTimeout = 3 * time.Second
	DefaultMaxLagBytes  = 16 << 20
)

// Check kinds.
const (
	KindHTTP     = "http"     // any 2xx is green
	KindGarrison = "garrison" // the server's ping with get_server_status=true
	KindPatroni  = "patroni"  // Patroni REST GET /cluster: this node's member
	KindEtcd     = "etcd"     // etcd GET /health
	// KindTLS is a TLS handshake with a service that speaks no HTTP
	// (pgBackRest's server): green when it completes against the site CA.
	// Its URL is tls://host:port.
	KindTLS = "tls"
)

// Config is agent.json. Unknown fields are errors; Parse reports every
// problem at once.
type Config struct {
	// Node is this node's name as the inventory gives it.
	Node string `json:"node"`
	// Listen is the HTTPS address; default ":9100".
	Listen string `json:"listen,omitempty"`
	// TLS holds the node's certificate and key (issued by the site CA for
	// both server and client use) and the site CA, which verifies clients
	// and is trusted for https checks.
	TLS TLSFiles `json:"tls"`
	// MonitoringNetworks are the CIDRs from which a client without a
	// certificate may GET /health and /metrics.
	MonitoringNetworks []string `json:"monitoring_networks,omitempty"`
	// CheckTimeout bounds each check (a Go duration such as "3s"); default 3s.
	CheckTimeout string `json:"check_timeout,omitempty"`
	// Checks are the local services /health reports, in this order.
	Checks []Check `json:"checks,omitempty"`
}

// TLSFiles are the paths of the agent's TLS material (PEM).
type TLSFiles struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
	CA   string `json:"ca"`
}

// Check is one service the agent checks.
type Check struct {
	// Name names the service in /health and in metrics (garrison,
	// pushproxy, nginx, postgres, etcd, minio, ...).
	Name string `json:"name"`
	// Kind is http, garrison, patroni, etcd or tls.
	Kind string `json:"kind"`
	// URL is what to GET. For garrison, patroni and etcd a URL without a
	// path gets the usual one (/api/v4/system/ping, /cluster, /health).
	URL string `json:"url"`
	// Member is this node's Patroni member name (patroni only).
	Member string `json:"member,omitempty"`
	// MaxLagBytes is the replication lag above which a replica is yellow
	// (patroni only; default 16 MiB).
	MaxLagBytes int64 `json:"max_lag_bytes,omitempty"`
}

// ConfigError lists every problem found in a configuration, each starting
// with the field's path (checks[1].url).
type ConfigError struct {
	File     string
	Problems []string
}

func (e *ConfigError) Error() string {
	where := "agent config"
	if e.File != "" {
		where += " " + e.File
	}
	if len(e.Problems) == 1 {
		return where + ": " + e.Problems[0]
	}
	return fmt.Sprintf("%s: %d problems:\n  %s", where, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// LoadConfig reads and checks the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	cfg, err := ParseConfig(data)
	var ce *ConfigError
	if errors.As(err, &ce) {
		ce.File = path
	}
	return cfg, err
}

// ParseConfig parses and checks agent.json, filling in defaults. Its
// errors are *ConfigError.
func ParseConfig(data []byte) (*Config, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, &ConfigError{Problems: []string{"not JSON: " + jsonErr(data, err)}}
	}
	if dec.More() {
		return nil, &ConfigError{Problems: []string{"not JSON: more than one value"}}
	}
	p := &problems{}
	shape(reflect.TypeFor[Config](), raw, "", p)
	var cfg Config
	_ = json.Unmarshal(data, &cfg) // what does not fit is in p already
	cfg.validate(p)
	if len(p.list) > 0 {
		return nil, &ConfigError{Problems: p.list}
	}
	return &cfg, nil
}

func jsonErr(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("line %d: %v", line, err)
	}
	return err.Error()
}

// problems collects what is wrong, once per field: a field whose JSON has
// the wrong shape is not also reported as empty or invalid.
type problems struct {
	list []string
	bad  map[string]bool // paths already reported
}

func (p *problems) add(path, format string, args ...any) {
	if p.badPath(path) {
		return
	}
	if p.bad == nil {
		p.bad = make(map[string]bool)
	}
	p.bad[path] = true
	p.list = append(p.list, path+": "+fmt.Sprintf(format, args...))
}

// badPath reports whether path or a parent of it has a problem already.
func (p *problems) badPath(path string) bool {
	for q := range p.bad {
		if path == q || strings.HasPrefix(path, q+".") || strings.HasPrefix(path, q+"[") {
			return true
		}
	}
	return false
}

// shape checks that the decoded JSON v fits type t: objects with only
// known fields, and values of the right JSON type, all the way down.
func shape(t reflect.Type, v any, path string, p *problems) {
	if v == nil {
		return // null: the zero value
	}
	name := path
	if name == "" {
		name = "(top level)"
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			p.add(name, "want an object, have %s", jsonType(v))
			return
		}
		fields := make(map[string]reflect.Type)
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				p.add(sub, "unknown field")
				continue
			}
			shape(ft, obj[k], sub, p)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			p.add(name, "want an array, have %s", jsonType(v))
			return
		}
		for i, e := range arr {
			shape(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i), p)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			p.add(name, "want a string, have %s", jsonType(v))
		}
	case reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			p.add(name, "want an integer, have %s", jsonType(v))
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
			p.add(name, "want an integer, have %s", n)
		}
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

var checkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// validate fills in defaults and reports what is missing or invalid.
func (c *Config) validate(p *problems) {
	if strings.TrimSpace(c.Node) == "" {
		p.add("node", "required: this node's name")
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "%q is not host:port (for example %q)", c.Listen, DefaultListen)
	} else if !validPort(port) {
		p.add("listen", "%q: bad port %q", c.Listen, port)
	}
	for _, f := range []struct{ path, value, what string }{
		{"tls.cert", c.TLS.Cert, "the node's certificate (PEM), issued by the site CA"},
		{"tls.key", c.TLS.Key, "the node's private key (PEM)"},
		{"tls.ca", c.TLS.CA, "the site CA certificate (PEM)"},
	} {
		if strings.TrimSpace(f.value) == "" {
			p.add(f.path, "required: %s; the agent serves HTTPS only", f.what)
		}
	}
	for i, n := range c.MonitoringNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			hint := ""
			if _, err := netip.ParseAddr(n); err == nil {
				hint = " (a single address is written with /32 or /128)"
			}
			p.add(fmt.Sprintf("monitoring_networks[%d]", i), "%q is not a CIDR%s", n, hint)
		}
	}
	if c.CheckTimeout != "" {
		if d, err := time.ParseDuration(c.CheckTimeout); err != nil || d <= 0 {
			p.add("check_timeout", "%q is not a positive duration (for example \"3s\")", c.CheckTimeout)
		}
	}
	seen := make(map[string]int)
	for i := range c.Checks {
		c.Checks[i].validate(fmt.Sprintf("checks[%d]", i), p)
		name := c.Checks[i].Name
		if j, dup := seen[name]; dup && name != "" {
			p.add(fmt.Sprintf("checks[%d].name", i), "%q is used by checks[%d] too", name, j)
		}
		seen[name] = i
	}
}

func (ch *Check) validate(path string, p *problems) {
	if ch.Name == "" {
		p.add(path+".name", "required")
	} else if !checkName.MatchString(ch.Name) {
		p.add(path+".name", "%q: use lower-case letters, digits, '-', '_' or '.'", ch.Name)
	}
	switch ch.Kind {
	case KindHTTP, KindGarrison, KindPatroni, KindEtcd, KindTLS:
	case "":
		p.add(path+".kind", "required: http, garrison, patroni, etcd or tls")
	default:
		p.add(path+".kind", "%q is not http, garrison, patroni, etcd or tls", ch.Kind)
	}
	u, err := url.Parse(ch.URL)
	switch {
	case ch.URL == "":
		p.add(path+".url", "required")
	case ch.Kind == KindTLS && (err != nil || u.Scheme != "tls" || u.Port() == "" || (u.Path != "" && u.Path != "/")):
		p.add(path+".url", "%q is not a tls://host:port URL", ch.URL)
	case ch.Kind != KindTLS && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == ""):
		p.add(path+".url", "%q is not an http:// or https:// URL", ch.URL)
	case u.User != nil:
		p.add(path+".url", "credentials in the URL are not supported")
	}
	if ch.Kind == KindPatroni {
		if ch.Member == "" {
			p.add(path+".member", "required for kind patroni: this node's Patroni member name")
		}
		if ch.MaxLagBytes < 0 {
			p.add(path+".max_lag_bytes", "%d is negative", ch.MaxLagBytes)
		}
		if ch.MaxLagBytes == 0 {
			ch.MaxLagBytes = DefaultMaxLagBytes
		}
	} else if ch.Kind != "" {
		if ch.Member != "" {
			p.add(path+".member", "only for kind patroni")
		}
		if ch.MaxLagBytes != 0 {
			p.add(path+".max_lag_bytes", "only for kind patroni")
		}
	}
}

func validPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// timeout is the per-check timeout.
func (c *Config) timeout() time.Duration {
	if d, err := time.ParseDuration(c.CheckTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultCheckTimeout
}

// networks are the parsed monitoring networks (valid after ParseConfig).
func (c *Config) networks() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range c.MonitoringNetworks {
		if pfx, err := netip.ParsePrefix(n); err == nil {
			out = append(out, pfx.Masked())
		}
	}
	return out
}

// target is the URL a check GETs: the configured one, with the kind's
// usual path when it has none, and get_server_status=true for garrison.
func (ch *Check) target() string {
	u, err := url.Parse(ch.URL)
	if err != nil {
		return ch.URL
	}
	if u.Path == "" || u.Path == "/" {
		switch ch.Kind {
		case KindGarrison:
			u.Path = "/api/v4/system/ping"
		case KindPatroni:
			u.Path = "/cluster"
		case KindEtcd:
			u.Path = "/health"
		}
	}
	if ch.Kind == KindGarrison {
		q := u.Query()
		q.Set("get_server_status", "true")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
