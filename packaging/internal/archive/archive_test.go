package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func tree(t *testing.T, perm os.FileMode) string {
	root := filepath.Join(t.TempDir(), "garrison-1.0.0")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "repo", "pool"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(root, "VERSION"), []byte("1.0.0\n"), perm))
	require.NoError(t, os.WriteFile(filepath.Join(root, "repo", "pool", "a.deb"), []byte("deb"), perm))
	require.NoError(t, os.WriteFile(filepath.Join(root, "tool"), []byte("#!/bin/sh\n"), 0o700))
	return root
}

func TestTarIsAFunctionOfTheTree(t *testing.T) {
	t.Parallel()
	mtime := time.Unix(1700000000, 0)
	var tars [][]byte
	for _, perm := range []os.FileMode{0o600, 0o664} {
		root := tree(t, perm)
		require.NoError(t, Normalize(root, mtime))
		out := filepath.Join(t.TempDir(), "b.tar")
		require.NoError(t, WriteTar(root, out, mtime))
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		tars = append(tars, data)
	}
	require.Equal(t, tars[0], tars[1], "different modes and paths, same tar")

	tr := tar.NewReader(bytes.NewReader(tars[0]))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
		require.Equal(t, 0, h.Uid)
		require.Equal(t, "root", h.Uname)
		require.True(t, h.ModTime.Equal(mtime))
		switch h.Name {
		case "garrison-1.0.0/tool":
			require.EqualValues(t, 0o755, h.Mode)
		case "garrison-1.0.0/VERSION":
			require.EqualValues(t, 0o644, h.Mode)
		}
	}
	require.Equal(t, []string{"garrison-1.0.0/", "garrison-1.0.0/VERSION", "garrison-1.0.0/repo/",
		"garrison-1.0.0/repo/pool/", "garrison-1.0.0/repo/pool/a.deb", "garrison-1.0.0/tool"}, names)
}

func TestSymlinksAreRefused(t *testing.T) {
	t.Parallel()
	root := tree(t, 0o644)
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(root, "link")))
	err := WriteTar(root, filepath.Join(t.TempDir(), "b.tar"), time.Unix(1, 0))
	require.ErrorContains(t, err, "link: only regular files and directories")
}

func TestISOIsAFunctionOfTheTreeAndExtracts(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xorriso is missing (apt-get install xorriso)")
		}
		t.Skip("xorriso is missing")
	}
	t.Parallel()
	mtime := time.Unix(1700000000, 0)
	var isos [][]byte
	var last string
	for _, perm := range []os.FileMode{0o600, 0o664} {
		root := tree(t, perm)
		require.NoError(t, Normalize(root, mtime))
		out := filepath.Join(t.TempDir(), "b.iso")
		require.NoError(t, WriteISO(t.Context(), root, out, "GARRISON_1_0_0", mtime))
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		isos = append(isos, data)
		last = out
	}
	require.True(t, bytes.Equal(isos[0], isos[1]), "same tree, same ISO")

	dir := t.TempDir()
	require.NoError(t, ExtractISO(t.Context(), last, dir))
	got, err := os.ReadFile(filepath.Join(dir, "garrison-1.0.0", "repo", "pool", "a.deb"))
	require.NoError(t, err)
	require.Equal(t, "deb", string(got))
	fi, err := os.Stat(filepath.Join(dir, "garrison-1.0.0", "tool"))
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&0o100, "executables stay executable")
}
