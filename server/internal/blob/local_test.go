package blob_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/blob/blobtest"
)

func TestLocal(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.NewLocal(t.TempDir())
		require.NoError(t, err)
		return s
	})
}

func TestLocalLeavesNoTemporaryFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := blob.NewLocal(dir)
	require.NoError(t, err)
	require.NoError(t, s.Put(t.Context(), "a/b", bytes.NewReader([]byte("hello")), 5, ""))
	require.Error(t, s.Put(t.Context(), "a/c", bytes.NewReader([]byte("hi")), 5, ""))
	var names []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return err
	}))
	require.Equal(t, []string{"a/b"}, names)
}

func TestLocalNeedsItsDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nas")
	_, err := blob.NewLocal(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "a missing directory is not created")

	require.NoError(t, os.Mkdir(dir, 0o750))
	s, err := blob.NewLocal(dir)
	require.NoError(t, err)
	require.NoError(t, s.Check(t.Context()))
	require.NoError(t, os.RemoveAll(dir)) // the mount went away
	require.Error(t, s.Check(t.Context()))
	require.Error(t, s.Put(t.Context(), "a/b", bytes.NewReader([]byte("x")), 1, ""))
	require.NoDirExists(t, dir)
}

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := blob.New(t.Context(), blob.Options{DriverName: "ftp"})
	require.Error(t, err)
	_, err = blob.New(t.Context(), blob.Options{DriverName: blob.DriverLocal})
	require.Error(t, err, "no directory")
	s, err := blob.New(t.Context(), blob.Options{DriverName: blob.DriverLocal, Directory: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, s.Check(t.Context()))
	_, err = blob.New(t.Context(), blob.Options{DriverName: blob.DriverS3, S3: blob.S3Options{Bucket: "b"}})
	require.ErrorContains(t, err, "endpoint")
}
