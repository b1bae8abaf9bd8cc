package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// HashToken returns the stored form of a session token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

const sessionColumns = `id, csrf, create_at, expires_at, last_activity_at, user_id, device_id, roles, props`

func scanSession(row pgx.Row) (*model.Session, error) {
	s := &model.Session{}
	err := row.Scan(&s.ID, &s.CSRF, &s.CreateAt, &s.ExpiresAt, &s.LastActivityAt, &s.UserID, &s.DeviceID, &s.Roles, &s.Props)
	if err != nil {
		return nil, mapErr(err)
	}
	if s.Props == nil {
		s.Props = model.StringMap{}
	}
	s.TeamMembers = []*model.TeamMember{}
	return s, nil
}

// CreateSession stores sess; only a hash of sess.Token is kept. When
// sess.DeviceID is set, the user's other sessions on that device are
// revoked in the same transaction (Mattermost's rule) and their ids
// returned.
func (s *Store) CreateSession(ctx context.Context, sess *model.Session) (revoked []string, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		// Lock the user before any session row, in the same order as
		// password and role changes (user, then sessions), so the two
		// cannot deadlock; the sessions_follow_user trigger then finds
		// the lock already held.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR SHARE`, sess.UserID); err != nil {
			return err
		}
		if sess.DeviceID != "" {
			rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 AND device_id = $2 RETURNING id`, sess.UserID, sess.DeviceID)
			if err != nil {
				return err
			}
			revoked, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
		}
		// The trigger copies the user's current roles, and inserts nothing
		// for a user deactivated meanwhile (no row: ErrNotFound).
		return tx.QueryRow(ctx, `INSERT INTO sessions (id, token_hash, csrf, create_at, expires_at, last_activity_at,
			user_id, device_id, roles, props) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING roles`,
			sess.ID, HashToken(sess.Token), sess.CSRF, sess.CreateAt, sess.ExpiresAt, sess.LastActivityAt,
			sess.UserID, sess.DeviceID, sess.Roles, sess.Props).Scan(&sess.Roles)
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: create: %w", mapErr(err))
	}
	return revoked, nil
}

// GetSessionByToken looks a session up by its bearer token.
func (s *Store) GetSessionByToken(ctx context.Context, token string) (*model.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = $1`, HashToken(token)))
	if err != nil {
		return nil, fmt.Errorf("sessions: get: %w", err)
	}
	return sess, nil
}

// GetSession returns a session by id.
func (s *Store) GetSession(ctx context.Context, id string) (*model.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("sessions: get: %w", err)
	}
	return sess, nil
}

// ListSessions returns a user's sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]*model.Session, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = $1 ORDER BY create_at DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("sessions: list: %w", mapErr(err))
	}
	defer rows.Close()
	out := []*model.Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sessions: list: %w", err)
		}
		out = append(out, sess)
	}
	return out, mapErr(rows.Err())
}

// DeleteSession removes one session and returns its device id;
// ErrNotFound if it did not exist.
func (s *Store) DeleteSession(ctx context.Context, id string) (deviceID string, err error) {
	if err := s.pool.QueryRow(ctx, `DELETE FROM sessions WHERE id = $1 RETURNING device_id`, id).Scan(&deviceID); err != nil {
		return "", fmt.Errorf("sessions: delete: %w", mapErr(err))
	}
	return deviceID, nil
}

// DeleteUserSessions removes every session of a user and returns their ids.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 RETURNING id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sessions: delete for user: %w", mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("sessions: delete for user: %w", mapErr(err))
	}
	return ids, nil
}

// TouchSession records activity and, when expiresAt > 0, extends the
// session; ErrNotFound if the session no longer exists (revoked or
// cleaned up), so a caller holding a stale copy learns it is gone.
func (s *Store) TouchSession(ctx context.Context, id string, now, expiresAt int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_activity_at = $2,
		expires_at = CASE WHEN $3 > 0 THEN $3 ELSE expires_at END WHERE id = $1`, id, now, expiresAt)
	if err != nil {
		return fmt.Errorf("sessions: touch: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("sessions: touch: %w", ErrNotFound)
	}
	return nil
}

// DeleteExpiredSessions removes sessions that expired before now (0 is
// never, as in Session.IsExpired) and returns their ids, so their caches and sockets can be ended too.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM sessions WHERE expires_at > 0 AND expires_at < $1 RETURNING id`, now)
	if err != nil {
		return nil, fmt.Errorf("sessions: delete expired: %w", mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("sessions: delete expired: %w", mapErr(err))
	}
	return ids, nil
}
