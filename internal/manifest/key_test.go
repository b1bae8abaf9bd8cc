package manifest

import (
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rewriteSecret decodes a secret key file, lets f change the raw bytes and
// encodes it again.
func rewriteSecret(t *testing.T, secText []byte, f func(raw []byte)) []byte {
	t.Helper()
	lines := strings.Split(string(secText), "\n")
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	require.NoError(t, err)
	f(raw)
	return []byte(lines[0] + "\n" + base64.StdEncoding.EncodeToString(raw) + "\n")
}

// minisign prints key ids with "%" PRIX64: no zero padding. One key in
// sixteen has a leading zero nibble, so this is pinned, not left to chance.
func TestKeyIDLikeMinisign(t *testing.T) {
	t.Parallel()
	require.Equal(t, "C326DA6EADB3F95", KeyID(0x0C326DA6EADB3F95))
	require.Equal(t, "FEDCBA9876543210", KeyID(0xFEDCBA9876543210))
	require.Equal(t, "1", KeyID(1))
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	pubText, secText, err := GenerateKey()
	require.NoError(t, err)

	pub, err := ParsePublicKeyFile(pubText)
	require.NoError(t, err)
	require.Equal(t, "untrusted comment: minisign public key "+KeyID(pub.ID())+"\n"+pub.String()+"\n", string(pubText))

	require.True(t, strings.HasPrefix(string(secText), "untrusted comment: minisign encrypted secret key\n"))
	key, err := ParseSecretKey(secText)
	require.NoError(t, err)
	require.Equal(t, pub.ID(), key.ID())
	require.True(t, pub.Equal(PublicKeyOf(key)))
	require.Equal(t, string(secText), string(MarshalSecretKey(key)))

	// The checksum is filled in (minisign's seckey_compute_chk), unlike the library's MarshalText.
	rewriteSecret(t, secText, func(raw []byte) {
		sum := secretKeyChecksum(raw)
		require.Equal(t, sum[:], raw[offChecksum:])
		require.NotEqual(t, make([]byte, 32), raw[offChecksum:])
	})
	lib, err := key.MarshalText()
	require.NoError(t, err)
	rewriteSecret(t, lib, func(raw []byte) { require.Equal(t, make([]byte, 32), raw[offChecksum:]) })
}

func TestParseSecretKeyRejects(t *testing.T) {
	t.Parallel()
	_, secText, err := GenerateKey()
	require.NoError(t, err)
	tests := []struct {
		name string
		text []byte
		want string
	}{
		{"encrypted", rewriteSecret(t, secText, func(raw []byte) { binary.LittleEndian.PutUint16(raw[offKDF:], kdfScrypt) }), "encrypted with a password"},
		{"wrong checksum", rewriteSecret(t, secText, func(raw []byte) { raw[offChecksum] ^= 1 }), "checksum does not match"},
		{"damaged secret", rewriteSecret(t, secText, func(raw []byte) { raw[offSecret+40] ^= 1 }), "checksum does not match"},
		{"damaged secret, no checksum", rewriteSecret(t, secText, func(raw []byte) {
			raw[offSecret+40] ^= 1
			clear(raw[offChecksum:])
		}), "inconsistent"},
		{"wrong algorithm", rewriteSecret(t, secText, func(raw []byte) { raw[0] = 'X' }), "algorithm"},
		{"unknown kdf", rewriteSecret(t, secText, func(raw []byte) { raw[offKDF] = 7 }), "unknown KDF"},
		{"unknown checksum algorithm", rewriteSecret(t, secText, func(raw []byte) { raw[offChkAlg] = 7 }), "checksum algorithm"},
		{"truncated", []byte("untrusted comment: x\nRWQAAEIy\n"), "bytes, want 158"},
		{"not base64", []byte("untrusted comment: x\n!!!\n"), "not a minisign secret key"},
		{"a public key", func() []byte { p, _, _ := GenerateKey(); return p }(), "not a minisign secret key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseSecretKey(tc.text)
			require.ErrorContains(t, err, tc.want)
		})
	}

	// Zero checksum: accepted (minisign 0.11 -G -W writes keys like this).
	zero := rewriteSecret(t, secText, func(raw []byte) { clear(raw[offChecksum:]) })
	_, err = ParseSecretKey(zero)
	require.NoError(t, err)
}

func TestLoadKeysNameTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pubText, secText, err := GenerateKey()
	require.NoError(t, err)
	enc := rewriteSecret(t, secText, func(raw []byte) { binary.LittleEndian.PutUint16(raw[offKDF:], kdfScrypt) })
	encPath := filepath.Join(dir, "enc.key")
	require.NoError(t, os.WriteFile(encPath, enc, 0o600))
	_, err = LoadSecretKey(encPath)
	require.ErrorContains(t, err, "secret key "+encPath+": the secret key is encrypted")

	_, err = LoadSecretKey(filepath.Join(dir, "missing.key"))
	require.ErrorContains(t, err, "missing.key")

	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, 10_000), 0o600))
	_, err = LoadSecretKey(big)
	require.ErrorContains(t, err, big+": too large")

	pubPath := filepath.Join(dir, "k.pub")
	require.NoError(t, os.WriteFile(pubPath, pubText, 0o644))
	_, err = LoadPublicKey(pubPath)
	require.NoError(t, err)

	bad := filepath.Join(dir, "bad.pub")
	require.NoError(t, os.WriteFile(bad, []byte("untrusted comment: x\nAAAA\nBBBB\n"), 0o644))
	_, err = LoadPublicKey(bad)
	require.ErrorContains(t, err, "public key "+bad+": not a minisign public key file")
}

func TestParsePublicKey(t *testing.T) {
	t.Parallel()
	pubText, _, err := GenerateKey()
	require.NoError(t, err)
	line := strings.Split(string(pubText), "\n")[1]
	pub, err := ParsePublicKey(line)
	require.NoError(t, err)
	require.Equal(t, line, pub.String())
	_, err = ParsePublicKey("  " + line + "\n")
	require.NoError(t, err)

	// Without a comment line, and with CRLF line ends.
	_, err = ParsePublicKeyFile([]byte(line))
	require.NoError(t, err)
	_, err = ParsePublicKeyFile([]byte(strings.ReplaceAll(string(pubText), "\n", "\r\n")))
	require.NoError(t, err)

	for _, s := range []string{"", "RWQ", "!!!!", base64.StdEncoding.EncodeToString(make([]byte, 42)), line[:len(line)-4]} {
		_, err := ParsePublicKey(s)
		require.Error(t, err, s)
	}
}
