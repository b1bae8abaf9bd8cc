package compat

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func TestCreateTeam(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, other := newUser(t), newUser(t)

	for _, typ := range []string{model.TeamOpen, model.TeamInvite} {
		t.Run(typ, func(t *testing.T) {
			name := uniqueName("t")
			team, resp, err := owner.CreateTeam(ctx, &model.Team{Name: name, DisplayName: "Team " + name, Type: typ})
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			require.True(t, model.IsValidId(team.Id), "id %q", team.Id)
			require.Equal(t, name, team.Name)
			require.Equal(t, "Team "+name, team.DisplayName)
			require.Equal(t, typ, team.Type)
			require.NotZero(t, team.CreateAt)

			// The creator is its admin.
			m, _, err := owner.GetTeamMember(ctx, team.Id, owner.User.Id, "")
			require.NoError(t, err)
			require.Equal(t, team.Id, m.TeamId)
			require.Equal(t, owner.User.Id, m.UserId)
			require.Contains(t, strings.Fields(m.Roles), model.TeamAdminRoleId)
			require.Contains(t, strings.Fields(m.Roles), model.TeamUserRoleId)

			// A second team with the same name is refused (Mattermost's
			// store reports the name clash under this id).
			_, resp, err = other.CreateTeam(ctx, &model.Team{Name: name, DisplayName: "Again", Type: typ})
			requireAppError(t, resp, err, http.StatusBadRequest, "store.sql_team.save_team.existing.app_error")
		})
	}
}

func TestGetTeam(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner := newUser(t)
	team := newTeam(t, owner, model.TeamInvite)

	got, resp, err := owner.GetTeam(ctx, team.Id, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, team.Id, got.Id)
	require.Equal(t, team.Name, got.Name)

	got, _, err = owner.GetTeamByName(ctx, team.Name, "")
	require.NoError(t, err)
	require.Equal(t, team.Id, got.Id)

	exists, _, err := owner.TeamExists(ctx, team.Name, "")
	require.NoError(t, err)
	require.True(t, exists)
	exists, _, err = owner.TeamExists(ctx, uniqueName("nosuchteam"), "")
	require.NoError(t, err)
	require.False(t, exists)

	// Someone outside an invite-only team may not read it.
	outsider := newUser(t)
	_, resp, err = outsider.GetTeam(ctx, team.Id, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestPatchTeam(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member := newUser(t), newUser(t)
	team := teamWith(t, owner, member)

	display, description := "Renamed", "What we do"
	got, resp, err := owner.PatchTeam(ctx, team.Id, &model.TeamPatch{DisplayName: &display, Description: &description})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, display, got.DisplayName)
	require.Equal(t, description, got.Description)
	require.Equal(t, team.Name, got.Name, "the name is not patchable")

	got, _, err = member.GetTeam(ctx, team.Id, "")
	require.NoError(t, err)
	require.Equal(t, display, got.DisplayName)

	// A plain member may not patch the team.
	_, resp, err = member.PatchTeam(ctx, team.Id, &model.TeamPatch{DisplayName: &display})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestGetAllTeams(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, viewer := newUser(t), newUser(t)
	open := newTeam(t, owner, model.TeamOpen)
	invite := newTeam(t, owner, model.TeamInvite)

	all := func(c *account) []string {
		var ids []string
		for page := 0; ; page++ {
			teams, _, err := c.GetAllTeams(ctx, "", page, 200)
			require.NoError(t, err)
			for _, tm := range teams {
				ids = append(ids, tm.Id)
			}
			if len(teams) < 200 {
				return ids
			}
		}
	}

	// The admin lists every team; anyone else lists the open ones.
	adminSees := all(srv.admin)
	require.Contains(t, adminSees, open.Id)
	require.Contains(t, adminSees, invite.Id)
	userSees := all(viewer)
	require.Contains(t, userSees, open.Id)
	require.NotContains(t, userSees, invite.Id)
}

func TestTeamMembers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, bob := newUser(t), newUser(t)
	team := newTeam(t, owner, model.TeamInvite)

	m, resp, err := owner.AddTeamMember(ctx, team.Id, bob.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, team.Id, m.TeamId)
	require.Equal(t, bob.User.Id, m.UserId)
	require.Equal(t, []string{model.TeamUserRoleId}, strings.Fields(m.Roles))
	require.Zero(t, m.DeleteAt)

	members, _, err := bob.GetTeamMembers(ctx, team.Id, 0, 60, "")
	require.NoError(t, err)
	var got []string
	for _, m := range members {
		require.Equal(t, team.Id, m.TeamId)
		got = append(got, m.UserId)
	}
	require.ElementsMatch(t, []string{owner.User.Id, bob.User.Id}, got)

	m, _, err = bob.GetTeamMember(ctx, team.Id, owner.User.Id, "")
	require.NoError(t, err)
	require.Equal(t, owner.User.Id, m.UserId)

	// A plain member may not remove others.
	resp, err = bob.RemoveTeamMember(ctx, team.Id, owner.User.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	resp, err = owner.RemoveTeamMember(ctx, team.Id, bob.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	members, _, err = owner.GetTeamMembers(ctx, team.Id, 0, 60, "")
	require.NoError(t, err)
	got = got[:0]
	for _, m := range members {
		got = append(got, m.UserId)
	}
	require.Equal(t, []string{owner.User.Id}, got)
	teams, _, err := bob.GetTeamsForUser(ctx, bob.User.Id, "")
	require.NoError(t, err)
	for _, tm := range teams {
		require.NotEqual(t, team.Id, tm.Id, "bob was removed from the team")
	}
	_, resp, err = bob.GetTeam(ctx, team.Id, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestTeamMemberAddsOthers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, bob, carol := newUser(t), newUser(t), newUser(t)
	team := newTeam(t, owner, model.TeamInvite)
	addToTeam(t, owner, team.Id, bob)

	// Mattermost's team_user role has add_user_to_team: any member may
	// add others, even to an invite-only team.
	m, resp, err := bob.AddTeamMember(ctx, team.Id, carol.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, carol.User.Id, m.UserId)
}

func TestJoinOpenTeam(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, joiner := newUser(t), newUser(t)
	open := newTeam(t, owner, model.TeamOpen)
	invite := newTeam(t, owner, model.TeamInvite)

	// An open team is readable before joining, and anyone may add themself.
	got, _, err := joiner.GetTeam(ctx, open.Id, "")
	require.NoError(t, err)
	require.Equal(t, open.Id, got.Id)
	m, resp, err := joiner.AddTeamMember(ctx, open.Id, joiner.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, joiner.User.Id, m.UserId)
	require.Equal(t, []string{model.TeamUserRoleId}, strings.Fields(m.Roles))

	// Joining the default channels comes with it.
	town, _, err := joiner.GetChannelByName(ctx, model.DefaultChannelName, open.Id, "")
	require.NoError(t, err)
	_, _, err = joiner.GetChannelMember(ctx, town.Id, joiner.User.Id, "")
	require.NoError(t, err, "a new team member is in town-square")

	// An invite-only team cannot be joined that way.
	_, resp, err = joiner.AddTeamMember(ctx, invite.Id, joiner.User.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestTeamsForUser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member := newUser(t), newUser(t)
	t1 := teamWith(t, owner, member)
	t2 := teamWith(t, owner, member)
	t3 := newTeam(t, owner, model.TeamOpen) // member is not in it

	teams, resp, err := member.GetTeamsForUser(ctx, member.User.Id, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ids []string
	for _, tm := range teams {
		ids = append(ids, tm.Id)
	}
	require.ElementsMatch(t, []string{t1.Id, t2.Id}, ids)

	members, _, err := member.GetTeamMembersForUser(ctx, member.User.Id, "")
	require.NoError(t, err)
	ids = ids[:0]
	for _, m := range members {
		require.Equal(t, member.User.Id, m.UserId)
		ids = append(ids, m.TeamId)
	}
	require.ElementsMatch(t, []string{t1.Id, t2.Id}, ids)
	require.NotContains(t, ids, t3.Id)

	// Another user's teams are not for a plain user to list.
	_, resp, err = newUser(t).GetTeamsForUser(ctx, member.User.Id, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestTeamsUnread(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob := newUser(t), newUser(t)
	team := teamWith(t, alice, bob)
	other := teamWith(t, alice)
	ch := channelWith(t, alice, team.Id, model.ChannelTypeOpen, bob)

	// Alice reads everything she has in the team, so only what follows
	// is unread.
	chans, _, err := alice.GetChannelsForTeamForUser(ctx, team.Id, alice.User.Id, false, "")
	require.NoError(t, err)
	for _, c := range chans {
		_, _, err := alice.ViewChannel(ctx, alice.User.Id, &model.ChannelView{ChannelId: c.Id})
		require.NoError(t, err)
	}
	unreadFor := func(excludeTeam string) map[string]*model.TeamUnread {
		unreads, resp, err := alice.GetTeamsUnreadForUser(ctx, alice.User.Id, excludeTeam, false)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		byTeam := map[string]*model.TeamUnread{}
		for _, u := range unreads {
			byTeam[u.TeamId] = u
		}
		return byTeam
	}
	u := unreadFor("")
	require.Contains(t, u, team.Id)
	require.Contains(t, u, other.Id)
	require.Zero(t, u[team.Id].MsgCount)
	require.Zero(t, u[team.Id].MentionCount)

	newPost(t, bob, ch.Id, "hello")
	newPost(t, bob, ch.Id, "hello @"+alice.User.Username)

	u = unreadFor("")
	require.EqualValues(t, 2, u[team.Id].MsgCount)
	require.EqualValues(t, 1, u[team.Id].MentionCount)

	u = unreadFor(team.Id)
	require.NotContains(t, u, team.Id, "exclude_team leaves the team out")
	require.Contains(t, u, other.Id)
}
