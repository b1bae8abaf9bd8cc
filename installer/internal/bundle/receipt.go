package bundle

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/sitekey"
)

// ReceiptKind identifies a verification receipt and its schema version.
const ReceiptKind = "garrison.bundle-verification/v1"

// ReceiptComment is the trusted comment of a receipt's signature.
const ReceiptComment = "garrison-receipt kind=bundle-verification"

// Results of a verification.
const (
	ResultPass = "pass"
	ResultFail = "fail"
)

// Receipt is the machine-readable record of one verification, pass or fail:
// what was checked, against which key, what was found, when and where. It
// is written as JSON and signed with the site key.
type Receipt struct {
	Kind       string `json:"kind"`
	Result     string `json:"result"`
	VerifiedAt string `json:"verified_at"` // wall clock, UTC, RFC 3339: when the check ran
	Host       string `json:"host"`
	// GarrisonctlVersion is the verifying binary's version and revision.
	GarrisonctlVersion string `json:"garrisonctl_version"`

	Bundle BundleInfo `json:"bundle"`

	// Version and SourceDateEpoch come from the signed trusted comment and
	// are set only when the signature is valid.
	Version         string `json:"version,omitempty"`
	SourceDateEpoch *int64 `json:"source_date_epoch,omitempty"`

	TrustAnchor Anchor `json:"trust_anchor"`
	// SigningKeyID is the key id the signature names (set when the
	// signature file could be read, even if it does not verify).
	SigningKeyID   string `json:"signing_key_id,omitempty"`
	SignatureValid bool   `json:"signature_valid"`
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// ManifestEntries is the number of files MANIFEST lists.
	ManifestEntries int `json:"manifest_entries"`

	// FilesChecked and BytesChecked count the regular files of the bundle
	// directory that were hashed (MANIFEST and its signature excepted).
	FilesChecked int          `json:"files_checked"`
	BytesChecked int64        `json:"bytes_checked"`
	Files        []FileDigest `json:"files"`
	Problems     []Problem    `json:"problems"`

	// SiteKeyID is the id of the site key that signs this receipt.
	SiteKeyID string `json:"site_key_id,omitempty"`
}

// BundleInfo says which bundle was checked.
type BundleInfo struct {
	Path   string `json:"path"`
	Format string `json:"format"` // "tar" or "directory"
	// Dir is the bundle directory: garrison-<V> in the tar, or its path on disk.
	Dir string `json:"dir,omitempty"`
	// SHA256 and Size are those of the whole tar file (tar only), computed
	// in the same pass as the per-file digests.
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// Anchor is the public key a bundle was checked against.
type Anchor struct {
	KeyID  string `json:"key_id"`
	Source string `json:"source"` // "built-in" or "--pubkey <path>"
}

// FileDigest is what was found for one file of the bundle.
type FileDigest struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Kinds of problems.
const (
	KindSignature  = "signature"   // MANIFEST or its signature is missing, malformed, altered or from another key
	KindManifest   = "manifest"    // MANIFEST is signed but malformed
	KindLayout     = "layout"      // tar or directory shape: extra top-level entries, wrong directory name, unsafe names, duplicates
	KindCorrupt    = "corrupt"     // the tar is truncated or damaged, or a file could not be read
	KindMissing    = "missing"     // listed in MANIFEST, absent from the bundle
	KindExtra      = "extra"       // in the bundle, not listed in MANIFEST
	KindAltered    = "altered"     // contents differ from MANIFEST's digest
	KindNotRegular = "not_regular" // a symlink, hard link, device or other non-regular entry
	KindSkipped    = "not_checked" // files were not compared because MANIFEST cannot be trusted
)

// Problem is one reason a verification failed.
type Problem struct {
	Kind string `json:"kind"`
	// Path is relative to the bundle directory, or the tar entry name for
	// entries outside it.
	Path     string `json:"path,omitempty"`
	Expected string `json:"expected_sha256,omitempty"`
	Got      string `json:"got_sha256,omitempty"`
	Detail   string `json:"detail"`
}

// String renders a problem on one line.
func (p Problem) String() string {
	s := p.Kind
	if p.Path != "" {
		s += ": " + p.Path
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// short abbreviates a hex digest for people; receipts keep the full one.
func short(hexDigest string) string {
	if len(hexDigest) > 12 {
		return hexDigest[:12] + "…"
	}
	return hexDigest
}

// Marshal renders the receipt as indented JSON with a final newline: the
// exact bytes that are signed.
func (r *Receipt) Marshal() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic("bundle: marshal receipt: " + err.Error()) // plain strings and numbers only
	}
	return append(b, '\n')
}

// WriteReceipt signs the receipt with the site key and writes it to dir as
// verify-<UTC timestamp>-<version>.json with a .json.minisig beside it.
// It sets r.SiteKeyID before signing.
func WriteReceipt(key *sitekey.Key, dir string, r *Receipt) (path, sigPath string, err error) {
	r.SiteKeyID = key.ID()
	at, err := time.Parse(time.RFC3339, r.VerifiedAt)
	if err != nil {
		return "", "", fmt.Errorf("bundle: receipt: verified_at %q: %w", r.VerifiedAt, err)
	}
	version := r.Version
	if version == "" {
		version = "unknown" // the signature did not vouch for one; never put an unchecked string in a file name
	}
	base := "verify-" + at.UTC().Format("20060102T150405Z") + "-" + version
	return key.WriteSigned(dir, base, ".json", r.Marshal(), ReceiptComment)
}
