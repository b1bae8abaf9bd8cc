package debroot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The host reaches into a node's root only through these helpers. They
// resolve paths with openat2(RESOLVE_IN_ROOT): symlinks and ".." are
// resolved as a chroot would, with the root directory as "/", so an
// absolute symlink inside the root (Debian ships many, e.g. nginx's
// sites-enabled/default) can never make the host write its own files.
// Plain os.WriteFile(root+path) would follow such a link out of the root.

// resolveInRoot is the openat2 resolution used for every path in a root:
// chroot semantics, and no /proc magic links (which could point anywhere).
const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// relPath checks that path is absolute and returns it relative to the
// root ("" for the root itself).
func relPath(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("path %q is not absolute", path)
	}
	return strings.TrimPrefix(filepath.Clean(path), "/"), nil
}

// openRoot opens dir for use as the dirfd of openIn.
func openRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// openIn opens rel (relative to rootfd, which is taken as "/").
func openIn(rootfd int, rel string, flags int, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: resolveInRoot}
	for range 10 {
		fd, err := unix.Openat2(rootfd, rel, how)
		// EAGAIN: a rename raced with the resolution; the kernel asks us to retry.
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
	return -1, unix.EAGAIN
}

// mkdirAllIn creates directory rel and its missing parents (mode 0755)
// inside the root.
func mkdirAllIn(rootfd int, rel string) error {
	if rel == "" || rel == "." {
		return nil
	}
	cur := ""
	for _, comp := range strings.Split(rel, "/") {
		next := filepath.Join(cur, comp)
		fd, err := openIn(rootfd, next, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == nil {
			unix.Close(fd)
			cur = next
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return &fs.PathError{Op: "mkdir", Path: "/" + next, Err: err}
		}
		pfd, err := openIn(rootfd, cur, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return &fs.PathError{Op: "mkdir", Path: "/" + cur, Err: err}
		}
		// mkdirat with a single name relative to an already resolved
		// directory cannot leave the root. EEXIST here means a dangling
		// symlink (or a race); the open below reports it.
		err = unix.Mkdirat(pfd, comp, 0o755)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return &fs.PathError{Op: "mkdir", Path: "/" + next, Err: err}
		}
		fd, err = openIn(rootfd, next, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return &fs.PathError{Op: "mkdir", Path: "/" + next, Err: err}
		}
		err = unix.Fchmod(fd, 0o755) // whatever the umask
		unix.Close(fd)
		if err != nil {
			return &fs.PathError{Op: "chmod", Path: "/" + next, Err: err}
		}
		cur = next
	}
	return nil
}

// writeFileIn writes data to path inside the root directory dir, creating
// missing parent directories (0755); the file gets mode perm. A symlink
// on the way, the file itself included, is followed as inside a chroot.
// Only regular files are written.
func writeFileIn(dir, path string, data []byte, perm fs.FileMode) error {
	rel, err := relPath(path)
	if err != nil {
		return err
	}
	if rel == "" {
		return fmt.Errorf("cannot write %q: it is the root", path)
	}
	rootfd, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	if err := mkdirAllIn(rootfd, filepath.Dir(rel)); err != nil {
		return err
	}
	// O_NONBLOCK: opening a FIFO for writing must fail, not hang; no
	// O_TRUNC until we know it is a regular file.
	fd, err := openIn(rootfd, rel, unix.O_WRONLY|unix.O_CREAT|unix.O_NOCTTY|unix.O_NONBLOCK, uint32(perm.Perm()))
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := regular(fd, path); err != nil {
		return err
	}
	if err := unix.Ftruncate(fd, 0); err != nil {
		return &fs.PathError{Op: "truncate", Path: path, Err: err}
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Close()
}

// mkdirIn creates directory path inside the root directory dir, with
// its missing parents (0755), and gives it mode perm.
func mkdirIn(dir, path string, perm fs.FileMode) error {
	rel, err := relPath(path)
	if err != nil {
		return err
	}
	if rel == "" {
		return fmt.Errorf("cannot create %q: it is the root", path)
	}
	rootfd, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	if err := mkdirAllIn(rootfd, rel); err != nil {
		return err
	}
	fd, err := openIn(rootfd, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// readFileIn reads the regular file path inside the root directory dir.
func readFileIn(dir, path string) ([]byte, error) {
	rel, err := relPath(path)
	if err != nil {
		return nil, err
	}
	rootfd, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootfd)
	fd, err := openIn(rootfd, rel, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := regular(fd, path); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

func regular(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// createMountpoint makes sure path exists inside the root directory dir,
// as a directory (or an empty file when file is true), and that the host
// path dir+path has no symlink in it: mount(8) follows symlinks on the
// host side, so a bind onto a path through a symlink would land outside
// the intended place (perhaps outside the root). It returns dir+path.
func createMountpoint(dir, path string, file bool) (string, error) {
	rel, err := relPath(path)
	if err != nil {
		return "", err
	}
	if rel == "" {
		return "", fmt.Errorf("cannot mount onto the root %q", path)
	}
	rootfd, err := openRoot(dir)
	if err != nil {
		return "", err
	}
	defer unix.Close(rootfd)
	if file {
		if err := mkdirAllIn(rootfd, filepath.Dir(rel)); err != nil {
			return "", err
		}
		fd, err := openIn(rootfd, rel, unix.O_RDONLY|unix.O_CREAT|unix.O_NOCTTY|unix.O_NONBLOCK, 0o644)
		if err != nil {
			return "", &fs.PathError{Op: "create", Path: path, Err: err}
		}
		unix.Close(fd)
	} else if err := mkdirAllIn(rootfd, rel); err != nil {
		return "", err
	}
	if err := noSymlinks(dir, rel); err != nil {
		return "", err
	}
	return filepath.Join(dir, rel), nil
}

// noSymlinks fails when a component of dir/rel (below dir) is a symlink.
func noSymlinks(dir, rel string) error {
	cur := dir
	for _, comp := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, comp)
		fi, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink inside the root; use the path it points to", "/"+strings.TrimPrefix(strings.TrimPrefix(cur, dir), "/"))
		}
	}
	return nil
}
