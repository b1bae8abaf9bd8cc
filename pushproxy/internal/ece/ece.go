// Package ece decrypts Web Push messages: the aes128gcm content coding of
// RFC 8188 with the key derivation of RFC 8291. It is the user agent's half
// of Web Push, written from the RFCs with the standard library, so tests of
// the push proxy and the push service can check what a device would read
// without trusting the sender's own code. It also makes fake subscribers
// (a key pair and an auth secret) for those tests.
//
// Production code never needs to decrypt: the proxy only encrypts (with
// webpush-go) and the push service only stores ciphertext.
package ece

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Sizes fixed by RFC 8188 and RFC 8291.
const (
	saltLen   = 16
	headerLen = saltLen + 4 + 1 // salt, rs, idlen; the key id follows
	tagLen    = 16
	keyLen    = 65 // an uncompressed P-256 point, the sender's key id (RFC 8291 §4)
	// AuthLen is the length of a subscription's auth secret (RFC 8291 §3.2).
	AuthLen = 16
	// minRecordSize is the smallest valid record: a tag and one delimiter
	// byte would leave no room for data, so RFC 8188 §2 requires more.
	minRecordSize = tagLen + 2
)

// Errors Decrypt wraps; test with errors.Is.
var (
	// ErrHeader means the content-coding header is malformed: too short,
	// a record size below 18, or a key id that is not a P-256 point.
	ErrHeader = errors.New("ece: malformed header")
	// ErrAuth means a record did not authenticate: wrong keys, wrong auth
	// secret, or tampered ciphertext.
	ErrAuth = errors.New("ece: record does not authenticate")
	// ErrPadding means a record's plaintext has no delimiter, or the wrong
	// one for its position.
	ErrPadding = errors.New("ece: bad padding")
	// ErrTruncated means the message ends before its last record.
	ErrTruncated = errors.New("ece: truncated message")
)

// Decrypt opens an RFC 8291 message body (Content-Encoding: aes128gcm)
// addressed to the user agent key priv with the subscription's auth secret.
// It accepts any number of records, strips padding and checks the record
// delimiters, so a message cut at a record boundary is an error.
func Decrypt(priv *ecdh.PrivateKey, auth, body []byte) ([]byte, error) {
	if priv == nil || priv.Curve() != ecdh.P256() {
		return nil, errors.New("ece: the user agent key must be a P-256 key")
	}
	if len(auth) != AuthLen {
		return nil, fmt.Errorf("ece: auth secret is %d bytes, want %d", len(auth), AuthLen)
	}
	if len(body) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrHeader, len(body))
	}
	salt := body[:saltLen]
	rs := binary.BigEndian.Uint32(body[saltLen : saltLen+4])
	idLen := int(body[saltLen+4])
	if rs < minRecordSize {
		return nil, fmt.Errorf("%w: record size %d is below %d", ErrHeader, rs, minRecordSize)
	}
	if idLen != keyLen {
		return nil, fmt.Errorf("%w: key id is %d bytes, want a %d-byte P-256 point", ErrHeader, idLen, keyLen)
	}
	if len(body) < headerLen+idLen {
		return nil, fmt.Errorf("%w: key id cut short", ErrHeader)
	}
	asPub, err := ecdh.P256().NewPublicKey(body[headerLen : headerLen+idLen])
	if err != nil {
		return nil, fmt.Errorf("%w: sender key: %v", ErrHeader, err)
	}
	records := body[headerLen+idLen:]
	if len(records) == 0 {
		return nil, ErrTruncated
	}

	gcm, nonce, err := keys(priv, asPub, auth, salt)
	if err != nil {
		return nil, err
	}

	var out []byte
	iv := make([]byte, len(nonce))
	for seq := uint64(0); len(records) > 0; seq++ {
		n := min(int64(rs), int64(len(records)))
		rec := records[:n]
		records = records[n:]
		last := len(records) == 0
		if len(rec) <= tagLen {
			return nil, fmt.Errorf("%w: record %d is %d bytes", ErrTruncated, seq, len(rec))
		}
		// RFC 8188 §2.3: the record nonce is the base nonce XOR the
		// big-endian sequence number, which fits in the last 8 bytes.
		copy(iv, nonce)
		binary.BigEndian.PutUint64(iv[4:], binary.BigEndian.Uint64(nonce[4:])^seq)
		pt, err := gcm.Open(nil, iv, rec, nil)
		if err != nil {
			return nil, fmt.Errorf("%w (record %d)", ErrAuth, seq)
		}
		data, err := unpad(pt, last)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", seq, err)
		}
		out = append(out, data...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// keys derives the content-encryption key and the base nonce (RFC 8291 §3.4,
// RFC 8188 §2.2).
func keys(ua *ecdh.PrivateKey, as *ecdh.PublicKey, auth, salt []byte) (cipher.AEAD, []byte, error) {
	secret, err := ua.ECDH(as)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ecdh: %v", ErrHeader, err)
	}
	info := make([]byte, 0, 14+2*keyLen)
	info = append(info, "WebPush: info\x00"...)
	info = append(info, ua.PublicKey().Bytes()...)
	info = append(info, as.Bytes()...)
	ikm, err := hkdf.Key(sha256.New, secret, auth, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return gcm, nonce, nil
}

// unpad strips a record's zero padding and its delimiter: 0x02 ends the
// last record, 0x01 every other one (RFC 8188 §2).
func unpad(pt []byte, last bool) ([]byte, error) {
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, fmt.Errorf("%w: no delimiter", ErrPadding)
	}
	switch {
	case last && pt[i] == 2, !last && pt[i] == 1:
		return pt[:i], nil
	case last && pt[i] == 1:
		return nil, fmt.Errorf("%w: the last record is not marked last", ErrTruncated)
	case !last && pt[i] == 2:
		return nil, fmt.Errorf("%w: data after the last record", ErrPadding)
	default:
		return nil, fmt.Errorf("%w: delimiter 0x%02x", ErrPadding, pt[i])
	}
}

// Subscriber is a fake Web Push user agent: the key pair and auth secret a
// browser creates for a PushSubscription.
type Subscriber struct {
	// Key is the user agent's ECDH key; its public half is p256dh.
	Key *ecdh.PrivateKey
	// Auth is the 16-byte auth secret.
	Auth []byte
}

// NewSubscriber makes a subscriber with a fresh key pair and auth secret.
func NewSubscriber() (*Subscriber, error) {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ece: %w", err)
	}
	auth := make([]byte, AuthLen)
	if _, err := rand.Read(auth); err != nil {
		return nil, fmt.Errorf("ece: %w", err)
	}
	return &Subscriber{Key: key, Auth: auth}, nil
}

// P256dh returns the public key as a browser's PushSubscription.toJSON()
// does: the uncompressed point, base64url without padding.
func (s *Subscriber) P256dh() string {
	return base64.RawURLEncoding.EncodeToString(s.Key.PublicKey().Bytes())
}

// AuthSecret returns the auth secret, base64url without padding.
func (s *Subscriber) AuthSecret() string {
	return base64.RawURLEncoding.EncodeToString(s.Auth)
}

// Subscription returns the JSON of a browser PushSubscription for endpoint:
// {"endpoint":…,"expirationTime":null,"keys":{"p256dh":…,"auth":…}}.
func (s *Subscriber) Subscription(endpoint string) []byte {
	// Strings and a nil pointer always marshal, so the error is always nil.
	b, _ := json.Marshal(struct {
		Endpoint       string            `json:"endpoint"`
		ExpirationTime *int64            `json:"expirationTime"`
		Keys           map[string]string `json:"keys"`
	}{endpoint, nil, map[string]string{"p256dh": s.P256dh(), "auth": s.AuthSecret()}})
	return b
}

// Decrypt opens a message body addressed to this subscriber.
func (s *Subscriber) Decrypt(body []byte) ([]byte, error) {
	return Decrypt(s.Key, s.Auth, body)
}
