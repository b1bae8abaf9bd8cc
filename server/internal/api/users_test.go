package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

func TestFirstUserIsSystemAdmin(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	first := ts.newUser()
	require.Equal(t, "system_admin system_user", first.User.Roles)
	second := ts.newUser()
	require.Equal(t, "system_user", second.User.Roles)
	require.Empty(t, second.User.Password)
}

func TestCreateUserNeedsOpenServer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.EnableOpenServer = false })
	admin := ts.newUser() // the first user may always sign up
	body := map[string]any{"username": "closed1", "email": "closed1@example.com", "password": "password1"}
	ts.anon().requireAppError("POST", "/users", body, http.StatusForbidden, "api.user.create_user.no_open_server")
	// An admin may still create users.
	var u model.User
	admin.mustDo("POST", "/users", body, http.StatusCreated, &u)
	require.Equal(t, "closed1", u.Username)
}

func TestCreateUserBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	c := ts.anon()
	existing := ts.newUser().User
	cases := []struct {
		name   string
		body   any
		status int
		id     string
	}{
		{"malformed json", `{"username":`, 400, "api.context.invalid_body_param.app_error"},
		{"wrong type", `{"username":5}`, 400, "api.context.invalid_body_param.app_error"},
		{"empty body", ``, 400, "api.context.invalid_body_param.app_error"},
		{"bad username", map[string]any{"username": "A b", "email": "x@example.com", "password": "password1"}, 400, "model.user.is_valid.username.app_error"},
		{"reserved username", map[string]any{"username": "channel", "email": "x@example.com", "password": "password1"}, 400, "model.user.is_valid.username.app_error"},
		{"bad email", map[string]any{"username": "okname", "email": "nope", "password": "password1"}, 400, "model.user.is_valid.email.app_error"},
		{"short password", map[string]any{"username": "okname", "email": "ok@example.com", "password": "short"}, 400, "model.user.is_valid.pwd.app_error"},
		{"duplicate username", map[string]any{"username": existing.Username, "email": "other@example.com", "password": "password1"}, 400, "app.user.save.username_exists.app_error"},
		{"duplicate email", map[string]any{"username": "othername", "email": strings.ToUpper(existing.Email), "password": "password1"}, 400, "app.user.save.email_exists.app_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.requireAppError("POST", "/users", tc.body, tc.status, tc.id)
		})
	}
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	u := ts.newUser()
	// Login by email works too, and the token authenticates.
	c := ts.login(strings.ToUpper(u.User.Email), "password1")
	var me model.User
	c.mustDo("GET", "/users/me", nil, http.StatusOK, &me)
	require.Equal(t, u.User.ID, me.ID)
	require.Equal(t, u.User.Email, me.Email)

	c.mustDo("POST", "/users/logout", nil, http.StatusOK, nil)
	c.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	// The other session is untouched.
	u.mustDo("GET", "/users/me", nil, http.StatusOK, nil)

	ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": u.User.Username, "password": "wrong-password"},
		http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username")
	ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": "nobody-here", "password": "wrong-password"},
		http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username")
	ts.anon().requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.MaxLoginAttempts = 3 })
	u := ts.newUser()
	for i := 0; i < 3; i++ {
		ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": u.User.Username, "password": "wrong-password"},
			http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username")
	}
	// Locked now, even with the right password.
	ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": u.User.Username, "password": "password1"},
		http.StatusUnauthorized, "api.user.check_user_login_attempts.too_many.app_error")
}

func TestLoginFailuresRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(_ *app.Settings, o *api.Options) { o.LoginFailuresPerMinute = 2 })
	u := ts.newUser()
	for i := 0; i < 2; i++ {
		ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": u.User.Username, "password": "wrong-password"},
			http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username")
	}
	ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": u.User.Username, "password": "password1"},
		http.StatusTooManyRequests, "api.user.login.rate_limited.app_error")
}

func TestCookieSessionAndCSRF(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	u := ts.newUser()
	c := ts.anon()
	resp, _ := c.do("POST", "/users/login", map[string]any{"login_id": u.User.Username, "password": "password1"},
		"X-Requested-With", "XMLHttpRequest")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cookies := map[string]*http.Cookie{}
	for _, ck := range resp.Cookies() {
		cookies[ck.Name] = ck
	}
	require.Contains(t, cookies, "MMAUTHTOKEN")
	require.True(t, cookies["MMAUTHTOKEN"].HttpOnly)
	require.Equal(t, u.User.ID, cookies["MMUSERID"].Value)
	csrf := cookies["MMCSRF"].Value
	require.NotEmpty(t, csrf)
	cookie := "MMAUTHTOKEN=" + cookies["MMAUTHTOKEN"].Value

	patch := map[string]any{"nickname": "nick"}
	// Reads need no CSRF token.
	r, _ := c.do("GET", "/users/me", nil, "Cookie", cookie)
	require.Equal(t, http.StatusOK, r.StatusCode)
	// A cookie write without a CSRF token is refused...
	r, b := c.do("PUT", "/users/me/patch", patch, "Cookie", cookie)
	require.Equal(t, http.StatusUnauthorized, r.StatusCode, string(b))
	// ...and with a wrong one.
	r, _ = c.do("PUT", "/users/me/patch", patch, "Cookie", cookie, "X-CSRF-Token", "wrong")
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	// The right token passes, and so does the legacy X-Requested-With header.
	r, _ = c.do("PUT", "/users/me/patch", patch, "Cookie", cookie, "X-CSRF-Token", csrf)
	require.Equal(t, http.StatusOK, r.StatusCode)
	r, _ = c.do("PUT", "/users/me/patch", patch, "Cookie", cookie, "X-Requested-With", "XMLHttpRequest")
	require.Equal(t, http.StatusOK, r.StatusCode)
}

func TestStrictCSRF(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(_ *app.Settings, o *api.Options) { o.StrictCSRF = true })
	u := ts.newUser()
	c := ts.anon()
	resp, _ := c.do("POST", "/users/login", map[string]any{"login_id": u.User.Username, "password": "password1"},
		"X-Requested-With", "XMLHttpRequest")
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == "MMAUTHTOKEN" {
			cookie = "MMAUTHTOKEN=" + ck.Value
		}
	}
	r, _ := c.do("PUT", "/users/me/patch", map[string]any{"nickname": "n"}, "Cookie", cookie, "X-Requested-With", "XMLHttpRequest")
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
}

func TestGetUsers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	a, b := ts.newUser(), ts.newUser()

	var got model.User
	admin.mustDo("GET", "/users/"+a.User.ID, nil, http.StatusOK, &got)
	require.Equal(t, a.User.Username, got.Username)
	admin.mustDo("GET", "/users/username/"+strings.ToUpper(b.User.Username), nil, http.StatusOK, &got)
	require.Equal(t, b.User.ID, got.ID)
	admin.mustDo("GET", "/users/email/"+b.User.Email, nil, http.StatusOK, &got)
	require.Equal(t, b.User.ID, got.ID)

	var list []*model.User
	a.mustDo("POST", "/users/ids", []string{admin.User.ID, b.User.ID, model.NewID()}, http.StatusOK, &list)
	require.Len(t, list, 2)
	a.mustDo("POST", "/users/usernames", []string{b.User.Username, "nobody"}, http.StatusOK, &list)
	require.Len(t, list, 1)
	for _, u := range list {
		require.Empty(t, u.Password)
	}

	a.mustDo("GET", "/users?per_page=2&page=0", nil, http.StatusOK, &list)
	require.Len(t, list, 2)
	a.mustDo("GET", "/users?per_page=2&page=1", nil, http.StatusOK, &list)
	require.Len(t, list, 1)

	a.requireAppError("GET", "/users/"+model.NewID(), nil, http.StatusNotFound, "app.user.missing_account.const")
	a.requireAppError("GET", "/users/not-an-id", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
	a.requireAppError("POST", "/users/ids", []string{"bad"}, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	a.requireAppError("POST", "/users/ids", `{"not":"an array"}`, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	a.requireAppError("GET", "/users?in_team=bad", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
}

func TestPatchUser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	a, b := ts.newUser(), ts.newUser()

	var got model.User
	a.mustDo("PUT", "/users/me/patch", map[string]any{"nickname": "Ace", "first_name": "A"}, http.StatusOK, &got)
	require.Equal(t, "Ace", got.Nickname)
	require.Equal(t, a.User.Username, got.Username, "fields not in the patch are untouched")

	// Others may not patch you; an admin may.
	b.requireAppError("PUT", "/users/"+a.User.ID+"/patch", map[string]any{"nickname": "x"}, http.StatusForbidden, "api.context.permissions.app_error")
	admin.mustDo("PUT", "/users/"+a.User.ID+"/patch", map[string]any{"position": "Lead"}, http.StatusOK, &got)
	require.Equal(t, "Lead", got.Position)

	// Changing your email needs your password.
	a.requireAppError("PUT", "/users/me/patch", map[string]any{"email": "new@example.com"}, http.StatusBadRequest, "api.user.check_user_password.invalid.app_error")
	a.mustDo("PUT", "/users/me/patch", map[string]any{"email": "new@example.com", "password": "password1"}, http.StatusOK, &got)
	require.Equal(t, "new@example.com", got.Email)

	// Taking someone else's username is a conflict, and nothing changes.
	a.requireAppError("PUT", "/users/me/patch", map[string]any{"username": b.User.Username, "nickname": "changed"}, http.StatusBadRequest, "app.user.save.username_exists.app_error")
	a.mustDo("GET", "/users/me", nil, http.StatusOK, &got)
	require.Equal(t, "Ace", got.Nickname)
}

func TestUpdatePassword(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	a := ts.newUser()
	a.requireAppError("PUT", "/users/me/password", map[string]any{"current_password": "nope-nope", "new_password": "password2"},
		http.StatusBadRequest, "api.user.update_password.incorrect.app_error")
	a.requireAppError("PUT", "/users/me/password", map[string]any{"current_password": "password1", "new_password": "x"},
		http.StatusBadRequest, "model.user.is_valid.pwd.app_error")
	a.mustDo("PUT", "/users/me/password", map[string]any{"current_password": "password1", "new_password": "password2"}, http.StatusOK, nil)
	ts.login(a.User.Username, "password2")
	// An admin resets without the current password.
	admin.mustDo("PUT", "/users/"+a.User.ID+"/password", map[string]any{"new_password": "password3"}, http.StatusOK, nil)
	ts.login(a.User.Username, "password3")
}

func TestSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	a := ts.newUser()
	other := ts.login(a.User.Username, "password1")
	var sessions []*model.Session
	a.mustDo("GET", "/users/me/sessions", nil, http.StatusOK, &sessions)
	require.Len(t, sessions, 2)
	for _, s := range sessions {
		require.Empty(t, s.Token, "tokens are never listed")
	}
	stranger := ts.newUser()
	stranger.requireAppError("GET", "/users/"+a.User.ID+"/sessions", nil, http.StatusForbidden, "api.context.permissions.app_error")

	// Revoking all of them ends both tokens at once.
	a.mustDo("POST", "/users/me/sessions/revoke/all", nil, http.StatusOK, nil)
	other.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	a.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
}

func TestRevokeOneSession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	a := ts.newUser()
	b := ts.login(a.User.Username, "password1")
	var sessions []*model.Session
	a.mustDo("GET", "/users/me/sessions", nil, http.StatusOK, &sessions)
	require.Len(t, sessions, 2)
	bs, appErr := ts.App.Session(context.Background(), b.Token)
	require.Nil(t, appErr)
	a.mustDo("POST", "/users/me/sessions/revoke", map[string]string{"session_id": bs.ID}, http.StatusOK, nil)
	a.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	b.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	a.requireAppError("POST", "/users/me/sessions/revoke", map[string]string{"session_id": model.NewID()}, http.StatusBadRequest, "api.user.revoke_session.app_error")
	a.requireAppError("POST", "/users/me/sessions/revoke", map[string]string{"session_id": "x"}, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
}

func TestBodyLimitAndUnknownRoute(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(_ *app.Settings, o *api.Options) { o.MaxPayload = 1000 })
	a := ts.newUser()
	big := map[string]any{"nickname": strings.Repeat("x", 2000)}
	a.requireAppError("PUT", "/users/me/patch", big, http.StatusRequestEntityTooLarge, "api.context.request_body_too_large.app_error")
	a.requireAppError("GET", "/no/such/route", nil, http.StatusNotFound, "api.context.404.app_error")
	a.requireAppError("DELETE", "/users/me", nil, http.StatusNotFound, "api.context.404.app_error")
}

func TestPingAndClientConfig(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.anon()
	var ping map[string]any
	c.mustDo("GET", "/system/ping?get_server_status=true", nil, http.StatusOK, &ping)
	require.Equal(t, "OK", ping["status"])
	require.Equal(t, "OK", ping["database_status"])
	require.Equal(t, "OK", ping["filestore_status"])
	resp, body := c.do("GET", "/config/client?format=old", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var cfg map[string]string
	require.NoError(t, json.Unmarshal(body, &cfg))
	require.Equal(t, "10.11.0", cfg["Version"])
	require.NotEmpty(t, resp.Header.Get("X-Request-ID"))
	require.Contains(t, resp.Header.Get("X-Version-ID"), "10.11.0.")
	c.mustDo("GET", "/license/client?format=old", nil, http.StatusOK, nil)
}

func TestPingReportsBrokenFileStore(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.FileDirectory = "/nonexistent/garrison" })
	var ping map[string]any
	ts.anon().mustDo("GET", "/system/ping?get_server_status=true", nil, http.StatusInternalServerError, &ping)
	require.Equal(t, "UNHEALTHY", ping["filestore_status"])
	ts.anon().mustDo("GET", "/system/ping?get_server_status=true&use_rest_semantics=true", nil, http.StatusOK, &ping)
}
