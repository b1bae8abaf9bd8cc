package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Bad inputs are all named before anything is built.
func TestBuildNamesEveryBadInput(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "VERSION"), []byte("not a version!\n"), 0o644))
	env := map[string]string{"SOURCE_DATE_EPOCH": "yesterday", "GARRISON_SIGNING_KEY": "/k/minisign.key"}
	err := run(t.Context(), []string{"build", "-src", src, "-out", t.TempDir()},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	require.Error(t, err)
	for _, want := range []string{
		filepath.Join(src, "VERSION") + ":",
		`SOURCE_DATE_EPOCH "yesterday"`,
		"-minio and -minio-version are required",
		"-commit is required",
		"set both GARRISON_SIGNING_KEY and GARRISON_APT_SIGNING_KEY",
	} {
		require.ErrorContains(t, err, want)
	}
}
