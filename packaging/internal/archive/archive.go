// Package archive writes the bundle's tree as a tar and as an ISO image,
// byte for byte the same on every build of the same tree: entries sorted,
// one fixed mtime, owner root (0/0), modes 0755/0644 by whether the owner
// may execute, no host names, users or build paths, and fixed ISO volume
// dates and ids.
package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// entry is one file or directory of the tree, by slash path.
type entry struct {
	rel  string
	dir  bool
	exec bool
	size int64
}

// walk lists root's entries sorted by path; anything but a regular file
// or a directory is an error naming it.
func walk(root string) ([]entry, error) {
	var es []entry
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			es = append(es, entry{rel: filepath.ToSlash(rel), dir: true})
		case info.Mode().IsRegular():
			es = append(es, entry{rel: filepath.ToSlash(rel), exec: info.Mode()&0o100 != 0, size: info.Size()})
		default:
			return fmt.Errorf("archive: %s: only regular files and directories belong in the bundle (mode %s)", path, info.Mode())
		}
		return nil
	})
	sort.Slice(es, func(i, j int) bool { return es[i].rel < es[j].rel })
	return es, err
}

func (e entry) mode() fs.FileMode {
	if e.dir || e.exec {
		return 0o755
	}
	return 0o644
}

// Normalize sets every entry's mode (0755 or 0644) and mtime under root, so
// tools that read them from the file system (xorriso) see the same tree
// whatever umask and clock the build ran with.
func Normalize(root string, mtime time.Time) error {
	es, err := walk(root)
	if err != nil {
		return err
	}
	// Children before parents, so setting a directory's mtime sticks.
	for i := len(es) - 1; i >= 0; i-- {
		p := filepath.Join(root, filepath.FromSlash(es[i].rel))
		if err := os.Chmod(p, es[i].mode()); err != nil {
			return err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return err
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	return os.Chtimes(root, mtime, mtime)
}

// WriteTar writes root as a tar whose single top-level directory is
// filepath.Base(root).
func WriteTar(root, out string, mtime time.Time) error {
	es, err := walk(root)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	top := filepath.Base(root)
	hdr := func(name string, mode fs.FileMode, typ byte, size int64) *tar.Header {
		return &tar.Header{
			Typeflag: typ, Name: name, Mode: int64(mode), Size: size,
			ModTime: mtime.UTC().Truncate(time.Second),
			Uname:   "root", Gname: "root",
		}
	}
	err = tw.WriteHeader(hdr(top+"/", 0o755, tar.TypeDir, 0))
	for _, e := range es {
		if err != nil {
			break
		}
		name := top + "/" + e.rel
		if e.dir {
			err = tw.WriteHeader(hdr(name+"/", 0o755, tar.TypeDir, 0))
			continue
		}
		if err = tw.WriteHeader(hdr(name, e.mode(), tar.TypeReg, e.size)); err != nil {
			break
		}
		err = copyFile(tw, filepath.Join(root, filepath.FromSlash(e.rel)), e.size)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("archive: tar %s: %w", out, err)
	}
	return nil
}

func copyFile(w io.Writer, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err == nil && n != size {
		err = fmt.Errorf("%s changed size while being archived", path)
	}
	return err
}

// WriteISO writes an ISO 9660 image (Rock Ridge and Joliet) whose root
// holds root's directory, with xorriso. Every date in the image is mtime,
// the volume id is volID, and the image's UUID derives from mtime.
// Normalize root first.
func WriteISO(ctx context.Context, root, out, volID string, mtime time.Time) error {
	stamp := mtime.UTC().Format("2006010215040500") // YYYYMMDDhhmmsscc
	parent := filepath.Dir(root)
	top := filepath.Base(root)
	args := []string{"-as", "mkisofs",
		"-o", out,
		"-r", "-J", "-joliet-long",
		"-V", volID,
		"-publisher", "Garrison", "-p", "Garrison", "-A", "Garrison offline bundle",
		"--modification-date=" + stamp,
		"--set_all_file_dates", stamp,
		"-graft-points", top + "/=" + root,
	}
	cmd := exec.CommandContext(ctx, "xorriso", args...)
	cmd.Dir = parent
	// xorriso takes SOURCE_DATE_EPOCH for every date it would otherwise
	// take from the clock; nothing else from the environment matters.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(mtime.Unix(), 10)}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(out)
		return fmt.Errorf("archive: xorriso: %w: %s", err, lastLines(stderr.String(), 8))
	}
	return nil
}

// ExtractISO copies the image's whole tree into dir with xorriso (this
// machine's kernel cannot mount iso9660).
func ExtractISO(ctx context.Context, iso, dir string) error {
	cmd := exec.CommandContext(ctx, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("archive: extract %s: %w: %s", iso, err, lastLines(stderr.String(), 8))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
