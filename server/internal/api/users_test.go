package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

// cookieLogin logs in as a browser does and returns the Cookie header
// value and the CSRF token.
func (ts *testServer) cookieLogin(loginID, password string) (cookie, csrf string) {
	ts.t.Helper()
	resp, body := ts.anon().do("POST", "/users/login", map[string]any{"login_id": loginID, "password": password},
		"X-Requested-With", "XMLHttpRequest")
	require.Equal(ts.t, http.StatusOK, resp.StatusCode, string(body))
	for _, ck := range resp.Cookies() {
		switch ck.Name {
		case "MMAUTHTOKEN":
			cookie = "MMAUTHTOKEN=" + ck.Value
		case "MMCSRF":
			csrf = ck.Value
		}
	}
	require.NotEmpty(ts.t, cookie)
	require.NotEmpty(ts.t, csrf)
	return cookie, csrf
}

// requireAppErrorResp requires resp/body to be an AppError with status
// and id.
func requireAppErrorResp(t *testing.T, resp *http.Response, body []byte, status int, id string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, string(body))
	var ae model.AppError
	require.NoError(t, json.Unmarshal(body, &ae), string(body))
	require.Equal(t, id, ae.ID, string(body))
}

// requireSocketClosed reads from w until the server closes it normally.
func requireSocketClosed(t *testing.T, w *wsClient) {
	t.Helper()
	require.NoError(t, w.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		if _, _, err := w.conn.ReadMessage(); err != nil {
			require.True(t, websocket.IsCloseError(err, websocket.CloseNormalClosure), "want a normal close, got %v", err)
			return
		}
	}
}

func TestCreateUserWithCookieSessionNeedsCSRF(t *testing.T) {
	t.Parallel()
	// With open sign-up off, only the admin's session lets a sign-up
	// through: a forged cross-site POST must not borrow it.
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.EnableOpenServer = false })
	admin := ts.newUser()
	cookie, csrf := ts.cookieLogin(admin.User.Username, "password1")
	c := ts.anon()
	body := func(name string) map[string]any {
		return map[string]any{"username": name, "email": name + "@example.com", "password": "password1"}
	}

	resp, b := c.do("POST", "/users", body("forged1"), "Cookie", cookie)
	requireAppErrorResp(t, resp, b, http.StatusUnauthorized, "api.context.session_expired.app_error")
	resp, b = c.do("POST", "/users", body("forged2"), "Cookie", cookie, "X-CSRF-Token", "wrong")
	requireAppErrorResp(t, resp, b, http.StatusUnauthorized, "api.context.session_expired.app_error")
	ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": "forged1", "password": "password1"},
		http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username")

	resp, b = c.do("POST", "/users", body("invited1"), "Cookie", cookie, "X-CSRF-Token", csrf)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	// A bearer token is not sent by browsers on their own: no CSRF proof.
	admin.mustDo("POST", "/users", body("invited2"), http.StatusCreated, nil)
	// A dead token is anonymous, not an error.
	dead := &client{ts: ts, Token: model.NewToken()}
	dead.requireAppError("POST", "/users", body("invited3"), http.StatusForbidden, "api.user.create_user.no_open_server")
}

func TestLogoutChecksCSRF(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	u := ts.newUser()
	cookie, csrf := ts.cookieLogin(u.User.Username, "password1")
	c := ts.anon()

	resp, b := c.do("POST", "/users/logout", nil, "Cookie", cookie, "X-CSRF-Token", "wrong")
	requireAppErrorResp(t, resp, b, http.StatusUnauthorized, "api.context.session_expired.app_error")
	resp, b = c.do("POST", "/users/logout", nil, "Cookie", cookie)
	requireAppErrorResp(t, resp, b, http.StatusUnauthorized, "api.context.session_expired.app_error")
	resp, b = c.do("GET", "/users/me", nil, "Cookie", cookie)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a refused logout leaves the session: %s", b)

	resp, b = c.do("POST", "/users/logout", nil, "Cookie", cookie, "X-CSRF-Token", csrf)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	resp, b = c.do("GET", "/users/me", nil, "Cookie", cookie)
	requireAppErrorResp(t, resp, b, http.StatusUnauthorized, "api.context.session_expired.app_error")
	// Logging out with a dead session just clears the cookies.
	resp, b = c.do("POST", "/users/logout", nil, "Cookie", cookie)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
}

func TestPingRootStatusForAdminsOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin, user := ts.newUser(), ts.newUser()
	ping := func(c *client) map[string]any {
		var out map[string]any
		c.mustDo("GET", "/system/ping?get_server_status=true", nil, http.StatusOK, &out)
		return out
	}
	require.Contains(t, ping(admin), "root_status")
	require.NotContains(t, ping(user), "root_status")
	require.NotContains(t, ping(&client{ts: ts, Token: model.NewToken()}), "root_status")
}

func TestTouchOfDeletedSessionIsRefused(t *testing.T) {
	t.Parallel()
	// A long cache TTL: the session stays cached while the clock passes
	// the activity interval, so the touch is what finds it gone.
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.SessionCacheTTL = time.Hour })
	ts.newUser()
	u := ts.newUser()
	ctx := context.Background()
	s, appErr := ts.App.Session(ctx, u.Token)
	require.Nil(t, appErr)
	// Deleted behind this node's back (another node revoked it).
	_, err := ts.Store.DeleteSession(ctx, s.ID)
	require.NoError(t, err)
	u.mustDo("GET", "/users/me", nil, http.StatusOK, nil)

	ts.advance(6 * time.Minute)
	u.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	// And it is not touched back into the cache.
	ts.advance(6 * time.Minute)
	u.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
}

func TestPasswordChangeRevokesSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	a := ts.newUser()
	other := ts.login(a.User.Username, "password1")
	otherWS := other.ws()

	// Changing your own password keeps the session you did it from and
	// ends the others, sockets included.
	a.mustDo("PUT", "/users/me/password", map[string]any{"current_password": "password1", "new_password": "password2"}, http.StatusOK, nil)
	a.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	other.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	requireSocketClosed(t, otherWS)

	// An admin's reset ends every session of the user, and none of the
	// admin's.
	fresh := ts.login(a.User.Username, "password2")
	aWS := a.ws()
	admin.mustDo("PUT", "/users/"+a.User.ID+"/password", map[string]any{"new_password": "password3"}, http.StatusOK, nil)
	a.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	fresh.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	requireSocketClosed(t, aWS)
	admin.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	ts.login(a.User.Username, "password3").mustDo("GET", "/users/me", nil, http.StatusOK, nil)
}

func TestCleanupSessionsEndsSockets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	u, keep := ts.newUser(), ts.newUser()
	uWS := u.ws()
	ctx := context.Background()
	s, appErr := ts.App.Session(ctx, u.Token)
	require.Nil(t, appErr)
	_, err := ts.Store.Pool().Exec(ctx, `UPDATE sessions SET expires_at = 1 WHERE id = $1`, s.ID)
	require.NoError(t, err)

	n, err := ts.App.CleanupSessions(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	requireSocketClosed(t, uWS)
	// The cached copy, with its old expiry, is gone too.
	u.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	keep.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
}

func TestPrivacySettingsHideProfiles(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) {
		s.ShowEmailAddress = false
		s.ShowFullName = false
	})
	admin := ts.newUser()
	viewer, target := ts.newUser(), ts.newUser()
	target.mustDo("PUT", "/users/me/patch", map[string]any{"email": "hidden.addr@example.com", "password": "password1",
		"first_name": "Bertha", "last_name": "Quist", "nickname": "bq", "notify_props": map[string]string{"mention_keys": "secretword"}},
		http.StatusOK, nil)
	viewerWS := viewer.ws()

	hidden := func(t *testing.T, u *model.User) {
		t.Helper()
		require.Equal(t, target.User.ID, u.ID)
		require.Equal(t, target.User.Username, u.Username)
		require.Equal(t, "bq", u.Nickname, "the nickname is public")
		require.Empty(t, u.Email)
		require.Empty(t, u.FirstName)
		require.Empty(t, u.LastName)
		require.Empty(t, u.NotifyProps, "mention keys are private")
		require.Zero(t, u.LastPasswordUpdate)
		require.False(t, u.EmailVerified)
		require.Empty(t, u.Password)
	}
	shown := func(t *testing.T, u *model.User) {
		t.Helper()
		require.Equal(t, "hidden.addr@example.com", u.Email)
		require.Equal(t, "Bertha", u.FirstName)
		require.Equal(t, "Quist", u.LastName)
		require.Equal(t, "secretword", u.NotifyProps["mention_keys"])
		require.NotZero(t, u.LastPasswordUpdate)
		require.Empty(t, u.Password)
	}
	find := func(t *testing.T, users []*model.User) *model.User {
		t.Helper()
		for _, u := range users {
			if u.ID == target.User.ID {
				return u
			}
		}
		require.FailNow(t, "target not listed")
		return nil
	}
	autocomplete := func(c *client, term string) []*model.User {
		var res model.UserAutocomplete
		c.mustDo("GET", "/users/autocomplete?name="+term, nil, http.StatusOK, &res)
		return res.Users
	}

	t.Run("other users see the public profile", func(t *testing.T) {
		var u model.User
		viewer.mustDo("GET", "/users/"+target.User.ID, nil, http.StatusOK, &u)
		hidden(t, &u)
		viewer.mustDo("GET", "/users/username/"+target.User.Username, nil, http.StatusOK, &u)
		hidden(t, &u)
		var list []*model.User
		viewer.mustDo("GET", "/users?per_page=200", nil, http.StatusOK, &list)
		hidden(t, find(t, list))
		viewer.mustDo("POST", "/users/ids", []string{target.User.ID}, http.StatusOK, &list)
		hidden(t, find(t, list))
		viewer.mustDo("POST", "/users/usernames", []string{target.User.Username}, http.StatusOK, &list)
		hidden(t, find(t, list))
		viewer.requireAppError("GET", "/users/email/hidden.addr@example.com", nil, http.StatusForbidden, "api.context.permissions.app_error")
	})

	t.Run("hidden fields cannot be probed by search", func(t *testing.T) {
		for _, term := range []string{"hidden", "hidden.addr@", "bert", "quis"} {
			require.Empty(t, autocomplete(viewer, term), term)
		}
		// Public fields still match.
		hidden(t, find(t, autocomplete(viewer, target.User.Username)))
		hidden(t, find(t, autocomplete(viewer, "bq")))
	})

	t.Run("admins and the user see everything", func(t *testing.T) {
		var u model.User
		admin.mustDo("GET", "/users/"+target.User.ID, nil, http.StatusOK, &u)
		shown(t, &u)
		admin.mustDo("GET", "/users/email/hidden.addr@example.com", nil, http.StatusOK, &u)
		shown(t, &u)
		target.mustDo("GET", "/users/me", nil, http.StatusOK, &u)
		shown(t, &u)
		var list []*model.User
		admin.mustDo("POST", "/users/ids", []string{target.User.ID}, http.StatusOK, &list)
		shown(t, find(t, list))
		for _, term := range []string{"hidden", "bert", "quis"} {
			shown(t, find(t, autocomplete(admin, term)))
		}
	})

	t.Run("user_updated to others is the public profile", func(t *testing.T) {
		target.mustDo("PUT", "/users/me/patch", map[string]any{"position": "Lead"}, http.StatusOK, nil)
		ev := viewerWS.next("user_updated")
		b, err := json.Marshal(ev.Data["user"])
		require.NoError(t, err)
		var u model.User
		require.NoError(t, json.Unmarshal(b, &u))
		hidden(t, &u)
		require.Equal(t, "Lead", u.Position)
	})
}
