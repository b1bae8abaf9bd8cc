package push

import (
	"crypto/ecdh"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
)

// Limits on what a browser may register.
const (
	// MaxEndpointLength bounds a subscription's endpoint URL; real push
	// services' URLs are a few hundred bytes.
	MaxEndpointLength = 2048
	// authSecretLength is RFC 8291's authentication secret size.
	authSecretLength = 16
	// p256PointLength is an uncompressed P-256 point.
	p256PointLength = 65
)

// Validate checks a subscription the way a push proxy must before it
// encrypts to it: an absolute http(s) endpoint and RFC 8291 keys. The
// error names the field at fault and never quotes the keys.
func (s Subscription) Validate() error {
	if s.Endpoint == "" {
		return fmt.Errorf("endpoint is required")
	}
	if len(s.Endpoint) > MaxEndpointLength {
		return fmt.Errorf("endpoint is longer than %d bytes", MaxEndpointLength)
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("endpoint must be an absolute URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("endpoint must be an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("endpoint has no host")
	}
	if u.User != nil {
		return fmt.Errorf("endpoint must not carry user information")
	}
	if _, err := DecodeP256dh(s.Keys.P256dh); err != nil {
		return fmt.Errorf("keys.p256dh: %w", err)
	}
	auth, err := decodeBase64URL(s.Keys.Auth)
	if err != nil {
		return fmt.Errorf("keys.auth: %w", err)
	}
	if len(auth) != authSecretLength {
		return fmt.Errorf("keys.auth must decode to %d bytes, got %d", authSecretLength, len(auth))
	}
	return nil
}

// DecodeP256dh decodes a base64url uncompressed P-256 public key and
// checks that it is a point on the curve.
func DecodeP256dh(s string) (*ecdh.PublicKey, error) {
	b, err := decodeBase64URL(s)
	if err != nil {
		return nil, err
	}
	if len(b) != p256PointLength || b[0] != 4 {
		return nil, fmt.Errorf("must decode to a %d-byte uncompressed P-256 point, got %d bytes", p256PointLength, len(b))
	}
	k, err := ecdh.P256().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("is not a point on P-256")
	}
	return k, nil
}

// decodeBase64URL decodes base64url with or without padding, as
// browsers and libraries variously write it.
func decodeBase64URL(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("is required")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("must be base64url")
	}
	return b, nil
}

// ValidRegistrationID reports whether id can be a registration id a
// proxy issued: it becomes part of a session's device id and of a URL
// path, so only URL-safe characters, and not too many.
func ValidRegistrationID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}
