package debroot

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteFileInStaysInRoot: symlinks inside a root are followed as in a
// chroot; nothing outside the root is ever written. The "host" files the
// links aim at live in a temporary directory, never in the real /etc.
func TestWriteFileInStaysInRoot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup builds the root's links; host is the victim's directory.
		setup   func(t *testing.T, root, host string)
		path    string
		wantErr string
		// wantAt is where the data must land, relative to the root.
		wantAt string
	}{
		{
			name:   "plain file, parents created",
			setup:  func(t *testing.T, root, host string) {},
			path:   "/etc/systemd/system/x.service.d/override.conf",
			wantAt: "etc/systemd/system/x.service.d/override.conf",
		},
		{
			// nginx's sites-enabled/default: an absolute link that
			// os.WriteFile(root+path) would follow to the host's file.
			name: "absolute symlink to a host path",
			setup: func(t *testing.T, root, host string) {
				require.NoError(t, os.MkdirAll(filepath.Join(root, host), 0o755))
				require.NoError(t, os.MkdirAll(filepath.Join(root, "etc", "sites-enabled"), 0o755))
				require.NoError(t, os.Symlink(filepath.Join(host, "default"), filepath.Join(root, "etc", "sites-enabled", "default")))
			},
			path:   "/etc/sites-enabled/default",
			wantAt: "HOST/default", // the root's copy of the host path
		},
		{
			name: "absolute symlink whose target is missing in the root",
			setup: func(t *testing.T, root, host string) {
				require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
				require.NoError(t, os.Symlink(filepath.Join(host, "default"), filepath.Join(root, "etc", "link")))
			},
			path:    "/etc/link",
			wantErr: "no such file or directory",
		},
		{
			name: "absolute symlink in a parent directory",
			setup: func(t *testing.T, root, host string) {
				require.NoError(t, os.MkdirAll(filepath.Join(root, host), 0o755))
				require.NoError(t, os.Symlink(host, filepath.Join(root, "conf")))
			},
			path:   "/conf/default",
			wantAt: "HOST/default",
		},
		{
			name: "relative symlink climbing out",
			setup: func(t *testing.T, root, host string) {
				require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
				require.NoError(t, os.Symlink("../../../../../../../../.."+host+"/default", filepath.Join(root, "etc", "up")))
				require.NoError(t, os.MkdirAll(filepath.Join(root, host), 0o755))
			},
			path:   "/etc/up",
			wantAt: "HOST/default", // ".." stops at the root
		},
		{
			name:   "dot-dot in the path",
			setup:  func(t *testing.T, root, host string) {},
			path:   "/../../../../tmp/x",
			wantAt: "tmp/x",
		},
		{
			name: "link to a directory",
			setup: func(t *testing.T, root, host string) {
				require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
				require.NoError(t, os.Symlink("/run", filepath.Join(root, "var-run")))
			},
			path:   "/var-run/x.pid",
			wantAt: "run/x.pid",
		},
		{
			name: "a FIFO is refused, not waited on",
			setup: func(t *testing.T, root, host string) {
				require.NoError(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
			},
			path:    "/fifo",
			wantErr: "no such device or address",
		},
		{
			name: "a directory is refused",
			setup: func(t *testing.T, root, host string) {
				require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
			},
			path:    "/etc",
			wantErr: "is a directory",
		},
		{name: "relative path", setup: func(t *testing.T, root, host string) {}, path: "etc/x", wantErr: "not absolute"},
		{name: "the root itself", setup: func(t *testing.T, root, host string) {}, path: "/", wantErr: "it is the root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root, host := t.TempDir(), t.TempDir()
			victim := filepath.Join(host, "default")
			require.NoError(t, os.WriteFile(victim, []byte("host file\n"), 0o644))
			tt.setup(t, root, host)

			err := writeFileIn(root, tt.path, []byte("node data\n"), 0o640)
			got, rerr := os.ReadFile(victim)
			require.NoError(t, rerr)
			require.Equal(t, "host file\n", string(got), "the host file is untouched")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			at := filepath.Join(root, tt.wantAt)
			if len(tt.wantAt) > 4 && tt.wantAt[:5] == "HOST/" {
				at = filepath.Join(root, host, tt.wantAt[5:])
			}
			fi, err := os.Lstat(at)
			require.NoError(t, err)
			require.True(t, fi.Mode().IsRegular())
			require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
			b, err := os.ReadFile(at)
			require.NoError(t, err)
			require.Equal(t, "node data\n", string(b))

			r, err := readFileIn(root, tt.path)
			require.NoError(t, err)
			require.Equal(t, "node data\n", string(r))
		})
	}
}

func TestWriteFileInReplacesAndChmods(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	require.NoError(t, writeFileIn(root, "/a/b", []byte("a long first version\n"), 0o600))
	require.NoError(t, writeFileIn(root, "/a/b", []byte("short\n"), 0o755))
	b, err := os.ReadFile(filepath.Join(root, "a", "b"))
	require.NoError(t, err)
	require.Equal(t, "short\n", string(b))
	fi, err := os.Stat(filepath.Join(root, "a", "b"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	di, err := os.Stat(filepath.Join(root, "a"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), di.Mode().Perm())
}

func TestCreateMountpoint(t *testing.T) {
	t.Parallel()
	root, host := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(host, filepath.Join(root, "media")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, host), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "mnt"), 0o755))
	require.NoError(t, os.Symlink("/mnt", filepath.Join(root, "cdrom")))

	p, err := createMountpoint(root, "/srv/garrison", false)
	require.NoError(t, err)
	require.DirExists(t, p)
	require.Equal(t, filepath.Join(root, "srv", "garrison"), p)

	p, err = createMountpoint(root, "/etc/bundle.conf", true)
	require.NoError(t, err)
	require.FileExists(t, p)

	_, err = createMountpoint(root, "/media/garrison", false)
	require.ErrorContains(t, err, "/media is a symlink inside the root")
	require.NoDirExists(t, filepath.Join(host, "garrison"), "nothing created on the host")
	require.DirExists(t, filepath.Join(root, host, "garrison"), "created inside the root")

	_, err = createMountpoint(root, "/cdrom/x", false)
	require.ErrorContains(t, err, "/cdrom is a symlink inside the root")
	require.DirExists(t, filepath.Join(root, "mnt", "x"), "created where the link points, inside the root")
}

func TestUnescapeMountinfo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/tmp/a`:          "/tmp/a",
		`/tmp/a\040b`:     "/tmp/a b",
		`/tmp/tab\011x`:   "/tmp/tab\tx",
		`/back\134slash`:  `/back\slash`,
		`/end\04`:         `/end\04`,
		`/not\999octal\`:  `/not\999octal\`,
		`/nl\012and\040s`: "/nl\nand s",
	} {
		require.Equal(t, want, unescapeMountinfo(in), in)
	}
}

func TestCheckSpaceAddsNeedsOnOneFileSystem(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir() // same file system
	var sfs syscall.Statfs_t
	require.NoError(t, syscall.Statfs(a, &sfs))
	avail := sfs.Bavail * uint64(sfs.Bsize)

	require.Empty(t, checkSpace(map[string]uint64{a: 1 << 20, filepath.Join(b, "not", "yet"): 1 << 20}))
	msgs := checkSpace(map[string]uint64{a: avail / 2, b: avail/2 + 1<<30})
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0], "disk space:")
	require.Contains(t, msgs[0], a)
	require.Contains(t, msgs[0], b)
}

func TestMkdirInStaysInRootAndChmods(t *testing.T) {
	t.Parallel()
	root, host := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(host, filepath.Join(root, "home")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, host), 0o755))

	require.NoError(t, mkdirIn(root, "/root/.ssh", 0o700))
	fi, err := os.Stat(filepath.Join(root, "root", ".ssh"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.NoError(t, mkdirIn(root, "/root/.ssh", 0o750), "an existing directory gets the mode")
	fi, err = os.Stat(filepath.Join(root, "root", ".ssh"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o750), fi.Mode().Perm())

	// Through an absolute link: created where it points inside the root.
	require.NoError(t, mkdirIn(root, "/home/admin", 0o700))
	require.DirExists(t, filepath.Join(root, host, "admin"))
	require.NoDirExists(t, filepath.Join(host, "admin"), "nothing created on the host")

	require.ErrorContains(t, mkdirIn(root, "/", 0o700), "it is the root")
	require.ErrorContains(t, mkdirIn(root, "rel", 0o700), "not absolute")
	require.NoError(t, writeFileIn(root, "/etc/file", nil, 0o644))
	require.Error(t, mkdirIn(root, "/etc/file", 0o700), "a file is not a directory")
}

func TestDiskFree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	free, err := DiskFree(dir)
	require.NoError(t, err)
	require.Positive(t, free)
	missing, err := DiskFree(filepath.Join(dir, "not", "yet"))
	require.NoError(t, err, "measured at the nearest existing parent")
	require.InDelta(t, float64(free), float64(missing), 1<<30)
	mem, err := MemAvailable()
	require.NoError(t, err)
	require.Positive(t, mem)
}
