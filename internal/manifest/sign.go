package manifest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
)

// Errors of Verify and VerifyData. Each is wrapped with the details
// (which key, which line), so test with errors.Is.
var (
	// ErrMalformedSignature: the signature file is not a minisign signature
	// of the prehashed ("ED") kind.
	ErrMalformedSignature = errors.New("signature file is malformed")
	// ErrKeyMismatch: the signature was made by a key other than the trusted one.
	ErrKeyMismatch = errors.New("signed by a different key")
	// ErrBadSignature: the signature does not match the signed data or its
	// trusted comment (one of them was altered).
	ErrBadSignature = errors.New("signature is invalid")
	// ErrBadTrustedComment: the signature is valid, but its trusted comment
	// is not the one expected.
	ErrBadTrustedComment = errors.New("trusted comment is malformed")
)

// Trusted is what a bundle signature vouches for besides the manifest
// itself: the trusted comment "garrison-bundle version=<V> source_date_epoch=<N>".
type Trusted struct {
	Version         string
	SourceDateEpoch int64
}

const trustedPrefix = "garrison-bundle "

// String renders t as the trusted comment.
func (t Trusted) String() string {
	return trustedPrefix + "version=" + t.Version + " source_date_epoch=" + strconv.FormatInt(t.SourceDateEpoch, 10)
}

// Validate checks that t can be rendered and parsed back: a version made of
// letters, digits and ".+~_-" (it names the bundle directory garrison-<V>),
// and a non-negative epoch.
func (t Trusted) Validate() error {
	if err := ValidVersion(t.Version); err != nil {
		return err
	}
	if t.SourceDateEpoch < 0 {
		return fmt.Errorf("source_date_epoch %d is negative", t.SourceDateEpoch)
	}
	return nil
}

// ValidVersion checks a bundle version: 1 to 128 characters from
// [0-9A-Za-z.+~_-], starting with a letter or digit.
func ValidVersion(v string) error {
	if v == "" || len(v) > 128 {
		return fmt.Errorf("version %q: want 1 to 128 characters", v)
	}
	for i, c := range []byte(v) {
		alnum := '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alnum && (i == 0 || !strings.ContainsRune(".+~_-", rune(c))) {
			return fmt.Errorf("version %q: want letters, digits and .+~_- only, starting with a letter or digit", v)
		}
	}
	return nil
}

// ParseTrusted parses a bundle's trusted comment.
func ParseTrusted(comment string) (Trusted, error) {
	var t Trusted
	rest, ok := strings.CutPrefix(comment, trustedPrefix)
	if !ok {
		return t, fmt.Errorf("%w: %q does not start with %q", ErrBadTrustedComment, comment, trustedPrefix)
	}
	fields := strings.Split(rest, " ")
	if len(fields) != 2 {
		return t, fmt.Errorf("%w: %q: want \"version=<V> source_date_epoch=<N>\"", ErrBadTrustedComment, comment)
	}
	v, ok1 := strings.CutPrefix(fields[0], "version=")
	e, ok2 := strings.CutPrefix(fields[1], "source_date_epoch=")
	if !ok1 || !ok2 {
		return t, fmt.Errorf("%w: %q: want \"version=<V> source_date_epoch=<N>\"", ErrBadTrustedComment, comment)
	}
	t.Version = v
	epoch, err := strconv.ParseInt(e, 10, 64)
	if err != nil || strconv.FormatInt(epoch, 10) != e {
		return t, fmt.Errorf("%w: source_date_epoch %q is not a decimal integer", ErrBadTrustedComment, e)
	}
	t.SourceDateEpoch = epoch
	if err := t.Validate(); err != nil {
		return t, fmt.Errorf("%w: %w", ErrBadTrustedComment, err)
	}
	return t, nil
}

// Sign signs a manifest with the bundle's trusted comment. The signature is
// minisign's prehashed kind, which Debian's `minisign -V` verifies. It panics
// if t does not Validate: a packaging tool must not ship a bundle garrisonctl
// would reject.
func Sign(key minisign.PrivateKey, manifest []byte, t Trusted) []byte {
	if err := t.Validate(); err != nil {
		panic("manifest: sign: " + err.Error())
	}
	return SignData(key, manifest, t.String())
}

// SignData signs any data (a receipt, say) with a trusted comment, in the
// same prehashed minisign format. The untrusted comment names the key id.
// It panics if trustedComment has a line break, which would break the format.
func SignData(key minisign.PrivateKey, data []byte, trustedComment string) []byte {
	if strings.ContainsAny(trustedComment, "\r\n") {
		panic("manifest: sign: trusted comment has a line break")
	}
	r := minisign.NewReader(bytes.NewReader(data))
	_, _ = io.Copy(io.Discard, r) // reading from memory cannot fail
	return r.SignWithComments(key, trustedComment, "signature from garrison signing key "+KeyID(key.ID()))
}

// Verify checks a bundle's manifest signature against the trusted public key
// and returns the trusted comment's fields. Errors wrap ErrMalformedSignature,
// ErrKeyMismatch, ErrBadSignature or ErrBadTrustedComment.
func Verify(pub minisign.PublicKey, manifest, sig []byte) (Trusted, error) {
	comment, err := VerifyData(pub, manifest, sig)
	if err != nil {
		return Trusted{}, err
	}
	return ParseTrusted(comment)
}

// SignatureInfo is what a signature file says about itself before it is
// verified: nothing here can be trusted until VerifyData succeeds.
type SignatureInfo struct {
	KeyID          uint64
	TrustedComment string
}

// ReadSignature parses a minisign signature file without verifying it, for
// showing who claims to have signed. It accepts only the prehashed kind.
func ReadSignature(sig []byte) (SignatureInfo, error) {
	s, err := parseSignature(sig)
	if err != nil {
		return SignatureInfo{}, err
	}
	return SignatureInfo{KeyID: s.KeyID, TrustedComment: s.TrustedComment}, nil
}

func parseSignature(sig []byte) (minisign.Signature, error) {
	var s minisign.Signature
	// The library splits on the first three newlines and decodes the rest as
	// base64; insist on exactly four lines so trailing junk is not ignored.
	if lines := strings.Split(strings.TrimSuffix(string(sig), "\n"), "\n"); len(lines) != 4 {
		return s, fmt.Errorf("%w: want 4 lines, have %d", ErrMalformedSignature, len(lines))
	}
	if err := s.UnmarshalText(sig); err != nil {
		return s, fmt.Errorf("%w: %w", ErrMalformedSignature, err)
	}
	if s.Algorithm != minisign.HashEdDSA {
		return s, fmt.Errorf("%w: legacy (not prehashed) signature; want minisign's default prehashed \"ED\" kind", ErrMalformedSignature)
	}
	return s, nil
}

// VerifyData checks a minisign signature of data against the trusted public
// key and returns its trusted comment. The message signature and the global
// signature over the trusted comment are both checked.
func VerifyData(pub minisign.PublicKey, data, sig []byte) (string, error) {
	s, err := parseSignature(sig)
	if err != nil {
		return "", err
	}
	if s.KeyID != pub.ID() {
		return "", fmt.Errorf("%w: signature is from key %s, the trusted key is %s", ErrKeyMismatch, KeyID(s.KeyID), KeyID(pub.ID()))
	}
	raw := publicKeyBytes(pub)
	// minisign.Reader.Verify checks both signatures (the message's and the
	// global one over the trusted comment) but cannot say which one failed;
	// check them one by one first, then let the library have the final word.
	prehash := blake2b.Sum512(data)
	if !ed25519.Verify(raw, prehash[:], s.Signature[:]) {
		return "", fmt.Errorf("%w: the signed data was altered or the signature belongs to other data", ErrBadSignature)
	}
	global := make([]byte, 0, len(s.Signature)+len(s.TrustedComment))
	global = append(append(global, s.Signature[:]...), s.TrustedComment...)
	if !ed25519.Verify(raw, global, s.CommentSignature[:]) {
		return "", fmt.Errorf("%w: the trusted comment was altered", ErrBadSignature)
	}
	digest := minisign.NewReader(bytes.NewReader(data))
	_, _ = io.Copy(io.Discard, digest)
	if !digest.Verify(pub, sig) {
		return "", fmt.Errorf("%w: rejected by minisign", ErrBadSignature)
	}
	return s.TrustedComment, nil
}
