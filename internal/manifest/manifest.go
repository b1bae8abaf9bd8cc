// Package manifest reads, writes, signs and verifies the MANIFEST of a
// Garrison offline bundle: one "<sha256 hex>  <path>" line per regular file
// (the format of sha256sum), signed as a whole in minisign format so that a
// single signature covers every file.
//
// The packaging tool writes manifests and signatures with this package;
// garrisonctl reads and verifies them. Both sides share the path rules, so a
// manifest that Build and Format produce always passes Parse.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

const (
	// FileName is the name of the manifest at the top of a bundle directory.
	FileName = "MANIFEST"
	// SignatureName is the name of the minisign signature of the manifest.
	SignatureName = "MANIFEST.minisig"
)

// Entry is one line of a manifest: a regular file's slash-separated path
// relative to the bundle directory and the SHA-256 of its contents.
type Entry struct {
	Path   string
	SHA256 [32]byte
}

// Build walks root and returns an entry for every regular file below it,
// except MANIFEST and MANIFEST.minisig at the top, sorted bytewise by path.
// Anything that is neither a directory nor a regular file (a symlink, a
// device, a socket) is an error naming its path, as is a path the manifest
// format cannot carry. progress, if not nil, is called with the bytes hashed
// so far and the total after each file.
func Build(root string, progress func(done, total int64)) ([]Entry, error) {
	type file struct {
		rel  string
		size int64
	}
	var (
		files []file
		total int64
	)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			if !d.IsDir() {
				return fmt.Errorf("%s: not a directory", root)
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := ValidPath(rel); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case t.IsRegular():
		default:
			return fmt.Errorf("%s: %s: only directories and regular files may be in a bundle", p, describeMode(t))
		}
		if rel == FileName || rel == SignatureName {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, file{rel: rel, size: info.Size()})
		total += info.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest: build: %w", err)
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.rel, b.rel) })

	entries := make([]Entry, 0, len(files))
	var done int64
	for _, f := range files {
		sum, n, err := HashFile(filepath.Join(root, filepath.FromSlash(f.rel)))
		if err != nil {
			return nil, fmt.Errorf("manifest: build: %w", err)
		}
		done += n
		entries = append(entries, Entry{Path: f.rel, SHA256: sum})
		if progress != nil {
			progress(done, max(total, done))
		}
	}
	return entries, nil
}

// OpenRegular opens name for reading only if it is a regular file. The
// open itself neither follows a symlink nor waits on a FIFO (O_NOFOLLOW,
// O_NONBLOCK), so a file swapped after a directory walk saw it cannot
// redirect or block the read.
func OpenRegular(name string) (*os.File, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP {
			return nil, fmt.Errorf("%s: a symlink: only directories and regular files may be in a bundle", name)
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %s: only directories and regular files may be in a bundle", name, describeMode(info.Mode().Type()))
	}
	return f, nil
}

// HashFile returns the SHA-256 and size of the regular file name
// (opened with OpenRegular).
func HashFile(name string) (sum [32]byte, n int64, err error) {
	f, err := OpenRegular(name)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	if n, err = io.Copy(h, f); err != nil {
		return sum, n, fmt.Errorf("%s: %w", name, err)
	}
	h.Sum(sum[:0])
	return sum, n, nil
}

func describeMode(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeDevice != 0:
		return "device"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	default:
		return "not a regular file (mode " + t.String() + ")"
	}
}

// Format renders entries as a manifest: "<64 lowercase hex>  <path>\n" per
// entry, in the order given (Build's order is the one the format requires).
func Format(entries []Entry) []byte {
	var b bytes.Buffer
	b.Grow(len(entries) * 100)
	for _, e := range entries {
		var hx [64]byte
		hex.Encode(hx[:], e.SHA256[:])
		b.Write(hx[:])
		b.WriteString("  ")
		b.WriteString(e.Path)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Parse reads a manifest strictly: every line "<64 lowercase hex>  <path>"
// ended by "\n", paths valid (see ValidPath), sorted bytewise and unique, and
// no path that is also a directory of another. Errors name the line number.
func Parse(data []byte) ([]Entry, error) {
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("manifest: line %d: missing final newline", bytes.Count(data, []byte{'\n'})+1)
	}
	entries := make([]Entry, 0, bytes.Count(data, []byte{'\n'}))
	files := make(map[string]int, cap(entries))
	for n := 1; len(data) > 0; n++ {
		i := bytes.IndexByte(data, '\n')
		line := data[:i]
		data = data[i+1:]

		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("manifest: line %d: %w", n, err)
		}
		if k := len(entries); k > 0 {
			prev := entries[k-1].Path
			if e.Path == prev {
				return nil, fmt.Errorf("manifest: line %d: duplicate path %q", n, e.Path)
			}
			if e.Path < prev {
				return nil, fmt.Errorf("manifest: line %d: path %q is out of order (after %q; paths must be sorted bytewise)", n, e.Path, prev)
			}
		}
		// "a" and "a/b" cannot both be files. Sorted order puts "a" first.
		for dir := e.Path; ; {
			j := strings.LastIndexByte(dir, '/')
			if j < 0 {
				break
			}
			dir = dir[:j]
			if m, ok := files[dir]; ok {
				return nil, fmt.Errorf("manifest: line %d: path %q is below %q, which line %d lists as a file", n, e.Path, dir, m)
			}
		}
		files[e.Path] = n
		entries = append(entries, e)
	}
	return entries, nil
}

func parseLine(line []byte) (Entry, error) {
	var e Entry
	if len(line) == 0 {
		return e, errors.New("empty line")
	}
	if len(line) < 64+2+1 {
		return e, errors.New(`want "<64 hex digits>  <path>"`)
	}
	for _, c := range line[:64] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return e, fmt.Errorf("digest %q: want 64 lowercase hex digits", line[:64])
		}
	}
	if _, err := hex.Decode(e.SHA256[:], line[:64]); err != nil {
		return e, fmt.Errorf("digest: %w", err)
	}
	if line[64] != ' ' || line[65] != ' ' {
		return e, errors.New(`want two spaces between digest and path (text mode, no "*")`)
	}
	p := string(line[66:])
	if err := ValidPath(p); err != nil {
		return e, err
	}
	e.Path = p
	return e, nil
}

// ValidPath reports whether p can be a manifest path: relative,
// slash-separated, valid UTF-8, no empty, "." or ".." element, and no
// backslash or control character (sha256sum would escape those, and a
// newline would end the line).
func ValidPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !utf8.ValidString(p):
		return fmt.Errorf("path %q is not valid UTF-8", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is absolute", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("path %q contains a backslash or control character", p)
		}
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch elem {
		case "":
			return fmt.Errorf("path %q has an empty element", p)
		case ".", "..":
			return fmt.Errorf("path %q has a %q element", p, elem)
		}
	}
	return nil
}
