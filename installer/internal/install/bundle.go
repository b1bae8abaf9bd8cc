package install

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/garrison-chat/garrison/installer/internal/bundle"
)

// PrepareBundle verifies the bundle at path (a tar or a directory) and
// returns the directory to install from and the verification receipt. A
// tar is extracted under stateDir/bundles after it verified, and the
// extracted tree is verified again, so the files copied to the nodes are
// the ones the signature covers; a later run reuses the tree once it
// verifies.
func PrepareBundle(ctx context.Context, path, stateDir string, o bundle.VerifyOptions) (string, *bundle.Receipt, error) {
	r, err := verify(ctx, path, o)
	if err != nil {
		return "", r, err
	}
	if r.Bundle.Format != "tar" {
		return r.Bundle.Dir, r, nil
	}
	top := "garrison-" + r.Version
	dest := filepath.Join(stateDir, "bundles", top)
	if _, err := os.Stat(dest); err == nil {
		if r2, err := verify(ctx, dest, o); err == nil && r2.ManifestSHA256 == r.ManifestSHA256 {
			return dest, r2, nil
		}
		if err := os.RemoveAll(dest); err != nil {
			return "", r, fmt.Errorf("install: remove the stale copy %s: %w", dest, err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Join(stateDir, "bundles"), "."+top+".")
	if err != nil {
		if err := os.MkdirAll(filepath.Join(stateDir, "bundles"), 0o700); err != nil {
			return "", r, fmt.Errorf("install: %w", err)
		}
		if tmp, err = os.MkdirTemp(filepath.Join(stateDir, "bundles"), "."+top+"."); err != nil {
			return "", r, fmt.Errorf("install: %w", err)
		}
	}
	defer os.RemoveAll(tmp)
	if err := extract(ctx, path, tmp, top); err != nil {
		return "", r, fmt.Errorf("install: extract %s: %w", path, err)
	}
	r2, err := verify(ctx, filepath.Join(tmp, top), o)
	if err != nil {
		return "", r2, fmt.Errorf("install: the extracted copy: %w", err)
	}
	if r2.ManifestSHA256 != r.ManifestSHA256 {
		return "", r2, errors.New("install: the extracted bundle is not the one verified")
	}
	if err := os.Rename(filepath.Join(tmp, top), dest); err != nil {
		return "", r2, fmt.Errorf("install: %w", err)
	}
	return dest, r2, nil
}

// verify is bundle.Verify with a failed verification as an error.
func verify(ctx context.Context, path string, o bundle.VerifyOptions) (*bundle.Receipt, error) {
	r, err := bundle.Verify(ctx, path, o)
	if err != nil {
		return r, err
	}
	if r.Result != bundle.ResultPass {
		return r, fmt.Errorf("the bundle %s failed verification (%d problem(s)); `garrisonctl bundle verify %s` names them", path, len(r.Problems), path)
	}
	return r, nil
}

// extract unpacks the regular files and directories under top/ of the tar
// into dir; anything else (links, devices, paths outside top/) is refused.
func extract(ctx context.Context, path, dir, top string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if name != top && !strings.HasPrefix(name, top+"/") || strings.Contains(name, "..") {
			return fmt.Errorf("%s is outside %s/", h.Name, top)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: not a regular file or directory", h.Name)
		}
	}
}
