// Package sbom writes the bundle's CycloneDX SBOM: every Go module in each
// of our binaries (from the build information the Go linker embeds) and
// every .deb in the bundle's repository (name, version, sha256). The
// document is deterministic: the timestamp is SOURCE_DATE_EPOCH and the
// serial number is a name-based UUID of the content, so one set of inputs
// always gives the same bytes.
package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// Binary is one of our Go binaries.
type Binary struct {
	Name   string // e.g. "garrison"
	Path   string // the built file
	Deb    string // the package that ships it
	SHA256 string // of the file
}

// Deb is one .deb in the repository.
type Deb struct {
	Name, Version, Arch string
	SHA256              string
	Ours                bool // built by us rather than taken from Debian
}

// Input is what the SBOM describes.
type Input struct {
	Version  string // the bundle's version
	Time     time.Time
	Binaries []Binary
	Debs     []Deb
}

// Build renders the SBOM as indented CycloneDX 1.5 JSON.
func Build(in Input) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_5
	bom.Metadata = &cdx.Metadata{
		Timestamp: in.Time.UTC().Format(time.RFC3339),
		Component: &cdx.Component{
			BOMRef:  "garrison-bundle",
			Type:    cdx.ComponentTypeApplication,
			Name:    "garrison-bundle",
			Version: in.Version,
			Description: "Garrison offline bundle: a signed apt repository of Garrison's packages " +
				"and their Debian bookworm closure",
		},
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "garrison mkbundle", Version: in.Version,
		}}},
	}

	var comps []cdx.Component
	var deps []cdx.Dependency
	var top []string
	for _, b := range in.Binaries {
		bi, err := buildinfo.ReadFile(b.Path)
		if err != nil {
			return nil, fmt.Errorf("sbom: %s: %w", b.Path, err)
		}
		ref := "bin:" + b.Name
		c := cdx.Component{
			BOMRef:  ref,
			Type:    cdx.ComponentTypeApplication,
			Name:    b.Name,
			Version: in.Version,
			Hashes:  &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: b.SHA256}},
			Properties: &[]cdx.Property{
				{Name: "garrison:go_version", Value: bi.GoVersion},
				{Name: "garrison:main_module", Value: bi.Main.Path},
				{Name: "garrison:deb", Value: b.Deb},
			},
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			c.Version = bi.Main.Version
		}
		var mods []cdx.Component
		var modRefs []string
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			mref := ref + ":" + purlGolang(m.Path, m.Version)
			mc := cdx.Component{
				BOMRef:     mref,
				Type:       cdx.ComponentTypeLibrary,
				Name:       m.Path,
				Version:    m.Version,
				PackageURL: purlGolang(m.Path, m.Version),
			}
			if m.Sum != "" {
				// go.sum's h1: hash (of the module's file tree), as the Go
				// checksum database knows it.
				mc.Properties = &[]cdx.Property{{Name: "garrison:go_sum", Value: m.Sum}}
			}
			mods = append(mods, mc)
			modRefs = append(modRefs, mref)
		}
		sort.Slice(mods, func(i, j int) bool { return mods[i].BOMRef < mods[j].BOMRef })
		sort.Strings(modRefs)
		c.Components = &mods
		comps = append(comps, c)
		deps = append(deps, cdx.Dependency{Ref: ref, Dependencies: &modRefs})
		top = append(top, ref)
	}
	debs := append([]Deb(nil), in.Debs...)
	sort.Slice(debs, func(i, j int) bool {
		if debs[i].Name != debs[j].Name {
			return debs[i].Name < debs[j].Name
		}
		return debs[i].Version < debs[j].Version
	})
	for _, d := range debs {
		purl := purlDeb(d)
		supplier := "Debian"
		if d.Ours {
			supplier = "Garrison"
		}
		comps = append(comps, cdx.Component{
			BOMRef:     purl,
			Type:       cdx.ComponentTypeLibrary,
			Name:       d.Name,
			Version:    d.Version,
			PackageURL: purl,
			Supplier:   &cdx.OrganizationalEntity{Name: supplier},
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: d.SHA256}},
			Properties: &[]cdx.Property{{Name: "garrison:kind", Value: "deb"}},
		})
		top = append(top, purl)
	}
	bom.Components = &comps
	deps = append([]cdx.Dependency{{Ref: "garrison-bundle", Dependencies: &top}}, deps...)
	bom.Dependencies = &deps

	// The serial number is derived from the document without it.
	bom.SerialNumber = ""
	body, err := encode(bom)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = "urn:uuid:" + nameUUID(body)
	return encode(bom)
}

func encode(bom *cdx.BOM) ([]byte, error) {
	var b bytes.Buffer
	enc := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
		return nil, fmt.Errorf("sbom: encode: %w", err)
	}
	return b.Bytes(), nil
}

// nameUUID is an RFC 9562 version 8 UUID made from SHA-256 of data.
func nameUUID(data []byte) string {
	h := sha256.Sum256(data)
	u := h[:16]
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func purlGolang(path, version string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(strings.ToLower(p))
	}
	return "pkg:golang/" + strings.Join(parts, "/") + "@" + purlEscape(version)
}

func purlDeb(d Deb) string {
	ns := "debian"
	if d.Ours {
		ns = "garrison"
	}
	q := "arch=" + d.Arch
	if !d.Ours {
		q += "&distro=debian-12"
	}
	return "pkg:deb/" + ns + "/" + purlEscape(d.Name) + "@" + purlEscape(d.Version) + "?" + q
}

// purlEscape percent-encodes a purl segment; the purl spec wants '+' (as
// in Debian's "+deb12u3" and Go's "+incompatible") encoded too.
func purlEscape(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
}
