package app

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// Role names Mattermost has built in that Garrison does not implement.
// Naming one is answered as Mattermost answers it when it cannot apply
// it; any other name does not exist.
var (
	// licensedSystemRoles need a licence with custom permission schemes
	// (Mattermost's model.NewSystemRoleIDs); Garrison is never licensed.
	licensedSystemRoles = map[string]bool{
		"system_user_manager": true, "system_read_only_admin": true, "system_manager": true,
		"system_shared_channel_manager": true,
	}
	// schemeRoles are the scheme-managed roles of every scope: on a
	// membership of the wrong scope they are Mattermost's scheme_role
	// error.
	schemeRoles = map[string]bool{
		"system_guest": true, model.RoleSystemUser: true, model.RoleSystemAdmin: true,
		"team_guest": true, model.RoleTeamUser: true, model.RoleTeamAdmin: true,
		"channel_guest": true, model.RoleChannelUser: true, model.RoleChannelAdmin: true,
	}
	// explicitRoles are Mattermost's built-in roles that are not scheme
	// managed. Mattermost stores them as a membership's explicit_roles;
	// Garrison has no explicit roles and refuses them like a role from
	// another scope.
	explicitRoles = map[string]bool{
		"system_post_all": true, "system_post_all_public": true,
		"system_custom_group_admin": true, "team_post_all": true, "team_post_all_public": true,
		"custom_group_user": true, "playbook_admin": true, "playbook_member": true, "run_admin": true,
		"run_member": true,
	}
)

// validRoleName is Mattermost's model.IsValidRoleName.
func validRoleName(r string) bool {
	return r != "" && len(r) <= 64 && strings.TrimLeft(r, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

// validRoles is Mattermost's model.IsValidUserRoles: every name well
// formed, and not system_admin alone. It is checked before permissions,
// as Mattermost does, so malformed input is a 400 for everyone.
func validRoles(roles string) bool {
	f := strings.Fields(roles)
	for _, r := range f {
		if !validRoleName(r) {
			return false
		}
	}
	return !(len(f) == 1 && f[0] == model.RoleSystemAdmin)
}

// checkUserRolesInput is what Mattermost's updateUserRoles checks before
// permissions: well-formed names, and no role that needs a licence.
func checkUserRolesInput(where, roles string) *model.AppError {
	if !validRoles(roles) || len(roles) > 256 {
		return model.ErrInvalidBody(where, "roles")
	}
	for _, r := range strings.Fields(roles) {
		if licensedSystemRoles[r] {
			return badRequest(where, "api.user.update_user_roles.license.app_error",
				"Custom permission schemes are not supported by the current license.")
		}
	}
	return nil
}

// parseUserRoles checks the system roles of PUT /users/{id}/roles and
// returns them in Garrison's canonical form. Garrison knows system_user,
// system_admin and system_user_access_token (which lets a user create
// personal access tokens), and every user holds system_user.
func parseUserRoles(where, roles string) (string, *model.AppError) {
	if appErr := checkUserRolesInput(where, roles); appErr != nil {
		return "", appErr
	}
	var user, admin, tokens bool
	for _, r := range strings.Fields(roles) {
		switch r {
		case model.RoleSystemUser:
			user = true
		case model.RoleSystemAdmin:
			admin = true
		case model.RoleSystemUserAccessToken:
			tokens = true
		default:
			return "", badRequest(where, "app.role.check_roles_exist.role_not_found",
				"The provided role does not exist.").Detail("role=%s", r)
		}
	}
	if !user {
		return "", model.ErrInvalidBody(where, "roles").Detail("every user holds system_user")
	}
	out := model.RoleSystemUser
	if admin {
		out = model.RoleSystemAdmin + " " + model.RoleSystemUser
	}
	if tokens {
		out += " " + model.RoleSystemUserAccessToken
	}
	return out, nil
}

// memberRoleScope names the ids Mattermost uses for the role errors of a
// team or channel membership.
type memberRoleScope struct {
	user, admin, guest string // the scope's scheme roles
	param              string // the body parameter named by a malformed value
	schemeRole         string // a scheme role of another scope
	guestAndUser       string
	changingGuest      string
}

var (
	teamRoleScope = memberRoleScope{
		user: model.RoleTeamUser, admin: model.RoleTeamAdmin, guest: "team_guest", param: "team_member_roles",
		schemeRole:    "api.channel.update_team_member_roles.scheme_role.app_error",
		guestAndUser:  "api.team.update_team_member_roles.guest_and_user.app_error",
		changingGuest: "api.channel.update_team_member_roles.changing_guest_role.app_error",
	}
	channelRoleScope = memberRoleScope{
		user: model.RoleChannelUser, admin: model.RoleChannelAdmin, guest: "channel_guest", param: "roles",
		schemeRole:    "api.channel.update_channel_member_roles.scheme_role.app_error",
		guestAndUser:  "api.channel.update_channel_member_roles.guest_and_user.app_error",
		changingGuest: "api.channel.update_channel_member_roles.changing_guest_role.app_error",
	}
)

// parseMemberRoles checks the roles of a team or channel membership, as
// Mattermost's UpdateTeamMemberRoles / UpdateChannelMemberRoles do, and
// returns whether they make the member an admin. Garrison has no guests
// and no explicit roles, and every member holds the scope's user role.
func parseMemberRoles(where, roles string, sc memberRoleScope) (admin bool, appErr *model.AppError) {
	var user, guest bool
	for _, r := range strings.Fields(roles) {
		switch {
		case r == sc.user:
			user = true
		case r == sc.admin:
			admin = true
		case r == sc.guest:
			guest = true
		case schemeRoles[r] || explicitRoles[r] || licensedSystemRoles[r]:
			return false, badRequest(where, sc.schemeRole, "The provided role is managed by a Scheme and therefore cannot be applied directly.").
				Detail("role_name=%s", r)
		default:
			return false, badRequest(where, "app.role.get_by_name.app_error", "Unable to get role.").Detail("role_name=%s", r)
		}
	}
	switch {
	case guest && user:
		return false, badRequest(where, sc.guestAndUser, "Invalid member update: A user must be a guest or a user but not both.")
	case guest:
		// Nobody is a guest in Garrison, so this changes the guest role.
		return false, badRequest(where, sc.changingGuest, "Invalid member update: You can't change a user from guest to a regular user or vice versa.")
	case !user:
		return false, model.ErrInvalidBody(where, sc.param).Detail("every member holds %s", sc.user)
	}
	return admin, nil
}

// UpdateUserActive deactivates or reactivates a user (Mattermost's
// updateUserActive). System admins may do either to anyone; users may
// deactivate themselves when TeamSettings.EnableUserDeactivation is on.
// Deactivation ends every session of the user and closes their sockets
// at once; the last active system admin cannot be deactivated.
func (a *App) UpdateUserActive(ctx context.Context, s *model.Session, userID string, active bool) *model.AppError {
	const where = "app.update_user_active"
	self := !active && s.UserID == userID
	if !self && !s.IsSystemAdmin() {
		return model.NewAppError(where, "api.user.update_active.permissions.app_error", http.StatusForbidden,
			"You do not have the appropriate permissions.").Detail("userId=%s", userID)
	}
	if self && !a.set.EnableUserDeactivation {
		return model.NewAppError(where, "api.user.update_active.not_enable.app_error", http.StatusUnauthorized,
			"You cannot deactivate yourself because this feature is not enabled. Please contact your System Administrator.").
			Detail("userId=%s", userID)
	}
	u, err := a.store.SetUserActive(ctx, userID, active, a.millis())
	switch {
	case errors.Is(err, postgres.ErrLastAdmin):
		return lastAdminErr(where)
	case err != nil:
		return storeErr(where, err, userMissing, "user")
	}
	if !active {
		// Also when the user was already inactive: a retry after a
		// failed revocation finishes the job.
		if appErr := a.revokeUserSessions(ctx, userID); appErr != nil {
			return appErr
		}
	}
	a.publishUserUpdated(ctx, u)
	a.publish(ctx, &ws.Event{Name: "user_activation_status_change", Data: map[string]any{}})
	return nil
}

// lastAdminErr is Mattermost's refusal to remove the last system admin.
func lastAdminErr(where string) *model.AppError {
	return badRequest(where, "app.user.update.lastAdmin.app_error", "You cannot remove the last system admin.")
}

// UpdateUserRoles sets a user's system roles (system admins only;
// Mattermost's updateUserRoles). The roles are copied onto the user's
// sessions in the same transaction and this node's session cache forgets
// them, so the change applies to the user's very next request. When it
// changes whether the user is a system admin, the user's sockets are
// closed so that they reconnect with the new rights (a socket's admin
// flag decides which sanitised events it receives). As in Mattermost the
// last active system admin cannot lose the role, and an unknown user is a
// 400.
func (a *App) UpdateUserRoles(ctx context.Context, s *model.Session, userID, roles string) *model.AppError {
	const where = "app.update_user_roles"
	if appErr := checkUserRolesInput(where, roles); appErr != nil {
		return appErr
	}
	if !s.IsSystemAdmin() {
		return model.ErrPermission(where, s.UserID, "manage_roles")
	}
	roles, appErr := parseUserRoles(where, roles)
	if appErr != nil {
		return appErr
	}
	u, prev, err := a.store.SetUserRoles(ctx, userID, roles, a.millis())
	switch {
	case errors.Is(err, postgres.ErrLastAdmin):
		return lastAdminErr(where)
	case err != nil:
		return userRolesLookupErr(where, err)
	}
	// Cached sessions carry the roles.
	a.invalidate(ctx, invalidation{Users: []string{userID}})
	a.publish(ctx, &ws.Event{Name: "user_role_updated", Data: map[string]any{"user_id": userID, "roles": roles},
		Broadcast: ws.Broadcast{UserID: userID}})
	if model.HasRole(prev, model.RoleSystemAdmin) != u.IsSystemAdmin() {
		// Sockets filter events by admin role as it was when they opened.
		a.invalidate(ctx, invalidation{CloseUsers: []string{userID}})
	}
	return nil
}

// userRolesLookupErr is Mattermost's UpdateUserRoles answer for a user
// that cannot be loaded: the usual error, with status 400.
func userRolesLookupErr(where string, err error) *model.AppError {
	e := storeErr(where, err, userMissing, "user")
	if e.StatusCode == http.StatusNotFound {
		e.StatusCode = http.StatusBadRequest
	}
	return e
}

// UpdateTeamMemberRoles sets a team member's roles ("team_user" or
// "team_user team_admin"): team admins and system admins only. The change
// applies at once (permission checks read the membership) and the member
// gets memberrole_updated.
func (a *App) UpdateTeamMemberRoles(ctx context.Context, s *model.Session, teamID, userID, roles string) *model.AppError {
	const where = "app.update_team_member_roles"
	if !validRoles(roles) {
		return model.ErrInvalidBody(where, teamRoleScope.param)
	}
	if appErr := a.requireTeamAdmin(ctx, s, teamID, "manage_team_roles"); appErr != nil {
		return appErr
	}
	m, err := a.store.GetTeamMember(ctx, teamID, userID)
	if err == nil && m.DeleteAt != 0 {
		err = postgres.ErrNotFound
	}
	if err != nil {
		return storeErr(where, err, teamMemberMissing, "team member")
	}
	admin, appErr := parseMemberRoles(where, roles, teamRoleScope)
	if appErr != nil {
		return appErr
	}
	if m, err = a.store.SetTeamMemberAdmin(ctx, teamID, userID, admin); err != nil {
		return storeErr(where, err, teamMemberMissing, "team member")
	}
	a.publish(ctx, &ws.Event{Name: "memberrole_updated", Data: map[string]any{"member": jsonString(m)},
		Broadcast: ws.Broadcast{UserID: userID}})
	return nil
}

// UpdateChannelMemberRoles sets a channel member's roles ("channel_user"
// or "channel_user channel_admin"). Mattermost's manage_channel_roles
// belongs to system admins, admins of the channel's team and the
// channel's admins. The member gets channel_member_updated.
func (a *App) UpdateChannelMemberRoles(ctx context.Context, s *model.Session, channelID, userID, roles string) *model.AppError {
	const where = "app.update_channel_member_roles"
	if !validRoles(roles) {
		return model.ErrInvalidBody(where, channelRoleScope.param)
	}
	ok, err := a.canManageChannelRoles(ctx, s, channelID)
	if err != nil {
		return internalErr(where, err)
	}
	if !ok {
		return model.ErrPermission(where, s.UserID, "manage_channel_roles")
	}
	if _, err := a.store.GetChannelMember(ctx, channelID, userID); err != nil {
		return storeErr(where, err, channelMemberMissing, "channel member")
	}
	admin, appErr := parseMemberRoles(where, roles, channelRoleScope)
	if appErr != nil {
		return appErr
	}
	m, err := a.store.SetChannelMemberAdmin(ctx, channelID, userID, admin, a.millis())
	if err != nil {
		return storeErr(where, err, channelMemberMissing, "channel member")
	}
	a.publish(ctx, &ws.Event{Name: "channel_member_updated", Data: map[string]any{"channelMember": jsonString(m)},
		Broadcast: ws.Broadcast{UserID: userID}})
	return nil
}

// canManageChannelRoles reports whether the caller holds
// manage_channel_roles on the channel. A channel that does not exist is
// refused like one the caller may not manage, as in Mattermost.
func (a *App) canManageChannelRoles(ctx context.Context, s *model.Session, channelID string) (bool, error) {
	if s.IsSystemAdmin() {
		return true, nil
	}
	m, err := a.store.GetChannelMember(ctx, channelID, s.UserID)
	switch {
	case err == nil && m.SchemeAdmin:
		return true, nil
	case err != nil && !errors.Is(err, postgres.ErrNotFound):
		return false, err
	}
	acc, err := a.store.ChannelAccess(ctx, channelID)
	if errors.Is(err, postgres.ErrNotFound) || (err == nil && acc.TeamID == "") {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	tm, err := a.store.GetTeamMember(ctx, acc.TeamID, s.UserID)
	if errors.Is(err, postgres.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return tm.DeleteAt == 0 && tm.SchemeAdmin, nil
}
