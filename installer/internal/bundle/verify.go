// Package bundle verifies and inspects Garrison offline bundles: the
// uncompressed tar, or the directory tree of an extracted tar or a mounted
// ISO. One minisign signature covers MANIFEST, and MANIFEST lists the SHA-256
// of every other file, so verification is: the signature first, then every
// file against MANIFEST, then nothing more and nothing less in the tree.
// Each verification produces a Receipt, signed with the site key, as
// evidence for an auditor that the check ran and what it found.
package bundle

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/garrison-chat/garrison/internal/manifest"
)

// trustAnchor is the base64 line of the Garrison signing public key, linked in
// by release builds:
//
//	-ldflags "-X github.com/garrison-chat/garrison/installer/internal/bundle.trustAnchor=<base64>"
//
// It is empty in development builds, and then --pubkey is required.
var trustAnchor string

// DefaultTrustAnchor returns the public key linked into this binary as its
// base64 line, or "" for a development build.
func DefaultTrustAnchor() string { return trustAnchor }

// ErrNoTrustAnchor is returned by LoadAnchor when there is no key to trust.
var ErrNoTrustAnchor = errors.New("no trust anchor: this garrisonctl was built without the Garrison signing key; " +
	"pass --pubkey FILE with the garrison-signing.pub you received through a trusted channel " +
	"(not the copy inside the bundle, which proves nothing)")

// AnchorBuiltIn is Anchor.Source for the key linked into the binary.
const AnchorBuiltIn = "built-in"

// LoadAnchor returns the key that bundles are checked against: the minisign
// public key file pubkeyPath if given, else the built-in trust anchor.
func LoadAnchor(pubkeyPath string) (minisign.PublicKey, Anchor, error) {
	if pubkeyPath != "" {
		pub, err := manifest.LoadPublicKey(pubkeyPath)
		if err != nil {
			return pub, Anchor{}, fmt.Errorf("--pubkey: %w", err)
		}
		if abs, err := filepath.Abs(pubkeyPath); err == nil {
			pubkeyPath = abs // receipts outlive the working directory
		}
		return pub, Anchor{KeyID: manifest.KeyID(pub.ID()), Source: "--pubkey " + pubkeyPath}, nil
	}
	if trustAnchor == "" {
		return minisign.PublicKey{}, Anchor{}, ErrNoTrustAnchor
	}
	pub, err := manifest.ParsePublicKey(trustAnchor)
	if err != nil {
		return pub, Anchor{}, fmt.Errorf("the built-in trust anchor is damaged (a broken build?): %w", err)
	}
	return pub, Anchor{KeyID: manifest.KeyID(pub.ID()), Source: AnchorBuiltIn}, nil
}

// VerifyOptions are the inputs of Verify besides the bundle path.
type VerifyOptions struct {
	PublicKey minisign.PublicKey // the trust anchor
	Anchor    Anchor             // how the anchor was chosen, for the receipt
	// Progress, if set, is called as bytes are read.
	Progress    func(done, total int64)
	Now         func() time.Time // the clock for verified_at; time.Now if nil
	Host        string
	ToolVersion string
}

// Limits on what is held in memory while streaming.
const (
	maxManifestSize  = 64 << 20
	maxSignatureSize = 64 << 10
)

// Verify checks the bundle at path (a tar file or a directory) and returns
// the receipt, whose Result says whether it passed and whose Problems name
// everything that is wrong. It returns an error only when it could not
// check at all: the path is missing or not a bundle, or ctx was cancelled.
// A tar is read once, start to end, with bounded memory.
func Verify(ctx context.Context, path string, opts VerifyOptions) (*Receipt, error) {
	src, err := locate(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	r := &Receipt{
		Kind:               ReceiptKind,
		Host:               opts.Host,
		GarrisonctlVersion: opts.ToolVersion,
		Bundle:             BundleInfo{Path: src.path, Format: src.format},
		TrustAnchor:        opts.Anchor,
		Files:              []FileDigest{},
		Problems:           []Problem{},
	}
	c := &checker{ctx: ctx, progress: opts.Progress, tar: src.format == FormatTar, trees: map[string]*tree{}}
	switch src.format {
	case FormatTar:
		err = c.readTar(src.path, r)
	default:
		r.Bundle.Dir = src.dir
		err = c.readDir(src.dir, opts.PublicKey)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: verify %s: %w", path, err)
	}
	c.finish(opts.PublicKey, r)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	r.VerifiedAt = now().UTC().Format(time.RFC3339)
	return r, nil
}

// checker collects what a walk over a bundle finds.
type checker struct {
	ctx         context.Context
	progress    func(done, total int64)
	done, total int64
	tar         bool
	tops        []string // top-level directories in the order first seen
	trees       map[string]*tree
	problems    []Problem // found outside any top-level directory
}

// tree is what was found under one top-level directory.
type tree struct {
	entries  int
	files    map[string]fileResult
	seen     map[string]bool
	dirs     map[string]bool
	bad      map[string]bool // reported as not regular or unreadable; not "missing" too
	problems []Problem
	manifest []byte
	sig      []byte
	hasMan   bool
	hasSig   bool
}

type fileResult struct {
	sum  [32]byte
	size int64
}

func (c *checker) tree(top string) *tree {
	t, ok := c.trees[top]
	if !ok {
		t = &tree{files: map[string]fileResult{}, seen: map[string]bool{}, dirs: map[string]bool{}, bad: map[string]bool{}}
		c.trees[top] = t
		c.tops = append(c.tops, top)
	}
	return t
}

func (c *checker) readTar(path string, r *Receipt) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil {
		c.total = info.Size()
	}
	whole := sha256.New()
	counted := &countingReader{ctx: c.ctx, r: f, done: &c.done, total: c.total, progress: c.progress}
	stream := io.TeeReader(bufio.NewReaderSize(counted, 1<<20), whole)

	err = walkTar(stream, c.visit)
	if cerr := c.ctx.Err(); cerr != nil {
		return cerr
	}
	var corrupt *errCorrupt
	switch {
	case errors.As(err, &corrupt):
		c.problems = append(c.problems, Problem{Kind: KindCorrupt, Detail: corrupt.Error()})
	case err != nil:
		return err
	}
	// The digest of the whole file covers the end-of-archive padding too.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return err
	}
	r.Bundle.SHA256 = hex.EncodeToString(whole.Sum(nil))
	r.Bundle.Size = c.done
	return nil
}

// readDir checks the signature before hashing anything: when MANIFEST cannot
// be trusted there is no point reading gigabytes from a DVD.
func (c *checker) readDir(dir string, pub minisign.PublicKey) error {
	top := filepath.Base(dir)
	t := c.tree(top)
	for _, name := range []string{manifest.FileName, manifest.SignatureName} {
		p := filepath.Join(dir, name)
		info, err := os.Lstat(p)
		if err != nil {
			continue // missing: finish says so
		}
		e := entry{name: top + "/" + name, size: info.Size()}
		if info.Mode().IsRegular() {
			e.regular = true
			e.open = func() (io.ReadCloser, error) { return openRegular(p) }
		} else {
			e.typ = describe(info.Mode().Type(), p)
		}
		if err := c.visit(&e); err != nil {
			return err
		}
	}
	if t.hasMan && t.hasSig {
		if _, err := manifest.Verify(pub, t.manifest, t.sig); err != nil && !errors.Is(err, manifest.ErrBadTrustedComment) {
			return nil // finish reports the signature problem and that files were not checked
		}
	} else {
		return nil
	}
	if c.progress != nil {
		c.total = dirSize(dir)
	}
	return walkDir(c.ctx, dir, func(e *entry) error {
		if e.name == top+"/"+manifest.FileName || e.name == top+"/"+manifest.SignatureName {
			return nil // read above
		}
		return c.visit(e)
	})
}

func (c *checker) visit(e *entry) error {
	name := strings.TrimSuffix(strings.TrimPrefix(e.name, "./"), "/")
	if name == "" || name == "." {
		return nil
	}
	if err := manifest.ValidPath(name); err != nil {
		c.problems = append(c.problems, Problem{Kind: KindLayout, Path: e.name, Detail: "unsafe entry name: " + err.Error()})
		return nil
	}
	top, rel, _ := strings.Cut(name, "/")
	if rel == "" && !e.dir {
		c.problems = append(c.problems, Problem{Kind: KindLayout, Path: name,
			Detail: "outside the bundle directory (the tar must hold only garrison-<version>/)"})
		return nil
	}
	t := c.tree(top)
	if rel == "" {
		return nil
	}
	if t.seen[rel] {
		t.bad[rel] = true
		t.problems = append(t.problems, Problem{Kind: KindLayout, Path: rel,
			Detail: "appears more than once in the tar (extraction would keep the last copy)"})
		return nil
	}
	t.seen[rel] = true
	t.entries++
	switch {
	case e.dir:
		t.dirs[rel] = true
		return nil
	case !e.regular:
		t.bad[rel] = true
		t.problems = append(t.problems, Problem{Kind: KindNotRegular, Path: rel,
			Detail: e.typ + "; a bundle holds only directories and regular files"})
		return nil
	}

	rc, err := e.open()
	if err != nil {
		return c.unreadable(t, rel, err)
	}
	defer rc.Close()
	var in io.Reader = rc
	if !c.tar { // a tar is counted as a whole
		in = &countingReader{ctx: c.ctx, r: rc, done: &c.done, total: c.total, progress: c.progress}
	}
	switch rel {
	case manifest.FileName, manifest.SignatureName:
		limit := int64(maxManifestSize)
		if rel == manifest.SignatureName {
			limit = maxSignatureSize
		}
		data, err := io.ReadAll(io.LimitReader(in, limit+1))
		if err != nil {
			return c.unreadable(t, rel, err)
		}
		if int64(len(data)) > limit {
			t.bad[rel] = true
			t.problems = append(t.problems, Problem{Kind: KindSignature, Path: rel, Detail: fmt.Sprintf("larger than %d bytes; not a bundle's", limit)})
			return nil // a tar reader skips the rest of the entry by itself
		}
		if rel == manifest.FileName {
			t.manifest, t.hasMan = data, true
		} else {
			t.sig, t.hasSig = data, true
		}
		return nil
	}
	h := sha256.New()
	n, err := io.Copy(h, in)
	if err != nil {
		return c.unreadable(t, rel, err)
	}
	var fr fileResult
	h.Sum(fr.sum[:0])
	fr.size = n
	t.files[rel] = fr
	return nil
}

// unreadable records a file that could not be read. In a tar, a read error
// means the stream is damaged: it ends the walk.
func (c *checker) unreadable(t *tree, rel string, err error) error {
	if c.ctx.Err() != nil {
		return err
	}
	t.bad[rel] = true
	if c.tar {
		t.problems = append(t.problems, Problem{Kind: KindCorrupt, Path: rel, Detail: "incomplete: the tar breaks off inside this file"})
		return err
	}
	t.problems = append(t.problems, Problem{Kind: KindCorrupt, Path: rel, Detail: "cannot read: " + err.Error()})
	return nil
}

// finish compares what was found with the signed MANIFEST and fills in r.
func (c *checker) finish(pub minisign.PublicKey, r *Receipt) {
	general := c.problems
	var perFile []Problem
	defer func() {
		slices.SortStableFunc(perFile, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
		r.Problems = append(append(r.Problems, general...), perFile...)
		r.Result = ResultPass
		if len(r.Problems) > 0 {
			r.Result = ResultFail
		}
	}()

	if len(c.tops) == 0 {
		general = append(general, Problem{Kind: KindLayout, Detail: "no garrison-<version>/ directory: not a Garrison bundle, or an empty one"})
		return
	}
	main := c.tops[0]
	var withManifest []string
	for _, top := range c.tops {
		if c.trees[top].hasMan {
			withManifest = append(withManifest, top)
		}
	}
	if len(withManifest) == 1 {
		main = withManifest[0]
	}
	for _, top := range c.tops {
		if top != main {
			general = append(general, Problem{Kind: KindLayout, Path: top + "/",
				Detail: fmt.Sprintf("a second top-level directory (%d entries); the tar must hold only garrison-<version>/, and only %s/ was checked", c.trees[top].entries, main)})
		}
	}
	if c.tar {
		r.Bundle.Dir = main
	}
	t := c.trees[main]
	perFile = append(perFile, t.problems...)
	for _, p := range sortedKeys(t.files) {
		f := t.files[p]
		r.Files = append(r.Files, FileDigest{Path: p, SHA256: hex.EncodeToString(f.sum[:]), Size: f.size})
		r.FilesChecked++
		r.BytesChecked += f.size
	}

	// The signature first: nothing in MANIFEST counts until it verifies.
	for _, name := range []string{manifest.FileName, manifest.SignatureName} {
		if !t.seen[name] {
			general = append(general, Problem{Kind: KindSignature, Path: name, Detail: "missing; the bundle cannot be verified"})
		}
	}
	authentic := false
	if t.hasMan && t.hasSig {
		sum := sha256.Sum256(t.manifest)
		r.ManifestSHA256 = hex.EncodeToString(sum[:])
		if info, err := manifest.ReadSignature(t.sig); err == nil {
			r.SigningKeyID = manifest.KeyID(info.KeyID)
		}
		trusted, err := manifest.Verify(pub, t.manifest, t.sig)
		authentic = err == nil || errors.Is(err, manifest.ErrBadTrustedComment)
		r.SignatureValid = authentic
		if err != nil {
			general = append(general, Problem{Kind: KindSignature, Path: manifest.SignatureName, Detail: err.Error()})
		} else {
			r.Version = trusted.Version
			r.SourceDateEpoch = &trusted.SourceDateEpoch
			if want := "garrison-" + trusted.Version; main != want {
				general = append(general, Problem{Kind: KindLayout, Path: main + "/",
					Detail: fmt.Sprintf("the bundle directory must be %s/ for the signed version %s", want, trusted.Version)})
			}
		}
	}
	if !authentic {
		what := "files were hashed but not compared with MANIFEST"
		if !c.tar {
			what = "files were not checked"
		}
		general = append(general, Problem{Kind: KindSkipped, Detail: what + ": MANIFEST cannot be trusted"})
		return
	}

	entries, err := manifest.Parse(t.manifest)
	if err != nil {
		general = append(general, Problem{Kind: KindManifest, Path: manifest.FileName, Detail: err.Error()})
		return
	}
	r.ManifestEntries = len(entries)
	listed := make(map[string]bool, len(entries))
	for _, e := range entries {
		listed[e.Path] = true
		got, ok := t.files[e.Path]
		switch {
		case e.Path == manifest.FileName || e.Path == manifest.SignatureName:
			general = append(general, Problem{Kind: KindManifest, Path: manifest.FileName, Detail: "lists " + e.Path + ", which it cannot cover"})
		case ok && got.sum == e.SHA256:
		case ok:
			want, have := hex.EncodeToString(e.SHA256[:]), hex.EncodeToString(got.sum[:])
			perFile = append(perFile, Problem{Kind: KindAltered, Path: e.Path, Expected: want, Got: have,
				Detail: fmt.Sprintf("sha256 expected %s, got %s", short(want), short(have))})
		case t.bad[e.Path]:
			// already reported as not regular, duplicated or unreadable
		case t.dirs[e.Path]:
			perFile = append(perFile, Problem{Kind: KindMissing, Path: e.Path, Detail: "listed in MANIFEST as a file, but is a directory"})
		default:
			perFile = append(perFile, Problem{Kind: KindMissing, Path: e.Path, Detail: "listed in MANIFEST, not in the bundle"})
		}
	}
	for _, p := range sortedKeys(t.files) {
		if !listed[p] {
			perFile = append(perFile, Problem{Kind: KindExtra, Path: p, Detail: "not listed in MANIFEST"})
		}
	}
}
