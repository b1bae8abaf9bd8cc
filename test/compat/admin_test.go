package compat

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

// requireWSEnds reads c until the server ends the connection, failing the
// test if it is still open after eventTimeout.
func requireWSEnds(t *testing.T, c *wsConn) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		_, err := c.peek(deadline)
		if err != nil {
			require.Contains(t, err.Error(), "closed", "the server did not close the WebSocket")
			return
		}
		c.peeked = nil
	}
}

// promotedAdmin creates a user and makes them a system admin, so a test can
// demote or deactivate admins without touching the suite's own.
func promotedAdmin(t *testing.T) *account {
	t.Helper()
	a := newUser(t)
	_, err := srv.admin.UpdateUserRoles(t.Context(), a.User.Id, model.SystemAdminRoleId+" "+model.SystemUserRoleId)
	require.NoError(t, err)
	return a
}

func TestAdminUpdateUserActive(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u, watcher := newUser(t), newUser(t)
	ws := connectWS(t, u)
	watcherWS := connectWS(t, watcher)

	resp, err := srv.admin.UpdateUserActive(ctx, u.User.Id, false)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The user's socket and token end at once; logging in is refused.
	requireWSEnds(t, ws)
	_, resp, err = u.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
	_, resp, err = model.NewAPIv4Client(srv.url).Login(ctx, u.User.Username, u.Password)
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.user.login.inactive.app_error")
	// The driver decodes data.user into a *model.User.
	ev := watcherWS.await(t, model.WebsocketEventUserUpdated, func(ev *model.WebSocketEvent) bool {
		eu, _ := ev.GetData()["user"].(*model.User)
		return eu != nil && eu.Id == u.User.Id
	})
	require.NotZero(t, ev.GetData()["user"].(*model.User).DeleteAt)
	got, _, err := srv.admin.GetUser(ctx, u.User.Id, "")
	require.NoError(t, err)
	require.NotZero(t, got.DeleteAt)

	// Others may not deactivate or reactivate anyone.
	resp, err = watcher.UpdateUserActive(ctx, u.User.Id, true)
	requireAppError(t, resp, err, http.StatusForbidden, "api.user.update_active.permissions.app_error")
	// Deactivating yourself is off by default.
	resp, err = watcher.UpdateUserActive(ctx, watcher.User.Id, false)
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.user.update_active.not_enable.app_error")
	resp, err = srv.admin.UpdateUserActive(ctx, model.NewId(), false)
	requireAppError(t, resp, err, http.StatusNotFound, "app.user.missing_account.const")

	// Reactivation clears delete_at and the user logs in again.
	_, err = srv.admin.UpdateUserActive(ctx, u.User.Id, true)
	require.NoError(t, err)
	got, _, err = srv.admin.GetUser(ctx, u.User.Id, "")
	require.NoError(t, err)
	require.Zero(t, got.DeleteAt)
	_, _, err = model.NewAPIv4Client(srv.url).Login(ctx, u.User.Username, u.Password)
	require.NoError(t, err)
}

func TestAdminPasswordResetAndRevoke(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := newUser(t)
	ws := connectWS(t, u)
	_, err := srv.admin.RevokeAllSessions(ctx, u.User.Id)
	require.NoError(t, err)
	requireWSEnds(t, ws)
	_, resp, err := u.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")

	_, _, err = u.Login(ctx, u.User.Username, u.Password)
	require.NoError(t, err)
	ws = connectWS(t, u)
	_, err = srv.admin.UpdateUserPassword(ctx, u.User.Id, "", "New-"+u.Password)
	require.NoError(t, err)
	requireWSEnds(t, ws)
	_, resp, err = u.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
	_, _, err = u.Login(ctx, u.User.Username, "New-"+u.Password)
	require.NoError(t, err)
}

func TestAdminUpdateUserRoles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u, other := newUser(t), newUser(t)
	sessions := func(c *account) (*model.Response, error) {
		_, r, err := c.GetSessions(ctx, other.User.Id, "")
		return r, err
	}
	resp, err := sessions(u)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	// A promotion applies to the very next request.
	_, err = srv.admin.UpdateUserRoles(ctx, u.User.Id, model.SystemUserRoleId+" "+model.SystemAdminRoleId)
	require.NoError(t, err)
	_, err = sessions(u)
	require.NoError(t, err)
	me, _, err := u.GetMe(ctx, "")
	require.NoError(t, err)
	require.True(t, me.IsSystemAdmin())

	// So does a demotion.
	_, err = srv.admin.UpdateUserRoles(ctx, u.User.Id, model.SystemUserRoleId)
	require.NoError(t, err)
	resp, err = sessions(u)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	for _, tc := range []struct {
		name, roles, id string
		by              *account
		status          int
	}{
		{"non-admin", model.SystemUserRoleId, "api.context.permissions.app_error", u, http.StatusForbidden},
		{"unknown role", "system_user system_wizard", "app.role.check_roles_exist.role_not_found", srv.admin, http.StatusBadRequest},
		{"system_admin alone", model.SystemAdminRoleId, "api.context.invalid_body_param.app_error", srv.admin, http.StatusBadRequest},
		{"licensed role", "system_user system_manager", "api.user.update_user_roles.license.app_error", srv.admin, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.by.UpdateUserRoles(ctx, other.User.Id, tc.roles)
			requireAppError(t, resp, err, tc.status, tc.id)
		})
	}
	got, _, err := srv.admin.GetUser(ctx, other.User.Id, "")
	require.NoError(t, err)
	require.Equal(t, model.SystemUserRoleId, got.Roles)
}

func TestAdminUpdateTeamMemberRoles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member, other := newUser(t), newUser(t), newUser(t)
	team := teamWith(t, owner, member, other)
	ws := connectWS(t, member)

	resp, err := member.UpdateTeamMemberRoles(ctx, team.Id, other.User.Id, "team_user team_admin")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	_, err = owner.UpdateTeamMemberRoles(ctx, team.Id, member.User.Id, "team_user team_admin")
	require.NoError(t, err)
	ev := ws.await(t, model.WebsocketEventMemberroleUpdated, nil)
	tm := decodeDataString[model.TeamMember](t, ev, "member")
	require.Equal(t, team.Id, tm.TeamId)
	require.True(t, tm.SchemeAdmin)
	got, _, err := owner.GetTeamMember(ctx, team.Id, member.User.Id, "")
	require.NoError(t, err)
	require.True(t, got.SchemeAdmin)
	require.ElementsMatch(t, []string{model.TeamUserRoleId, model.TeamAdminRoleId}, strings.Fields(got.Roles))

	// The new team admin may manage roles at once.
	_, err = member.UpdateTeamMemberRoles(ctx, team.Id, other.User.Id, "team_user team_admin")
	require.NoError(t, err)
	_, err = owner.UpdateTeamMemberRoles(ctx, team.Id, member.User.Id, model.TeamUserRoleId)
	require.NoError(t, err)
	resp, err = member.UpdateTeamMemberRoles(ctx, team.Id, other.User.Id, model.TeamUserRoleId)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	resp, err = owner.UpdateTeamMemberRoles(ctx, team.Id, member.User.Id, "team_user team_wizard")
	requireAppError(t, resp, err, http.StatusBadRequest, "app.role.get_by_name.app_error")
	resp, err = owner.UpdateTeamMemberRoles(ctx, team.Id, model.NewId(), model.TeamUserRoleId)
	requireAppError(t, resp, err, http.StatusNotFound, "app.team.get_member.missing.app_error")
}

func TestAdminUpdateChannelRoles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member, other := newUser(t), newUser(t), newUser(t)
	team := teamWith(t, owner, member, other)
	ch := channelWith(t, owner, team.Id, model.ChannelTypePrivate, member, other)
	ws := connectWS(t, member)

	resp, err := member.UpdateChannelRoles(ctx, ch.Id, other.User.Id, "channel_user channel_admin")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	_, err = owner.UpdateChannelRoles(ctx, ch.Id, member.User.Id, "channel_user channel_admin")
	require.NoError(t, err)
	ev := ws.await(t, model.WebsocketEventChannelMemberUpdated, nil)
	cm := decodeDataString[model.ChannelMember](t, ev, "channelMember")
	require.Equal(t, ch.Id, cm.ChannelId)
	require.True(t, cm.SchemeAdmin)
	got, _, err := member.GetChannelMember(ctx, ch.Id, member.User.Id, "")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{model.ChannelUserRoleId, model.ChannelAdminRoleId}, strings.Fields(got.Roles))

	_, err = member.UpdateChannelRoles(ctx, ch.Id, other.User.Id, "channel_user channel_admin")
	require.NoError(t, err)
	resp, err = owner.UpdateChannelRoles(ctx, ch.Id, member.User.Id, "channel_user team_admin")
	requireAppError(t, resp, err, http.StatusBadRequest, "api.channel.update_channel_member_roles.scheme_role.app_error")
	resp, err = srv.admin.UpdateChannelRoles(ctx, ch.Id, model.NewId(), model.ChannelUserRoleId)
	requireAppError(t, resp, err, http.StatusNotFound, "app.channel.get_member.missing.app_error")
}

func TestAdminDemoteAndDeactivate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := promotedAdmin(t), promotedAdmin(t)
	// An admin may demote and deactivate another admin; the suite's admin
	// keeps the system from ever running out.
	_, err := a.UpdateUserRoles(ctx, b.User.Id, model.SystemUserRoleId)
	require.NoError(t, err)
	_, resp, err := b.GetSessions(ctx, a.User.Id, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, err = a.UpdateUserActive(ctx, b.User.Id, false)
	require.NoError(t, err)
	_, resp, err = b.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
}

func TestAdminNotImplementedFeatures(t *testing.T) {
	t.Parallel()
	a := srv.admin
	for _, tc := range []call{
		{"GenerateMfaSecret", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GenerateMfaSecret(ctx, a.User.Id)
			return r, err
		}},
		{"UpdateUserMfa", func(ctx context.Context) (*model.Response, error) {
			return a.UpdateUserMfa(ctx, a.User.Id, "123456", true)
		}},
		{"SyncLdap", func(ctx context.Context) (*model.Response, error) { return a.SyncLdap(ctx) }},
		{"GetSamlMetadata", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetSamlMetadata(ctx)
			return r, err
		}},
		{"GetOAuthApps", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetOAuthApps(ctx, 0, 10)
			return r, err
		}},
		{"GetComplianceReports", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetComplianceReports(ctx, 0, 10)
			return r, err
		}},
		{"GetDataRetentionPolicy", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetDataRetentionPolicy(ctx)
			return r, err
		}},
		{"GetPlugins", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetPlugins(ctx)
			return r, err
		}},
		{"GetJobs", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetJobs(ctx, "", "", 0, 10)
			return r, err
		}},
		{"GetEmojiList", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetEmojiList(ctx, 0, 10)
			return r, err
		}},
		{"CreateBot", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.CreateBot(ctx, &model.Bot{Username: uniqueName("bot")})
			return r, err
		}},
		{"GetGroups", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetGroups(ctx, model.GroupSearchOpts{})
			return r, err
		}},
		{"UploadLicenseFile", func(ctx context.Context) (*model.Response, error) {
			return a.UploadLicenseFile(ctx, []byte("license"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.do(t.Context())
			requireAppError(t, resp, err, http.StatusNotImplemented, "api.garrison.not_implemented.app_error")
		})
	}
}
