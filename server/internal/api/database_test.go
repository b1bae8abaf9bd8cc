package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// TestDatabaseUnavailableIs503: when the database cannot serve a request,
// the client gets a retryable 503 AppError, not a 500.
func TestDatabaseUnavailableIs503(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	u := ts.newUser()
	u.mustDo("GET", "/users/me", nil, http.StatusOK, nil) // the session is cached from now on

	// The database stops taking connections and ends the open ones, as
	// a server shutting down for a failover does.
	ctx := t.Context()
	db := ts.Store.Pool().Config().ConnConfig.Database
	admin := ts.Store.Pool().Config().ConnConfig.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` ALLOW_CONNECTIONS true`)
		_ = conn.Close(context.Background())
	})
	_, err = conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` ALLOW_CONNECTIONS false`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db)
	require.NoError(t, err)

	for range 2 { // a connection that was ended, then a new one refused
		resp, body := u.do("GET", "/users/me", nil)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
		var ae model.AppError
		require.NoError(t, json.Unmarshal(body, &ae), string(body))
		require.Equal(t, "app.database.unavailable.app_error", ae.ID)
		require.Equal(t, http.StatusServiceUnavailable, ae.StatusCode)
		require.NotEmpty(t, ae.RequestID)
	}
}
