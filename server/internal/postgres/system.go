package postgres

import (
	"context"
	"fmt"
)

// EnsureSystemValue returns the value stored under name, storing value
// first if there is none (so every node agrees on ids like DiagnosticId).
func (s *Store) EnsureSystemValue(ctx context.Context, name, value string) (string, error) {
	const q = `WITH ins AS (INSERT INTO systems (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value)
	SELECT value FROM ins UNION ALL SELECT value FROM systems WHERE name = $1 LIMIT 1`
	var v string
	if err := s.pool.QueryRow(ctx, q, name, value).Scan(&v); err != nil {
		return "", fmt.Errorf("systems: ensure %s: %w", name, mapErr(err))
	}
	return v, nil
}
