package proxy

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Keys is the proxy's VAPID key pair (RFC 8292), both halves base64url
// without padding as webpush-go and browsers' applicationServerKey take
// them. Browsers bind each subscription to the public key they subscribed
// with, so every proxy sharing a database must use the same pair.
type Keys struct {
	// PublicKey is the uncompressed P-256 point (65 bytes).
	PublicKey string `json:"public_key"`
	// PrivateKey is the 32-byte P-256 scalar. It never prints: String,
	// GoString and LogValue show only the public key.
	PrivateKey string `json:"private_key"`
}

// GenerateKeys makes a new VAPID key pair.
func GenerateKeys() (Keys, error) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return Keys{}, fmt.Errorf("vapid: generate: %w", err)
	}
	return Keys{
		PublicKey:  base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		PrivateKey: base64.RawURLEncoding.EncodeToString(priv.Bytes()),
	}, nil
}

// Validate checks that the private key is a valid P-256 scalar and that
// the public key is its public key.
func (k Keys) Validate() error {
	privBytes, err := decodeKey(k.PrivateKey)
	if err != nil {
		return fmt.Errorf("vapid: private key is not base64url: %w", err)
	}
	priv, err := ecdh.P256().NewPrivateKey(privBytes)
	if err != nil {
		return fmt.Errorf("vapid: private key: %w", err)
	}
	pub, err := decodeKey(k.PublicKey)
	if err != nil {
		return fmt.Errorf("vapid: public key is not base64url: %w", err)
	}
	if !bytes.Equal(pub, priv.PublicKey().Bytes()) {
		return errors.New("vapid: the public key does not belong to the private key")
	}
	return nil
}

// String shows the public key only.
func (k Keys) String() string { return "vapid key " + redact(k.PublicKey) }

// GoString shows the public key only, so %#v does not print the secret.
func (k Keys) GoString() string { return k.String() }

// LogValue shows the public key only.
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// decodeKey accepts base64url with or without padding, as webpush-go does.
func decodeKey(s string) ([]byte, error) {
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

// LoadOrCreateVAPIDKeys reads the VAPID key pair in the JSON file at path,
// or generates one on first start and writes it there with mode 0600
// (creating the directory with mode 0700 if needed). The file is written
// to a temporary name and linked into place, so a crash never leaves a
// half-written key and two processes starting at once agree on one pair.
// An existing file readable or writable by others than its owner and group
// is refused: the private key signs every push.
func LoadOrCreateVAPIDKeys(path string) (Keys, error) {
	if path == "" {
		return Keys{}, errors.New("vapid: no key file path")
	}
	k, err := loadKeys(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}

	k, err = GenerateKeys()
	if err != nil {
		return Keys{}, err
	}
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return Keys{}, fmt.Errorf("vapid: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, fmt.Errorf("vapid: create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".vapid-*.tmp") // mode 0600
	if err != nil {
		return Keys{}, fmt.Errorf("vapid: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return Keys{}, fmt.Errorf("vapid: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Keys{}, fmt.Errorf("vapid: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Keys{}, fmt.Errorf("vapid: write key file: %w", err)
	}
	// Link, unlike rename, fails when the name exists: if another process
	// won the race, use its key rather than replacing it under its feet.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKeys(path)
		}
		return Keys{}, fmt.Errorf("vapid: install key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable; best effort on odd filesystems
		d.Close()
	}
	return k, nil
}

func loadKeys(path string) (Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return Keys{}, fmt.Errorf("vapid: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Keys{}, fmt.Errorf("vapid: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Keys{}, fmt.Errorf("vapid: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o007 != 0 {
		return Keys{}, fmt.Errorf("vapid: key file %s has mode %04o: others may access the private key; "+
			"run chmod 600 %s (or generate a new key if it may have leaked)", path, perm, path)
	}
	var k Keys
	dec := json.NewDecoder(f)
	if err := dec.Decode(&k); err != nil {
		return Keys{}, fmt.Errorf("vapid: key file %s: %w", path, err)
	}
	if k.PublicKey == "" || k.PrivateKey == "" {
		return Keys{}, fmt.Errorf("vapid: key file %s lacks public_key or private_key", path)
	}
	if err := k.Validate(); err != nil {
		return Keys{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}
