package install

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeTar(t *testing.T, entries ...tar.Header) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.tar")
	f, err := os.Create(path)
	require.NoError(t, err)
	tw := tar.NewWriter(f)
	for _, h := range entries {
		body := []byte("data of " + h.Name)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		require.NoError(t, tw.WriteHeader(&h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, f.Close())
	return path
}

// extract takes only regular files and directories under the bundle's top
// directory; anything else in a tar is refused before it is written.
func TestExtractRefusesWhatABundleNeverHolds(t *testing.T) {
	t.Parallel()
	dir := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755} }
	file := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }

	good := writeTar(t, dir("garrison-1.0/"), dir("garrison-1.0/repo/"), file("garrison-1.0/repo/Packages"), file("garrison-1.0/MANIFEST"))
	out := t.TempDir()
	require.NoError(t, extract(t.Context(), good, out, "garrison-1.0"))
	data, err := os.ReadFile(filepath.Join(out, "garrison-1.0", "repo", "Packages"))
	require.NoError(t, err)
	require.Equal(t, "data of garrison-1.0/repo/Packages", string(data))

	for name, h := range map[string]tar.Header{
		"outside top":    file("other/x"),
		"parent escape":  file("garrison-1.0/../../etc/passwd"),
		"symlink":        {Name: "garrison-1.0/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"},
		"hard link":      {Name: "garrison-1.0/hard", Typeflag: tar.TypeLink, Linkname: "garrison-1.0/MANIFEST"},
		"device":         {Name: "garrison-1.0/dev", Typeflag: tar.TypeChar},
		"sibling prefix": file("garrison-1.0x/evil"),
	} {
		bad := writeTar(t, dir("garrison-1.0/"), h)
		err := extract(t.Context(), bad, t.TempDir(), "garrison-1.0")
		require.Error(t, err, name)
	}

	// A file named twice is not silently overwritten.
	dup := writeTar(t, dir("garrison-1.0/"), file("garrison-1.0/MANIFEST"), file("garrison-1.0/MANIFEST"))
	require.Error(t, extract(t.Context(), dup, t.TempDir(), "garrison-1.0"))
}
