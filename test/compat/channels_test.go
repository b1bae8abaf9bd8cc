package compat

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func TestCreateChannel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member := newUser(t), newUser(t)
	team := teamWith(t, owner, member)

	for _, typ := range []model.ChannelType{model.ChannelTypeOpen, model.ChannelTypePrivate} {
		t.Run(string(typ), func(t *testing.T) {
			name := uniqueName("c")
			ch, resp, err := member.CreateChannel(ctx, &model.Channel{
				TeamId: team.Id, Name: name, DisplayName: "Display " + name, Type: typ,
				Purpose: "the purpose", Header: "the header",
			})
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			require.True(t, model.IsValidId(ch.Id), "id %q", ch.Id)
			require.Equal(t, team.Id, ch.TeamId)
			require.Equal(t, name, ch.Name)
			require.Equal(t, "Display "+name, ch.DisplayName)
			require.Equal(t, typ, ch.Type)
			require.Equal(t, "the purpose", ch.Purpose)
			require.Equal(t, "the header", ch.Header)
			require.Equal(t, member.User.Id, ch.CreatorId)
			require.NotZero(t, ch.CreateAt)
			require.Zero(t, ch.DeleteAt)

			// The creator is a member.
			m, _, err := member.GetChannelMember(ctx, ch.Id, member.User.Id, "")
			require.NoError(t, err)
			require.Equal(t, ch.Id, m.ChannelId)
			require.Contains(t, strings.Fields(m.Roles), model.ChannelUserRoleId)

			// The same name again in the team is refused.
			_, resp, err = owner.CreateChannel(ctx, &model.Channel{TeamId: team.Id, Name: name, DisplayName: "Again", Type: typ})
			requireAppError(t, resp, err, http.StatusBadRequest, "store.sql_channel.save_channel.exists.app_error")
		})
	}
}

func TestGetChannel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// owner is the team admin; bob and carol are plain team members.
	owner, bob, carol := newUser(t), newUser(t), newUser(t)
	team := teamWith(t, owner, bob, carol)
	open := newChannel(t, bob, team.Id, model.ChannelTypeOpen)
	private := newChannel(t, bob, team.Id, model.ChannelTypePrivate)

	for _, ch := range []*model.Channel{open, private} {
		t.Run(string(ch.Type), func(t *testing.T) {
			got, resp, err := bob.GetChannel(ctx, ch.Id)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, ch.Id, got.Id)
			require.Equal(t, ch.Name, got.Name)
			require.Equal(t, ch.Type, got.Type)

			got, _, err = bob.GetChannelByName(ctx, ch.Name, team.Id, "")
			require.NoError(t, err)
			require.Equal(t, ch.Id, got.Id)

			got, _, err = bob.GetChannelByNameForTeamName(ctx, ch.Name, team.Name, "")
			require.NoError(t, err)
			require.Equal(t, ch.Id, got.Id)
		})
	}

	// A team member outside the channel reads a public channel...
	got, _, err := carol.GetChannel(ctx, open.Id)
	require.NoError(t, err)
	require.Equal(t, open.Id, got.Id)
	// ...but not a private one: 403 by id, and by name it does not exist.
	_, resp, err := carol.GetChannel(ctx, private.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, resp, err = carol.GetChannelByName(ctx, private.Name, team.Id, "")
	requireAppError(t, resp, err, http.StatusNotFound, "app.channel.get_by_name.missing.app_error")
	_, resp, err = carol.GetChannelByNameForTeamName(ctx, private.Name, team.Name, "")
	requireAppError(t, resp, err, http.StatusNotFound, "app.channel.get_by_name.missing.app_error")

	// Someone outside the team reads neither.
	outsider := newUser(t)
	_, resp, err = outsider.GetChannel(ctx, open.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestDirectChannel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob, carol := newUser(t), newUser(t), newUser(t)

	dm, resp, err := alice.CreateDirectChannel(ctx, alice.User.Id, bob.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, model.ChannelTypeDirect, dm.Type)
	require.Empty(t, dm.TeamId)
	require.Equal(t, model.GetDMNameFromIds(alice.User.Id, bob.User.Id), dm.Name)

	// Creating it again, from either side, returns the same channel.
	again, resp, err := bob.CreateDirectChannel(ctx, bob.User.Id, alice.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, dm.Id, again.Id)

	for _, u := range []*account{alice, bob} {
		_, _, err := u.GetChannelMember(ctx, dm.Id, u.User.Id, "")
		require.NoError(t, err, "%s is in the DM", u.User.Username)
	}
	_, resp, err = carol.GetChannel(ctx, dm.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	// A DM between two others is not carol's to create.
	_, resp, err = carol.CreateDirectChannel(ctx, alice.User.Id, bob.User.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	// Members cannot be added to a DM.
	_, resp, err = alice.AddChannelMember(ctx, dm.Id, carol.User.Id)
	requireAppError(t, resp, err, http.StatusBadRequest, "api.channel.add_user_to_channel.type.app_error")

	// A DM with oneself is allowed.
	self, _, err := alice.CreateDirectChannel(ctx, alice.User.Id, alice.User.Id)
	require.NoError(t, err)
	require.Equal(t, model.GetDMNameFromIds(alice.User.Id, alice.User.Id), self.Name)
}

func TestGroupChannel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob, carol, dave := newUser(t), newUser(t), newUser(t), newUser(t)
	ids := []string{alice.User.Id, bob.User.Id, carol.User.Id}

	gm, resp, err := alice.CreateGroupChannel(ctx, ids)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, model.ChannelTypeGroup, gm.Type)
	require.Empty(t, gm.TeamId)
	require.Equal(t, model.GetGroupNameFromUserIds(ids), gm.Name)

	members, _, err := bob.GetChannelMembers(ctx, gm.Id, 0, 60, "")
	require.NoError(t, err)
	var got []string
	for _, m := range members {
		got = append(got, m.UserId)
	}
	require.ElementsMatch(t, ids, got)

	// The same set of users again gets the same channel; the caller is
	// added when missing from the list.
	again, _, err := carol.CreateGroupChannel(ctx, []string{alice.User.Id, bob.User.Id})
	require.NoError(t, err)
	require.Equal(t, gm.Id, again.Id)

	_, resp, err = dave.GetChannel(ctx, gm.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	// Two users are too few for a group.
	_, resp, err = alice.CreateGroupChannel(ctx, []string{alice.User.Id, bob.User.Id})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.channel.create_group.bad_size.app_error")
}

func TestPatchChannel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member, outsider := newUser(t), newUser(t), newUser(t)
	team := teamWith(t, owner, member, outsider)
	ch := channelWith(t, owner, team.Id, model.ChannelTypePrivate, member)

	display, header, purpose := "New display", "New header", "New purpose"
	got, resp, err := owner.PatchChannel(ctx, ch.Id, &model.ChannelPatch{DisplayName: &display, Header: &header, Purpose: &purpose})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, display, got.DisplayName)
	require.Equal(t, header, got.Header)
	require.Equal(t, purpose, got.Purpose)
	require.Equal(t, ch.Name, got.Name, "fields left out of the patch are untouched")

	got, _, err = member.GetChannel(ctx, ch.Id)
	require.NoError(t, err)
	require.Equal(t, display, got.DisplayName)
	require.Equal(t, header, got.Header)

	_, resp, err = outsider.PatchChannel(ctx, ch.Id, &model.ChannelPatch{Header: &header})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestDeleteChannel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member := newUser(t), newUser(t)
	team := teamWith(t, owner, member)
	ch := channelWith(t, owner, team.Id, model.ChannelTypeOpen, member)

	resp, err := owner.DeleteChannel(ctx, ch.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The channel is archived, not gone.
	got, _, err := member.GetChannel(ctx, ch.Id)
	require.NoError(t, err)
	require.NotZero(t, got.DeleteAt)

	// It leaves the team's public channel list and the members' lists.
	public, _, err := member.GetPublicChannelsForTeam(ctx, team.Id, 0, 200, "")
	require.NoError(t, err)
	require.False(t, slices.ContainsFunc(public, func(c *model.Channel) bool { return c.Id == ch.Id }))
	mine, _, err := member.GetChannelsForTeamForUser(ctx, team.Id, member.User.Id, false, "")
	require.NoError(t, err)
	require.False(t, slices.ContainsFunc(mine, func(c *model.Channel) bool { return c.Id == ch.Id }))

	// Posting in it is refused.
	_, resp, err = member.CreatePost(ctx, &model.Post{ChannelId: ch.Id, Message: "too late"})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.post.create_post.can_not_post_to_deleted.error")

	// A town-square cannot be deleted.
	town, _, err := owner.GetChannelByName(ctx, model.DefaultChannelName, team.Id, "")
	require.NoError(t, err)
	resp, err = owner.DeleteChannel(ctx, town.Id)
	requireAppError(t, resp, err, http.StatusBadRequest, "api.channel.delete_channel.cannot.app_error")
}

func TestChannelMembers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, bob, carol, outsider := newUser(t), newUser(t), newUser(t), newUser(t)
	team := teamWith(t, owner, bob, carol)
	ch := newChannel(t, owner, team.Id, model.ChannelTypePrivate)

	m, resp, err := owner.AddChannelMember(ctx, ch.Id, bob.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, ch.Id, m.ChannelId)
	require.Equal(t, bob.User.Id, m.UserId)
	require.Equal(t, []string{model.ChannelUserRoleId}, strings.Fields(m.Roles))

	members, _, err := bob.GetChannelMembers(ctx, ch.Id, 0, 60, "")
	require.NoError(t, err)
	var got []string
	for _, m := range members {
		require.Equal(t, ch.Id, m.ChannelId)
		got = append(got, m.UserId)
	}
	require.ElementsMatch(t, []string{owner.User.Id, bob.User.Id}, got)

	m, _, err = bob.GetChannelMember(ctx, ch.Id, owner.User.Id, "")
	require.NoError(t, err)
	require.Equal(t, owner.User.Id, m.UserId)

	// Someone outside the team cannot be added (Mattermost answers 404:
	// there is no team member to add); someone outside the channel cannot
	// list it.
	_, resp, err = owner.AddChannelMember(ctx, ch.Id, outsider.User.Id)
	requireAppError(t, resp, err, http.StatusNotFound, "app.team.get_member.missing.app_error")
	_, resp, err = carol.GetChannelMembers(ctx, ch.Id, 0, 60, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	resp, err = owner.RemoveUserFromChannel(ctx, ch.Id, bob.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, resp, err = owner.GetChannelMember(ctx, ch.Id, bob.User.Id, "")
	requireAppError(t, resp, err, http.StatusNotFound, "app.channel.get_member.missing.app_error")
	_, resp, err = bob.GetChannel(ctx, ch.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	// Leaving by removing oneself works too.
	addToChannel(t, owner, ch.Id, carol)
	resp, err = carol.RemoveUserFromChannel(ctx, ch.Id, carol.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestChannelMemberPermissions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Mattermost's channel_user role lets any member of a channel manage
	// its members and properties and archive it; bob is a plain member.
	owner, bob, carol := newUser(t), newUser(t), newUser(t)
	team := teamWith(t, owner, bob, carol)

	for _, typ := range []model.ChannelType{model.ChannelTypeOpen, model.ChannelTypePrivate} {
		t.Run(string(typ), func(t *testing.T) {
			ch := channelWith(t, owner, team.Id, typ, bob)

			_, resp, err := bob.AddChannelMember(ctx, ch.Id, carol.User.Id)
			require.NoError(t, err, "add a member")
			require.Equal(t, http.StatusCreated, resp.StatusCode)

			header := "set by bob"
			got, _, err := bob.PatchChannel(ctx, ch.Id, &model.ChannelPatch{Header: &header})
			require.NoError(t, err, "patch the channel")
			require.Equal(t, header, got.Header)

			_, err = bob.RemoveUserFromChannel(ctx, ch.Id, carol.User.Id)
			require.NoError(t, err, "remove a member")

			_, err = bob.DeleteChannel(ctx, ch.Id)
			require.NoError(t, err, "archive the channel")
		})
	}
}

func TestMyChannels(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob := newUser(t), newUser(t)
	team := teamWith(t, alice, bob)
	otherTeam := teamWith(t, alice)
	open := channelWith(t, alice, team.Id, model.ChannelTypeOpen, bob)
	private := channelWith(t, alice, team.Id, model.ChannelTypePrivate, bob)
	notJoined := newChannel(t, alice, team.Id, model.ChannelTypeOpen)
	elsewhere := newChannel(t, alice, otherTeam.Id, model.ChannelTypeOpen)
	dm, _, err := bob.CreateDirectChannel(ctx, bob.User.Id, alice.User.Id)
	require.NoError(t, err)

	chans, resp, err := bob.GetChannelsForTeamForUser(ctx, team.Id, bob.User.Id, false, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ids []string
	for _, c := range chans {
		ids = append(ids, c.Id)
	}
	require.Subset(t, ids, []string{open.Id, private.Id, dm.Id}, "the team's channels plus the DMs and GMs")
	require.NotContains(t, ids, notJoined.Id)
	require.NotContains(t, ids, elsewhere.Id)

	members, _, err := bob.GetChannelMembersForUser(ctx, bob.User.Id, team.Id, "")
	require.NoError(t, err)
	ids = ids[:0]
	for _, m := range members {
		require.Equal(t, bob.User.Id, m.UserId)
		ids = append(ids, m.ChannelId)
	}
	require.Subset(t, ids, []string{open.Id, private.Id, dm.Id})
	require.NotContains(t, ids, notJoined.Id)
	require.NotContains(t, ids, elsewhere.Id)

	// Another user's channels are not for bob to list.
	_, resp, err = bob.GetChannelsForTeamForUser(ctx, team.Id, alice.User.Id, false, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestPublicChannelsForTeam(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member := newUser(t), newUser(t)
	team := teamWith(t, owner, member)
	open := newChannel(t, owner, team.Id, model.ChannelTypeOpen)
	private := newChannel(t, owner, team.Id, model.ChannelTypePrivate)

	chans, resp, err := member.GetPublicChannelsForTeam(ctx, team.Id, 0, 200, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ids []string
	for _, c := range chans {
		require.Equal(t, model.ChannelTypeOpen, c.Type)
		require.Equal(t, team.Id, c.TeamId)
		ids = append(ids, c.Id)
	}
	require.Contains(t, ids, open.Id, "public channels are listed whether one is a member or not")
	require.NotContains(t, ids, private.Id)

	// Paging: per_page=1 gives one channel a page, all of them in turn.
	var paged []string
	for page := 0; page < 100; page++ {
		chans, _, err := member.GetPublicChannelsForTeam(ctx, team.Id, page, 1, "")
		require.NoError(t, err)
		require.LessOrEqual(t, len(chans), 1)
		if len(chans) == 0 {
			break
		}
		paged = append(paged, chans[0].Id)
	}
	require.ElementsMatch(t, ids, paged)
}

func TestViewChannelAndUnread(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob := newUser(t), newUser(t)
	team := teamWith(t, alice, bob)
	ch := channelWith(t, alice, team.Id, model.ChannelTypeOpen, bob)

	// Alice reads what is there (system messages), so only bob's posts
	// below are unread.
	_, _, err := alice.ViewChannel(ctx, alice.User.Id, &model.ChannelView{ChannelId: ch.Id})
	require.NoError(t, err)
	unread, _, err := alice.GetChannelUnread(ctx, ch.Id, alice.User.Id)
	require.NoError(t, err)
	require.Zero(t, unread.MsgCount)
	require.Zero(t, unread.MentionCount)

	newPost(t, bob, ch.Id, "one")
	newPost(t, bob, ch.Id, "two")
	newPost(t, bob, ch.Id, "three for @"+alice.User.Username)

	unread, resp, err := alice.GetChannelUnread(ctx, ch.Id, alice.User.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ch.Id, unread.ChannelId)
	require.Equal(t, team.Id, unread.TeamId)
	require.EqualValues(t, 3, unread.MsgCount)
	require.EqualValues(t, 1, unread.MentionCount)

	// What clients compute: channel.total_msg_count - member.msg_count.
	channel, _, err := alice.GetChannel(ctx, ch.Id)
	require.NoError(t, err)
	member, _, err := alice.GetChannelMember(ctx, ch.Id, alice.User.Id, "")
	require.NoError(t, err)
	require.EqualValues(t, 3, channel.TotalMsgCount-member.MsgCount)
	require.EqualValues(t, 1, member.MentionCount)
	require.NotZero(t, channel.LastPostAt)

	view, resp, err := alice.ViewChannel(ctx, alice.User.Id, &model.ChannelView{ChannelId: ch.Id})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "OK", view.Status)
	require.Contains(t, view.LastViewedAtTimes, ch.Id)
	require.NotZero(t, view.LastViewedAtTimes[ch.Id])

	unread, _, err = alice.GetChannelUnread(ctx, ch.Id, alice.User.Id)
	require.NoError(t, err)
	require.Zero(t, unread.MsgCount)
	require.Zero(t, unread.MentionCount)
	member, _, err = alice.GetChannelMember(ctx, ch.Id, alice.User.Id, "")
	require.NoError(t, err)
	require.Equal(t, channel.TotalMsgCount, member.MsgCount)
	require.Zero(t, member.MentionCount)
	require.NotZero(t, member.LastViewedAt)

	// One may only view as oneself, and only one's own unread counts.
	_, resp, err = bob.ViewChannel(ctx, alice.User.Id, &model.ChannelView{ChannelId: ch.Id})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, resp, err = bob.GetChannelUnread(ctx, ch.Id, alice.User.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}
