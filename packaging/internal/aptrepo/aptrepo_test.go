package aptrepo

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func need(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (apt-get install gpg dpkg-dev)", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
}

// tinyDeb builds a minimal package with dpkg-deb.
func tinyDeb(t *testing.T, pool string) {
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "DEBIAN"), 0o755))
	control := "Package: tiny\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@localhost>\nDescription: tiny\n"
	require.NoError(t, os.WriteFile(filepath.Join(src, "DEBIAN", "control"), []byte(control), 0o644))
	out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", src, filepath.Join(pool, "tiny_1.0_all.deb")).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func TestSignedRepositoryVerifiesAndIsReproducible(t *testing.T) {
	need(t, "gpg", "gpgv", "dpkg-scanpackages", "dpkg-deb")
	t.Parallel()
	ctx := t.Context()
	key := filepath.Join(t.TempDir(), "archive.asc")
	require.NoError(t, GenerateKey(ctx, key, "Test archive key <t@localhost>"))
	fi, err := os.Stat(key)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the secret key is private")

	at := time.Now().Add(time.Hour).Truncate(time.Second) // after the key's creation
	// One .deb for both repositories: dpkg-deb stamps the clock into it.
	debDir := t.TempDir()
	tinyDeb(t, debDir)
	deb, err := os.ReadFile(filepath.Join(debDir, "tiny_1.0_all.deb"))
	require.NoError(t, err)
	var inReleases [][]byte
	var dir, keyring string
	for range 2 {
		dir = t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "pool"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "pool", "tiny_1.0_all.deb"), deb, 0o644))
		repo := Repo{Dir: dir, Origin: "Garrison", Label: "Garrison", Suite: "garrison", Version: "1.0", Date: at}
		require.NoError(t, repo.Index(ctx))
		s, err := NewSigner(ctx, key)
		require.NoError(t, err)
		require.NoError(t, s.Sign(ctx, dir, at))
		keyring = filepath.Join(t.TempDir(), "keyring.gpg")
		require.NoError(t, s.ExportPublic(ctx, keyring))
		require.NoError(t, s.Close())
		data, err := os.ReadFile(filepath.Join(dir, "InRelease"))
		require.NoError(t, err)
		inReleases = append(inReleases, data)
	}
	require.Equal(t, string(inReleases[0]), string(inReleases[1]), "same inputs, same signature")

	rel, err := os.ReadFile(filepath.Join(dir, "Release"))
	require.NoError(t, err)
	require.Contains(t, string(rel), "Date: "+at.UTC().Format(time.RFC1123Z))
	require.Regexp(t, `SHA256:\n [0-9a-f]{64} \d+ Packages\n [0-9a-f]{64} \d+ Packages.gz\n`, string(rel))

	// apt verifies with gpgv against the exported key only.
	for _, args := range [][]string{
		{"--keyring", keyring, filepath.Join(dir, "InRelease")},
		{"--keyring", keyring, filepath.Join(dir, "Release.gpg"), filepath.Join(dir, "Release")},
	} {
		out, err := exec.Command("gpgv", args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	// A changed Release no longer verifies.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Release"), append(rel, '\n'), 0o644))
	out, err := exec.Command("gpgv", "--keyring", keyring, filepath.Join(dir, "Release.gpg"), filepath.Join(dir, "Release")).CombinedOutput()
	require.Error(t, err, "%s", out)
}

func TestNewSignerNamesABadKeyFile(t *testing.T) {
	need(t, "gpg")
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "not-a-key.asc")
	require.NoError(t, os.WriteFile(bad, []byte("hello"), 0o600))
	_, err := NewSigner(t.Context(), bad)
	require.ErrorContains(t, err, bad)
}
