package pushservice

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"net/url"
	"strings"
	"time"
)

// RFC 8292 (VAPID) verification.

const (
	// maxAuthorization bounds the Authorization header we parse; a real
	// one is about 300 bytes.
	maxAuthorization = 4096
	// maxVAPIDLifetime is how far ahead a token's exp may be (RFC 8292
	// §2: no more than 24 hours from the time of the request).
	maxVAPIDLifetime = 24 * time.Hour
	// vapidLeeway forgives small clock differences between an application
	// server and the push service on both ends of a token's life.
	vapidLeeway = time.Minute
)

var (
	errNoVAPID      = errors.New("missing vapid authorization")
	errBadVAPID     = errors.New("malformed vapid authorization")
	errVAPIDKey     = errors.New("invalid vapid key")
	errVAPIDToken   = errors.New("malformed vapid token")
	errVAPIDSig     = errors.New("invalid vapid token signature")
	errVAPIDExpired = errors.New("vapid token expired")
	errVAPIDTooLong = errors.New("vapid token expiry more than 24 hours ahead")
	errVAPIDAud     = errors.New("vapid token audience is not this push service")
	errVAPIDSub     = errors.New("vapid token has no subject")
)

// vapidAuth is a parsed "vapid t=…, k=…" Authorization header.
type vapidAuth struct {
	token string // the JWT, as sent
	key   []byte // the uncompressed P-256 point k names
}

// parseVAPIDHeader parses an Authorization header of the RFC 8292 "vapid"
// scheme: auth-params t (the JWT) and k (the base64url public key), in
// either order, either possibly quoted. Other parameters are ignored.
func parseVAPIDHeader(h string) (vapidAuth, error) {
	if h == "" {
		return vapidAuth{}, errNoVAPID
	}
	if len(h) > maxAuthorization {
		return vapidAuth{}, errBadVAPID
	}
	scheme, params, ok := strings.Cut(strings.TrimLeft(h, " \t"), " ")
	if !ok || !strings.EqualFold(scheme, "vapid") {
		return vapidAuth{}, errBadVAPID
	}
	var t, k string
	var haveT, haveK bool
	for p := range strings.SplitSeq(params, ",") {
		p = strings.Trim(p, " \t")
		if p == "" {
			continue
		}
		name, value, ok := strings.Cut(p, "=")
		if !ok {
			return vapidAuth{}, errBadVAPID
		}
		name = strings.ToLower(strings.TrimRight(name, " \t"))
		value = strings.TrimLeft(value, " \t")
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		switch name {
		case "t":
			if haveT {
				return vapidAuth{}, errBadVAPID
			}
			t, haveT = value, true
		case "k":
			if haveK {
				return vapidAuth{}, errBadVAPID
			}
			k, haveK = value, true
		}
	}
	if t == "" || k == "" {
		return vapidAuth{}, errBadVAPID
	}
	key, err := parseP256Point(k)
	if err != nil {
		return vapidAuth{}, err
	}
	return vapidAuth{token: t, key: key}, nil
}

// parseP256Point decodes a base64url (padded or not) uncompressed P-256
// public key and checks that it is a point on the curve.
func parseP256Point(s string) ([]byte, error) {
	b, err := decodeBase64URL(s)
	if err != nil || len(b) != 65 || b[0] != 4 {
		return nil, errVAPIDKey
	}
	if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err != nil {
		return nil, errVAPIDKey
	}
	return b, nil
}

// vapidClaims are the JWT claims RFC 8292 uses.
type vapidClaims struct {
	Aud json.RawMessage `json:"aud"`
	Exp json.RawMessage `json:"exp"`
	Sub json.RawMessage `json:"sub"`
}

// verifyVAPID checks a's token: an ES256 JWT signed by a.key (raw r‖s
// signature), whose aud is origin, whose exp is in the future and at most
// 24 hours ahead of now, and which names a subject.
func verifyVAPID(a vapidAuth, origin string, now time.Time) error {
	parts := strings.Split(a.token, ".")
	if len(parts) != 3 {
		return errVAPIDToken
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return errVAPIDToken
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errVAPIDToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return errVAPIDToken
	}
	var hdr struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := strictUnmarshal(header, &hdr); err != nil || hdr.Alg != "ES256" {
		return errVAPIDToken
	}
	if hdr.Typ != "" && !strings.EqualFold(hdr.Typ, "JWT") {
		return errVAPIDToken
	}

	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), a.key)
	if err != nil {
		return errVAPIDKey
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errVAPIDSig
	}

	// The claims are read only once the signature holds: until then they
	// are attacker-chosen bytes.
	var c vapidClaims
	if err := strictUnmarshal(payload, &c); err != nil {
		return errVAPIDToken
	}
	var aud, sub string
	if json.Unmarshal(c.Aud, &aud) != nil {
		return errVAPIDAud
	}
	if json.Unmarshal(c.Sub, &sub) != nil || strings.TrimSpace(sub) == "" {
		return errVAPIDSub
	}
	var exp float64
	if json.Unmarshal(c.Exp, &exp) != nil || math.IsNaN(exp) || math.IsInf(exp, 0) {
		return errVAPIDToken
	}
	if !audMatches(aud, origin) {
		return errVAPIDAud
	}
	nowS := float64(now.UnixNano()) / 1e9
	if exp <= nowS-vapidLeeway.Seconds() {
		return errVAPIDExpired
	}
	if exp > nowS+(maxVAPIDLifetime+vapidLeeway).Seconds() {
		return errVAPIDTooLong
	}
	return nil
}

// audMatches compares a token's aud with the service's origin, as origins:
// scheme and host case-insensitively, a default port the same as none,
// and a bare trailing slash tolerated.
func audMatches(aud, origin string) bool {
	u, err := url.Parse(aud)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	if u.Path != "" && u.Path != "/" {
		return false
	}
	got, err := originOf(u)
	return err == nil && got == origin
}

// strictUnmarshal decodes one JSON object and nothing after it.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
