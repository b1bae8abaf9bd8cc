package proxy

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// registration is a browser PushSubscription the proxy delivers to.
type registration struct {
	ID        string
	Endpoint  string
	P256dh    string // base64url, no padding
	Auth      string // base64url, no padding
	VAPIDKey  string // our public key when it registered
	CreatedAt time.Time
	ExpiresAt *time.Time
}

// errNotFound is returned for an unknown registration.
var errNotFound = errors.New("not found")

// maxEndpointLen bounds a subscription endpoint; browsers' are under 512.
const maxEndpointLen = 2048

// subscriptionJSON is a browser's PushSubscription.toJSON().
type subscriptionJSON struct {
	Endpoint string `json:"endpoint"`
	// ExpirationTime is milliseconds since the epoch, or null.
	ExpirationTime *float64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// registrationError is a refused registration: what to tell the caller and
// the stable error id it can branch on.
type registrationError struct {
	id  string
	msg string
}

func (e *registrationError) Error() string { return e.msg }

func badRegistration(id, format string, args ...any) error {
	return &registrationError{id: "pushproxy.registration." + id, msg: fmt.Sprintf(format, args...)}
}

// validate checks a subscription and returns it normalised.
func (p *Proxy) validateSubscription(s subscriptionJSON, now time.Time) (registration, error) {
	u, err := p.checkEndpoint(s.Endpoint)
	if err != nil {
		return registration{}, err
	}
	pub, err := decodeAnyBase64(s.Keys.P256dh)
	if err != nil || len(pub) != 65 || pub[0] != 4 {
		return registration{}, badRegistration("p256dh_invalid", "keys.p256dh must be an uncompressed P-256 point (65 bytes, base64url)")
	}
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return registration{}, badRegistration("p256dh_invalid", "keys.p256dh is not a point on P-256")
	}
	auth, err := decodeAnyBase64(s.Keys.Auth)
	if err != nil || len(auth) != 16 {
		return registration{}, badRegistration("auth_invalid", "keys.auth must be exactly 16 bytes, base64url")
	}
	r := registration{
		Endpoint:  u.String(), // as parsed: the form webpush-go will request
		P256dh:    base64.RawURLEncoding.EncodeToString(pub),
		Auth:      base64.RawURLEncoding.EncodeToString(auth),
		VAPIDKey:  p.keys.PublicKey,
		CreatedAt: now,
	}
	if s.ExpirationTime != nil {
		ms := *s.ExpirationTime
		if math.IsNaN(ms) || math.IsInf(ms, 0) || ms < 0 || ms > 1e15 {
			return registration{}, badRegistration("expiration_invalid", "expirationTime must be milliseconds since 1970 or null")
		}
		exp := time.UnixMilli(int64(ms))
		if !exp.After(now) {
			return registration{}, badRegistration("expired", "the subscription expired at %s", exp.UTC().Format(time.RFC3339))
		}
		r.ExpiresAt = &exp
	}
	return r, nil
}

// decodeAnyBase64 accepts the base64 variants browsers and libraries
// produce: url or standard alphabet, padded or not.
func decodeAnyBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var err error
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// checkEndpoint parses a subscription endpoint and applies the SSRF guard:
// an absolute http or https URL without userinfo whose host is allowed.
//
// Plain http is accepted because the on-premise push service is usually
// reached at the proxy's own PublicURL, which may be http on a site that
// terminates TLS elsewhere; the payload is end-to-end encrypted either
// way, and AllowedPushHosts is what keeps the proxy from being aimed at
// arbitrary hosts.
func (p *Proxy) checkEndpoint(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, badRegistration("endpoint_invalid", "endpoint is required")
	}
	if len(raw) > maxEndpointLen {
		return nil, badRegistration("endpoint_invalid", "endpoint is longer than %d bytes", maxEndpointLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, badRegistration("endpoint_invalid", "endpoint is not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, badRegistration("endpoint_invalid", "endpoint must be an http or https URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, badRegistration("endpoint_invalid", "endpoint must be an absolute URL with a host")
	}
	if u.User != nil {
		return nil, badRegistration("endpoint_invalid", "endpoint must not carry credentials")
	}
	if u.Fragment != "" {
		return nil, badRegistration("endpoint_invalid", "endpoint must not have a fragment")
	}
	if !allowedHost(p.hosts, u) {
		return nil, badRegistration("host_not_allowed", "push endpoint host %q is not in AllowedPushHosts", u.Host)
	}
	return u, nil
}

// hostRule is one AllowedPushHosts entry.
type hostRule struct {
	host string // lower case, no trailing dot; an IP in canonical form
	port string // "" matches any port
}

// parseHostRules reads AllowedPushHosts. An entry is a host name, an IP
// address ([brackets] optional for IPv6) or either with ":port". Names
// compare case-insensitively and exactly: no wildcards, and a name does
// not match the addresses it resolves to. An entry without a port allows
// every port of that host; with a port, only that port, where an endpoint
// without one has its scheme's default (80 for http, 443 for https).
func parseHostRules(entries []string) ([]hostRule, error) {
	var rules []hostRule
	var errs []error
	for _, e := range entries {
		r, err := parseHostRule(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("AllowedPushHosts entry %q: %w", e, err))
			continue
		}
		rules = append(rules, r)
	}
	return rules, errors.Join(errs...)
}

func parseHostRule(e string) (hostRule, error) {
	e = strings.ToLower(strings.TrimSpace(e))
	switch {
	case e == "":
		return hostRule{}, errors.New("empty")
	case strings.ContainsAny(e, "/@?#"):
		return hostRule{}, errors.New("want a host or host:port, not a URL")
	case strings.Contains(e, "*"):
		return hostRule{}, errors.New("wildcards are not supported; list each host")
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")); err == nil {
		if a.Zone() != "" {
			return hostRule{}, errors.New("an IPv6 zone is not allowed")
		}
		return hostRule{host: a.Unmap().String()}, nil
	}
	host, port := e, ""
	if h, p, err := net.SplitHostPort(e); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return hostRule{}, fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
		host, port = h, strconv.Itoa(n)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return hostRule{}, errors.New("an IPv6 zone is not allowed")
		}
		return hostRule{host: a.Unmap().String(), port: port}, nil
	}
	host = strings.TrimSuffix(host, ".")
	if !validHostName(host) {
		return hostRule{}, errors.New("not a host name or IP address")
	}
	return hostRule{host: host, port: port}, nil
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// allowedHost applies the rules of parseHostRules to an endpoint URL.
func allowedHost(rules []hostRule, u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return false
		}
		host = a.Unmap().String()
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	} else if n, err := strconv.Atoi(port); err == nil {
		port = strconv.Itoa(n) // "0443" is 443
	}
	for _, r := range rules {
		if r.host == host && (r.port == "" || r.port == port) {
			return true
		}
	}
	return false
}

// newRegistrationID returns 128 random bits, base64url: 22 characters,
// well inside the 512 characters of a session's device id.
func newRegistrationID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validRegistrationID reports whether s could be a registration id, so a
// malformed device id is answered without a query.
func validRegistrationID(s string) bool {
	if len(s) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

const sqlUpsertRegistration = `
INSERT INTO pushproxy_registrations (id, endpoint, p256dh, auth, vapid_key, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (endpoint) DO UPDATE
SET p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, vapid_key = EXCLUDED.vapid_key, expires_at = EXCLUDED.expires_at
RETURNING id, (xmax = 0)`

// saveRegistration stores r. A subscription already registered (the same
// endpoint) keeps its id and takes the new keys, so registering twice is
// harmless; created reports a new registration.
func (p *Proxy) saveRegistration(ctx context.Context, r registration) (id string, created bool, err error) {
	newID, err := newRegistrationID()
	if err != nil {
		return "", false, fmt.Errorf("registrations: %w", err)
	}
	err = p.pool.QueryRow(ctx, sqlUpsertRegistration,
		newID, r.Endpoint, r.P256dh, r.Auth, r.VAPIDKey, r.CreatedAt, r.ExpiresAt).Scan(&id, &created)
	if err != nil {
		return "", false, fmt.Errorf("registrations: save: %w", err)
	}
	return id, created, nil
}

const sqlGetRegistration = `
SELECT id, endpoint, p256dh, auth, vapid_key, created_at, expires_at
FROM pushproxy_registrations WHERE id = $1`

func (p *Proxy) getRegistration(ctx context.Context, id string) (registration, error) {
	var r registration
	err := p.pool.QueryRow(ctx, sqlGetRegistration, id).
		Scan(&r.ID, &r.Endpoint, &r.P256dh, &r.Auth, &r.VAPIDKey, &r.CreatedAt, &r.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return registration{}, errNotFound
	}
	if err != nil {
		return registration{}, fmt.Errorf("registrations: get: %w", err)
	}
	return r, nil
}

const sqlDeleteRegistration = `DELETE FROM pushproxy_registrations WHERE id = $1`

// deleteRegistration removes a registration and, by cascade, its pending
// notifications.
func (p *Proxy) deleteRegistration(ctx context.Context, id string) error {
	tag, err := p.pool.Exec(ctx, sqlDeleteRegistration, id)
	if err != nil {
		return fmt.Errorf("registrations: delete: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errNotFound
	}
	return nil
}
