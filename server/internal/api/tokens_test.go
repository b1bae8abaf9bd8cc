package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// tokenEnv is a server with personal access tokens on: a system admin, a
// user holding system_user_access_token and a plain user.
type tokenEnv struct {
	ts                     *testServer
	admin, holder, regular *client
}

func newTokenEnv(t *testing.T, mutate ...func(*app.Settings, *api.Options)) *tokenEnv {
	t.Helper()
	mutate = append([]func(*app.Settings, *api.Options){func(s *app.Settings, _ *api.Options) {
		s.EnableUserAccessTokens = true
	}}, mutate...)
	ts := newTestServer(t, mutate...)
	e := &tokenEnv{ts: ts, admin: ts.newUser(), holder: ts.newUser(), regular: ts.newUser()}
	// An admin grants the role; it applies to the holder's live session.
	e.admin.mustDo("PUT", "/users/"+e.holder.User.ID+"/roles",
		map[string]string{"roles": model.RoleSystemUser + " " + model.RoleSystemUserAccessToken}, http.StatusOK, nil)
	return e
}

func (c *client) createToken(userID, description string) *model.UserAccessToken {
	c.ts.t.Helper()
	var tok model.UserAccessToken
	c.mustDo("POST", "/users/"+userID+"/tokens", map[string]any{"description": description}, http.StatusOK, &tok)
	require.True(c.ts.t, model.IsValidID(tok.ID))
	require.Len(c.ts.t, tok.Token, 26)
	return &tok
}

// as returns a client that authenticates with token.
func (ts *testServer) as(token string) *client { return &client{ts: ts, Token: token} }

func TestUserAccessTokenCreate(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t)
	tok := e.holder.createToken("me", "ci")
	require.Equal(t, e.holder.User.ID, tok.UserID)
	require.Equal(t, "ci", tok.Description)
	require.True(t, tok.IsActive)
	// Only a hash is stored.
	var n int
	require.NoError(t, e.ts.Store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM user_access_tokens WHERE token_hash = $1`, postgres.HashToken(tok.Token)).Scan(&n))
	require.Equal(t, 1, n)
	require.NoError(t, e.ts.Store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM user_access_tokens WHERE position($1::text in encode(token_hash, 'escape')) > 0`, tok.Token).Scan(&n))
	require.Zero(t, n)

	adminMade := e.admin.createToken(e.regular.User.ID, "for a script")
	require.Equal(t, e.regular.User.ID, adminMade.UserID)

	cases := []struct {
		name   string
		c      *client
		path   string
		body   any
		status int
		id     string
	}{
		{"without the role", e.regular, "/users/me/tokens", map[string]any{"description": "x"}, 403, "api.context.permissions.app_error"},
		{"for someone else", e.holder, "/users/" + e.regular.User.ID + "/tokens", map[string]any{"description": "x"}, 403, "api.context.permissions.app_error"},
		{"no description", e.holder, "/users/me/tokens", map[string]any{"description": "  "}, 400, "api.context.invalid_body_param.app_error"},
		{"long description", e.holder, "/users/me/tokens", map[string]any{"description": strings.Repeat("d", 256)}, 400, "model.user_access_token.is_valid.description.app_error"},
		{"NUL in description", e.holder, "/users/me/tokens", map[string]any{"description": "a\x00"}, 400, "api.context.invalid_body_param.app_error"},
		{"not JSON", e.holder, "/users/me/tokens", "{", 400, "api.context.invalid_body_param.app_error"},
		{"bad user id", e.admin, "/users/xyz/tokens", map[string]any{"description": "x"}, 400, "api.context.invalid_url_param.app_error"},
		{"unknown user", e.admin, "/users/" + model.NewID() + "/tokens", map[string]any{"description": "x"}, 404, "app.user.missing_account.const"},
		{"anonymous", e.ts.anon(), "/users/" + e.regular.User.ID + "/tokens", map[string]any{"description": "x"}, 401, "api.context.session_expired.app_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.c.requireAppError("POST", c.path, c.body, c.status, c.id) })
	}
}

func TestUserAccessTokensDisabled(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, func(s *app.Settings, _ *api.Options) { s.EnableUserAccessTokens = false })
	e.admin.requireAppError("POST", "/users/me/tokens", map[string]any{"description": "x"}, 501, "app.user_access_token.disabled")
	// A token made while they were enabled does not authenticate.
	tok := &model.UserAccessToken{ID: model.NewID(), Token: model.NewToken(), UserID: e.admin.User.ID, Description: "old", IsActive: true}
	require.NoError(t, e.ts.Store.CreateUserAccessToken(context.Background(), tok, 1))
	e.ts.as(tok.Token).requireAppError("GET", "/users/me", nil, 401, "api.context.session_expired.app_error")
}

func TestUserAccessTokenAuthenticates(t *testing.T) {
	t.Parallel()
	// A cache that outlives the activity interval, so a cached token
	// session meets the check that touches login sessions.
	e := newTokenEnv(t, func(s *app.Settings, _ *api.Options) { s.SessionCacheTTL = 2 * time.Hour })
	tok := e.holder.createToken(e.holder.User.ID, "script")
	c := e.ts.as(tok.Token)
	var me model.User
	c.mustDo("GET", "/users/me", nil, 200, &me)
	require.Equal(t, e.holder.User.ID, me.ID)
	// Writes need no CSRF token with a bearer token.
	team := c.createTeam(true)
	require.NotEmpty(t, team.ID)

	s, appErr := e.ts.App.Session(context.Background(), tok.Token)
	require.Nil(t, appErr)
	require.Equal(t, tok.ID, s.ID)
	require.Equal(t, e.holder.User.ID, s.UserID)
	require.Equal(t, model.RoleSystemUser+" "+model.RoleSystemUserAccessToken, s.Roles)
	require.False(t, s.IsOAuth)
	require.Equal(t, model.SessionTypeUserAccessToken, s.Props[model.SessionPropType])
	require.Equal(t, tok.ID, s.Props[model.SessionPropUserAccessTokenID])
	require.True(t, s.IsUserAccessToken())

	// Past the activity interval, when a login session's row is touched,
	// the token (which has no row) still works, cached or reloaded.
	e.ts.advance(time.Hour)
	c.mustDo("GET", "/users/me", nil, 200, nil)
	e.ts.advance(2 * time.Hour)
	c.mustDo("GET", "/users/me", nil, 200, nil)

	// A system admin's token carries the admin's roles.
	adminTok := e.admin.createToken("me", "admin script")
	var users []*model.User
	e.ts.as(adminTok.Token).mustDo("GET", "/users?inactive=true", nil, 200, &users)
}

func TestUserAccessTokenRead(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t)
	t1 := e.holder.createToken("me", "one")
	e.holder.createToken("me", "two")
	t3 := e.admin.createToken(e.regular.User.ID, "regular's")

	var list []*model.UserAccessToken
	e.holder.mustDo("GET", "/users/me/tokens", nil, 200, &list)
	require.Len(t, list, 2)
	for _, tok := range list {
		require.Empty(t, tok.Token)
		require.Equal(t, e.holder.User.ID, tok.UserID)
	}
	e.holder.mustDo("GET", "/users/me/tokens?per_page=1&page=1", nil, 200, &list)
	require.Len(t, list, 1)
	e.admin.mustDo("GET", "/users/"+e.holder.User.ID+"/tokens", nil, 200, &list)
	require.Len(t, list, 2)
	e.admin.mustDo("GET", "/users/tokens", nil, 200, &list)
	require.Len(t, list, 3)

	var one model.UserAccessToken
	e.holder.mustDo("GET", "/users/tokens/"+t1.ID, nil, 200, &one)
	require.Equal(t, model.UserAccessToken{ID: t1.ID, UserID: e.holder.User.ID, Description: "one", IsActive: true}, one)

	cases := []struct {
		name   string
		c      *client
		path   string
		status int
		id     string
	}{
		{"someone else's list", e.holder, "/users/" + e.regular.User.ID + "/tokens", 403, "api.context.permissions.app_error"},
		{"without the role", e.regular, "/users/me/tokens", 403, "api.context.permissions.app_error"},
		{"someone else's token", e.holder, "/users/tokens/" + t3.ID, 403, "api.context.permissions.app_error"},
		{"own token without the role", e.regular, "/users/tokens/" + t3.ID, 403, "api.context.permissions.app_error"},
		{"all tokens", e.holder, "/users/tokens", 403, "api.context.permissions.app_error"},
		{"unknown token", e.admin, "/users/tokens/" + model.NewID(), 404, "app.user_access_token.get_by_user.app_error"},
		{"bad token id", e.admin, "/users/tokens/bad", 400, "api.context.invalid_url_param.app_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.c.requireAppError("GET", c.path, nil, c.status, c.id) })
	}
}

func TestUserAccessTokenRevokeDisableEnable(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t)
	tok := e.holder.createToken("me", "script")
	c := e.ts.as(tok.Token)
	c.mustDo("GET", "/users/me", nil, 200, nil) // now cached
	ws := c.ws()

	other := e.admin.createToken(e.regular.User.ID, "regular's")
	for _, path := range []string{"/users/tokens/revoke", "/users/tokens/disable", "/users/tokens/enable"} {
		e.holder.requireAppError("POST", path, map[string]any{"token_id": other.ID}, 403, "api.context.permissions.app_error")
		e.regular.requireAppError("POST", path, map[string]any{"token_id": other.ID}, 403, "api.context.permissions.app_error")
		e.holder.requireAppError("POST", path, map[string]any{"token_id": "bad"}, 400, "api.context.invalid_body_param.app_error")
		e.holder.requireAppError("POST", path, map[string]any{}, 400, "api.context.invalid_body_param.app_error")
		e.admin.requireAppError("POST", path, map[string]any{"token_id": model.NewID()}, 404, "app.user_access_token.get_by_user.app_error")
	}

	// Disabling ends the token at once, cached or not, and its socket.
	e.holder.mustDo("POST", "/users/tokens/disable", map[string]any{"token_id": tok.ID}, 200, nil)
	c.requireAppError("GET", "/users/me", nil, 401, "api.context.session_expired.app_error")
	requireSocketClosed(t, ws)
	var got model.UserAccessToken
	e.holder.mustDo("GET", "/users/tokens/"+tok.ID, nil, 200, &got)
	require.False(t, got.IsActive)

	e.holder.mustDo("POST", "/users/tokens/enable", map[string]any{"token_id": tok.ID}, 200, nil)
	c.mustDo("GET", "/users/me", nil, 200, nil)

	e.holder.mustDo("POST", "/users/tokens/revoke", map[string]any{"token_id": tok.ID}, 200, nil)
	c.requireAppError("GET", "/users/me", nil, 401, "api.context.session_expired.app_error")
	e.holder.requireAppError("GET", "/users/tokens/"+tok.ID, nil, 404, "app.user_access_token.get_by_user.app_error")

	// An admin may revoke anyone's.
	e.admin.mustDo("POST", "/users/tokens/revoke", map[string]any{"token_id": other.ID}, 200, nil)
}

func TestUserAccessTokenDeactivatedUser(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t)
	tok := e.admin.createToken(e.regular.User.ID, "script")
	c := e.ts.as(tok.Token)
	c.mustDo("GET", "/users/me", nil, 200, nil) // now cached
	e.admin.mustDo("PUT", "/users/"+e.regular.User.ID+"/active", map[string]any{"active": false}, 200, nil)
	c.requireAppError("GET", "/users/me", nil, 401, "api.context.session_expired.app_error")
}

func TestUserAccessTokenDeactivatedUserUncached(t *testing.T) {
	t.Parallel()
	// Without a session cache every request reads the database: the
	// query itself refuses a deactivated user's token.
	e := newTokenEnv(t, func(s *app.Settings, _ *api.Options) { s.SessionCacheTTL = 0 })
	tok := e.admin.createToken(e.regular.User.ID, "script")
	c := e.ts.as(tok.Token)
	c.mustDo("GET", "/users/me", nil, 200, nil)
	_, err := e.ts.Store.Pool().Exec(context.Background(), `UPDATE users SET delete_at = 1 WHERE id = $1`, e.regular.User.ID)
	require.NoError(t, err)
	c.requireAppError("GET", "/users/me", nil, 401, "api.context.session_expired.app_error")
}
