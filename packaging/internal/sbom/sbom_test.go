package sbom

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/stretchr/testify/require"
)

func TestSBOMIsDeterministicAndComplete(t *testing.T) {
	t.Parallel()
	// A real binary of ours with build information (a test binary lists
	// no dependencies).
	self := filepath.Join(t.TempDir(), "mkbundle")
	out, err := exec.Command("go", "build", "-o", self, "github.com/garrison-chat/garrison/packaging/cmd/mkbundle").CombinedOutput()
	require.NoError(t, err, "%s", out)
	in := Input{
		Version:  "1.2.3",
		Time:     time.Unix(1700000000, 0),
		Binaries: []Binary{{Name: "garrison", Path: self, Deb: "garrison", SHA256: "ab"}},
		Debs: []Deb{
			{Name: "nginx", Version: "1.22.1-9+deb12u3", Arch: "amd64", SHA256: "cd"},
			{Name: "garrison", Version: "1.2.3", Arch: "amd64", SHA256: "ef", Ours: true},
		},
	}
	a, err := Build(in)
	require.NoError(t, err)
	b, err := Build(in)
	require.NoError(t, err)
	require.Equal(t, a, b)

	var bom cdx.BOM
	require.NoError(t, cdx.NewBOMDecoder(bytes.NewReader(a), cdx.BOMFileFormatJSON).Decode(&bom))
	require.Equal(t, cdx.SpecVersion1_5, bom.SpecVersion)
	require.Regexp(t, `^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, bom.SerialNumber)
	require.Equal(t, "2023-11-14T22:13:20Z", bom.Metadata.Timestamp)
	comps := *bom.Components
	require.Len(t, comps, 3)
	require.Equal(t, "garrison", comps[0].Name)
	mods := *comps[0].Components
	require.NotEmpty(t, mods, "the test binary's modules are listed")
	var sawNfpm bool
	for _, m := range mods {
		if m.Name == "github.com/goreleaser/nfpm/v2" {
			sawNfpm = true
			require.Equal(t, "pkg:golang/github.com/goreleaser/nfpm/v2@v2.48.0", m.PackageURL)
		}
	}
	require.True(t, sawNfpm)
	require.Equal(t, "pkg:deb/garrison/garrison@1.2.3?arch=amd64", comps[1].PackageURL)
	require.Equal(t, "pkg:deb/debian/nginx@1.22.1-9%2Bdeb12u3?arch=amd64&distro=debian-12", comps[2].PackageURL)
	require.Equal(t, "cd", (*comps[2].Hashes)[0].Value)

	in.Debs[0].SHA256 = "00"
	c, err := Build(in)
	require.NoError(t, err)
	var other cdx.BOM
	require.NoError(t, cdx.NewBOMDecoder(bytes.NewReader(c), cdx.BOMFileFormatJSON).Decode(&other))
	require.NotEqual(t, bom.SerialNumber, other.SerialNumber, "the serial follows the content")
}
