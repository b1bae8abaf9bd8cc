package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// TestFileSearchUsesNameIndex: the file name expression a search matches
// is the one migration 00008 indexes. Were they to drift apart, searches
// would still be right but read every attached file.
func TestFileSearchUsesNameIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, store := newMigrator(t)
	require.NoError(t, m.Up(ctx, "0.1.0"))
	_, err := store.Pool().Exec(ctx, `INSERT INTO file_infos (id, creator_id, post_id, channel_id, create_at, update_at,
		path, name, extension, size)
	SELECT 'f' || i, 'u', 'p' || i, 'c', i, i, 'k' || i, 'common_name-' || i || '.txt', 'txt', 1
	FROM generate_series(1, 5000) AS i`)
	require.NoError(t, err)
	_, err = store.Pool().Exec(ctx, `ANALYZE file_infos`)
	require.NoError(t, err)

	sql, args := postgres.SearchFilesSQL(postgres.FileSearch{SearchFilter: postgres.SearchFilter{
		ChannelIDs: []string{"c"}, Limit: 60,
		Terms: []postgres.SearchTerm{{Kind: postgres.TermWord, Text: "rare_word.pdf"}},
	}})
	rows, err := store.Pool().Query(ctx, `EXPLAIN `+sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	require.NoError(t, err)
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, strings.Join(plan, "\n"), "file_infos_name_tsv_idx")
}
