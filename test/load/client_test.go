package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v4/users":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"id":"app.user.save.username_exists.app_error","message":"An account with that username already exists.","status_code":400}`))
		case "/api/v4/teams":
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"id":"app.team.conflict","message":"Taken."}`))
		case "/api/v4/posts":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"id":"api.context.permissions.app_error","message":"You do not have the appropriate permissions.","detailed_error":"channel"}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("upstream down\n"))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := newClient(srv.URL, 2)
	require.NoError(t, err)
	ctx := context.Background()

	tests := []struct {
		name   string
		call   func() error
		want   string
		exists bool
	}{
		{"400 exists", func() error { _, err := c.createUser(ctx, "u", "u@example.com", "p"); return err },
			"POST /api/v4/users: 400 app.user.save.username_exists.app_error: An account with that username already exists.", true},
		{"409", func() error { _, err := c.createTeam(ctx, "t", "T"); return err },
			"POST /api/v4/teams: 409 app.team.conflict: Taken.", true},
		{"403 with detail", func() error { _, err := c.createPost(ctx, "ch", "hi"); return err },
			"POST /api/v4/posts: 403 api.context.permissions.app_error: You do not have the appropriate permissions. (channel)", false},
		{"not JSON", func() error { _, err := c.teamByName(ctx, "t"); return err },
			"GET /api/v4/teams/name/t: 502: upstream down", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call()
			require.EqualError(t, err, tt.want)
			require.Equal(t, tt.exists, isExists(err))
		})
	}

	_, err = newClient("127.0.0.1:8065", 1)
	require.ErrorContains(t, err, "want http://host:port")
}
