package app

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseUserRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, errID string
	}{
		{in: "system_user", want: "system_user"},
		{in: "  system_user  ", want: "system_user"},
		{in: "system_admin system_user", want: "system_admin system_user"},
		{in: "system_user system_admin system_user", want: "system_admin system_user"},
		{in: "", errID: "api.context.invalid_body_param.app_error"},
		{in: "system_admin", errID: "api.context.invalid_body_param.app_error"},
		{in: "system_user Admin", errID: "api.context.invalid_body_param.app_error"},
		{in: "system_user " + strings.Repeat("a", 65), errID: "api.context.invalid_body_param.app_error"},
		{in: strings.Repeat("system_user ", 30), errID: "api.context.invalid_body_param.app_error"},
		{in: "system_user nobody", errID: "app.role.check_roles_exist.role_not_found"},
		{in: "system_user system_guest", errID: "app.role.check_roles_exist.role_not_found"},
		{in: "system_user system_read_only_admin", errID: "api.user.update_user_roles.license.app_error"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseUserRoles("test", tc.in)
			if tc.errID != "" {
				require.NotNil(t, err)
				require.Equal(t, tc.errID, err.ID)
				require.Equal(t, 400, err.StatusCode)
				return
			}
			require.Nil(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseMemberRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		scope memberRoleScope
		in    string
		admin bool
		errID string
	}{
		{scope: teamRoleScope, in: "team_user"},
		{scope: teamRoleScope, in: "team_admin team_user", admin: true},
		{scope: teamRoleScope, in: "team_admin", errID: "api.context.invalid_body_param.app_error"},
		{scope: teamRoleScope, in: "", errID: "api.context.invalid_body_param.app_error"},
		{scope: teamRoleScope, in: "team_user channel_user", errID: "api.channel.update_team_member_roles.scheme_role.app_error"},
		{scope: teamRoleScope, in: "team_user system_admin", errID: "api.channel.update_team_member_roles.scheme_role.app_error"},
		{scope: teamRoleScope, in: "team_user team_post_all_public", errID: "api.channel.update_team_member_roles.scheme_role.app_error"},
		{scope: teamRoleScope, in: "team_user made_up", errID: "app.role.get_by_name.app_error"},
		{scope: teamRoleScope, in: "team_guest", errID: "api.channel.update_team_member_roles.changing_guest_role.app_error"},
		{scope: teamRoleScope, in: "team_guest team_user", errID: "api.team.update_team_member_roles.guest_and_user.app_error"},
		{scope: channelRoleScope, in: "channel_user"},
		{scope: channelRoleScope, in: "channel_user channel_admin", admin: true},
		{scope: channelRoleScope, in: "channel_admin", errID: "api.context.invalid_body_param.app_error"},
		{scope: channelRoleScope, in: "channel_user team_admin", errID: "api.channel.update_channel_member_roles.scheme_role.app_error"},
		{scope: channelRoleScope, in: "channel_user made_up", errID: "app.role.get_by_name.app_error"},
		{scope: channelRoleScope, in: "channel_guest", errID: "api.channel.update_channel_member_roles.changing_guest_role.app_error"},
		{scope: channelRoleScope, in: "channel_guest channel_user", errID: "api.channel.update_channel_member_roles.guest_and_user.app_error"},
	} {
		t.Run(tc.scope.user+" "+tc.in, func(t *testing.T) {
			admin, err := parseMemberRoles("test", tc.in, tc.scope)
			if tc.errID != "" {
				require.NotNil(t, err)
				require.Equal(t, tc.errID, err.ID)
				require.Equal(t, 400, err.StatusCode)
				return
			}
			require.Nil(t, err)
			require.Equal(t, tc.admin, admin)
		})
	}
}

func TestValidRoles(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"": true, "system_user": true, "system_admin system_user": true, "system_admin": false,
		"a_1": true, "A": false, "a-b": false, "a\u00e9": false, strings.Repeat("r", 64): true, strings.Repeat("r", 65): false,
	} {
		require.Equal(t, want, validRoles(in), "%q", in)
	}
}
