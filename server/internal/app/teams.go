package app

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// Mattermost's ids for missing teams and memberships.
const (
	teamMissing       = "app.team.get.find.app_error"
	teamByNameMissing = "app.team.get_by_name.missing.app_error"
	teamMemberMissing = "app.team.get_member.missing.app_error"
)

// Team field limits (Mattermost's model.Team).
const (
	teamNameMaxLength           = 64
	teamNameMinLength           = 2
	teamDisplayNameMaxRunes     = 64
	teamDescriptionMaxLength    = 255
	teamCompanyNameMaxLength    = 64
	teamAllowedDomainsMaxLength = 500
)

// reservedTeamNames are URL paths of the web app; a team name may not
// start with one (Mattermost's model.IsReservedTeamName).
var reservedTeamNames = []string{
	"admin", "api", "channel", "claim", "error", "files", "help", "landing", "login", "mfa", "oauth",
	"plug", "plugins", "post", "signup", "boards", "playbooks",
}

// teamNameRe is Mattermost's validAlphaNum: lower-case letters, digits and
// '-', starting and ending with a letter or digit.
var teamNameRe = regexp.MustCompile(`^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$`)

// ValidTeamName reports whether s has the shape of a team URL name. It
// does not check reserved names: it is also used to validate lookups.
func ValidTeamName(s string) bool {
	return len(s) >= teamNameMinLength && len(s) <= teamNameMaxLength && teamNameRe.MatchString(s)
}

func reservedTeamName(s string) bool {
	s = strings.ToLower(s)
	for _, r := range reservedTeamNames {
		if strings.HasPrefix(s, r) {
			return true
		}
	}
	return false
}

// checkTeam applies Mattermost's Team.IsValid rules, in its order.
func checkTeam(where string, t *model.Team) *model.AppError {
	bad := func(what string) *model.AppError {
		return badRequest(where, "model.team.is_valid."+what+".app_error", "Invalid team "+what+".")
	}
	switch {
	case len(t.Email) > 128 || (t.Email != "" && !validEmail(t.Email)):
		return bad("email")
	case utf8.RuneCountInString(t.DisplayName) == 0 || utf8.RuneCountInString(t.DisplayName) > teamDisplayNameMaxRunes:
		return bad("name")
	case len(t.Name) > teamNameMaxLength:
		return bad("url")
	case len(t.Description) > teamDescriptionMaxLength:
		return bad("description")
	case reservedTeamName(t.Name):
		return badRequest(where, "model.team.is_valid.reserved.app_error", "This URL is unavailable. Please try another.")
	case !ValidTeamName(t.Name):
		return badRequest(where, "model.team.is_valid.characters.app_error",
			"Name must be 2 or more lowercase alphanumeric characters.")
	case t.Type != model.TeamOpen && t.Type != model.TeamInvite:
		return bad("type")
	case len(t.CompanyName) > teamCompanyNameMaxLength:
		return bad("company")
	case len(t.AllowedDomains) > teamAllowedDomainsMaxLength:
		return bad("domains")
	}
	return nil
}

// defaultChannelNames are the channels every new team gets and every
// joining member is put in: town-square, then TeamSettings.
// ExperimentalDefaultChannels or else off-topic.
func (a *App) defaultChannelNames() []string {
	names := []string{model.DefaultChannelName}
	extra := a.set.DefaultChannels
	if len(extra) == 0 {
		extra = []string{"off-topic"}
	}
	seen := map[string]bool{model.DefaultChannelName: true}
	for _, n := range extra {
		if !seen[n] && ValidChannelName(n) {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

var defaultChannelDisplayNames = map[string]string{
	model.DefaultChannelName: "Town Square",
	"off-topic":              "Off-Topic",
}

// CreateTeam creates a team with its default channels; the creator
// becomes its admin and joins the channels as channel admin, all in one
// transaction. The reply is not sanitised: the creator is its admin.
func (a *App) CreateTeam(ctx context.Context, s *model.Session, in *model.Team) (*model.Team, *model.AppError) {
	const where = "app.create_team"
	creator, err := a.store.GetUser(ctx, s.UserID)
	if err != nil {
		return nil, storeErr(where, err, userMissing, "user")
	}
	now := a.millis()
	t := &model.Team{
		ID: model.NewID(), CreateAt: now, UpdateAt: now,
		DisplayName: strings.TrimSpace(in.DisplayName), Name: in.Name, Description: in.Description,
		Email: creator.Email, Type: in.Type, CompanyName: in.CompanyName, AllowedDomains: in.AllowedDomains,
		InviteID: model.NewID(), AllowOpenInvite: in.AllowOpenInvite,
	}
	if appErr := checkTeam(where, t); appErr != nil {
		return nil, appErr
	}
	var channels []*model.Channel
	for _, name := range a.defaultChannelNames() {
		display := defaultChannelDisplayNames[name]
		if display == "" {
			display = name
		}
		channels = append(channels, &model.Channel{
			ID: model.NewID(), CreateAt: now, UpdateAt: now, TeamID: t.ID, Type: model.ChannelOpen,
			DisplayName: display, Name: name,
		})
	}
	if _, err := a.store.CreateTeam(ctx, t, channels, s.UserID); err != nil {
		if postgres.IsConflictOn(err, "teams_name_key") {
			return nil, badRequest(where, "store.sql_team.save_team.existing.app_error",
				"A team with that name already exists.")
		}
		return nil, internalErr(where, err)
	}
	inv := invalidation{Teams: []string{t.ID}}
	for _, ch := range channels {
		inv.Channels = append(inv.Channels, ch.ID)
	}
	a.refresh(inv)
	a.publish(ctx, &ws.Event{Name: "added_to_team", Data: map[string]any{"team_id": t.ID, "user_id": s.UserID},
		Broadcast: ws.Broadcast{UserID: s.UserID}})
	for _, ch := range channels {
		a.publishUserAdded(ctx, ch.ID, t.ID, s.UserID)
	}
	return t, nil
}

// teamMemberships returns the caller's active team memberships by team.
func (a *App) teamMemberships(ctx context.Context, userID string) (map[string]*model.TeamMember, error) {
	ms, err := a.store.TeamMembersForUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*model.TeamMember, len(ms))
	for _, m := range ms {
		if m.DeleteAt == 0 {
			out[m.TeamID] = m
		}
	}
	return out, nil
}

// sanitizeTeams hides what the caller may not see, as Mattermost's
// SanitizeTeam does: the email is for team admins (manage_team), the
// invite id for members (invite_user); system admins see everything.
func (a *App) sanitizeTeams(ctx context.Context, s *model.Session, teams ...*model.Team) *model.AppError {
	if s.IsSystemAdmin() || len(teams) == 0 {
		return nil
	}
	mine, err := a.teamMemberships(ctx, s.UserID)
	if err != nil {
		return internalErr("app.sanitize_teams", err)
	}
	for _, t := range teams {
		m := mine[t.ID]
		switch {
		case m != nil && m.SchemeAdmin:
		case m != nil:
			t.Email = ""
		default:
			t.Sanitize()
		}
	}
	return nil
}

// ListTeams returns a page of teams: every team for system admins, the
// teams anyone may join (allow_open_invite) for everyone else.
func (a *App) ListTeams(ctx context.Context, s *model.Session, offset, limit int) ([]*model.Team, *model.AppError) {
	teams, err := fromReplica(ctx, a, s.UserID, func(st *postgres.Store) ([]*model.Team, error) {
		return st.ListTeams(ctx, !s.IsSystemAdmin(), offset, limit)
	})
	if err != nil {
		return nil, internalErr("app.list_teams", err)
	}
	if appErr := a.sanitizeTeams(ctx, s, teams...); appErr != nil {
		return nil, appErr
	}
	return teams, nil
}

// TeamsWithCount is a page of teams with the number of teams in all
// pages (Mattermost's model.TeamsWithCount).
type TeamsWithCount struct {
	Teams      []*model.Team `json:"teams"`
	TotalCount int64         `json:"total_count"`
}

// ListTeamsWithCount is ListTeams with the total count.
func (a *App) ListTeamsWithCount(ctx context.Context, s *model.Session, offset, limit int) (*TeamsWithCount, *model.AppError) {
	teams, appErr := a.ListTeams(ctx, s, offset, limit)
	if appErr != nil {
		return nil, appErr
	}
	n, err := fromReplica(ctx, a, s.UserID, func(st *postgres.Store) (int64, error) {
		return st.CountTeams(ctx, !s.IsSystemAdmin())
	})
	if err != nil {
		return nil, internalErr("app.list_teams_with_count", err)
	}
	return &TeamsWithCount{Teams: teams, TotalCount: n}, nil
}

// viewableTeam lets the caller see t if it is an open team, if they are
// a member, or if they are a system admin.
func (a *App) viewableTeam(ctx context.Context, s *model.Session, t *model.Team) *model.AppError {
	if t.AllowOpenInvite && t.Type == model.TeamOpen {
		return nil
	}
	return a.requireTeamMember(ctx, s, t.ID, "view_team")
}

// GetTeam returns a team the caller may see.
func (a *App) GetTeam(ctx context.Context, s *model.Session, id string) (*model.Team, *model.AppError) {
	const where = "app.get_team"
	t, err := a.store.GetTeam(ctx, id)
	if err != nil {
		return nil, storeErr(where, err, teamMissing, "team")
	}
	if appErr := a.viewableTeam(ctx, s, t); appErr != nil {
		return nil, appErr
	}
	if appErr := a.sanitizeTeams(ctx, s, t); appErr != nil {
		return nil, appErr
	}
	return t, nil
}

// GetTeamByName returns a team the caller may see by its URL name.
func (a *App) GetTeamByName(ctx context.Context, s *model.Session, name string) (*model.Team, *model.AppError) {
	const where = "app.get_team_by_name"
	t, err := a.store.GetTeamByName(ctx, name)
	if err != nil {
		return nil, storeErr(where, err, teamByNameMissing, "team")
	}
	if appErr := a.viewableTeam(ctx, s, t); appErr != nil {
		return nil, appErr
	}
	if appErr := a.sanitizeTeams(ctx, s, t); appErr != nil {
		return nil, appErr
	}
	return t, nil
}

// TeamExists reports whether a team with the name exists and the caller
// could see it listed (a member, an open team, or a system admin).
func (a *App) TeamExists(ctx context.Context, s *model.Session, name string) (bool, *model.AppError) {
	const where = "app.team_exists"
	t, err := a.store.GetTeamByName(ctx, name)
	if errors.Is(err, postgres.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, internalErr(where, err)
	}
	if t.AllowOpenInvite || s.IsSystemAdmin() {
		return true, nil
	}
	ok, err := a.isTeamMember(ctx, t.ID, s.UserID)
	if err != nil {
		return false, internalErr(where, err)
	}
	return ok, nil
}

// PatchTeam changes a team's settings (team admin or system admin).
// Closing a team to open invites regenerates its invite id, so links
// already handed out stop working.
func (a *App) PatchTeam(ctx context.Context, s *model.Session, id string, p *model.TeamPatch) (*model.Team, *model.AppError) {
	const where = "app.patch_team"
	if appErr := a.requireTeamAdmin(ctx, s, id, "manage_team"); appErr != nil {
		return nil, appErr
	}
	t, err := a.store.GetTeam(ctx, id)
	if err != nil {
		return nil, storeErr(where, err, teamMissing, "team")
	}
	if p.DisplayName != nil {
		t.DisplayName = strings.TrimSpace(*p.DisplayName)
	}
	if p.Description != nil {
		t.Description = *p.Description
	}
	if p.CompanyName != nil {
		t.CompanyName = *p.CompanyName
	}
	if p.AllowedDomains != nil {
		t.AllowedDomains = *p.AllowedDomains
	}
	if p.AllowOpenInvite != nil {
		t.AllowOpenInvite = *p.AllowOpenInvite
		if !t.AllowOpenInvite {
			t.InviteID = model.NewID()
		}
	}
	if appErr := checkTeam(where, t); appErr != nil {
		return nil, appErr
	}
	t.UpdateAt = a.millis()
	if err := a.store.UpdateTeam(ctx, t); err != nil {
		return nil, storeErr(where, err, teamMissing, "team")
	}
	a.publishTeamUpdated(ctx, t)
	if appErr := a.sanitizeTeams(ctx, s, t); appErr != nil {
		return nil, appErr
	}
	return t, nil
}

// publishTeamUpdated sends update_team, with the team sanitised, to its
// members.
func (a *App) publishTeamUpdated(ctx context.Context, t *model.Team) {
	c := *t
	c.Sanitize()
	a.publish(ctx, &ws.Event{Name: "update_team", Data: map[string]any{"team": jsonString(&c)},
		Broadcast: ws.Broadcast{TeamID: t.ID}})
}

// AddTeamMember adds userID to a team. A user may join a team open to
// invites by themself; adding someone else needs membership of an open
// team, or team admin for an invite-only one. Re-adding a removed member
// reactivates the membership; adding an active member changes nothing.
func (a *App) AddTeamMember(ctx context.Context, s *model.Session, teamID, userID string) (*model.TeamMember, *model.AppError) {
	const where = "app.add_team_member"
	t, err := a.store.GetTeam(ctx, teamID)
	if err != nil {
		return nil, storeErr(where, err, teamMissing, "team")
	}
	if appErr := a.canAddToTeam(ctx, s, t, userID); appErr != nil {
		return nil, appErr
	}
	return a.joinTeam(ctx, t, userID)
}

func (a *App) canAddToTeam(ctx context.Context, s *model.Session, t *model.Team, userID string) *model.AppError {
	const where = "app.can_add_to_team"
	if s.IsSystemAdmin() {
		return nil
	}
	if userID == s.UserID {
		if t.AllowOpenInvite {
			return nil
		}
		return model.ErrPermission(where, s.UserID, "join_private_teams")
	}
	// Mattermost's default team_user role holds add_user_to_team: any
	// member may add others, to open and invite-only teams alike.
	return a.requireTeamMember(ctx, s, t.ID, "add_user_to_team")
}

// TeamMemberResult is one entry of a graceful batch add: the member, or
// why the user could not be added (Mattermost's TeamMemberWithError).
type TeamMemberResult struct {
	UserID string            `json:"user_id"`
	Member *model.TeamMember `json:"member"`
	Error  *model.AppError   `json:"error"`
}

// AddTeamMembers adds several users. Without graceful the first failure
// ends the batch (earlier users stay added, as in Mattermost); with it
// every user gets a result.
func (a *App) AddTeamMembers(ctx context.Context, s *model.Session, teamID string, userIDs []string, graceful bool) ([]*TeamMemberResult, *model.AppError) {
	const where = "app.add_team_members"
	t, err := a.store.GetTeam(ctx, teamID)
	if err != nil {
		return nil, storeErr(where, err, teamMissing, "team")
	}
	for _, id := range userIDs {
		if appErr := a.canAddToTeam(ctx, s, t, id); appErr != nil {
			return nil, appErr
		}
	}
	out := make([]*TeamMemberResult, 0, len(userIDs))
	for _, id := range userIDs {
		m, appErr := a.joinTeam(ctx, t, id)
		if appErr != nil {
			if !graceful {
				return nil, appErr
			}
			out = append(out, &TeamMemberResult{UserID: id, Error: appErr})
			continue
		}
		out = append(out, &TeamMemberResult{UserID: id, Member: m})
	}
	return out, nil
}

// AddTeamMemberByInvite joins the caller to the team whose invite link id
// is inviteID.
func (a *App) AddTeamMemberByInvite(ctx context.Context, s *model.Session, inviteID string) (*model.TeamMember, *model.AppError) {
	const where = "app.add_team_member_by_invite"
	t, err := a.store.GetTeamByInviteID(ctx, inviteID)
	if err != nil {
		return nil, storeErr(where, err, "app.team.get_by_invite_id.finding.app_error", "team")
	}
	return a.joinTeam(ctx, t, s.UserID)
}

// joinTeam adds userID to t and its default channels, and tells the user
// and the channels.
func (a *App) joinTeam(ctx context.Context, t *model.Team, userID string) (*model.TeamMember, *model.AppError) {
	const where = "app.join_team"
	if _, err := a.store.GetUser(ctx, userID); err != nil {
		return nil, storeErr(where, err, userMissing, "user")
	}
	m, joined, added, err := a.store.JoinTeam(ctx, t.ID, userID, a.defaultChannelNames(), a.set.MaxUsersPerTeam, a.millis())
	if errors.Is(err, postgres.ErrLimit) {
		return nil, badRequest(where, "app.team.join_user_to_team.max_accounts.app_error",
			"This team has reached the maximum number of allowed accounts. Contact your System Administrator to set a higher limit.").
			Detail("teamId=%s", t.ID)
	}
	if err != nil {
		return nil, internalErr(where, err)
	}
	if !added {
		return m, nil
	}
	a.refresh(invalidation{Teams: []string{t.ID}, Channels: joined})
	a.publish(ctx, &ws.Event{Name: "added_to_team", Data: map[string]any{"team_id": t.ID, "user_id": userID},
		Broadcast: ws.Broadcast{UserID: userID}})
	for _, id := range joined {
		a.publishUserAdded(ctx, id, t.ID, userID)
	}
	return m, nil
}

// ListTeamMembers returns a page of a team's members (team members and
// system admins).
func (a *App) ListTeamMembers(ctx context.Context, s *model.Session, teamID string, f postgres.TeamMemberFilter) ([]*model.TeamMember, *model.AppError) {
	if appErr := a.requireTeamMember(ctx, s, teamID, "view_team"); appErr != nil {
		return nil, appErr
	}
	ms, err := a.store.ListTeamMembers(ctx, teamID, f)
	if err != nil {
		return nil, internalErr("app.list_team_members", err)
	}
	return ms, nil
}

// TeamMembersByIDs returns the team's active members among userIDs.
func (a *App) TeamMembersByIDs(ctx context.Context, s *model.Session, teamID string, userIDs []string) ([]*model.TeamMember, *model.AppError) {
	if appErr := a.requireTeamMember(ctx, s, teamID, "view_team"); appErr != nil {
		return nil, appErr
	}
	ms, err := a.store.TeamMembersByIDs(ctx, teamID, userIDs)
	if err != nil {
		return nil, internalErr("app.team_members_by_ids", err)
	}
	return ms, nil
}

// TeamMember returns one membership, active or removed.
func (a *App) TeamMember(ctx context.Context, s *model.Session, teamID, userID string) (*model.TeamMember, *model.AppError) {
	if appErr := a.requireTeamMember(ctx, s, teamID, "view_team"); appErr != nil {
		return nil, appErr
	}
	m, err := a.store.GetTeamMember(ctx, teamID, userID)
	if err != nil {
		return nil, storeErr("app.team_member", err, teamMemberMissing, "team member")
	}
	return m, nil
}

// RemoveTeamMember takes userID out of a team and its channels. Users may
// leave; removing someone else needs team admin. Besides leave_team, each
// channel left gets user_removed, as RemoveChannelMember sends.
func (a *App) RemoveTeamMember(ctx context.Context, s *model.Session, teamID, userID string) *model.AppError {
	const where = "app.remove_team_member"
	if userID != s.UserID {
		if appErr := a.requireTeamAdmin(ctx, s, teamID, "remove_user_from_team"); appErr != nil {
			return appErr
		}
	}
	if _, err := a.store.GetTeam(ctx, teamID); err != nil {
		return storeErr(where, err, teamMissing, "team")
	}
	if _, err := a.store.GetUser(ctx, userID); err != nil {
		return storeErr(where, err, userMissing, "user")
	}
	left, err := a.store.LeaveTeam(ctx, teamID, userID, a.millis())
	if errors.Is(err, postgres.ErrNotFound) {
		return badRequest(where, "api.team.remove_user_from_team.missing.app_error",
			"The user does not appear to be part of this team.")
	}
	if err != nil {
		return internalErr(where, err)
	}
	a.invalidate(ctx, invalidation{Teams: []string{teamID}, Channels: left})
	data := map[string]any{"user_id": userID, "team_id": teamID}
	a.publish(ctx, &ws.Event{Name: "leave_team", Data: data,
		Broadcast: ws.Broadcast{TeamID: teamID, OmitUsers: map[string]bool{userID: true}}})
	a.publish(ctx, &ws.Event{Name: "leave_team", Data: data, Broadcast: ws.Broadcast{UserID: userID}})
	for _, id := range left {
		a.publishUserRemoved(ctx, id, userID, s.UserID)
	}
	return nil
}

// TeamsForUser returns the teams a user is in (self or system admin).
func (a *App) TeamsForUser(ctx context.Context, s *model.Session, userID string) ([]*model.Team, *model.AppError) {
	if appErr := a.requireSelfOrAdmin(s, userID, "sysconsole_read_user_management_users"); appErr != nil {
		return nil, appErr
	}
	teams, err := fromReplica(ctx, a, s.UserID, func(st *postgres.Store) ([]*model.Team, error) {
		return st.TeamsForUser(ctx, userID)
	})
	if err != nil {
		return nil, internalErr("app.teams_for_user", err)
	}
	if appErr := a.sanitizeTeams(ctx, s, teams...); appErr != nil {
		return nil, appErr
	}
	return teams, nil
}

// TeamMembersForUser returns every team membership of a user, removed
// ones included (self or system admin).
func (a *App) TeamMembersForUser(ctx context.Context, s *model.Session, userID string) ([]*model.TeamMember, *model.AppError) {
	if appErr := a.requireSelfOrAdmin(s, userID, "read_other_users_teams"); appErr != nil {
		return nil, appErr
	}
	ms, err := a.store.TeamMembersForUser(ctx, userID)
	if err != nil {
		return nil, internalErr("app.team_members_for_user", err)
	}
	return ms, nil
}

// TeamsUnread returns a user's unread counts per team, leaving out
// excludeTeamID (self or system admin).
func (a *App) TeamsUnread(ctx context.Context, s *model.Session, userID, excludeTeamID string) ([]*model.TeamUnread, *model.AppError) {
	if appErr := a.requireSelfOrAdmin(s, userID, "manage_system"); appErr != nil {
		return nil, appErr
	}
	us, err := a.store.TeamUnreads(ctx, userID, "", excludeTeamID)
	if err != nil {
		return nil, internalErr("app.teams_unread", err)
	}
	return us, nil
}

// TeamUnread returns a user's unread counts in one team.
func (a *App) TeamUnread(ctx context.Context, s *model.Session, teamID, userID string) (*model.TeamUnread, *model.AppError) {
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return nil, appErr
	}
	if appErr := a.requireTeamMember(ctx, s, teamID, "view_team"); appErr != nil {
		return nil, appErr
	}
	us, err := a.store.TeamUnreads(ctx, userID, teamID, "")
	if err != nil {
		return nil, internalErr("app.team_unread", err)
	}
	if len(us) == 0 {
		return &model.TeamUnread{TeamID: teamID}, nil
	}
	return us[0], nil
}

// jsonString renders v as a JSON string, the form Mattermost uses for
// objects inside some event data (channel, team, channelMember).
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}
