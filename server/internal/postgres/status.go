package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

const statusColumns = `user_id, status, manual, last_activity_at, dnd_end_time, prev_status, prev_manual`

func scanStatus(row pgx.Row) (*model.Status, error) {
	s := &model.Status{}
	if err := row.Scan(&s.UserID, &s.Status, &s.Manual, &s.LastActivityAt, &s.DNDEndTime, &s.PrevStatus, &s.PrevManual); err != nil {
		return nil, mapErr(err)
	}
	return s, nil
}

func collectStatuses(rows pgx.Rows, err error) ([]*model.Status, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*model.Status
	for rows.Next() {
		s, err := scanStatus(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// GetStatus returns a user's status row; ErrNotFound when the user has
// none (they are offline).
func (s *Store) GetStatus(ctx context.Context, userID string) (*model.Status, error) {
	const q = `SELECT ` + statusColumns + ` FROM status WHERE user_id = $1`
	st, err := scanStatus(s.pool.QueryRow(ctx, q, userID))
	if err != nil {
		return nil, fmt.Errorf("status: get: %w", err)
	}
	return st, nil
}

// GetStatuses returns the status rows of the given users that have one,
// in no particular order.
func (s *Store) GetStatuses(ctx context.Context, userIDs []string) ([]*model.Status, error) {
	const q = `SELECT ` + statusColumns + ` FROM status WHERE user_id = ANY($1)`
	out, err := collectStatuses(s.pool.Query(ctx, q, userIDs))
	if err != nil {
		return nil, fmt.Errorf("status: get many: %w", err)
	}
	return out, nil
}

// ListActiveStatuses returns up to limit users who are not offline, most
// recently active first.
func (s *Store) ListActiveStatuses(ctx context.Context, limit int) ([]*model.Status, error) {
	const q = `SELECT ` + statusColumns + ` FROM status WHERE status <> 'offline'
	ORDER BY last_activity_at DESC LIMIT $1`
	out, err := collectStatuses(s.pool.Query(ctx, q, limit))
	if err != nil {
		return nil, fmt.Errorf("status: list active: %w", err)
	}
	return out, nil
}

// ListIdleOnline returns up to limit users who are online by automatic
// status and whose last recorded activity is before before (ms).
func (s *Store) ListIdleOnline(ctx context.Context, before int64, limit int) ([]string, error) {
	const q = `SELECT user_id FROM status
	WHERE status = 'online' AND NOT manual AND last_activity_at < $1
	ORDER BY last_activity_at LIMIT $2`
	rows, err := s.pool.Query(ctx, q, before, limit)
	if err != nil {
		return nil, fmt.Errorf("status: list idle: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("status: list idle: %w", err)
	}
	return ids, nil
}

// ListExpiredDND returns up to limit users whose timed DND ended at or
// before nowSec (seconds).
func (s *Store) ListExpiredDND(ctx context.Context, nowSec int64, limit int) ([]string, error) {
	const q = `SELECT user_id FROM status
	WHERE status = 'dnd' AND dnd_end_time > 0 AND dnd_end_time <= $1
	ORDER BY dnd_end_time LIMIT $2`
	rows, err := s.pool.Query(ctx, q, nowSec, limit)
	if err != nil {
		return nil, fmt.Errorf("status: list expired dnd: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("status: list expired dnd: %w", err)
	}
	return ids, nil
}

// UpdateStatus reads the user's status under a row lock (cur is nil when
// there is none), asks fn for the next one and stores it, all in one
// transaction. When fn returns nil nothing is written. It returns the
// status before and after; after is cur when nothing was written.
func (s *Store) UpdateStatus(ctx context.Context, userID string, fn func(cur *model.Status) *model.Status) (before, after *model.Status, err error) {
	const (
		sel    = `SELECT ` + statusColumns + ` FROM status WHERE user_id = $1 FOR UPDATE`
		upsert = `INSERT INTO status (` + statusColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (user_id) DO UPDATE SET status = excluded.status, manual = excluded.manual,
		  last_activity_at = excluded.last_activity_at, dnd_end_time = excluded.dnd_end_time,
		  prev_status = excluded.prev_status, prev_manual = excluded.prev_manual`
	)
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanStatus(tx.QueryRow(ctx, sel, userID))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		before, after = cur, cur
		next := fn(cur)
		if next == nil {
			return nil
		}
		if _, err := tx.Exec(ctx, upsert, userID, next.Status, next.Manual, next.LastActivityAt,
			next.DNDEndTime, next.PrevStatus, next.PrevManual); err != nil {
			return err
		}
		after = next
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("status: update: %w", mapErr(err))
	}
	return before, after, nil
}
