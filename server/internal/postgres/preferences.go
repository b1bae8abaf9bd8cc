package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

const preferenceColumns = `user_id, category, name, value`

func collectPreferences(rows pgx.Rows, err error) ([]*model.Preference, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []*model.Preference{}
	for rows.Next() {
		p := &model.Preference{}
		if err := rows.Scan(&p.UserID, &p.Category, &p.Name, &p.Value); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, p)
	}
	return out, mapErr(rows.Err())
}

// Preferences returns a user's preferences, in category then name order;
// with category set, only that category's.
func (s *Store) Preferences(ctx context.Context, userID, category string) ([]*model.Preference, error) {
	const q = `SELECT ` + preferenceColumns + ` FROM preferences
	WHERE user_id = $1 AND ($2 = '' OR category = $2) ORDER BY category, name`
	ps, err := collectPreferences(s.pool.Query(ctx, q, userID, category))
	if err != nil {
		return nil, fmt.Errorf("preferences: list: %w", err)
	}
	return ps, nil
}

// Preference returns one preference; ErrNotFound if it is not set.
func (s *Store) Preference(ctx context.Context, userID, category, name string) (*model.Preference, error) {
	const q = `SELECT ` + preferenceColumns + ` FROM preferences WHERE user_id = $1 AND category = $2 AND name = $3`
	p := &model.Preference{}
	err := s.pool.QueryRow(ctx, q, userID, category, name).Scan(&p.UserID, &p.Category, &p.Name, &p.Value)
	if err != nil {
		return nil, fmt.Errorf("preferences: get: %w", mapErr(err))
	}
	return p, nil
}

// SavePreferences inserts or replaces the preferences, all or none. Every
// entry must already be valid.
func (s *Store) SavePreferences(ctx context.Context, ps []*model.Preference) error {
	const q = `INSERT INTO preferences (` + preferenceColumns + `) VALUES ($1, $2, $3, $4)
	ON CONFLICT (user_id, category, name) DO UPDATE SET value = EXCLUDED.value`
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, p := range ps {
			b.Queue(q, p.UserID, p.Category, p.Name, p.Value)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("preferences: save: %w", mapErr(err))
	}
	return nil
}

// DeletePreferences removes the given (category, name) pairs of a user,
// all or none; pairs that are not set are ignored.
func (s *Store) DeletePreferences(ctx context.Context, userID string, ps []*model.Preference) error {
	cats := make([]string, len(ps))
	names := make([]string, len(ps))
	for i, p := range ps {
		cats[i], names[i] = p.Category, p.Name
	}
	const q = `DELETE FROM preferences p USING unnest($2::text[], $3::text[]) AS d(category, name)
	WHERE p.user_id = $1 AND p.category = d.category AND p.name = d.name`
	if _, err := s.pool.Exec(ctx, q, userID, cats, names); err != nil {
		return fmt.Errorf("preferences: delete: %w", mapErr(err))
	}
	return nil
}
