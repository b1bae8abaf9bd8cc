package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/garrison-chat/garrison/internal/manifest"
)

// Formats of a bundle on disk.
const (
	FormatTar       = "tar"
	FormatDirectory = "directory"
)

// source is a bundle found at a path given by the user.
type source struct {
	path   string // absolute, as given (symlinks not resolved) for receipts
	format string
	// dir is the bundle directory on disk (FormatDirectory), symlinks resolved.
	dir string
}

// locate decides what path is: an uncompressed tar, a bundle directory
// garrison-<V>/, or a directory holding exactly one (a mounted ISO).
func locate(path string) (*source, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	switch {
	case info.IsDir():
		dir, err := findBundleDir(abs)
		if err != nil {
			return nil, err
		}
		return &source{path: abs, format: FormatDirectory, dir: dir}, nil
	case info.Mode().IsRegular():
		if err := sniff(abs); err != nil {
			return nil, err
		}
		return &source{path: abs, format: FormatTar}, nil
	default:
		return nil, fmt.Errorf("%s: neither a bundle tar file nor a directory", path)
	}
}

func findBundleDir(dir string) (string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(filepath.Join(real, manifest.FileName)); err == nil {
		return real, nil
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "garrison-") {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 1:
		return filepath.Join(real, found[0]), nil
	case 0:
		if strings.HasPrefix(filepath.Base(real), "garrison-") {
			return real, nil // a bundle directory without its MANIFEST: verification will say so
		}
		return "", fmt.Errorf("%s: no %s here and no garrison-<version>/ directory: give the bundle directory, or the directory that holds it (a mounted ISO)", dir, manifest.FileName)
	default:
		return "", fmt.Errorf("%s: several bundle directories (%s): give one of them", dir, strings.Join(found, ", "))
	}
}

// sniff refuses files that are obviously not an uncompressed tar, with a hint.
func sniff(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var head [6]byte
	n, _ := io.ReadFull(f, head[:])
	for _, m := range []struct {
		magic []byte
		what  string
	}{
		{[]byte{0x1f, 0x8b}, "gzip"},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz"},
		{[]byte("BZh"), "bzip2"},
	} {
		if bytes.HasPrefix(head[:n], m.magic) {
			return fmt.Errorf("%s: %s-compressed; the bundle is an uncompressed .tar: decompress it first", path, m.what)
		}
	}
	var iso [5]byte
	if _, err := f.ReadAt(iso[:], 0x8001); err == nil && string(iso[:]) == "CD001" {
		return fmt.Errorf("%s: an ISO image; mount it (mount -o loop,ro %s /mnt) and verify the mounted directory", path, path)
	}
	return nil
}

// entry is one member of a bundle, named as in the tar ("garrison-1.0/repo/Packages").
type entry struct {
	name    string
	dir     bool
	regular bool
	typ     string // what a non-regular entry is
	size    int64
	open    func() (io.ReadCloser, error)
}

// errCorrupt wraps errors from the tar format itself (truncated, damaged).
type errCorrupt struct {
	entries int
	last    string
	err     error
}

func (e *errCorrupt) Error() string {
	what := "tar is damaged"
	if errors.Is(e.err, io.ErrUnexpectedEOF) || errors.Is(e.err, errNoEndMarker) {
		what = "tar is truncated"
	}
	if e.entries == 0 {
		return fmt.Sprintf("%s at its first entry (not a tar file?): %v", what, e.err)
	}
	return fmt.Sprintf("%s after %d entries (last: %s): %v", what, e.entries, e.last, e.err)
}

func (e *errCorrupt) Unwrap() error { return e.err }

// walkTar calls visit for every member of the tar stream r. An error of the
// tar format, or of reading a member, comes back as *errCorrupt.
func walkTar(r io.Reader, visit func(*entry) error) error {
	tail := &tailReader{r: r}
	var src io.Reader = tail
	if rs, ok := r.(io.ReadSeeker); ok {
		src = &tailReadSeeker{tailReader: tail, s: rs} // let the tar reader seek over contents nobody reads
	}
	tr := tar.NewReader(src)
	n, last := 0, ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// The reader also says EOF when the stream stops cleanly between
			// two members; only the two zero blocks mark a complete tar.
			if !tail.endMarker() {
				return &errCorrupt{entries: n, last: last, err: errNoEndMarker}
			}
			return nil
		}
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			err = nil // GODEBUG=tarinsecurepath=0: visit reports the name
		}
		if err != nil {
			return &errCorrupt{entries: n, last: last, err: err}
		}
		n, last = n+1, hdr.Name
		e := entry{name: hdr.Name, size: hdr.Size}
		switch hdr.Typeflag {
		case tar.TypeDir:
			e.dir = true
		case tar.TypeReg: // the reader turns the legacy '\x00' into TypeReg
			if isSparse(hdr) {
				// A sparse member's holes read as zeros that are not in the
				// stream: a few bytes of tar could claim terabytes to hash.
				e.typ = "sparse file"
				break
			}
			e.regular = true
			e.open = func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }
		case tar.TypeGNUSparse:
			e.typ = "sparse file"
		case tar.TypeXGlobalHeader:
			continue // PAX global header: metadata, not a member
		case tar.TypeSymlink:
			e.typ = "symlink to " + hdr.Linkname
		case tar.TypeLink:
			e.typ = "hard link to " + hdr.Linkname
		case tar.TypeChar, tar.TypeBlock:
			e.typ = "device"
		case tar.TypeFifo:
			e.typ = "named pipe"
		default:
			e.typ = fmt.Sprintf("tar entry of type %q", hdr.Typeflag)
		}
		if err := visit(&e); err != nil {
			return &errCorrupt{entries: n, last: last, err: err}
		}
	}
}

// isSparse reports a PAX-format GNU sparse member, which the tar reader
// presents as a regular file.
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

var errNoEndMarker = errors.New("no end-of-archive marker")

// tailReader remembers the last two blocks read, to see the end-of-archive marker.
type tailReader struct {
	r    io.Reader
	tail [1024]byte
	n    int64
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= len(t.tail) {
		copy(t.tail[:], p[n-len(t.tail):n])
	} else if n > 0 {
		copy(t.tail[:], t.tail[n:])
		copy(t.tail[len(t.tail)-n:], p[:n])
	}
	t.n += int64(n)
	return n, err
}

// tailReadSeeker is a tailReader over a seekable stream. Seeks skip member
// contents only; the end-of-archive blocks are always read.
type tailReadSeeker struct {
	*tailReader
	s io.Seeker
}

func (t *tailReadSeeker) Seek(offset int64, whence int) (int64, error) {
	return t.s.Seek(offset, whence)
}

func (t *tailReader) endMarker() bool {
	return t.n >= int64(len(t.tail)) && t.tail == [1024]byte{}
}

// walkDir calls visit for everything below the bundle directory dir, named
// "<base of dir>/<relative path>" as in a tar, in lexical order.
func walkDir(ctx context.Context, dir string, visit func(*entry) error) error {
	top := filepath.Base(dir)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		e := entry{name: top + "/" + filepath.ToSlash(rel)}
		switch t := d.Type(); {
		case t.IsDir():
			e.dir = true
		case t.IsRegular():
			e.regular = true
			e.open = func() (io.ReadCloser, error) { return openRegular(p) }
			if info, err := d.Info(); err == nil {
				e.size = info.Size()
			}
		default:
			e.typ = describe(t, p)
		}
		return visit(&e)
	})
}

func openRegular(p string) (io.ReadCloser, error) { return manifest.OpenRegular(p) }

func describe(t fs.FileMode, p string) string {
	switch {
	case t&fs.ModeSymlink != 0:
		if target, err := os.Readlink(p); err == nil {
			return "symlink to " + target
		}
		return "symlink"
	case t&fs.ModeDevice != 0:
		return "device"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	default:
		return "not a regular file (" + t.String() + ")"
	}
}

// dirSize adds up the regular files below dir, for progress totals.
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// countingReader counts bytes for progress and stops when ctx is done.
type countingReader struct {
	ctx      context.Context
	r        io.Reader
	done     *int64
	total    int64
	progress func(done, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	*c.done += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(*c.done, max(c.total, *c.done))
	}
	return n, err
}

// sortedKeys returns the keys of m in bytewise order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
