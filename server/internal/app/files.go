package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// FileStoreCheck reports whether the local file store is usable: the
// directory exists and a file can be written and removed in it, as
// Mattermost's TestFileStoreConnection does.
func (a *App) FileStoreCheck(ctx context.Context) error {
	dir := a.set.FileDirectory
	if dir == "" {
		return fmt.Errorf("files: no directory configured")
	}
	f, err := os.CreateTemp(dir, ".garrison-health-*")
	if err != nil {
		return fmt.Errorf("files: check: %w", err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	rerr := os.Remove(name)
	for _, e := range []error{werr, cerr, rerr} {
		if e != nil {
			return fmt.Errorf("files: check %s: %w", filepath.Base(name), e)
		}
	}
	return nil
}
