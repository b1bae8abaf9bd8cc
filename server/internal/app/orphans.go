package app

import (
	"context"
	"errors"
	"time"
)

// Uploads that no post claims within orphanFileAge are removed: a client
// that uploaded and then gave up (closed the tab, lost the network) must
// not leave files on the store for ever.
const (
	orphanFileAge   = 24 * time.Hour
	orphanBatch     = 100
	orphanMaxBatchs = 50
)

// CleanupOrphanFiles removes files uploaded more than a day ago and never
// attached to a post: their rows, then their objects (original, thumbnail
// and preview). It returns how many files went. An object that cannot be
// removed is logged with its key and left; its row is gone, so nothing
// refers to it any more.
func (a *App) CleanupOrphanFiles(ctx context.Context) (int, error) {
	if a.files == nil {
		return 0, nil
	}
	before := a.now().Add(-orphanFileAge).UnixMilli()
	n := 0
	for i := 0; i < orphanMaxBatchs; i++ {
		files, err := a.store.DeleteOrphanFiles(ctx, before, orphanBatch)
		if err != nil {
			return n, err
		}
		var errs []error
		for _, f := range files {
			for _, key := range []string{f.Path, f.ThumbnailPath, f.PreviewPath} {
				if key == "" {
					continue
				}
				if err := a.files.Delete(ctx, key); err != nil {
					a.log.Warn("remove object of an unattached upload", "key", key, "file_id", f.ID, "err", err)
					errs = append(errs, err)
				}
			}
		}
		n += len(files)
		if len(files) < orphanBatch {
			return n, errors.Join(errs...)
		}
	}
	return n, nil
}
