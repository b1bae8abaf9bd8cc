package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"
	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/garrison-chat/garrison/internal/debcontrol"
	"github.com/garrison-chat/garrison/internal/manifest"
)

// Signature states in an Inspection.
const (
	SignatureValid      = "valid"
	SignatureInvalid    = "invalid"
	SignatureNotChecked = "not checked"
)

// Inspection describes a bundle without verifying its files: what it claims
// to be, who signed it, what it holds.
type Inspection struct {
	Bundle BundleInfo `json:"bundle"`
	// Version and SourceDateEpoch come from the trusted comment of the
	// signature; they are only claims unless Signature is "valid".
	Version         string `json:"version,omitempty"`
	SourceDateEpoch *int64 `json:"source_date_epoch,omitempty"`
	VersionFile     string `json:"version_file,omitempty"` // contents of VERSION
	SignedBy        string `json:"signed_by_key_id,omitempty"`
	// Signature is whether MANIFEST's signature verifies with the trust
	// anchor: "valid", "invalid" or "not checked" (no anchor). The files
	// themselves are not checked; that is what verify does.
	Signature       string   `json:"signature"`
	SignatureDetail string   `json:"signature_detail,omitempty"`
	TrustAnchor     *Anchor  `json:"trust_anchor,omitempty"`
	Files           int      `json:"files"`
	Bytes           int64    `json:"bytes"`
	Contents        []Part   `json:"contents"`
	Packages        []Pkg    `json:"packages"`
	SBOMs           []SBOM   `json:"sboms"`
	Notes           []string `json:"notes"` // what could not be read or looks wrong
}

// Part is one top-level directory of the bundle ("." for the files at the top).
type Part struct {
	Name  string `json:"name"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

// Pkg is a package of the bundle's apt repository (repo/Packages).
type Pkg struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
}

// SBOM summarises one CycloneDX file of sbom/.
type SBOM struct {
	File        string         `json:"file"`
	SpecVersion string         `json:"spec_version"`
	Subject     string         `json:"subject,omitempty"` // metadata.component
	Components  int            `json:"components"`        // nested ones included
	ByType      map[string]int `json:"by_type"`
	Debs        int            `json:"deb_components"` // purl pkg:deb/...
	// Applications lists each application component and how many Go modules
	// it contains or depends on.
	Applications []App `json:"applications"`
}

// App is an application component of an SBOM.
type App struct {
	Name      string `json:"name"`
	Version   string `json:"version,omitempty"`
	GoModules int    `json:"go_modules"`
}

// InspectOptions are the inputs of Inspect besides the bundle path.
type InspectOptions struct {
	// PublicKey is the trust anchor; nil means none, and the signature is
	// reported as not checked.
	PublicKey *minisign.PublicKey
	Anchor    Anchor
}

// Limits on what inspect decodes from a bundle.
const (
	// A bundle's index is about 150 KB and its SBOM about 1 MB; the caps
	// bound what a crafted bundle can make inspect read and hold.
	maxPackagesSize = 32 << 20
	maxPackages     = 100_000
	maxSBOMSize     = 64 << 20
	maxSBOMSteps    = 2_000_000
)

// Inspect reads the bundle at path (a tar, streamed, or a directory) and
// describes it. It fails only when path is not a bundle at all; anything
// unreadable inside is a note.
func Inspect(ctx context.Context, path string, opts InspectOptions) (*Inspection, error) {
	src, err := locate(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	in := &inspector{ctx: ctx, tar: src.format == FormatTar, tops: map[string]*inspected{}}
	switch src.format {
	case FormatTar:
		var f *os.File
		if f, err = os.Open(src.path); err == nil {
			// The tar reader seeks over the contents it is not asked to read.
			err = walkTar(&ctxReadSeeker{ctx: ctx, f: f}, in.visit)
			f.Close()
		}
	default:
		err = walkDir(ctx, src.dir, in.visit)
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	var corrupt *errCorrupt
	if err != nil && !errors.As(err, &corrupt) {
		return nil, fmt.Errorf("bundle: inspect %s: %w", path, err)
	}
	out := in.result(src, opts)
	if corrupt != nil {
		out.Notes = append(out.Notes, corrupt.Error())
	}
	return out, nil
}

type inspector struct {
	ctx   context.Context
	tar   bool
	order []string
	tops  map[string]*inspected
	notes []string
}

type inspected struct {
	parts    map[string]*Part
	files    int
	bytes    int64
	manifest []byte
	sig      []byte
	version  string
	packages []Pkg
	havePkgs bool
	sboms    []SBOM
	notes    []string
}

func (in *inspector) visit(e *entry) error {
	name := strings.TrimSuffix(strings.TrimPrefix(e.name, "./"), "/")
	if name == "" || name == "." {
		return nil
	}
	if err := manifest.ValidPath(name); err != nil {
		in.notes = append(in.notes, fmt.Sprintf("unsafe entry name %q: %v", e.name, err))
		return nil
	}
	top, rel, _ := strings.Cut(name, "/")
	if rel == "" && !e.dir {
		in.notes = append(in.notes, fmt.Sprintf("%s: a file outside the bundle directory", name))
		return nil
	}
	t, ok := in.tops[top]
	if !ok {
		t = &inspected{parts: map[string]*Part{}}
		in.tops[top] = t
		in.order = append(in.order, top)
	}
	if rel == "" || e.dir {
		return nil
	}
	if !e.regular {
		t.notes = append(t.notes, fmt.Sprintf("%s: %s (not a regular file)", rel, e.typ))
		return nil
	}
	partName, _, nested := strings.Cut(rel, "/")
	if !nested {
		partName = "."
	}
	p, ok := t.parts[partName]
	if !ok {
		p = &Part{Name: partName}
		t.parts[partName] = p
	}
	p.Files++
	p.Bytes += e.size
	t.files++
	t.bytes += e.size

	// Errors of the stream itself (a damaged tar, a failing disk) end the
	// walk; a file that does not parse is only a note.
	var stream error
	open := func() (io.Reader, func(), error) {
		rc, err := e.open()
		if err != nil {
			return nil, nil, err
		}
		return &recordingReader{r: rc, err: &stream}, func() { rc.Close() }, nil
	}
	read := func(limit int64) ([]byte, error) {
		r, done, err := open()
		if err != nil {
			return nil, err
		}
		defer done()
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err == nil && int64(len(data)) > limit {
			err = fmt.Errorf("larger than %d bytes", limit)
		}
		return data, err
	}
	var err error
	switch {
	case rel == manifest.FileName:
		t.manifest, err = read(maxManifestSize)
	case rel == manifest.SignatureName:
		t.sig, err = read(maxSignatureSize)
	case rel == "VERSION":
		var v []byte
		v, err = read(4096)
		t.version = strings.TrimSpace(string(v))
	case rel == "repo/Packages":
		r, done, oerr := open()
		if err = oerr; err == nil {
			t.packages, err = ParsePackages(capped(r, maxPackagesSize))
			t.havePkgs = err == nil
			done()
		}
	case path.Dir(rel) == "sbom" && strings.HasSuffix(rel, ".cdx.json"):
		r, done, oerr := open()
		if err = oerr; err == nil {
			var s SBOM
			s, err = SummarizeSBOM(capped(r, maxSBOMSize))
			s.File = rel
			if err == nil {
				t.sboms = append(t.sboms, s)
			}
			done()
		}
	}
	if cerr := in.ctx.Err(); cerr != nil {
		return cerr
	}
	if stream != nil && in.tar {
		return stream
	}
	if err != nil {
		t.notes = append(t.notes, fmt.Sprintf("%s: %v", rel, err))
	}
	return nil
}

func (in *inspector) result(src *source, opts InspectOptions) *Inspection {
	out := &Inspection{
		Bundle:    BundleInfo{Path: src.path, Format: src.format},
		Signature: SignatureNotChecked,
		Contents:  []Part{},
		Packages:  []Pkg{},
		SBOMs:     []SBOM{},
		Notes:     append([]string{}, in.notes...),
	}
	if len(in.order) == 0 {
		out.Notes = append(out.Notes, "no garrison-<version>/ directory: not a Garrison bundle")
		return out
	}
	main := in.order[0]
	for _, top := range in.order {
		if in.tops[top].manifest != nil {
			main = top
			break
		}
	}
	for _, top := range in.order {
		if top != main {
			out.Notes = append(out.Notes, fmt.Sprintf("%s/: a second top-level directory, not described here", top))
		}
	}
	out.Bundle.Dir = main
	if src.format == FormatDirectory {
		out.Bundle.Dir = src.dir
	}
	t := in.tops[main]
	out.Files, out.Bytes, out.VersionFile = t.files, t.bytes, t.version
	for _, name := range sortedKeys(t.parts) {
		out.Contents = append(out.Contents, *t.parts[name])
	}
	out.Packages = append(out.Packages, t.packages...)
	if !t.havePkgs {
		out.Notes = append(out.Notes, "repo/Packages: not found or unreadable")
	}
	out.SBOMs = append(out.SBOMs, t.sboms...)
	if len(t.sboms) == 0 {
		out.Notes = append(out.Notes, "sbom/*.cdx.json: no readable SBOM")
	}
	out.Notes = append(out.Notes, t.notes...)

	switch {
	case t.sig == nil:
		out.Notes = append(out.Notes, manifest.SignatureName+": missing")
		return out
	case t.manifest == nil:
		out.Notes = append(out.Notes, manifest.FileName+": missing")
	}
	info, err := manifest.ReadSignature(t.sig)
	if err != nil {
		out.Signature, out.SignatureDetail = SignatureInvalid, err.Error()
		return out
	}
	out.SignedBy = manifest.KeyID(info.KeyID)
	if tr, err := manifest.ParseTrusted(info.TrustedComment); err == nil {
		out.Version, out.SourceDateEpoch = tr.Version, &tr.SourceDateEpoch
	} else {
		out.Notes = append(out.Notes, err.Error())
	}
	if opts.PublicKey == nil || t.manifest == nil {
		return out
	}
	anchor := opts.Anchor
	out.TrustAnchor = &anchor
	if _, err := manifest.Verify(*opts.PublicKey, t.manifest, t.sig); err != nil {
		out.Signature, out.SignatureDetail = SignatureInvalid, err.Error()
	} else {
		out.Signature = SignatureValid
	}
	return out
}

// ParsePackages reads the package name, version and architecture of every
// stanza of an apt Packages index, sorted by name, version, architecture.
func ParsePackages(r io.Reader) ([]Pkg, error) {
	var pkgs []Pkg
	err := debcontrol.Scan(r, func(p debcontrol.Paragraph) error {
		pkg := Pkg{Name: p.Get("Package"), Version: p.Get("Version"), Architecture: p.Get("Architecture")}
		switch {
		case pkg.Name == "":
			return fmt.Errorf("stanza %d has no Package field", len(pkgs)+1)
		case len(pkgs) == maxPackages:
			return fmt.Errorf("more than %d packages", maxPackages)
		}
		pkgs = append(pkgs, pkg)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apt index: %w", err)
	}
	slices.SortFunc(pkgs, func(a, b Pkg) int {
		return cmpStrings(a.Name, b.Name, a.Version, b.Version, a.Architecture, b.Architecture)
	})
	return pkgs, nil
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// SummarizeSBOM decodes a CycloneDX JSON SBOM and counts its components by
// type, its Debian packages (purl pkg:deb/), and for each application
// component the Go modules (purl pkg:golang/) nested in it or reachable
// through the dependency graph from it.
func SummarizeSBOM(r io.Reader) (SBOM, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(r, cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return SBOM{ByType: map[string]int{}, Applications: []App{}}, fmt.Errorf("not CycloneDX JSON: %w", err)
	}
	s := SBOM{SpecVersion: bom.SpecVersion.String(), ByType: map[string]int{}, Applications: []App{}}
	if bom.Metadata != nil && bom.Metadata.Component != nil {
		s.Subject = strings.TrimSpace(bom.Metadata.Component.Name + " " + bom.Metadata.Component.Version)
	}

	byRef := map[string]*cdx.Component{}
	var all []*cdx.Component
	var walk func(cs *[]cdx.Component)
	walk = func(cs *[]cdx.Component) {
		if cs == nil {
			return
		}
		for i := range *cs {
			c := &(*cs)[i]
			all = append(all, c)
			if c.BOMRef != "" {
				byRef[c.BOMRef] = c
			}
			walk(c.Components)
		}
	}
	walk(bom.Components)

	deps := map[string][]string{}
	if bom.Dependencies != nil {
		for _, d := range *bom.Dependencies {
			if d.Dependencies != nil {
				deps[d.Ref] = append(deps[d.Ref], *d.Dependencies...)
			}
		}
	}
	isGo := func(c *cdx.Component) bool { return strings.HasPrefix(c.PackageURL, "pkg:golang/") }
	// Each application walks the dependency graph on its own; a crafted
	// graph (thousands of applications sharing one deep graph) could make
	// that take minutes, so the walks share one budget.
	budget := maxSBOMSteps

	for _, c := range all {
		s.Components++
		s.ByType[string(c.Type)]++
		if strings.HasPrefix(c.PackageURL, "pkg:deb/") {
			s.Debs++
		}
		if c.Type != cdx.ComponentTypeApplication {
			continue
		}
		mods := map[string]bool{}
		key := func(m *cdx.Component) string {
			if m.PackageURL != "" {
				return m.PackageURL
			}
			return m.BOMRef
		}
		var nested func(cs *[]cdx.Component)
		nested = func(cs *[]cdx.Component) {
			if cs == nil {
				return
			}
			for i := range *cs {
				if m := &(*cs)[i]; isGo(m) {
					mods[key(m)] = true
				}
				nested((*cs)[i].Components)
			}
		}
		nested(c.Components)
		seen := map[string]bool{}
		queue := []string{c.BOMRef}
		for len(queue) > 0 {
			ref := queue[0]
			queue = queue[1:]
			if ref == "" || seen[ref] {
				continue
			}
			if budget--; budget < 0 {
				return s, fmt.Errorf("dependency graph too large to summarise (more than %d steps)", maxSBOMSteps)
			}
			seen[ref] = true
			for _, d := range deps[ref] {
				if m, ok := byRef[d]; ok && isGo(m) {
					mods[key(m)] = true
				}
				queue = append(queue, d)
			}
		}
		s.Applications = append(s.Applications, App{Name: c.Name, Version: c.Version, GoModules: len(mods)})
	}
	slices.SortFunc(s.Applications, func(a, b App) int { return cmpStrings(a.Name, b.Name, a.Version, b.Version) })
	return s, nil
}

// capped reads r and fails, rather than stopping quietly, past limit bytes.
func capped(r io.Reader, limit int64) io.Reader { return &cappedReader{r: r, left: limit} }

type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Past the cap only if anything is left to read.
		var one [1]byte
		if n, _ := io.ReadFull(c.r, one[:]); n > 0 {
			return 0, errors.New("larger than the size limit for this file")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// recordingReader keeps the first error of the underlying stream other than
// io.EOF, to tell a failing stream from contents that do not parse.
type recordingReader struct {
	r   io.Reader
	err *error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && *r.err == nil {
		*r.err = err
	}
	return n, err
}

// ctxReadSeeker lets the tar reader seek over contents it skips, and stops
// reading when ctx is done.
type ctxReadSeeker struct {
	ctx context.Context
	f   *os.File
}

func (r *ctxReadSeeker) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.f.Read(p)
}

func (r *ctxReadSeeker) Seek(offset int64, whence int) (int64, error) {
	return r.f.Seek(offset, whence)
}

// WriteText writes the inspection for people.
func (in *Inspection) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	b := in.Bundle
	ew.printf("Bundle:     %s (%s %s)\n", b.Path, b.Format, b.Dir)
	if in.Version != "" {
		ew.printf("Version:    %s (source_date_epoch %d, %s)", in.Version, *in.SourceDateEpoch,
			time.Unix(*in.SourceDateEpoch, 0).UTC().Format(time.RFC3339))
	} else {
		ew.printf("Version:    unknown")
	}
	if in.VersionFile != "" && in.VersionFile != in.Version {
		ew.printf("; VERSION file says %q", in.VersionFile)
	}
	ew.printf("\n")
	signer := in.SignedBy
	if signer == "" {
		signer = "unknown"
	}
	switch in.Signature {
	case SignatureValid:
		ew.printf("Signed by:  key %s; MANIFEST signature valid with trust anchor %s (%s)\n", signer, in.TrustAnchor.KeyID, in.TrustAnchor.Source)
		ew.printf("            files not checked here: run `garrisonctl bundle verify`\n")
	case SignatureInvalid:
		ew.printf("Signed by:  key %s; MANIFEST signature INVALID: %s\n", signer, in.SignatureDetail)
	default:
		ew.printf("Signed by:  key %s (claimed; not checked: no trust anchor, pass --pubkey)\n", signer)
	}
	ew.printf("Contents:   %d files, %s\n", in.Files, HumanBytes(in.Bytes))
	for _, p := range in.Contents {
		name := p.Name + "/"
		if p.Name == "." {
			name = "(top level)"
		}
		ew.printf("  %-16s %6d %-5s %10s\n", name, p.Files, "file"+plural(p.Files), HumanBytes(p.Bytes))
	}
	ew.printf("Packages:   %d in repo/Packages\n", len(in.Packages))
	for _, p := range in.Packages {
		ew.printf("  %s %s %s\n", p.Name, p.Version, p.Architecture)
	}
	for _, s := range in.SBOMs {
		ew.printf("SBOM:       %s (CycloneDX %s", s.File, s.SpecVersion)
		if s.Subject != "" {
			ew.printf(", for %s", s.Subject)
		}
		ew.printf("): %d components", s.Components)
		if len(s.ByType) > 0 {
			var parts []string
			for _, t := range sortedKeys(s.ByType) {
				parts = append(parts, fmt.Sprintf("%s %d", t, s.ByType[t]))
			}
			ew.printf(" (%s)", strings.Join(parts, ", "))
		}
		ew.printf(", %d deb\n", s.Debs)
		for _, a := range s.Applications {
			ew.printf("  %s %s: %d Go module%s\n", a.Name, a.Version, a.GoModules, plural(a.GoModules))
		}
	}
	for _, n := range in.Notes {
		ew.printf("Note:       %s\n", n)
	}
	return ew.err
}
