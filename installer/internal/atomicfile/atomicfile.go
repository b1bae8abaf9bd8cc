// Package atomicfile writes files so that a reader, or the next run after a
// crash, finds the old content or the new, never a part of either.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, giving it mode perm exactly (the umask does
// not apply). The data goes to a temporary file in path's directory, which is
// synced and renamed over path; then the directory is synced so that the
// rename survives a crash too. The directory must exist. On error the
// temporary file is gone, path is as it was unless only the final directory
// sync failed, and the error names path.
func Write(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
		}
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteNew is Write for a name that must never be replaced: it links the
// complete temporary file to path, which fails if path exists, so processes
// racing to create the same file all end up with the one that got there
// first. If path exists WriteNew leaves it alone and returns an error that
// matches fs.ErrExist; it still syncs the directory first, because another
// process may have linked the file a moment ago and the caller is about to
// rely on it.
func WriteNew(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	lerr := os.Link(tmp, path)
	os.Remove(tmp)
	if lerr != nil && !errors.Is(lerr, fs.ErrExist) {
		return fmt.Errorf("write %s: %w", path, lerr)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if lerr != nil {
		return fmt.Errorf("write %s: %w", path, fs.ErrExist)
	}
	return nil
}

// writeTemp writes data to a new temporary file next to path, with mode
// perm, synced, and returns its name. On error it leaves no file behind.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	// Dot-prefixed so that directory listings and globs skip it.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
