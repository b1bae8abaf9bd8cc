package pgtest_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, func(ctx context.Context, dsn string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close(ctx) }()
		_, err = conn.Exec(ctx, "CREATE TABLE widgets (name text PRIMARY KEY)")
		return err
	})
}

func TestNewGivesEachTestItsOwnDatabase(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		names = map[string]string{} // database name -> test
	)
	// The parent has a database too (which also makes it skip, rather
	// than fail below, when there is no Postgres).
	cfg, err := pgx.ParseConfig(pgtest.New(t))
	require.NoError(t, err)
	names[cfg.Database] = t.Name()

	t.Run("group", func(t *testing.T) {
		for _, tc := range []string{"first", "second", "third"} {
			t.Run(tc, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				conn, err := pgx.Connect(ctx, pgtest.New(t))
				require.NoError(t, err)
				defer func() { require.NoError(t, conn.Close(context.Background())) }()

				// The template's table is there, empty, and ours alone.
				_, err = conn.Exec(ctx, "INSERT INTO widgets (name) VALUES ($1)", tc)
				require.NoError(t, err)
				var got []string
				rows, err := conn.Query(ctx, "SELECT name FROM widgets")
				require.NoError(t, err)
				got, err = pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				require.Equal(t, []string{tc}, got)

				var db string
				require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
				require.NotEqual(t, "template_garrison", db)
				mu.Lock()
				defer mu.Unlock()
				require.NotContains(t, names, db)
				names[db] = tc
			})
		}
	})
	require.Len(t, names, 4)
}

func TestNewPool(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM widgets").Scan(&n))
	require.Zero(t, n)
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	t.Parallel()
	var dsn string
	t.Run(strings.Repeat("long name ", 10), func(t *testing.T) {
		dsn = pgtest.New(t)
		// An open session does not stop the drop.
		conn, err := pgx.Connect(t.Context(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	})
	require.NotEmpty(t, dsn)

	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	db := cfg.Database
	require.LessOrEqual(t, len(db), 63)
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, conn.Close(context.Background())) }()
	var exists bool
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", db).Scan(&exists))
	require.False(t, exists, "database %s still exists", db)
}
