package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMain sets a umask that would strip the group bits of 0640 (and more),
// so the tests show that the mode asked for is the mode written. The umask is
// per process, so every test here may still run in parallel.
func TestMain(m *testing.M) {
	syscall.Umask(0o077)
	os.Exit(m.Run())
}

// names lists dir, so that a test can see no temporary file was left in it.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func requireFile(t *testing.T, path, data string, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, data, string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular(), "%s is a regular file", path)
	require.Equal(t, perm, fi.Mode().Perm(), "mode of %s", path)
}

func TestUmaskInEffect(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(path, nil, 0o640))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "the umask strips bits, so the other tests mean something")
}

func TestWrite(t *testing.T) {
	t.Parallel()
	type existing struct {
		data string
		perm fs.FileMode
	}
	for _, tc := range []struct {
		name   string
		before *existing
		data   string
		perm   fs.FileMode
	}{
		{name: "new 0600", data: "secret\n", perm: 0o600},
		{name: "new 0640", data: "shared\n", perm: 0o640},
		{name: "new 0644", data: "public\n", perm: 0o644},
		{name: "new 0400", data: "read-only\n", perm: 0o400},
		{name: "new empty", data: "", perm: 0o640},
		{name: "replaces, narrower mode", before: &existing{"old, longer content\n", 0o644}, data: "new\n", perm: 0o600},
		{name: "replaces, wider mode", before: &existing{"old\n", 0o600}, data: "new, longer content\n", perm: 0o640},
		{name: "replaces a read-only file", before: &existing{"old\n", 0o400}, data: "new\n", perm: 0o400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			if tc.before != nil {
				require.NoError(t, os.WriteFile(path, []byte(tc.before.data), 0o600))
				require.NoError(t, os.Chmod(path, tc.before.perm))
			}
			require.NoError(t, Write(path, []byte(tc.data), tc.perm))
			requireFile(t, path, tc.data, tc.perm)
			require.Equal(t, []string{"file"}, names(t, dir), "no temporary file left")
		})
	}
}

func TestWriteNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data string
		perm fs.FileMode
	}{
		{name: "0600", data: "secret\n", perm: 0o600},
		{name: "0640", data: "shared\n", perm: 0o640},
		{name: "0644", data: "public\n", perm: 0o644},
		{name: "empty", data: "", perm: 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			require.NoError(t, WriteNew(path, []byte(tc.data), tc.perm))
			requireFile(t, path, tc.data, tc.perm)
			require.Equal(t, []string{"file"}, names(t, dir), "no temporary file left")
		})
	}
}

func TestWriteNewNeverReplaces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
		check func(t *testing.T, path string)
	}{
		{
			name: "file",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("old\n"), 0o600))
			},
			check: func(t *testing.T, path string) { requireFile(t, path, "old\n", 0o600) },
		},
		{
			name: "directory",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.Mkdir(path, 0o700))
			},
			check: func(t *testing.T, path string) {
				fi, err := os.Stat(path)
				require.NoError(t, err)
				require.True(t, fi.IsDir())
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			tc.setup(t, path)
			err := WriteNew(path, []byte("new\n"), 0o644)
			require.ErrorIs(t, err, fs.ErrExist)
			require.ErrorContains(t, err, path)
			tc.check(t, path)
			require.Equal(t, []string{"file"}, names(t, dir), "no temporary file left")
		})
	}
}

// TestWriteNewRace: of several writers of one new file exactly one wins, and
// the file holds its data.
func TestWriteNewRace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "file")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = WriteNew(path, fmt.Appendf(nil, "writer %d\n", i), 0o640) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "only one writer wins")
			winner = i
			continue
		}
		require.ErrorIs(t, err, fs.ErrExist)
	}
	require.NotEqual(t, -1, winner, "one writer wins")
	requireFile(t, path, fmt.Sprintf("writer %d\n", winner), 0o640)
	require.Equal(t, []string{"file"}, names(t, dir), "no temporary file left")
}

func TestWriteFails(t *testing.T) {
	t.Parallel()
	funcs := map[string]func(string, []byte, fs.FileMode) error{"Write": Write, "WriteNew": WriteNew}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) (path string)
		left  []string // what dir holds afterwards
	}{
		{
			name:  "directory missing",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "missing", "file") },
			left:  []string{},
		},
		{
			name: "parent is a file",
			setup: func(t *testing.T, dir string) string {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "parent"), nil, 0o600))
				return filepath.Join(dir, "parent", "file")
			},
			left: []string{"parent"},
		},
		{
			name: "a directory where the file should be",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "file")
				require.NoError(t, os.Mkdir(path, 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(path, "inside"), nil, 0o600))
				return path
			},
			left: []string{"file"},
		},
		{
			name: "an empty directory where the file should be",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "file")
				require.NoError(t, os.Mkdir(path, 0o700))
				return path
			},
			left: []string{"file"},
		},
	} {
		for fname, write := range funcs {
			t.Run(fname+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				path := tc.setup(t, dir)
				err := write(path, []byte("data\n"), 0o600)
				require.Error(t, err)
				require.ErrorContains(t, err, path, "the error names the file")
				require.Equal(t, tc.left, names(t, dir), "no temporary file left")
			})
		}
	}
}
