package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// fileColumns selects a file_infos row as f.
const fileColumns = `f.id, f.creator_id, f.post_id, f.channel_id, f.create_at, f.update_at, f.delete_at,
	f.path, f.thumbnail_path, f.preview_path, f.name, f.extension, f.size, f.mime_type,
	f.width, f.height, f.has_preview_image, f.mini_preview, f.remote_id, f.archived`

func scanFileInfo(row pgx.Row) (*model.FileInfo, error) {
	f := &model.FileInfo{}
	var mini []byte
	var remote string
	err := row.Scan(&f.ID, &f.CreatorID, &f.PostID, &f.ChannelID, &f.CreateAt, &f.UpdateAt, &f.DeleteAt,
		&f.Path, &f.ThumbnailPath, &f.PreviewPath, &f.Name, &f.Extension, &f.Size, &f.MimeType,
		&f.Width, &f.Height, &f.HasPreviewImage, &mini, &remote, &f.Archived)
	if err != nil {
		return nil, mapErr(err)
	}
	if mini != nil {
		f.MiniPreview = &mini
	}
	f.RemoteID = &remote
	return f, nil
}

// CreateFileInfos stores the rows of one upload in one transaction: all
// or none.
func (s *Store) CreateFileInfos(ctx context.Context, files []*model.FileInfo) error {
	const q = `INSERT INTO file_infos (id, creator_id, post_id, channel_id, create_at, update_at, delete_at,
		path, thumbnail_path, preview_path, name, extension, size, mime_type, width, height,
		has_preview_image, mini_preview)
	VALUES ($1, $2, '', $3, $4, $4, 0, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		for _, f := range files {
			var mini []byte
			if f.MiniPreview != nil {
				mini = *f.MiniPreview
			}
			if _, err := tx.Exec(ctx, q, f.ID, f.CreatorID, f.ChannelID, f.CreateAt, f.Path, f.ThumbnailPath,
				f.PreviewPath, f.Name, f.Extension, f.Size, f.MimeType, f.Width, f.Height, f.HasPreviewImage, mini); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("files: create: %w", mapErr(err))
	}
	return nil
}

// liveFile keeps the files that are not deleted and whose post, if they
// have one, is not deleted either: a deleted post takes its files with it.
const liveFile = `f.delete_at = 0 AND (f.post_id = '' OR EXISTS (SELECT 1 FROM posts p
	WHERE p.id = f.post_id AND p.delete_at = 0))`

// GetFileInfo returns a live file; ErrNotFound if it is missing, deleted,
// or attached to a deleted post.
func (s *Store) GetFileInfo(ctx context.Context, id string) (*model.FileInfo, error) {
	f, err := scanFileInfo(s.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM file_infos f
		WHERE f.id = $1 AND `+liveFile, id))
	if err != nil {
		return nil, fmt.Errorf("files: get: %w", err)
	}
	return f, nil
}

// FileInfosForPosts returns the live files attached to the given posts,
// oldest first, keyed by post id; posts without files have no key.
func (s *Store) FileInfosForPosts(ctx context.Context, postIDs []string) (map[string][]*model.FileInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+fileColumns+` FROM file_infos f
		WHERE f.post_id = ANY($1) AND f.delete_at = 0 ORDER BY f.create_at, f.id`, postIDs)
	if err != nil {
		return nil, fmt.Errorf("files: for posts: %w", mapErr(err))
	}
	defer rows.Close()
	out := map[string][]*model.FileInfo{}
	for rows.Next() {
		f, err := scanFileInfo(rows)
		if err != nil {
			return nil, fmt.Errorf("files: for posts: %w", err)
		}
		out[f.PostID] = append(out[f.PostID], f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("files: for posts: %w", mapErr(err))
	}
	return out, nil
}

// DeleteOrphanFiles removes up to limit files that were uploaded before
// the cut-off (ms) and never attached to a post, and returns them so their
// objects can be removed. The rows go first, in one statement that locks
// them: a post attaching one of them at the same moment either wins (the
// row is no longer an orphan and is skipped) or waits and then finds
// nothing to attach. Several nodes may run it at once (SKIP LOCKED).
func (s *Store) DeleteOrphanFiles(ctx context.Context, before int64, limit int) ([]*model.FileInfo, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM file_infos f WHERE f.id IN (
		SELECT id FROM file_infos WHERE post_id = '' AND create_at < $1
		ORDER BY create_at LIMIT $2 FOR UPDATE SKIP LOCKED)
	RETURNING `+fileColumns, before, limit)
	if err != nil {
		return nil, fmt.Errorf("files: delete orphans: %w", mapErr(err))
	}
	defer rows.Close()
	var out []*model.FileInfo
	for rows.Next() {
		f, err := scanFileInfo(rows)
		if err != nil {
			return nil, fmt.Errorf("files: delete orphans: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("files: delete orphans: %w", mapErr(err))
	}
	return out, nil
}
