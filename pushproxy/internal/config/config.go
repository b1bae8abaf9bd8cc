// Package config loads garrison-pushproxy's configuration: one JSON file
// (mattermost-push-proxy's shape where the keys mean the same thing),
// then GARRISON_PUSHPROXY_<KEY> environment overrides, validated as a
// whole so every bad key is reported at once.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/garrison-chat/garrison/internal/logging"
)

// DefaultPath is read when no --config flag is given; a missing file
// there means defaults and environment only.
const DefaultPath = "/etc/garrison/pushproxy.json"

// EnvPrefix starts every environment override: GARRISON_PUSHPROXY_LISTENADDRESS
// overrides ListenAddress.
const EnvPrefix = "GARRISON_PUSHPROXY_"

// Content policies.
const (
	// ContentIDOnly builds device payloads from an allow-list of ids:
	// message text, sender and channel names never enter the push path.
	ContentIDOnly = "id_only"
	// ContentFull passes text through, always encrypted to the device.
	ContentFull = "full"
)

// Config is the whole configuration. Field names are the JSON keys.
type Config struct {
	// ListenAddress serves the sender API (/api/v1), the push service
	// (/push, /m, /ws) and health.
	ListenAddress string
	// MetricsListenAddress serves Prometheus /metrics; empty disables it.
	// It serves HTTPS with TLSCertFile and TLSKeyFile when they are set,
	// as ListenAddress does.
	MetricsListenAddress string
	// DataSource is the Postgres DSN (several hosts allowed) holding
	// registrations, the outbox and the mailbox.
	DataSource string
	// PublicURL is the base of push endpoints (<PublicURL>/push/<cap>)
	// as devices and application servers reach it, usually through nginx.
	PublicURL string
	// VAPIDKeyFile holds the proxy's VAPID key pair, created on first start.
	VAPIDKeyFile string
	// VAPIDSubject is the RFC 8292 contact: mailto:… or https://….
	VAPIDSubject string
	// SenderSecret, when set, is required on /api/v1 as a bearer token or
	// as the password of HTTP basic auth.
	SenderSecret string
	// ContentPolicy is ContentIDOnly or ContentFull.
	ContentPolicy string
	// ThrottlePerSec and ThrottleBurst size the token bucket of each sender.
	ThrottlePerSec int
	ThrottleBurst  int
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string
	// SendTimeoutSec bounds one delivery attempt.
	SendTimeoutSec int
	// AllowedPushHosts are the hosts (host or host:port) a Web Push
	// subscription endpoint may point to; empty means PublicURL's host.
	AllowedPushHosts []string
	// TLSCertFile and TLSKeyFile, set together, make ListenAddress and
	// MetricsListenAddress serve HTTPS (TLS 1.2 or later): garrison nodes
	// reach the proxy across the network with the sender secret, and
	// Prometheus scrapes it from another node; neither may travel in
	// clear. The pair is read once, at start.
	TLSCertFile string
	TLSKeyFile  string
	// LogLevel is DEBUG, INFO, WARN or ERROR; LogFormat is json or plain.
	LogLevel  string
	LogFormat string
}

// Defaults returns the configuration used when a key is absent.
func Defaults() Config {
	return Config{
		ListenAddress:        ":8066",
		MetricsListenAddress: "127.0.0.1:8069",
		VAPIDKeyFile:         "/var/lib/garrison-pushproxy/vapid.json",
		VAPIDSubject:         "mailto:root@localhost",
		ContentPolicy:        ContentIDOnly,
		ThrottlePerSec:       300,
		ThrottleBurst:        600,
		SendTimeoutSec:       30,
		LogLevel:             "INFO",
		LogFormat:            "json",
	}
}

// upstreamKeys are mattermost-push-proxy settings that have no meaning
// here (Apple and Google delivery, its logger and throttle store). A
// config file carried over from it loads, with a warning naming them.
var upstreamKeys = []string{
	"AndroidPushSettings", "ApplePushSettings", "EnableConsoleLog", "EnableFileLog",
	"EnableMetrics", "LogFileLocation", "RetryTimeoutSec", "ThrottleMemoryStoreSize",
	"ThrottleVaryByHeader",
}

// Load reads path (empty: DefaultPath if it exists, else defaults only),
// applies the environment and validates the result. explicit says the path
// came from the command line, so a missing file is an error. Warnings are
// things an admin should see but that do not stop the proxy.
func Load(path string, explicit bool, getenv func(string) string, hostname func() (string, error)) (*Config, []string, error) {
	cfg := Defaults()
	var warnings []string
	if path == "" {
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		w, err := decode(data, &cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %s: %w", path, err)
		}
		warnings = append(warnings, w...)
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// No file: defaults and environment.
	default:
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return nil, nil, err
	}
	if err := cfg.fill(hostname); err != nil {
		return nil, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	return &cfg, warnings, nil
}

// decode reads a JSON object onto cfg. Keys of mattermost-push-proxy that
// do not apply are warnings; any other unknown key is an error, since it is
// most likely a typo that would silently leave a default in place.
func decode(data []byte, cfg *Config) ([]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	var warnings, unknown []string
	known := map[string]bool{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		known[t.Field(i).Name] = true
	}
	for k := range raw {
		switch {
		case known[k]:
		case slices.Contains(upstreamKeys, k):
			warnings = append(warnings, fmt.Sprintf("%s is a mattermost-push-proxy setting with no meaning here (Garrison delivers with Web Push only); ignored", k))
			delete(raw, k)
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("unknown key(s) %s", strings.Join(unknown, ", "))
	}
	slices.Sort(warnings)
	clean, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return nil, err
	}
	return warnings, nil
}

// applyEnv overrides fields from GARRISON_PUSHPROXY_<FIELD>. Lists are
// comma-separated.
func applyEnv(cfg *Config, getenv func(string) string) error {
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	var errs []error
	for i := range t.NumField() {
		name := EnvPrefix + strings.ToUpper(t.Field(i).Name)
		s := getenv(name)
		if s == "" {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(s)
		case reflect.Int:
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not an integer", name, s))
				continue
			}
			f.SetInt(int64(n))
		case reflect.Slice:
			var list []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, p)
				}
			}
			f.Set(reflect.ValueOf(list))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// fill derives PublicURL from ListenAddress when it is not set.
func (c *Config) fill(hostname func() (string, error)) error {
	if c.PublicURL != "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.ListenAddress)
	if err != nil {
		return nil // Validate names the bad ListenAddress.
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if host, err = hostname(); err != nil {
			return fmt.Errorf("config: PublicURL is not set and the host name is unknown: %w", err)
		}
	}
	scheme := "http"
	if c.TLSCertFile != "" {
		scheme = "https"
	}
	c.PublicURL = scheme + "://" + net.JoinHostPort(host, port)
	return nil
}

// Validate checks every field and reports all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
		bad("ListenAddress", "%q is not host:port", c.ListenAddress)
	}
	if c.MetricsListenAddress != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListenAddress); err != nil {
			bad("MetricsListenAddress", "%q is not host:port", c.MetricsListenAddress)
		} else if c.MetricsListenAddress == c.ListenAddress {
			bad("MetricsListenAddress", "must differ from ListenAddress: metrics are never served on the public listener")
		}
	}
	if strings.TrimSpace(c.DataSource) == "" {
		bad("DataSource", "is required (a Postgres DSN)")
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		bad("PublicURL", "%q must be an http(s) origin like https://push.example.org", c.PublicURL)
	}
	if c.VAPIDKeyFile == "" {
		bad("VAPIDKeyFile", "is required")
	}
	if s := c.VAPIDSubject; !strings.HasPrefix(s, "mailto:") && !strings.HasPrefix(s, "https://") {
		bad("VAPIDSubject", "%q must start with mailto: or https:// (RFC 8292)", s)
	} else if strings.HasPrefix(s, "mailto:mailto:") {
		bad("VAPIDSubject", "%q has a doubled mailto:", s)
	}
	if c.ContentPolicy != ContentIDOnly && c.ContentPolicy != ContentFull {
		bad("ContentPolicy", "%q must be %q or %q", c.ContentPolicy, ContentIDOnly, ContentFull)
	}
	if c.ThrottlePerSec < 1 {
		bad("ThrottlePerSec", "must be at least 1, got %d", c.ThrottlePerSec)
	}
	if c.ThrottleBurst < 1 {
		bad("ThrottleBurst", "must be at least 1, got %d", c.ThrottleBurst)
	}
	for _, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			bad("TrustedProxies", "%q is not a CIDR or an address", p)
		}
	}
	if c.SendTimeoutSec < 1 || c.SendTimeoutSec > 300 {
		bad("SendTimeoutSec", "must be between 1 and 300, got %d", c.SendTimeoutSec)
	}
	for _, h := range c.AllowedPushHosts {
		if h == "" || strings.ContainsAny(h, "/@?# ") {
			bad("AllowedPushHosts", "%q must be a host or host:port", h)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("TLSCertFile", "TLSCertFile and TLSKeyFile must be set together")
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		bad("LogLevel", "%q must be DEBUG, INFO, WARN or ERROR", c.LogLevel)
	}
	if f := strings.ToLower(c.LogFormat); f != "json" && f != "plain" {
		bad("LogFormat", "%q must be json or plain", c.LogFormat)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// Public returns PublicURL parsed, without a trailing slash. Call it only
// on a validated Config.
func (c *Config) Public() *url.URL {
	u, _ := url.Parse(strings.TrimSuffix(c.PublicURL, "/"))
	return u
}

// PushHosts returns AllowedPushHosts, or PublicURL's host when it is empty.
func (c *Config) PushHosts() []string {
	if len(c.AllowedPushHosts) > 0 {
		return c.AllowedPushHosts
	}
	return []string{c.Public().Host}
}

// Proxies returns TrustedProxies parsed; a bare address is a /32 or /128.
func (c *Config) Proxies() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, p := range c.TrustedProxies {
		if pf, err := parsePrefix(p); err == nil {
			out = append(out, pf)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Redacted returns a copy safe to log: the sender secret and the
// DataSource password are hidden.
func (c Config) Redacted() Config {
	if c.SenderSecret != "" {
		c.SenderSecret = "********"
	}
	c.DataSource = redactDSN(c.DataSource)
	return c
}

// redactDSN hides the password of a URL or key=value Postgres DSN.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "********")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "********")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			fields[i] = k + "=********"
		}
	}
	return strings.Join(fields, " ")
}
