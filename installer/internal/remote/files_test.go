package remote

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// The node of these tests is this machine, so the tests check what
// arrived with the os package.

// randomFile writes size random bytes to a new local file.
func randomFile(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "local.bin")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.CopyN(f, rand.Reader, size)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// progressLog records progress calls.
type progressLog struct {
	mu    sync.Mutex // guards calls
	calls [][2]int64
}

func (p *progressLog) record(sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, [2]int64{sent, total})
}

func (p *progressLog) first() [2]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		return [2]int64{-1, -1}
	}
	return p.calls[0]
}

func (p *progressLog) last() [2]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		return [2]int64{-1, -1}
	}
	return p.calls[len(p.calls)-1]
}

func TestUpload(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	dial, conn := dialCounting()
	c := s.dial(t, "app1", openHostKeys(t), Options{Dial: dial})
	ctx := context.Background()

	const size = 16 << 20
	local := randomFile(t, size)
	want := fileSum(t, local)
	dest := filepath.Join(t.TempDir(), "new", "dir", "bundle.tar")
	part := dest + ".part"

	// An upload interrupted mid-way leaves a .part behind.
	interrupted, cancel := context.WithCancel(ctx)
	_, err := c.Upload(interrupted, local, dest, 0o644, func(sent, total int64) {
		if sent >= 10<<20 {
			cancel()
		}
	})
	cancel()
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "app1")
	require.Contains(t, err.Error(), dest)
	require.NoFileExists(t, dest)
	st, err := os.Stat(part)
	require.NoError(t, err)
	partSize := st.Size()
	require.Positive(t, partSize)
	require.Less(t, partSize, int64(size))
	require.Equal(t, fs.FileMode(0o600), st.Mode().Perm(), "a .part is private")

	// The next one sends the rest only.
	var prog progressLog
	before := conn().Written()
	changed, err := c.Upload(ctx, local, dest, 0o644, prog.record)
	require.NoError(t, err)
	require.True(t, changed)
	sent := conn().Written() - before
	require.Less(t, sent, int64(size), "a resumed upload sends less than the file")
	require.Equal(t, [2]int64{partSize, size}, prog.first())
	require.Equal(t, [2]int64{size, size}, prog.last())
	require.Equal(t, want, fileSum(t, dest))
	require.NoFileExists(t, part)
	st, err = os.Stat(dest)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), st.Mode().Perm())

	// Again: nothing to do, nothing sent.
	before = conn().Written()
	changed, err = c.Upload(ctx, local, dest, 0o644, func(int64, int64) { t.Error("progress called for an unchanged file") })
	require.NoError(t, err)
	require.False(t, changed)
	require.Less(t, conn().Written()-before, int64(64<<10))

	// Another mode alone is a chmod.
	before = conn().Written()
	changed, err = c.Upload(ctx, local, dest, 0o755|fs.ModeSetgid, nil)
	require.NoError(t, err)
	require.True(t, changed)
	require.Less(t, conn().Written()-before, int64(64<<10))
	st, err = os.Stat(dest)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o755)|fs.ModeSetgid, st.Mode()&(fs.ModePerm|fs.ModeSetgid))
}

// TestUploadRestarts checks that a .part that is not a prefix of the file
// is replaced, not appended to.
func TestUploadRestarts(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})
	const size = 3 << 20
	local := randomFile(t, size)
	data, err := os.ReadFile(local)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		part []byte // what an earlier upload left
		dest []byte // what the target holds
	}{
		{name: "corrupt part", part: append([]byte("garbage"), data[7:1<<20]...)},
		{name: "part longer than the file", part: append(append([]byte{}, data...), "more"...)},
		{name: "target differs", dest: data[:size-1]},
		{name: "empty part", part: []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dest := filepath.Join(t.TempDir(), "file")
			if tc.part != nil {
				require.NoError(t, os.WriteFile(dest+".part", tc.part, 0o600))
			}
			if tc.dest != nil {
				require.NoError(t, os.WriteFile(dest, tc.dest, 0o644))
			}
			var prog progressLog
			changed, err := c.Upload(context.Background(), local, dest, 0o640, prog.record)
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, [2]int64{0, size}, prog.first(), "starts over")
			require.Equal(t, fileSum(t, local), fileSum(t, dest))
			require.NoFileExists(t, dest+".part")
		})
	}
}

func TestUploadEdgeCases(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})
	ctx := context.Background()
	dir := t.TempDir()

	// An empty file, and a name that needs quoting.
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	dest := filepath.Join(dir, "it's a $file")
	changed, err := c.Upload(ctx, empty, dest, 0o600, nil)
	require.NoError(t, err)
	require.True(t, changed)
	b, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.Empty(t, b)
	changed, err = c.Upload(ctx, empty, dest, 0o600, nil)
	require.NoError(t, err)
	require.False(t, changed)

	for _, tc := range []struct {
		name, local, remote string
		mode                fs.FileMode
		wantErr             []string
	}{
		{name: "relative remote", local: empty, remote: "etc/x", mode: 0o644, wantErr: []string{"app1", "etc/x", "absolute"}},
		{name: "unclean remote", local: empty, remote: "/etc/../x", mode: 0o644, wantErr: []string{"/etc/../x"}},
		{name: "missing local", local: filepath.Join(dir, "nope"), remote: "/tmp/x", mode: 0o644, wantErr: []string{"app1", "nope"}},
		{name: "directory local", local: dir, remote: "/tmp/x", mode: 0o644, wantErr: []string{"not a regular file"}},
		{name: "type bits", local: empty, remote: "/tmp/x", mode: fs.ModeDir | 0o755, wantErr: []string{"mode"}},
		{name: "remote is a directory", local: empty, remote: dir, mode: 0o644, wantErr: []string{"app1", dir, "not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Upload(ctx, tc.local, tc.remote, tc.mode, nil)
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})
	var commands []string
	var mu sync.Mutex
	c.onCommand = func(cmd string) {
		mu.Lock()
		defer mu.Unlock()
		commands = append(commands, cmd)
	}
	ctx := context.Background()
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	nogroup, err := user.LookupGroup("nogroup")
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "garrison", "secret.json")
	secret := []byte(`{"password":"hunter2-` + strconv.Itoa(os.Getpid()) + `"}` + "\n")

	for _, step := range []struct {
		name        string
		data        []byte
		mode        fs.FileMode
		owner       string
		wantChanged bool
		wantUID     string
	}{
		{name: "new file, new directories", data: secret, mode: 0o640, owner: "nobody:nogroup", wantChanged: true, wantUID: nobody.Uid},
		{name: "same again", data: secret, mode: 0o640, owner: "nobody:nogroup", wantUID: nobody.Uid},
		{name: "same by ids", data: secret, mode: 0o640, owner: nobody.Uid + ":" + nogroup.Gid, wantUID: nobody.Uid},
		{name: "any owner", data: secret, mode: 0o640, wantUID: nobody.Uid},
		{name: "other mode", data: secret, mode: 0o600, owner: "nobody:nogroup", wantChanged: true, wantUID: nobody.Uid},
		{name: "other owner", data: secret, mode: 0o600, owner: "root:root", wantChanged: true, wantUID: "0"},
		{name: "other content", data: []byte("new\n"), mode: 0o600, owner: "root:root", wantChanged: true, wantUID: "0"},
		{name: "empty", data: nil, mode: 0o644, wantChanged: true, wantUID: "0"},
	} {
		// Steps build on each other: no t.Parallel.
		t.Run(step.name, func(t *testing.T) {
			// Whoever had the old file open keeps reading the old content:
			// the new one replaced it by rename, not by rewriting in place.
			old, _ := os.ReadFile(path)
			var oldFile *os.File
			if old != nil {
				oldFile, err = os.Open(path)
				require.NoError(t, err)
				defer oldFile.Close()
			}
			changed, err := c.WriteFile(ctx, path, step.data, step.mode, step.owner)
			require.NoError(t, err)
			require.Equal(t, step.wantChanged, changed)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(step.data), string(got))
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, step.mode, st.Mode().Perm())
			require.Equal(t, step.wantUID, strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)))
			if oldFile != nil {
				kept, err := io.ReadAll(oldFile)
				require.NoError(t, err)
				require.Equal(t, string(old), string(kept))
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file is left behind")
		})
	}
	for _, cmd := range commands {
		require.NotContains(t, cmd, "hunter2", "data never goes on a command line")
		sum := sha256.Sum256(secret)
		require.NotContains(t, cmd, hex.EncodeToString(sum[:]), "nor its sha256")
	}

	for _, tc := range []struct {
		name, path, owner string
		wantErr           []string
	}{
		{name: "relative path", path: "x", wantErr: []string{"app1", "write x", "absolute"}},
		{name: "bad owner", path: path, owner: "root", wantErr: []string{"app1", path, `"root"`, "user:group"}},
		{name: "owner with shell", path: path, owner: "root:$(true)", wantErr: []string{"user:group"}},
		{name: "unknown owner", path: path, owner: "no-such-user:root", wantErr: []string{"app1", path, "no-such-user"}},
		{name: "directory", path: dir, wantErr: []string{"app1", dir, "not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(path)
			_, err := c.WriteFile(ctx, tc.path, []byte("x"), 0o644, tc.owner)
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
			after, _ := os.ReadFile(path)
			require.Equal(t, string(before), string(after), "a failed write leaves the file alone")
			entries, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file is left behind")
		})
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.json")
	content := []byte("{\"a\": 1}\n\x00binary\xff")
	require.NoError(t, os.WriteFile(path, content, 0o600))

	got, err := c.ReadFile(ctx, path)
	require.NoError(t, err)
	require.Equal(t, content, got)

	for _, missing := range []string{filepath.Join(dir, "nope"), filepath.Join(dir, "no", "dir", "x")} {
		_, err = c.ReadFile(ctx, missing)
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.Contains(t, err.Error(), "app1")
		require.Contains(t, err.Error(), missing)
	}

	_, err = c.ReadFile(ctx, dir)
	require.Error(t, err)
	require.NotErrorIs(t, err, fs.ErrNotExist)
	require.Contains(t, err.Error(), "app1")
	require.True(t, strings.Contains(err.Error(), "Is a directory"), "%v", err)
}
