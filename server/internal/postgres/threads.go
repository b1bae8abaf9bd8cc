package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// prefixedRow scans its first column into first and the rest into the
// destinations a row scanner asks for, so scanUser can read rows that
// carry a key before the user.
type prefixedRow struct {
	pgx.Row
	first any
}

func (r prefixedRow) Scan(dest ...any) error {
	return r.Row.Scan(append([]any{r.first}, dest...)...)
}

// ThreadParticipants returns the users who replied in each of the given
// root posts' threads, in the order of their first reply, keyed by root
// id, in one query. Roots without participants are left out.
func (s *Store) ThreadParticipants(ctx context.Context, rootIDs []string) (map[string][]*model.User, error) {
	const q = `SELECT p.id, ` + userColumns + ` FROM posts p
	CROSS JOIN LATERAL unnest(p.participants) WITH ORDINALITY AS x(user_id, n)
	JOIN users u ON u.id = x.user_id
	WHERE p.id = ANY($1) AND cardinality(p.participants) > 0
	ORDER BY p.id, x.n`
	rows, err := s.pool.Query(ctx, q, rootIDs)
	if err != nil {
		return nil, fmt.Errorf("posts: thread participants: %w", mapErr(err))
	}
	defer rows.Close()
	out := map[string][]*model.User{}
	for rows.Next() {
		var rootID string
		u, err := scanUser(prefixedRow{Row: rows, first: &rootID})
		if err != nil {
			return nil, fmt.Errorf("posts: thread participants: %w", err)
		}
		out[rootID] = append(out[rootID], u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("posts: thread participants: %w", mapErr(err))
	}
	return out, nil
}
