package app

import (
	"context"
	"fmt"
	"time"
)

// fileStoreCheckTimeout bounds the health probe, so a hung NAS or S3
// endpoint makes the ping answer UNHEALTHY instead of hanging it.
const fileStoreCheckTimeout = 10 * time.Second

// FileStoreCheck reports whether the file store is usable: it writes,
// reads back and deletes a probe object, as Mattermost's
// TestFileStoreConnection does.
func (a *App) FileStoreCheck(ctx context.Context) error {
	if a.files == nil {
		return fmt.Errorf("files: check: %w", a.filesErr)
	}
	ctx, cancel := context.WithTimeout(ctx, fileStoreCheckTimeout)
	defer cancel()
	if err := a.files.Check(ctx); err != nil {
		return fmt.Errorf("files: check: %w", err)
	}
	return nil
}
