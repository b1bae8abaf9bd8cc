package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSetupReusesWhatExists runs the set-up against a server on which an
// earlier run left the user, team and channel: every create fails as
// Mattermost's does, and the lookups find them.
func TestSetupReusesWhatExists(t *testing.T) {
	t.Parallel()
	exists := func(id string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "message": "exists", "status_code": 400})
		}
	}
	found := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(v) }
	}
	m := http.NewServeMux()
	m.Handle("POST /api/v4/users", exists("app.user.save.username_exists.app_error"))
	m.Handle("GET /api/v4/users/username/loadtest-user-0007", found(user{ID: "u7", Username: "loadtest-user-0007"}))
	m.Handle("POST /api/v4/teams", exists("store.sql_team.save_team.existing.app_error"))
	m.Handle("GET /api/v4/teams/name/loadtest", found(team{ID: "t1", Name: "loadtest"}))
	m.Handle("POST /api/v4/teams/t1/members", exists("app.team.join_user_to_team.exists.app_error"))
	m.Handle("POST /api/v4/channels", exists("store.sql_channel.save_channel.exists.app_error"))
	m.Handle("GET /api/v4/teams/t1/channels/name/fanout", found(channel{ID: "c1", TeamID: "t1", Name: "fanout"}))
	m.Handle("POST /api/v4/channels/c1/members", found(map[string]string{"channel_id": "c1"}))
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	c, err := newClient(srv.URL, 2)
	require.NoError(t, err)
	ctx := context.Background()

	tm, ch, err := ensureFixture(ctx, c.as("tok"), "admin")
	require.NoError(t, err)
	require.Equal(t, "t1", tm.ID)
	require.Equal(t, "c1", ch.ID)
	u, err := ensureUser(ctx, c.as("tok"), 6)
	require.NoError(t, err)
	require.Equal(t, "u7", u.ID)
	require.NoError(t, join(ctx, c.as("tok"), tm, ch, u))

	_, err = ensureUser(ctx, c.as("tok"), 0)
	require.ErrorContains(t, err, "user loadtest-user-0001: GET /api/v4/users/username/loadtest-user-0001: 404")
}
