package manifest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
)

// Layout of a decoded minisign secret key (minisign's SeckeyStruct).
const (
	secretKeySize  = 158
	offKDF         = 2
	offChkAlg      = 4
	offKeyID       = 54
	offSecret      = 62
	offChecksum    = 126
	kdfNone        = 0x0000
	kdfScrypt      = 0x6353 // "Sc"
	chkAlgBlake2b  = 0x3242 // "B2"
	publicKeySize  = 2 + 8 + ed25519.PublicKeySize
	secretComment  = "untrusted comment: minisign encrypted secret key" // sic: minisign writes this for unencrypted keys too
	publicComment  = "untrusted comment: minisign public key "
	commentPrefix  = "untrusted comment:"
	maxKeyFileSize = 4096
)

// KeyID renders a minisign key id the way minisign prints it (in its public
// key files and its messages): uppercase hex without leading zeros, so that
// an admin comparing our output with minisign's sees the same string.
func KeyID(id uint64) string { return fmt.Sprintf("%X", id) }

// GenerateKey makes a new key pair and returns it as the text of standard
// minisign files: the public key file ("untrusted comment: minisign public
// key <ID>" and the base64 line) and the unencrypted secret key file, whose
// checksum is filled in so that minisign implementations that check it
// accept the key.
func GenerateKey() (pubText, secText []byte, err error) {
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: generate key: %w", err)
	}
	return MarshalPublicKey(pub), MarshalSecretKey(priv), nil
}

// MarshalPublicKey renders a public key as a minisign public key file.
func MarshalPublicKey(pub minisign.PublicKey) []byte {
	return []byte(publicComment + KeyID(pub.ID()) + "\n" + pub.String() + "\n")
}

// MarshalSecretKey renders a secret key as an unencrypted minisign secret key
// file. Unlike minisign.PrivateKey.MarshalText it fills in the checksum
// (BLAKE2b-256 of signature algorithm, key id and secret key).
func MarshalSecretKey(key minisign.PrivateKey) []byte {
	text, err := key.MarshalText()
	if err != nil {
		panic("manifest: marshal secret key: " + err.Error()) // the library never fails here
	}
	raw, err := base64.StdEncoding.DecodeString(string(trimComment(text)))
	if err != nil || len(raw) != secretKeySize {
		panic("manifest: marshal secret key: unexpected encoding from aead.dev/minisign")
	}
	sum := secretKeyChecksum(raw)
	copy(raw[offChecksum:], sum[:])
	out := []byte(secretComment + "\n" + base64.StdEncoding.EncodeToString(raw) + "\n")
	clear(raw)
	return out
}

// secretKeyChecksum is minisign's seckey_compute_chk.
func secretKeyChecksum(raw []byte) [32]byte {
	h, _ := blake2b.New256(nil)
	h.Write(raw[:2])                   // signature algorithm, "Ed"
	h.Write(raw[offKeyID:offChecksum]) // key id and the 64-byte Ed25519 secret key
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// ParseSecretKey parses an unencrypted minisign secret key file. It refuses
// encrypted keys, and keys whose checksum is set but wrong (a damaged file);
// an all-zero checksum, which minisign 0.11 -W and aead.dev/minisign write,
// is accepted.
func ParseSecretKey(data []byte) (minisign.PrivateKey, error) {
	var key minisign.PrivateKey
	body := trimComment(data)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(body)))
	if err != nil {
		return key, fmt.Errorf("not a minisign secret key: %w", err)
	}
	defer clear(raw)
	if len(raw) != secretKeySize {
		return key, fmt.Errorf("not a minisign secret key: %d bytes, want %d", len(raw), secretKeySize)
	}
	if a := binary.LittleEndian.Uint16(raw); a != minisign.EdDSA {
		return key, fmt.Errorf("not a minisign secret key: algorithm %#04x", a)
	}
	switch kdf := binary.LittleEndian.Uint16(raw[offKDF:]); kdf {
	case kdfNone:
	case kdfScrypt:
		return key, errors.New("the secret key is encrypted with a password; garrison needs an unencrypted key " +
			"(make one with `minisign -G -W`, or remove the password with `minisign -C -W -s FILE`)")
	default:
		return key, fmt.Errorf("not a minisign secret key: unknown KDF %#04x", kdf)
	}
	if c := binary.LittleEndian.Uint16(raw[offChkAlg:]); c != chkAlgBlake2b {
		return key, fmt.Errorf("not a minisign secret key: unknown checksum algorithm %#04x", c)
	}
	var zero [32]byte
	sum := secretKeyChecksum(raw)
	if chk := raw[offChecksum:]; !bytes.Equal(chk, zero[:]) && subtle.ConstantTimeCompare(chk, sum[:]) != 1 {
		return key, errors.New("the secret key's checksum does not match (damaged file?)")
	}
	secret := ed25519.PrivateKey(raw[offSecret:offChecksum])
	if !bytes.Equal(ed25519.NewKeyFromSeed(secret.Seed()), secret) {
		return key, errors.New("the secret key is inconsistent: its public half does not match its seed (damaged file?)")
	}
	if err := key.UnmarshalText(body); err != nil {
		return key, err
	}
	return key, nil
}

// LoadSecretKey reads an unencrypted minisign secret key file; see ParseSecretKey.
func LoadSecretKey(path string) (minisign.PrivateKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return minisign.PrivateKey{}, err
	}
	defer clear(data)
	key, err := ParseSecretKey(data)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("secret key %s: %w", path, err)
	}
	return key, nil
}

// PublicKeyOf returns the public half of a secret key.
func PublicKeyOf(key minisign.PrivateKey) minisign.PublicKey {
	return key.Public().(minisign.PublicKey)
}

// ParsePublicKey parses a public key given as its base64 line (what
// `minisign -P` takes and what garrisonctl's link-time trust anchor holds).
func ParsePublicKey(line string) (minisign.PublicKey, error) {
	var pub minisign.PublicKey
	line = strings.TrimSpace(line)
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return pub, fmt.Errorf("not a minisign public key: %w", err)
	}
	if len(raw) != publicKeySize {
		return pub, fmt.Errorf("not a minisign public key: %d bytes, want %d", len(raw), publicKeySize)
	}
	if err := pub.UnmarshalText([]byte(line)); err != nil {
		return pub, fmt.Errorf("not a minisign public key: %w", err)
	}
	return pub, nil
}

// ParsePublicKeyFile parses a minisign public key file: an optional
// "untrusted comment:" line, then the base64 line.
func ParsePublicKeyFile(data []byte) (minisign.PublicKey, error) {
	var lines []string
	for l := range strings.Lines(string(data)) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 0 && strings.HasPrefix(lines[0], commentPrefix) {
		lines = lines[1:]
	}
	if len(lines) != 1 {
		return minisign.PublicKey{}, errors.New("not a minisign public key file: want an untrusted comment line and one base64 line")
	}
	return ParsePublicKey(lines[0])
}

// LoadPublicKey reads a minisign public key file; see ParsePublicKeyFile.
func LoadPublicKey(path string) (minisign.PublicKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return minisign.PublicKey{}, err
	}
	pub, err := ParsePublicKeyFile(data)
	if err != nil {
		return pub, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxKeyFileSize+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if b.Len() > maxKeyFileSize {
		return nil, fmt.Errorf("%s: too large for a minisign key file", path)
	}
	return b.Bytes(), nil
}

// trimComment drops a leading "untrusted comment:" line.
func trimComment(text []byte) []byte {
	if first, rest, ok := bytes.Cut(text, []byte{'\n'}); ok && bytes.HasPrefix(first, []byte(commentPrefix)) {
		return rest
	}
	return text
}

// publicKeyBytes returns the raw Ed25519 public key; the library keeps it unexported.
func publicKeyBytes(pub minisign.PublicKey) ed25519.PublicKey {
	raw, err := base64.StdEncoding.DecodeString(pub.String())
	if err != nil || len(raw) != publicKeySize {
		panic("manifest: unexpected public key encoding from aead.dev/minisign")
	}
	return ed25519.PublicKey(raw[10:])
}
