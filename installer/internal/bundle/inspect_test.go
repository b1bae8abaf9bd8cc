package bundle

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/bundle/bundletest"
	"github.com/garrison-chat/garrison/internal/manifest"
)

func TestInspect(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, version, nil, nil)
	tarPath := b.Tar(t)
	other := bundletest.NewKey(t)
	files := bundletest.Files(version)

	for _, path := range []string{tarPath, b.Dir, b.Parent} {
		for _, anchor := range []*bundletest.Key{b.Key, other, nil} {
			opts := InspectOptions{}
			if anchor != nil {
				opts.PublicKey = &anchor.Public
				opts.Anchor = Anchor{KeyID: manifest.KeyID(anchor.Public.ID()), Source: "--pubkey " + anchor.PubPath}
			}
			in, err := Inspect(context.Background(), path, opts)
			require.NoError(t, err)
			require.Equal(t, version, in.Version)
			require.Equal(t, version, in.VersionFile)
			require.Equal(t, int64(bundletest.Epoch), *in.SourceDateEpoch)
			require.Equal(t, manifest.KeyID(b.Key.Public.ID()), in.SignedBy)
			switch anchor {
			case b.Key:
				require.Equal(t, SignatureValid, in.Signature)
			case other:
				require.Equal(t, SignatureInvalid, in.Signature)
				require.Contains(t, in.SignatureDetail, "signed by a different key")
			default:
				require.Equal(t, SignatureNotChecked, in.Signature)
				require.Nil(t, in.TrustAnchor)
			}
			require.Equal(t, len(files)+2, in.Files) // with MANIFEST and its signature
			require.Equal(t, []string{"."}, []string{in.Contents[0].Name})
			var names []string
			counts := map[string]int{}
			for _, p := range in.Contents {
				names = append(names, p.Name)
				counts[p.Name] = p.Files
			}
			require.Equal(t, []string{".", "docs", "keys", "repo", "sbom"}, names)
			require.Equal(t, map[string]int{".": 5, "docs": 2, "keys": 1, "repo": 4, "sbom": 1}, counts)
			require.Equal(t, []Pkg{
				{"etcd-server", "3.4.23-4+b6", "amd64"},
				{"garrison", "0.1.0", "amd64"},
				{"nginx", "1.22.1-9", "amd64"},
			}, in.Packages)
			require.Len(t, in.SBOMs, 1)
			s := in.SBOMs[0]
			require.Equal(t, "sbom/garrison-"+version+".cdx.json", s.File)
			require.Equal(t, "1.5", s.SpecVersion)
			require.Equal(t, "garrison-bundle "+version, s.Subject)
			require.Equal(t, 8, s.Components)
			require.Equal(t, map[string]int{"application": 2, "library": 6}, s.ByType)
			require.Equal(t, 2, s.Debs)
			require.Equal(t, []App{{"garrison", version, 2}, {"garrison-pushproxy", version, 2}}, s.Applications)
			require.Empty(t, in.Notes)

			var text strings.Builder
			require.NoError(t, in.WriteText(&text))
			require.Contains(t, text.String(), "Packages:   3 in repo/Packages\n  etcd-server 3.4.23-4+b6 amd64\n")
			require.Contains(t, text.String(), "garrison-pushproxy "+version+": 2 Go modules")
			require.Contains(t, text.String(), "8 components (application 2, library 6), 2 deb")
		}
	}
}

func TestInspectDamaged(t *testing.T) {
	t.Parallel()
	files := bundletest.Files(version)
	files["sbom/garrison-"+version+".cdx.json"] = `{"bomFormat": "CycloneDX", "components": [`
	files["repo/Packages"] = "Version: 1\n\n"
	b := bundletest.Write(t, version, files, nil)
	require.NoError(t, os.Remove(filepath.Join(b.Dir, manifest.SignatureName)))
	tarPath := b.Tar(t)
	for _, path := range []string{tarPath, b.Dir} {
		in, err := Inspect(context.Background(), path, InspectOptions{})
		require.NoError(t, err)
		notes := strings.Join(in.Notes, "\n")
		require.Contains(t, notes, "sbom/garrison-"+version+".cdx.json: not CycloneDX JSON")
		require.Contains(t, notes, "has no Package field")
		require.Contains(t, notes, "MANIFEST.minisig: missing")
		require.Empty(t, in.Version)
		require.Equal(t, SignatureNotChecked, in.Signature)
		require.Equal(t, version, in.VersionFile)
	}

	// A truncated tar: described as far as it goes, with a note.
	data, err := os.ReadFile(tarPath)
	require.NoError(t, err)
	cut := filepath.Join(t.TempDir(), "cut.tar")
	require.NoError(t, os.WriteFile(cut, data[:len(data)/2], 0o644))
	in, err := Inspect(context.Background(), cut, InspectOptions{})
	require.NoError(t, err)
	require.Contains(t, strings.Join(in.Notes, "\n"), "tar is truncated")
}

func TestParsePackages(t *testing.T) {
	t.Parallel()
	pkgs, err := ParsePackages(strings.NewReader(bundletest.Packages))
	require.NoError(t, err)
	require.Len(t, pkgs, 3)

	// CRLF, several blank lines, no final newline.
	pkgs, err = ParsePackages(strings.NewReader("\r\n\r\nPackage: b\r\nVersion: 2\r\n\r\n\r\nPackage: a\r\nArchitecture: all"))
	require.NoError(t, err)
	require.Equal(t, []Pkg{{"a", "", "all"}, {"b", "2", ""}}, pkgs)

	pkgs, err = ParsePackages(strings.NewReader(""))
	require.NoError(t, err)
	require.Empty(t, pkgs)

	_, err = ParsePackages(strings.NewReader("Package: a\nno colon here\n"))
	require.ErrorContains(t, err, "line 2")
	_, err = ParsePackages(strings.NewReader("Package: a\n\nVersion: 1\n"))
	require.ErrorContains(t, err, "no Package field")
}

func TestSummarizeSBOM(t *testing.T) {
	t.Parallel()
	s, err := SummarizeSBOM(strings.NewReader(`{"bomFormat":"CycloneDX","specVersion":"1.5","version":1}`))
	require.NoError(t, err)
	require.Zero(t, s.Components)
	_, err = SummarizeSBOM(strings.NewReader("[]"))
	require.Error(t, err)
}
