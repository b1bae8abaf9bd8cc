package pushservice

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Identifier sizes. A capability and a message id are the only credentials
// for what they name (pushing to a subscription, cancelling a message), so
// both are unguessable: 160 and 128 random bits.
const (
	capBytes  = 20 // base64url without padding: 27 characters
	msgBytes  = 16 // 22 characters
	uaidBytes = 16 // 32 hex digits, the form Firefox and autopush use
	capLen    = 27
	msgIDLen  = 22
	uaidLen   = 32
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (it crashes the program
	// rather than return weak bytes).
	_, _ = rand.Read(b)
	return b
}

func newCap() string   { return base64.RawURLEncoding.EncodeToString(randomBytes(capBytes)) }
func newMsgID() string { return base64.RawURLEncoding.EncodeToString(randomBytes(msgBytes)) }
func newUAID() string  { return hex.EncodeToString(randomBytes(uaidBytes)) }

// validCap, validMsgID and validUAID check the form of identifiers that
// come from outside, so that garbage never reaches the database.
func validCap(s string) bool   { return len(s) == capLen && isBase64URL(s) }
func validMsgID(s string) bool { return len(s) == msgIDLen && isBase64URL(s) }

func validUAID(s string) bool {
	if len(s) != uaidLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isBase64URL reports whether s uses only the URL-safe base64 alphabet
// (no padding).
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// decodeBase64URL decodes base64url with or without padding: Firefox pads
// the applicationServerKey it sends in register, RFC 8292 senders do not
// pad k.
func decodeBase64URL(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.URLEncoding.Strict().DecodeString(s)
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
