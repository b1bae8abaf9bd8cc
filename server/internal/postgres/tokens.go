package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

const userAccessTokenColumns = `id, user_id, description, is_active`

func scanUserAccessToken(row pgx.Row) (*model.UserAccessToken, error) {
	t := &model.UserAccessToken{}
	if err := row.Scan(&t.ID, &t.UserID, &t.Description, &t.IsActive); err != nil {
		return nil, mapErr(err)
	}
	return t, nil
}

// CreateUserAccessToken stores t; only a hash of t.Token is kept.
func (s *Store) CreateUserAccessToken(ctx context.Context, t *model.UserAccessToken, createAt int64) error {
	const q = `INSERT INTO user_access_tokens (id, token_hash, user_id, description, is_active, create_at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	if _, err := s.pool.Exec(ctx, q, t.ID, HashToken(t.Token), t.UserID, t.Description, t.IsActive, createAt); err != nil {
		return fmt.Errorf("user access tokens: create: %w", mapErr(err))
	}
	return nil
}

// GetUserAccessToken returns a token (without its value) by id.
func (s *Store) GetUserAccessToken(ctx context.Context, id string) (*model.UserAccessToken, error) {
	const q = `SELECT ` + userAccessTokenColumns + ` FROM user_access_tokens WHERE id = $1`
	t, err := scanUserAccessToken(s.pool.QueryRow(ctx, q, id))
	if err != nil {
		return nil, fmt.Errorf("user access tokens: get: %w", err)
	}
	return t, nil
}

// ListUserAccessTokens returns a page of tokens (without their values),
// oldest first: a user's, or everyone's when userID is empty.
func (s *Store) ListUserAccessTokens(ctx context.Context, userID string, offset, limit int) ([]*model.UserAccessToken, error) {
	const q = `SELECT ` + userAccessTokenColumns + ` FROM user_access_tokens
		WHERE ($1 = '' OR user_id = $1) ORDER BY create_at, id OFFSET $2 LIMIT $3`
	rows, err := s.pool.Query(ctx, q, userID, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("user access tokens: list: %w", mapErr(err))
	}
	defer rows.Close()
	out := []*model.UserAccessToken{}
	for rows.Next() {
		t, err := scanUserAccessToken(rows)
		if err != nil {
			return nil, fmt.Errorf("user access tokens: list: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("user access tokens: list: %w", mapErr(err))
	}
	return out, nil
}

// DeleteUserAccessToken removes a token; ErrNotFound if it did not exist.
func (s *Store) DeleteUserAccessToken(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM user_access_tokens WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("user access tokens: delete: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user access tokens: delete: %w", ErrNotFound)
	}
	return nil
}

// SetUserAccessTokenActive enables or disables a token; ErrNotFound if it
// does not exist.
func (s *Store) SetUserAccessTokenActive(ctx context.Context, id string, active bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE user_access_tokens SET is_active = $2 WHERE id = $1`, id, active)
	if err != nil {
		return fmt.Errorf("user access tokens: set active: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user access tokens: set active: %w", ErrNotFound)
	}
	return nil
}

// GetSessionOrAccessToken looks a bearer token up in one query: as a
// session, or else (when tokens are enabled) as an active personal access
// token of an active user, which yields a session built for it: the
// token's id as session id, the user's current roles, no expiry, last
// activity now, and Mattermost's props for such sessions.
func (s *Store) GetSessionOrAccessToken(ctx context.Context, token string, tokensEnabled bool, now int64) (*model.Session, error) {
	const q = `SELECT id, csrf, create_at, expires_at, last_activity_at, user_id, device_id, roles, props
		FROM sessions WHERE token_hash = $1
	UNION ALL
	SELECT t.id, '', t.create_at, 0, $3::bigint, t.user_id, '', u.roles,
		jsonb_build_object('` + model.SessionPropType + `', '` + model.SessionTypeUserAccessToken + `',
			'` + model.SessionPropUserAccessTokenID + `', t.id)
		FROM user_access_tokens t JOIN users u ON u.id = t.user_id
		WHERE $2::boolean AND t.token_hash = $1 AND t.is_active AND u.delete_at = 0
	LIMIT 1`
	sess := &model.Session{}
	err := s.pool.QueryRow(ctx, q, HashToken(token), tokensEnabled, now).Scan(&sess.ID, &sess.CSRF, &sess.CreateAt,
		&sess.ExpiresAt, &sess.LastActivityAt, &sess.UserID, &sess.DeviceID, &sess.Roles, &sess.Props)
	if err != nil {
		return nil, fmt.Errorf("sessions: get by token: %w", mapErr(err))
	}
	if sess.Props == nil {
		sess.Props = model.StringMap{}
	}
	sess.TeamMembers = []*model.TeamMember{}
	return sess, nil
}
