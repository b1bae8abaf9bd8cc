package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

const (
	errPermissions     = "api.context.permissions.app_error"
	errInvalidBody     = "api.context.invalid_body_param.app_error"
	errInvalidURL      = "api.context.invalid_url_param.app_error"
	errSessionExpired  = "api.context.session_expired.app_error"
	errUserMissing     = "app.user.missing_account.const"
	errLastAdmin       = "app.user.update.lastAdmin.app_error"
	errActivePerms     = "api.user.update_active.permissions.app_error"
	errNotImplemented  = "api.garrison.not_implemented.app_error"
	systemAdminAndUser = "system_admin system_user"
)

func active(v bool) map[string]any { return map[string]any{"active": v} }

func roles(r string) map[string]any { return map[string]any{"roles": r} }

// requireUserEvent decodes the user of a user_updated event.
func requireUserEvent(t *testing.T, ev wsEvent) *model.User {
	t.Helper()
	b, err := json.Marshal(ev.Data["user"])
	require.NoError(t, err)
	var u model.User
	require.NoError(t, json.Unmarshal(b, &u))
	return &u
}

func TestDeactivateEndsSessionsAndSockets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	target, watcher := ts.newUser(), ts.newUser()
	second := ts.login(target.User.Username, "password1")
	targetWS, secondWS, watcherWS := target.ws(), second.ws(), watcher.ws()
	target.mustDo("GET", "/users/me", nil, http.StatusOK, nil) // cached on this node

	admin.mustDo("PUT", "/users/"+target.User.ID+"/active", active(false), http.StatusOK, nil)

	// Every token and socket of the user ends at once.
	requireSocketClosed(t, targetWS)
	requireSocketClosed(t, secondWS)
	target.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, errSessionExpired)
	second.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, errSessionExpired)
	ev := watcherWS.next("user_updated")
	u := requireUserEvent(t, ev)
	require.Equal(t, target.User.ID, u.ID)
	require.NotZero(t, u.DeleteAt)
	watcherWS.next("user_activation_status_change")

	// A deactivated user cannot log in, even with the right password.
	ts.anon().requireAppError("POST", "/users/login", map[string]any{"login_id": target.User.Username, "password": "password1"},
		http.StatusUnauthorized, "api.user.login.inactive.app_error")
	var got model.User
	admin.mustDo("GET", "/users/"+target.User.ID, nil, http.StatusOK, &got)
	require.NotZero(t, got.DeleteAt)
	var inactive []*model.User
	admin.mustDo("GET", "/users?inactive=true", nil, http.StatusOK, &inactive)
	require.Len(t, inactive, 1)
	require.Equal(t, target.User.ID, inactive[0].ID)

	// Deactivating again is harmless; reactivating clears delete_at and
	// lets the user log in again.
	admin.mustDo("PUT", "/users/"+target.User.ID+"/active", active(false), http.StatusOK, nil)
	require.NotZero(t, requireUserEvent(t, watcherWS.next("user_updated")).DeleteAt)
	admin.mustDo("PUT", "/users/"+target.User.ID+"/active", active(true), http.StatusOK, nil)
	u = requireUserEvent(t, watcherWS.next("user_updated"))
	require.Zero(t, u.DeleteAt)
	admin.mustDo("GET", "/users/"+target.User.ID, nil, http.StatusOK, &got)
	require.Zero(t, got.DeleteAt)
	ts.login(target.User.Username, "password1").mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	admin.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
}

func TestDeactivateRules(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	user, other := ts.newUser(), ts.newUser()
	unknown := model.NewID()
	cases := []struct {
		name   string
		c      *client
		path   string
		body   any
		status int
		id     string
	}{
		{"user deactivating another", user, "/users/" + other.User.ID + "/active", active(false), http.StatusForbidden, errActivePerms},
		{"user reactivating themself", user, "/users/me/active", active(true), http.StatusForbidden, errActivePerms},
		{"user deactivating an admin", user, "/users/" + admin.User.ID + "/active", active(false), http.StatusForbidden, errActivePerms},
		{"user on an unknown user", user, "/users/" + unknown + "/active", active(false), http.StatusForbidden, errActivePerms},
		{"self-deactivation is off", user, "/users/me/active", active(false), http.StatusUnauthorized, "api.user.update_active.not_enable.app_error"},
		{"unknown user", admin, "/users/" + unknown + "/active", active(false), http.StatusNotFound, errUserMissing},
		{"bad user id", admin, "/users/nope/active", active(false), http.StatusBadRequest, errInvalidURL},
		{"missing active", admin, "/users/" + other.User.ID + "/active", map[string]any{}, http.StatusBadRequest, errInvalidBody},
		{"null active", admin, "/users/" + other.User.ID + "/active", `{"active":null}`, http.StatusBadRequest, errInvalidBody},
		{"string active", admin, "/users/" + other.User.ID + "/active", `{"active":"false"}`, http.StatusBadRequest, errInvalidBody},
		{"malformed body", admin, "/users/" + other.User.ID + "/active", `{"active":`, http.StatusBadRequest, errInvalidBody},
		// Self-deactivation is a setting for admins too.
		{"admin deactivating themself", admin, "/users/me/active", active(false), http.StatusUnauthorized, "api.user.update_active.not_enable.app_error"},
		{"no session", ts.anon(), "/users/" + other.User.ID + "/active", active(false), http.StatusUnauthorized, errSessionExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.requireAppError("PUT", tc.path, tc.body, tc.status, tc.id)
		})
	}
	// Nothing was changed by the refusals.
	for _, c := range []*client{admin, user, other} {
		c.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	}
}

func TestSelfDeactivation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.EnableUserDeactivation = true })
	admin := ts.newUser()
	user := ts.newUser()
	userWS := user.ws()
	user.mustDo("PUT", "/users/me/active", active(false), http.StatusOK, nil)
	requireSocketClosed(t, userWS)
	user.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, errSessionExpired)

	// The only active admin may not leave; once there is another, they
	// may. A deactivated admin does not count.
	admin.requireAppError("PUT", "/users/me/active", active(false), http.StatusBadRequest, errLastAdmin)
	admin.mustDo("PUT", "/users/"+user.User.ID+"/roles", roles(systemAdminAndUser), http.StatusOK, nil)
	admin.requireAppError("PUT", "/users/me/active", active(false), http.StatusBadRequest, errLastAdmin)
	spare := ts.newUser()
	admin.mustDo("PUT", "/users/"+spare.User.ID+"/roles", roles(systemAdminAndUser), http.StatusOK, nil)
	admin.mustDo("PUT", "/users/me/active", active(false), http.StatusOK, nil)
	admin.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, errSessionExpired)
}

func TestAdminRevokeAllEndsSockets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	user := ts.newUser()
	other := ts.login(user.User.Username, "password1")
	userWS, otherWS := user.ws(), other.ws()
	adminWS := admin.ws()

	admin.mustDo("POST", "/users/"+user.User.ID+"/sessions/revoke/all", nil, http.StatusOK, nil)
	requireSocketClosed(t, userWS)
	requireSocketClosed(t, otherWS)
	user.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, errSessionExpired)
	other.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, errSessionExpired)
	// The admin's own session and socket are untouched.
	admin.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	require.Equal(t, "pong", adminWS.action("ping", nil).Data["text"])

	// An admin's password reset works the same way, and the new password
	// logs in.
	fresh := ts.login(user.User.Username, "password1")
	freshWS := fresh.ws()
	admin.mustDo("PUT", "/users/"+user.User.ID+"/password", map[string]any{"new_password": "password9"}, http.StatusOK, nil)
	requireSocketClosed(t, freshWS)
	fresh.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, errSessionExpired)
	ts.login(user.User.Username, "password9").mustDo("GET", "/users/me", nil, http.StatusOK, nil)
}

func TestUpdateUserRoles(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	user, victim := ts.newUser(), ts.newUser()
	other := ts.login(user.User.Username, "password1")
	sessions := "/users/" + victim.User.ID + "/sessions" // self or system admin
	user.requireAppError("GET", sessions, nil, http.StatusForbidden, errPermissions)

	// Promotion applies to the user's very next request, on every one of
	// their sessions, and closes their sockets so that they reconnect as
	// an admin.
	userWS := user.ws()
	admin.mustDo("PUT", "/users/"+user.User.ID+"/roles", roles("system_user system_admin"), http.StatusOK, nil)
	requireSocketClosed(t, userWS)
	user.mustDo("GET", sessions, nil, http.StatusOK, nil)
	other.mustDo("GET", sessions, nil, http.StatusOK, nil)
	var me model.User
	user.mustDo("GET", "/users/me", nil, http.StatusOK, &me)
	require.Equal(t, systemAdminAndUser, me.Roles)
	var ss []*model.Session
	user.mustDo("GET", "/users/me/sessions", nil, http.StatusOK, &ss)
	for _, s := range ss {
		require.Equal(t, systemAdminAndUser, s.Roles)
	}

	// Setting the same roles changes no rights: the socket stays and hears
	// user_role_updated.
	userWS = user.ws()
	admin.mustDo("PUT", "/users/"+user.User.ID+"/roles", roles(systemAdminAndUser), http.StatusOK, nil)
	ev := userWS.next("user_role_updated")
	require.Equal(t, user.User.ID, ev.Data["user_id"])
	require.Equal(t, systemAdminAndUser, ev.Data["roles"])

	// The new admin demotes the first one; that too applies at once.
	user.mustDo("PUT", "/users/"+admin.User.ID+"/roles", roles("system_user"), http.StatusOK, nil)
	admin.requireAppError("GET", sessions, nil, http.StatusForbidden, errPermissions)
	admin.requireAppError("PUT", "/users/"+user.User.ID+"/roles", roles("system_user"), http.StatusForbidden, errPermissions)

	// The last admin cannot demote themself (Mattermost's rule), and the
	// refusal changes nothing.
	user.requireAppError("PUT", "/users/me/roles", roles("system_user"), http.StatusBadRequest, errLastAdmin)
	user.mustDo("GET", sessions, nil, http.StatusOK, nil)
	// Once another admin exists, they can.
	user.mustDo("PUT", "/users/"+victim.User.ID+"/roles", roles(systemAdminAndUser), http.StatusOK, nil)
	user.mustDo("PUT", "/users/me/roles", roles("system_user"), http.StatusOK, nil)
	user.requireAppError("GET", sessions, nil, http.StatusForbidden, errPermissions)
}

func TestUpdateUserRolesBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	user := ts.newUser()
	path := "/users/" + user.User.ID + "/roles"
	cases := []struct {
		name   string
		c      *client
		path   string
		body   any
		status int
		id     string
	}{
		{"non-admin", user, "/users/me/roles", roles(systemAdminAndUser), http.StatusForbidden, errPermissions},
		{"non-admin on another", user, "/users/" + admin.User.ID + "/roles", roles("system_user"), http.StatusForbidden, errPermissions},
		// As in Mattermost, role names are checked to exist only for admins.
		{"non-admin, unknown role", user, "/users/me/roles", roles("system_user system_wizard"), http.StatusForbidden, errPermissions},
		{"non-admin, malformed role", user, "/users/me/roles", roles("system_admin"), http.StatusBadRequest, errInvalidBody},
		{"unknown role", admin, path, roles("system_user system_wizard"), http.StatusBadRequest, "app.role.check_roles_exist.role_not_found"},
		{"role of another scope", admin, path, roles("system_user team_admin"), http.StatusBadRequest, "app.role.check_roles_exist.role_not_found"},
		{"licensed role", admin, path, roles("system_user system_manager"), http.StatusBadRequest, "api.user.update_user_roles.license.app_error"},
		{"malformed role", admin, path, roles("system_user Admin!"), http.StatusBadRequest, errInvalidBody},
		{"system_admin alone", admin, path, roles("system_admin"), http.StatusBadRequest, errInvalidBody},
		{"no system_user", admin, path, roles(""), http.StatusBadRequest, errInvalidBody},
		{"missing roles", admin, path, map[string]any{}, http.StatusBadRequest, errInvalidBody},
		{"roles not a string", admin, path, `{"roles":["system_user"]}`, http.StatusBadRequest, errInvalidBody},
		{"malformed body", admin, path, `{"roles":`, http.StatusBadRequest, errInvalidBody},
		// Mattermost answers an unknown user here with 400, not 404.
		{"unknown user", admin, "/users/" + model.NewID() + "/roles", roles("system_user"), http.StatusBadRequest, errUserMissing},
		{"bad user id", admin, "/users/x/roles", roles("system_user"), http.StatusBadRequest, errInvalidURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.requireAppError("PUT", tc.path, tc.body, tc.status, tc.id)
		})
	}
	var u model.User
	admin.mustDo("GET", "/users/"+user.User.ID, nil, http.StatusOK, &u)
	require.Equal(t, "system_user", u.Roles)
}

// TestSessionsFollowTheirUser checks migration 00004's trigger: a session
// stored for a deactivated user is dropped, and a session stored with
// stale roles gets the user's current ones. This is what closes the race
// between a login and a deactivation or role change.
func TestSessionsFollowTheirUser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	user := ts.newUser()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	store := func(roles string) (*model.Session, error) {
		s := &model.Session{ID: model.NewID(), Token: model.NewToken(), CSRF: model.NewToken(), CreateAt: now,
			LastActivityAt: now, ExpiresAt: now + time.Hour.Milliseconds(), UserID: user.User.ID, Roles: roles,
			Props: model.StringMap{}}
		_, err := ts.Store.CreateSession(ctx, s)
		return s, err
	}

	s, err := store(systemAdminAndUser) // as read before a demotion committed
	require.NoError(t, err)
	require.Equal(t, "system_user", s.Roles, "the caller learns the roles actually stored")
	got, err := ts.Store.GetSession(ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, "system_user", got.Roles)

	_, err = ts.Store.SetUserActive(ctx, user.User.ID, false, now)
	require.NoError(t, err)
	s, err = store("system_user") // as from a login that checked the user before
	require.ErrorIs(t, err, postgres.ErrNotFound, "nothing is stored, and the login is refused")
	_, err = ts.Store.GetSession(ctx, s.ID)
	require.ErrorIs(t, err, postgres.ErrNotFound)
}

func TestUpdateTeamMemberRoles(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	sysadmin := ts.newUser()
	owner, member, other, outsider := ts.newUser(), ts.newUser(), ts.newUser(), ts.newUser()
	team := owner.createTeam(false)
	owner.addToTeam(team.ID, member)
	owner.addToTeam(team.ID, other)
	path := func(u *client) string { return "/teams/" + team.ID + "/members/" + u.User.ID + "/roles" }

	// A plain member may not change roles.
	member.requireAppError("PUT", path(other), roles("team_user team_admin"), http.StatusForbidden, errPermissions)
	outsider.requireAppError("PUT", path(other), roles("team_user team_admin"), http.StatusForbidden, errPermissions)

	// The team admin promotes a member, who hears memberrole_updated and
	// may manage roles from the very next request.
	memberWS := member.ws()
	owner.mustDo("PUT", path(member), roles("team_user team_admin"), http.StatusOK, nil)
	ev := memberWS.next("memberrole_updated")
	var tm model.TeamMember
	require.NoError(t, json.Unmarshal([]byte(ev.Data["member"].(string)), &tm))
	require.Equal(t, team.ID, tm.TeamID)
	require.Equal(t, "team_user team_admin", tm.Roles)
	require.True(t, tm.SchemeAdmin)
	owner.mustDo("GET", "/teams/"+team.ID+"/members/"+member.User.ID, nil, http.StatusOK, &tm)
	require.True(t, tm.SchemeAdmin)
	member.mustDo("PUT", path(other), roles("team_user team_admin"), http.StatusOK, nil)

	// Demotion applies at once too; a system admin may change anyone's.
	owner.mustDo("PUT", path(member), roles("team_user"), http.StatusOK, nil)
	tm = model.TeamMember{}
	require.NoError(t, json.Unmarshal([]byte(memberWS.next("memberrole_updated").Data["member"].(string)), &tm))
	require.Equal(t, "team_user", tm.Roles)
	member.requireAppError("PUT", path(other), roles("team_user"), http.StatusForbidden, errPermissions)
	sysadmin.mustDo("PUT", path(other), roles("team_user"), http.StatusOK, nil)
	sysadmin.mustDo("PUT", path(owner), roles("team_user"), http.StatusOK, nil)
	owner.requireAppError("PUT", path(member), roles("team_user team_admin"), http.StatusForbidden, errPermissions)

	cases := []struct {
		name   string
		path   string
		body   any
		status int
		id     string
	}{
		{"not a member", path(outsider), roles("team_user"), http.StatusNotFound, "app.team.get_member.missing.app_error"},
		{"unknown user", "/teams/" + team.ID + "/members/" + model.NewID() + "/roles", roles("team_user"), http.StatusNotFound, "app.team.get_member.missing.app_error"},
		{"unknown team", "/teams/" + model.NewID() + "/members/" + member.User.ID + "/roles", roles("team_user"), http.StatusNotFound, "app.team.get_member.missing.app_error"},
		{"bad team id", "/teams/x/members/" + member.User.ID + "/roles", roles("team_user"), http.StatusBadRequest, errInvalidURL},
		{"unknown role", path(member), roles("team_user team_wizard"), http.StatusBadRequest, "app.role.get_by_name.app_error"},
		{"role of another scope", path(member), roles("team_user channel_admin"), http.StatusBadRequest, "api.channel.update_team_member_roles.scheme_role.app_error"},
		{"explicit role", path(member), roles("team_user team_post_all"), http.StatusBadRequest, "api.channel.update_team_member_roles.scheme_role.app_error"},
		{"guest", path(member), roles("team_guest"), http.StatusBadRequest, "api.channel.update_team_member_roles.changing_guest_role.app_error"},
		{"guest and user", path(member), roles("team_guest team_user"), http.StatusBadRequest, "api.team.update_team_member_roles.guest_and_user.app_error"},
		{"admin without user", path(member), roles("team_admin"), http.StatusBadRequest, errInvalidBody},
		{"malformed role", path(member), roles("team_user TEAM"), http.StatusBadRequest, errInvalidBody},
		{"malformed body", path(member), `[]`, http.StatusBadRequest, errInvalidBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sysadmin.requireAppError("PUT", tc.path, tc.body, tc.status, tc.id)
		})
	}
	owner.mustDo("GET", "/teams/"+team.ID+"/members/"+member.User.ID, nil, http.StatusOK, &tm)
	require.Equal(t, "team_user", tm.Roles)
}

func TestUpdateChannelMemberRoles(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	sysadmin := ts.newUser()
	teamAdmin, creator, member, other, outsider := ts.newUser(), ts.newUser(), ts.newUser(), ts.newUser(), ts.newUser()
	team := teamAdmin.createTeam(false)
	for _, u := range []*client{creator, member, other} {
		teamAdmin.addToTeam(team.ID, u)
	}
	ch := creator.createChannel(team.ID, model.ChannelPrivate)
	creator.addToChannel(ch.ID, member)
	creator.addToChannel(ch.ID, other)
	path := func(u *client) string { return "/channels/" + ch.ID + "/members/" + u.User.ID + "/roles" }

	member.requireAppError("PUT", path(other), roles("channel_user channel_admin"), http.StatusForbidden, errPermissions)
	outsider.requireAppError("PUT", path(other), roles("channel_user channel_admin"), http.StatusForbidden, errPermissions)
	outsider.requireAppError("PUT", "/channels/"+model.NewID()+"/members/"+other.User.ID+"/roles", roles("channel_user"),
		http.StatusForbidden, errPermissions)

	// The channel's creator is its admin: they promote a member, who hears
	// channel_member_updated and may manage roles at once.
	memberWS := member.ws()
	creator.mustDo("PUT", path(member), roles("channel_user channel_admin"), http.StatusOK, nil)
	ev := memberWS.next("channel_member_updated")
	var cm model.ChannelMember
	require.NoError(t, json.Unmarshal([]byte(ev.Data["channelMember"].(string)), &cm))
	require.Equal(t, ch.ID, cm.ChannelID)
	require.Equal(t, "channel_user channel_admin", cm.Roles)
	require.True(t, cm.SchemeAdmin)
	member.mustDo("PUT", path(other), roles("channel_user channel_admin"), http.StatusOK, nil)
	member.mustDo("PUT", path(other), roles("channel_user"), http.StatusOK, nil)

	// A team admin who is not in the channel may manage its roles too, as
	// may a system admin.
	teamAdmin.mustDo("PUT", path(member), roles("channel_user"), http.StatusOK, nil)
	member.requireAppError("PUT", path(other), roles("channel_user channel_admin"), http.StatusForbidden, errPermissions)
	sysadmin.mustDo("PUT", path(creator), roles("channel_user"), http.StatusOK, nil)
	creator.requireAppError("PUT", path(member), roles("channel_user channel_admin"), http.StatusForbidden, errPermissions)

	cases := []struct {
		name   string
		path   string
		body   any
		status int
		id     string
	}{
		{"not a member", path(outsider), roles("channel_user"), http.StatusNotFound, "app.channel.get_member.missing.app_error"},
		{"unknown channel", "/channels/" + model.NewID() + "/members/" + member.User.ID + "/roles", roles("channel_user"), http.StatusNotFound, "app.channel.get_member.missing.app_error"},
		{"bad user id", "/channels/" + ch.ID + "/members/x/roles", roles("channel_user"), http.StatusBadRequest, errInvalidURL},
		{"unknown role", path(member), roles("channel_user channel_wizard"), http.StatusBadRequest, "app.role.get_by_name.app_error"},
		{"role of another scope", path(member), roles("channel_user team_admin"), http.StatusBadRequest, "api.channel.update_channel_member_roles.scheme_role.app_error"},
		{"guest", path(member), roles("channel_guest"), http.StatusBadRequest, "api.channel.update_channel_member_roles.changing_guest_role.app_error"},
		{"guest and user", path(member), roles("channel_guest channel_user"), http.StatusBadRequest, "api.channel.update_channel_member_roles.guest_and_user.app_error"},
		{"admin without user", path(member), roles("channel_admin"), http.StatusBadRequest, errInvalidBody},
		{"empty", path(member), roles(""), http.StatusBadRequest, errInvalidBody},
		{"malformed body", path(member), `{"roles":1}`, http.StatusBadRequest, errInvalidBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sysadmin.requireAppError("PUT", tc.path, tc.body, tc.status, tc.id)
		})
	}
	member.mustDo("GET", "/channels/"+ch.ID+"/members/"+member.User.ID, nil, http.StatusOK, &cm)
	require.Equal(t, "channel_user", cm.Roles)
}

func TestNotImplementedFeatures(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	id := admin.User.ID
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/users/" + id + "/mfa"},
		{"POST", "/users/" + id + "/mfa/generate"},
		{"POST", "/users/migrate_auth/ldap"},
		{"POST", "/ldap/sync"},
		{"GET", "/ldap/groups"},
		{"GET", "/saml/metadata"},
		{"GET", "/oauth/apps"},
		{"POST", "/oauth/apps"},
		{"GET", "/compliance/reports"},
		{"GET", "/data_retention/policy"},
		{"GET", "/plugins"},
		{"GET", "/plugins/webapp"},
		{"GET", "/jobs"},
		{"POST", "/elasticsearch/test"},
		{"GET", "/exports"},
		{"GET", "/imports"},
		{"GET", "/emoji"},
		{"GET", "/emoji/name/party"},
		{"POST", "/bots"},
		{"GET", "/bots/" + id},
		{"GET", "/groups"},
		{"POST", "/license"},
		{"DELETE", "/license"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			for _, c := range []*client{admin, ts.anon()} {
				resp, b := c.do(tc.method, tc.path, nil)
				requireAppErrorResp(t, resp, b, http.StatusNotImplemented, errNotImplemented)
				var ae model.AppError
				require.NoError(t, json.Unmarshal(b, &ae))
				require.Contains(t, ae.Message, "not implemented")
				require.NotEmpty(t, ae.RequestID)
			}
		})
	}
	// Unknown routes are still 404, and the license of clients still 200.
	admin.requireAppError("GET", "/no/such/thing", nil, http.StatusNotFound, "api.context.404.app_error")
	admin.mustDo("GET", "/license/client?format=old", nil, http.StatusOK, nil)
}
