package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// The template is left empty: these tests migrate for themselves.
func TestMain(m *testing.M) { pgtest.Main(m, nil) }

func newMigrator(t *testing.T) (*postgres.Migrator, *postgres.Store) {
	t.Helper()
	pool := pgtest.NewPool(t)
	m, err := postgres.NewMigrator(pool, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m, postgres.NewStore(pool)
}

func TestMigrateUpIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, store := newMigrator(t)
	// Several nodes starting at once: the advisory lock lets one migrate.
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() { errs <- m.Up(ctx, "0.1.0") }()
	}
	for i := 0; i < 4; i++ {
		require.NoError(t, <-errs)
	}
	require.NoError(t, m.Up(ctx, "0.1.0"))
	st, cur, err := m.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, m.Latest(), cur)
	for _, s := range st {
		require.True(t, s.Applied, s.Name)
	}
	require.NoError(t, store.Ping(ctx, "node"))
}

func TestMigrateRefusesTooOldBinary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, store := newMigrator(t)
	require.NoError(t, m.Up(ctx, "0.1.0"))
	// A newer release contracted the schema.
	_, err := store.Pool().Exec(ctx, `UPDATE systems SET value = '0.3.0' WHERE name = 'min_binary_version'`)
	require.NoError(t, err)
	require.ErrorIs(t, m.Up(ctx, "0.2.9"), postgres.ErrBinaryTooOld)
	require.NoError(t, m.Up(ctx, "0.3.0"))
	require.NoError(t, m.Up(ctx, "1.0.0"))
}

func TestMigrateToleratesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, store := newMigrator(t)
	require.NoError(t, m.Up(ctx, "0.1.0"))
	// A newer binary applied a migration this one does not carry (an
	// expand step); rolling back to this binary must still start.
	_, err := store.Pool().Exec(ctx, `INSERT INTO garrison_schema_version (version_id, is_applied) VALUES ($1, true)`, m.Latest()+1)
	require.NoError(t, err)
	require.NoError(t, m.Up(ctx, "0.1.0"))
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		want int
	}{
		{"0.1.0", "0.1.0", 0},
		{"0.1.0", "0.2.0", -1},
		{"1.10.0", "1.9.0", 1},
		{"v1.2.3", "1.2.3", 0},
		{"1.2.3-rc.1", "1.2.3", 0},
		{"1.2", "1.2.0", 0},
		{"0.1.0-dev", "0.1.0", 0},
		{"dev", "9.9.9", 1},
		{"9.9.9", "dev", -1},
		{"garbage", "junk", 0},
	}
	for _, c := range cases {
		require.Equal(t, c.want, postgres.CompareVersions(c.a, c.b), "%s vs %s", c.a, c.b)
	}
}

func TestParseConfigStripsLibpqParamsAndSetsTimeouts(t *testing.T) {
	t.Parallel()
	cfg, err := postgres.ParseConfig(postgres.PoolOptions{
		DataSource:   "postgres://mmuser:secret@db1,db2/mattermost?sslmode=disable&binary_parameters=yes&target_session_attrs=read-write",
		QueryTimeout: 30_000_000_000, MaxOpenConns: 7,
	})
	require.NoError(t, err)
	cc := cfg.ConnConfig
	require.NotContains(t, cc.RuntimeParams, "binary_parameters")
	require.Equal(t, "30000", cc.RuntimeParams["statement_timeout"])
	require.Equal(t, "60000", cc.RuntimeParams["idle_in_transaction_session_timeout"])
	require.NotZero(t, cc.ConnectTimeout)
	require.Len(t, cc.Fallbacks, 1, "the second host is a fallback")
	require.EqualValues(t, 7, cfg.MaxConns)

	_, err = postgres.ParseConfig(postgres.PoolOptions{DataSource: "postgres://u:hunter2@host:notaport/db"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2", "a DSN error must not print the password")
}
