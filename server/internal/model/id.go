package model

import (
	"crypto/rand"
	"encoding/base32"
)

// idEncoding is Mattermost's base32 alphabet for ids.
var idEncoding = base32.NewEncoding("ybndrfg8ejkmcpqxot1uwisza345h769").WithPadding(base32.NoPadding)

// NewID returns a new 26-character random id in Mattermost's format.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return idEncoding.EncodeToString(b[:])
}

// NewToken returns a new 26-character secret token (session tokens, CSRF
// values); it has the same shape as an id but is never used as one.
func NewToken() string { return NewID() }

// IsValidID reports whether s has the shape of a Mattermost id: exactly 26
// ASCII letters or digits.
func IsValidID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
