package bundle

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/stretchr/testify/require"
)

// What a crafted bundle puts in front of garrisonctl is bounded and named.
func TestHostileInspectInputs(t *testing.T) {
	t.Parallel()

	t.Run("an oversized index is an error, not a silent cut", func(t *testing.T) {
		t.Parallel()
		_, err := ParsePackages(capped(strings.NewReader(strings.Repeat("Package: a\n\n", 10)), 50))
		require.ErrorContains(t, err, "larger than the size limit")
		pkgs, err := ParsePackages(capped(strings.NewReader("Package: a\n"), 11))
		require.NoError(t, err, "exactly at the cap is fine")
		require.Len(t, pkgs, 1)
	})

	t.Run("a stanza without Package stops the parse", func(t *testing.T) {
		t.Parallel()
		_, err := ParsePackages(strings.NewReader("A: 1\n\n" + strings.Repeat("Package: a\n\n", 1000)))
		require.ErrorContains(t, err, "stanza 1 has no Package field")
	})

	t.Run("a dependency graph that would take minutes", func(t *testing.T) {
		t.Parallel()
		// 2,500 applications, each reaching the same 1,000-node chain.
		var comps []cdx.Component
		var deps []cdx.Dependency
		for i := range 1000 {
			ref := fmt.Sprintf("m%d", i)
			comps = append(comps, cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: ref, PackageURL: "pkg:golang/" + ref + "@v1"})
			next := []string{fmt.Sprintf("m%d", i+1)}
			deps = append(deps, cdx.Dependency{Ref: ref, Dependencies: &next})
		}
		for i := range 2500 {
			ref := fmt.Sprintf("app%d", i)
			comps = append(comps, cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeApplication, Name: ref})
			first := []string{"m0"}
			deps = append(deps, cdx.Dependency{Ref: ref, Dependencies: &first})
		}
		bom := cdx.NewBOM()
		bom.Components, bom.Dependencies = &comps, &deps
		var buf bytes.Buffer
		require.NoError(t, cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).Encode(bom))
		_, err := SummarizeSBOM(&buf)
		require.ErrorContains(t, err, "dependency graph too large to summarise")
	})

	t.Run("names from the bundle cannot drive the terminal", func(t *testing.T) {
		t.Parallel()
		epoch := int64(1)
		r := &Receipt{Result: ResultFail, Version: "1.0\x1b[2J", SourceDateEpoch: &epoch,
			Problems: []Problem{{Kind: KindExtra, Path: "evil\x1b]0;owned\x07.deb", Detail: "not in MANIFEST"}}}
		var out bytes.Buffer
		require.NoError(t, r.WriteText(&out))
		require.NotContains(t, out.String(), "\x1b")
		require.NotContains(t, out.String(), "\x07")
		require.Contains(t, out.String(), `"evil\x1b]0;owned\a.deb: not in MANIFEST"`)
		require.Contains(t, out.String(), `"1.0\x1b[2J"`)
	})
}
