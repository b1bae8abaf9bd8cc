package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

const incomingWebhookColumns = `id, create_at, update_at, delete_at, user_id, channel_id, team_id,
	display_name, description, username, icon_url, channel_locked, last_used`

func scanIncomingWebhook(row pgx.Row) (*model.IncomingWebhook, error) {
	h := &model.IncomingWebhook{}
	err := row.Scan(&h.ID, &h.CreateAt, &h.UpdateAt, &h.DeleteAt, &h.UserID, &h.ChannelID, &h.TeamID,
		&h.DisplayName, &h.Description, &h.Username, &h.IconURL, &h.ChannelLocked, &h.LastUsed)
	if err != nil {
		return nil, mapErr(err)
	}
	return h, nil
}

func collectIncomingWebhooks(rows pgx.Rows, err error) ([]*model.IncomingWebhook, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []*model.IncomingWebhook{}
	for rows.Next() {
		h, err := scanIncomingWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, mapErr(rows.Err())
}

// CreateIncomingWebhook stores a new hook.
func (s *Store) CreateIncomingWebhook(ctx context.Context, h *model.IncomingWebhook) error {
	const q = `INSERT INTO incoming_webhooks (id, create_at, update_at, delete_at, user_id, channel_id, team_id,
		display_name, description, username, icon_url, channel_locked, last_used)
		VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9, $10, $11, 0)`
	_, err := s.pool.Exec(ctx, q, h.ID, h.CreateAt, h.UpdateAt, h.UserID, h.ChannelID, h.TeamID,
		h.DisplayName, h.Description, h.Username, h.IconURL, h.ChannelLocked)
	if err != nil {
		return fmt.Errorf("incoming webhooks: create: %w", mapErr(err))
	}
	return nil
}

// GetIncomingWebhook returns a live (not deleted) hook.
func (s *Store) GetIncomingWebhook(ctx context.Context, id string) (*model.IncomingWebhook, error) {
	const q = `SELECT ` + incomingWebhookColumns + ` FROM incoming_webhooks WHERE id = $1 AND delete_at = 0`
	h, err := scanIncomingWebhook(s.pool.QueryRow(ctx, q, id))
	if err != nil {
		return nil, fmt.Errorf("incoming webhooks: get: %w", err)
	}
	return h, nil
}

// WebhookFilter selects hooks: by team and by creator when those are not
// empty, and, when Viewer is not empty, only hooks of public channels or
// of channels the viewer is a member of (a hook's URL can post into its
// channel, so it is as private as the channel).
type WebhookFilter struct {
	TeamID, UserID, Viewer string
}

const incomingWebhookFilter = `delete_at = 0 AND ($1 = '' OR team_id = $1) AND ($2 = '' OR user_id = $2)
	AND ($3 = '' OR EXISTS (SELECT 1 FROM channels c WHERE c.id = incoming_webhooks.channel_id
		AND (c.type = 'O' OR EXISTS (SELECT 1 FROM channel_members m WHERE m.channel_id = c.id AND m.user_id = $3))))`

// ListIncomingWebhooks returns a page of live hooks, oldest first.
func (s *Store) ListIncomingWebhooks(ctx context.Context, f WebhookFilter, offset, limit int) ([]*model.IncomingWebhook, error) {
	const q = `SELECT ` + incomingWebhookColumns + ` FROM incoming_webhooks WHERE ` + incomingWebhookFilter + `
		ORDER BY create_at, id OFFSET $4 LIMIT $5`
	out, err := collectIncomingWebhooks(s.pool.Query(ctx, q, f.TeamID, f.UserID, f.Viewer, offset, limit))
	if err != nil {
		return nil, fmt.Errorf("incoming webhooks: list: %w", err)
	}
	return out, nil
}

// CountIncomingWebhooks counts the hooks ListIncomingWebhooks pages
// through.
func (s *Store) CountIncomingWebhooks(ctx context.Context, f WebhookFilter) (int64, error) {
	const q = `SELECT count(*) FROM incoming_webhooks WHERE ` + incomingWebhookFilter
	var n int64
	if err := s.pool.QueryRow(ctx, q, f.TeamID, f.UserID, f.Viewer).Scan(&n); err != nil {
		return 0, fmt.Errorf("incoming webhooks: count: %w", mapErr(err))
	}
	return n, nil
}

// UpdateIncomingWebhook writes a live hook's editable fields and returns
// the stored hook; ErrNotFound if it was deleted meanwhile.
func (s *Store) UpdateIncomingWebhook(ctx context.Context, h *model.IncomingWebhook) (*model.IncomingWebhook, error) {
	const q = `UPDATE incoming_webhooks SET update_at = $2, channel_id = $3, display_name = $4, description = $5,
		username = $6, icon_url = $7, channel_locked = $8
		WHERE id = $1 AND delete_at = 0 RETURNING ` + incomingWebhookColumns
	out, err := scanIncomingWebhook(s.pool.QueryRow(ctx, q, h.ID, h.UpdateAt, h.ChannelID, h.DisplayName,
		h.Description, h.Username, h.IconURL, h.ChannelLocked))
	if err != nil {
		return nil, fmt.Errorf("incoming webhooks: update: %w", err)
	}
	return out, nil
}

// DeleteIncomingWebhook marks a live hook deleted; ErrNotFound if it was
// not live.
func (s *Store) DeleteIncomingWebhook(ctx context.Context, id string, now int64) error {
	const q = `UPDATE incoming_webhooks SET delete_at = $2, update_at = $2 WHERE id = $1 AND delete_at = 0`
	tag, err := s.pool.Exec(ctx, q, id, now)
	if err != nil {
		return fmt.Errorf("incoming webhooks: delete: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("incoming webhooks: delete: %w", ErrNotFound)
	}
	return nil
}

// TouchIncomingWebhook records that a hook was used.
func (s *Store) TouchIncomingWebhook(ctx context.Context, id string, now int64) error {
	const q = `UPDATE incoming_webhooks SET last_used = $2 WHERE id = $1 AND last_used < $2`
	if _, err := s.pool.Exec(ctx, q, id, now); err != nil {
		return fmt.Errorf("incoming webhooks: touch: %w", mapErr(err))
	}
	return nil
}
