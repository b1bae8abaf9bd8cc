package manifest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/stretchr/testify/require"
)

// newKey returns a fresh key pair through the public helpers.
func newKey(t *testing.T) (minisign.PublicKey, minisign.PrivateKey) {
	t.Helper()
	pubText, secText, err := GenerateKey()
	require.NoError(t, err)
	pub, err := ParsePublicKeyFile(pubText)
	require.NoError(t, err)
	key, err := ParseSecretKey(secText)
	require.NoError(t, err)
	return pub, key
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	pub, key := newKey(t)
	otherPub, otherKey := newKey(t)
	manifest := []byte(hexA + "  VERSION\n")
	tr := Trusted{Version: "1.2.3", SourceDateEpoch: 1700000000}
	sig := Sign(key, manifest, tr)

	got, err := Verify(pub, manifest, sig)
	require.NoError(t, err)
	require.Equal(t, tr, got)

	lines := strings.Split(string(sig), "\n")
	require.Len(t, lines, 5) // four lines and the final newline
	require.Equal(t, "untrusted comment: signature from garrison signing key "+KeyID(key.ID()), lines[0])
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	require.NoError(t, err)
	require.Equal(t, "ED", string(raw[:2]), "minisign's prehashed kind")
	require.Equal(t, "trusted comment: garrison-bundle version=1.2.3 source_date_epoch=1700000000", lines[2])

	info, err := ReadSignature(sig)
	require.NoError(t, err)
	require.Equal(t, key.ID(), info.KeyID)
	require.Equal(t, tr.String(), info.TrustedComment)

	replace := func(i int, s string) []byte {
		l := append([]string(nil), lines...)
		l[i] = s
		return []byte(strings.Join(l, "\n"))
	}
	otherComment := Sign(key, manifest, Trusted{Version: "9.9.9", SourceDateEpoch: 1})
	tests := []struct {
		name     string
		pub      minisign.PublicKey
		manifest []byte
		sig      []byte
		want     error
		msg      string
	}{
		{"altered manifest", pub, []byte(hexB + "  VERSION\n"), sig, ErrBadSignature, "data was altered"},
		{"other key's signature", pub, manifest, Sign(otherKey, manifest, tr), ErrKeyMismatch,
			"signature is from key " + KeyID(otherKey.ID()) + ", the trusted key is " + KeyID(pub.ID())},
		{"wrong trust anchor", otherPub, manifest, sig, ErrKeyMismatch, KeyID(key.ID())},
		{"altered trusted comment", pub, manifest, replace(2, "trusted comment: garrison-bundle version=6.6.6 source_date_epoch=1700000000"), ErrBadSignature, "trusted comment was altered"},
		{"trusted comment of another signature", pub, manifest, replace(3, strings.Split(string(otherComment), "\n")[3]), ErrBadSignature, "trusted comment was altered"},
		{"altered untrusted comment is fine", pub, manifest, replace(0, "untrusted comment: whatever"), nil, ""},
		{"empty", pub, manifest, nil, ErrMalformedSignature, "want 4 lines"},
		{"garbage", pub, manifest, []byte("hello\n"), ErrMalformedSignature, ""},
		{"trailing junk", pub, manifest, append(bytes.Clone(sig), "more\n"...), ErrMalformedSignature, "want 4 lines"},
		{"bad base64", pub, manifest, replace(1, "!!!!"), ErrMalformedSignature, ""},
		{"no trusted comment prefix", pub, manifest, replace(2, "garrison-bundle version=1.2.3 source_date_epoch=1700000000"), ErrMalformedSignature, ""},
		{"legacy signature", pub, manifest, legacySign(key, manifest, tr.String()), ErrMalformedSignature, "legacy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Verify(tc.pub, tc.manifest, tc.sig)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.msg)
		})
	}

	// A valid signature whose trusted comment is not a bundle's.
	_, err = Verify(pub, manifest, SignData(key, manifest, "timestamp:1 file:MANIFEST"))
	require.ErrorIs(t, err, ErrBadTrustedComment)
}

func legacySign(key minisign.PrivateKey, msg []byte, comment string) []byte {
	return minisign.SignWithComments(key, msg, comment, "legacy")
}

func TestParseTrusted(t *testing.T) {
	t.Parallel()
	for _, tr := range []Trusted{{"1.0.0", 0}, {"0.1.0-dev+g1234~rc1_x", 1700000000}, {"2", 1<<62 + 5}} {
		got, err := ParseTrusted(tr.String())
		require.NoError(t, err)
		require.Equal(t, tr, got)
	}
	for _, c := range []string{
		"", "garrison-bundle", "garrison-bundle version=1.0", "garrison-bundle source_date_epoch=1 version=1.0",
		"garrison-bundle version=1.0 source_date_epoch=", "garrison-bundle version=1.0 source_date_epoch=-1",
		"garrison-bundle version=1.0 source_date_epoch=+1", "garrison-bundle version=1.0 source_date_epoch=01",
		"garrison-bundle version=1.0 source_date_epoch=1 extra=2", "garrison-bundle version=1.0  source_date_epoch=1",
		"garrison-bundle version= source_date_epoch=1", "garrison-bundle version=../x source_date_epoch=1",
		"garrison-bundle version=a/b source_date_epoch=1", "garrison-bundle version=-1 source_date_epoch=1",
		"garrison-bundle version=1.0 source_date_epoch=99999999999999999999",
		"garrison-receipt kind=bundle-verification",
	} {
		_, err := ParseTrusted(c)
		require.ErrorIs(t, err, ErrBadTrustedComment, c)
	}
	require.Panics(t, func() { Sign(minisign.PrivateKey{}, nil, Trusted{Version: "a b"}) })
	require.Panics(t, func() { SignData(minisign.PrivateKey{}, nil, "two\nlines") })
}

// minisignBin returns the path of Debian's minisign, skipping the test when
// it is missing (failing under CI=true).
func minisignBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("minisign is not installed (apt-get install minisign): %v", err)
		}
		t.Skipf("minisign is not installed (apt-get install minisign); skipping the interoperability test")
	}
	return p
}

func runMinisign(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(minisignBin(t), args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("") // never wait for a password
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "minisign %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// Our key files and signatures work with Debian's minisign.
func TestInteropOursVerifiedByMinisign(t *testing.T) {
	t.Parallel()
	minisignBin(t)
	dir := t.TempDir()
	pubText, secText, err := GenerateKey()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "k.pub"), pubText, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "k.key"), secText, 0o600))
	key, err := LoadSecretKey(filepath.Join(dir, "k.key"))
	require.NoError(t, err)

	manifest := []byte(hexA + "  VERSION\n" + hexB + "  repo/Packages\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), manifest, 0o644))
	tr := Trusted{Version: "1.4.0", SourceDateEpoch: 1712345678}
	require.NoError(t, os.WriteFile(filepath.Join(dir, SignatureName), Sign(key, manifest, tr), 0o644))

	// -H: require the prehashed kind, as the bundle spec does.
	out := runMinisign(t, dir, "-V", "-H", "-m", FileName, "-p", "k.pub")
	require.Contains(t, out, "Signature and comment signature verified")
	require.Contains(t, out, "Trusted comment: "+tr.String()+"\n")

	// The public key also works as a -P base64 argument.
	line := strings.Split(string(pubText), "\n")[1]
	runMinisign(t, dir, "-V", "-m", FileName, "-P", line)

	// A byte changed: minisign refuses too.
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), append(manifest, '\n'), 0o644))
	cmd := exec.Command(minisignBin(t), "-V", "-m", FileName, "-p", "k.pub")
	cmd.Dir = dir
	require.Error(t, cmd.Run())

	// minisign signs with our unencrypted secret key (-W: no password), and we verify that.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data"), []byte("receipt"), 0o644))
	runMinisign(t, dir, "-S", "-W", "-s", "k.key", "-m", "data", "-t", "garrison-receipt kind=test")
	sig, err := os.ReadFile(filepath.Join(dir, "data.minisig"))
	require.NoError(t, err)
	pub, err := LoadPublicKey(filepath.Join(dir, "k.pub"))
	require.NoError(t, err)
	comment, err := VerifyData(pub, []byte("receipt"), sig)
	require.NoError(t, err)
	require.Equal(t, "garrison-receipt kind=test", comment)
}

// Keys and signatures made by Debian's minisign work with ours.
func TestInteropMinisignVerifiedByUs(t *testing.T) {
	t.Parallel()
	minisignBin(t)
	dir := t.TempDir()
	runMinisign(t, dir, "-G", "-W", "-p", "m.pub", "-s", "m.key")
	manifest := []byte(hexA + "  VERSION\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), manifest, 0o644))
	tr := Trusted{Version: "2.0.0-rc.1", SourceDateEpoch: 1}
	runMinisign(t, dir, "-S", "-s", "m.key", "-m", FileName, "-t", tr.String())

	pub, err := LoadPublicKey(filepath.Join(dir, "m.pub"))
	require.NoError(t, err)
	sig, err := os.ReadFile(filepath.Join(dir, SignatureName))
	require.NoError(t, err)
	got, err := Verify(pub, manifest, sig)
	require.NoError(t, err)
	require.Equal(t, tr, got)

	// Its unencrypted secret key (all-zero checksum) loads, and what we sign
	// with it minisign verifies with its own public key file.
	key, err := LoadSecretKey(filepath.Join(dir, "m.key"))
	require.NoError(t, err)
	require.Equal(t, pub.ID(), key.ID())
	require.True(t, pub.Equal(PublicKeyOf(key)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, SignatureName), Sign(key, manifest, tr), 0o644))
	out := runMinisign(t, dir, "-V", "-m", FileName, "-p", "m.pub")
	require.Contains(t, out, "Trusted comment: "+tr.String())

	// The public key file we would write is byte for byte minisign's.
	want, err := os.ReadFile(filepath.Join(dir, "m.pub"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(MarshalPublicKey(pub)))
}

func TestVerifyErrorsAreDistinct(t *testing.T) {
	t.Parallel()
	all := []error{ErrMalformedSignature, ErrKeyMismatch, ErrBadSignature, ErrBadTrustedComment}
	for i, a := range all {
		for j, b := range all {
			require.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

// FuzzParseTrusted: what parses renders back to exactly the input.
func FuzzParseTrusted(f *testing.F) {
	f.Add("garrison-bundle version=1.0.0 source_date_epoch=1700000000")
	f.Add("garrison-bundle version=a source_date_epoch=0")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseTrusted(s)
		if err != nil {
			return
		}
		if tr.String() != s {
			t.Fatalf("%q parsed as %+v, renders as %q", s, tr, tr.String())
		}
	})
}
