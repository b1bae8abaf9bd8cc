package compat

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func TestPreferencesDriver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob := newUser(t), newUser(t)
	ws := connectWS(t, alice)
	id := alice.User.Id

	prefs, _, err := alice.GetPreferences(ctx, id)
	require.NoError(t, err)
	require.Empty(t, prefs)

	chID := model.NewId()
	set := model.Preferences{
		{UserId: id, Category: model.PreferenceCategoryDisplaySettings, Name: model.PreferenceNameUseMilitaryTime, Value: "true"},
		{UserId: id, Category: model.PreferenceCategoryDisplaySettings, Name: model.PreferenceNameNameFormat, Value: "username"},
		{UserId: id, Category: model.PreferenceCategoryFavoriteChannel, Name: chID, Value: "true"},
	}
	resp, err := alice.UpdatePreferences(ctx, id, set)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ev := ws.await(t, model.WebsocketEventPreferencesChanged, nil)
	var changed model.Preferences
	require.NoError(t, json.Unmarshal([]byte(ev.GetData()["preferences"].(string)), &changed))
	require.ElementsMatch(t, set, changed)

	prefs, _, err = alice.GetPreferences(ctx, id)
	require.NoError(t, err)
	require.ElementsMatch(t, set, prefs)

	display, _, err := alice.GetPreferencesByCategory(ctx, id, model.PreferenceCategoryDisplaySettings)
	require.NoError(t, err)
	require.ElementsMatch(t, set[:2], display)

	one, _, err := alice.GetPreferenceByCategoryAndName(ctx, id, model.PreferenceCategoryFavoriteChannel, chID)
	require.NoError(t, err)
	require.Equal(t, set[2], *one)

	// Upsert.
	set[1].Value = "full_name"
	_, err = alice.UpdatePreferences(ctx, id, set[1:2])
	require.NoError(t, err)
	one, _, err = alice.GetPreferenceByCategoryAndName(ctx, id, model.PreferenceCategoryDisplaySettings, model.PreferenceNameNameFormat)
	require.NoError(t, err)
	require.Equal(t, "full_name", one.Value)

	resp, err = alice.DeletePreferences(ctx, id, set[:1])
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ev = ws.await(t, model.WebsocketEventPreferencesDeleted, nil)
	require.Contains(t, ev.GetData()["preferences"], model.PreferenceNameUseMilitaryTime)
	_, resp, err = alice.GetPreferenceByCategoryAndName(ctx, id, model.PreferenceCategoryDisplaySettings, model.PreferenceNameUseMilitaryTime)
	requireAppError(t, resp, err, http.StatusBadRequest, "app.preference.get.app_error")
	_, resp, err = alice.GetPreferencesByCategory(ctx, id, "nothing_here")
	requireAppError(t, resp, err, http.StatusNotFound, "api.preference.preferences_category.get.app_error")

	// Someone else's preferences are out of reach; the admin's are not.
	_, resp, err = bob.GetPreferences(ctx, id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	resp, err = bob.UpdatePreferences(ctx, id, set[1:2])
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	resp, err = bob.UpdatePreferences(ctx, bob.User.Id, set[1:2])
	requireAppError(t, resp, err, http.StatusForbidden, "api.preference.update_preferences.set.app_error")
	resp, err = bob.DeletePreferences(ctx, id, set[1:2])
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	prefs, _, err = srv.admin.GetPreferences(ctx, id)
	require.NoError(t, err)
	require.Len(t, prefs, 2)

	// Invalid entries are refused whole.
	long := strings.Repeat("n", 33)
	resp, err = alice.UpdatePreferences(ctx, id, model.Preferences{
		{UserId: id, Category: "ok", Name: "fine", Value: "1"},
		{UserId: id, Category: "ok", Name: long, Value: "1"},
	})
	requireAppError(t, resp, err, http.StatusBadRequest, "model.preference.is_valid.name.app_error")
	_, resp, err = alice.GetPreferencesByCategory(ctx, id, "ok")
	requireAppError(t, resp, err, http.StatusNotFound, "api.preference.preferences_category.get.app_error")
}

func TestMentionsDriver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	carol := newUser(t)
	_, _, err := f.alice.AddTeamMember(ctx, f.team.Id, carol.User.Id)
	require.NoError(t, err)
	_, _, err = f.alice.AddChannelMember(ctx, f.ch.Id, carol.User.Id)
	require.NoError(t, err)
	_, _, err = carol.PatchUser(ctx, carol.User.Id, &model.UserPatch{NotifyProps: model.StringMap{
		model.MentionKeysNotifyProp: "rollout", model.FirstNameNotifyProp: "false"}})
	require.NoError(t, err)
	wsBob, wsCarol := connectWS(t, f.bob), connectWS(t, carol)

	// Carol is mentioned by her keyword; bob is not told about it.
	p := newPost(t, f.alice, f.ch.Id, "the rollout starts now")
	ev := wsCarol.await(t, model.WebsocketEventPosted, func(ev *model.WebSocketEvent) bool { return eventPost(t, ev).Id == p.Id })
	require.Equal(t, `["`+carol.User.Id+`"]`, ev.GetData()["mentions"])
	ev = wsBob.await(t, model.WebsocketEventPosted, func(ev *model.WebSocketEvent) bool { return eventPost(t, ev).Id == p.Id })
	require.NotContains(t, ev.GetData(), "mentions")

	member, _, err := carol.GetChannelMember(ctx, f.ch.Id, carol.User.Id, "")
	require.NoError(t, err)
	require.Equal(t, int64(1), member.MentionCount)

	// Muting keeps mentions but hides the channel's messages from the
	// team's unread count.
	_, err = carol.UpdateChannelNotifyProps(ctx, f.ch.Id, carol.User.Id,
		map[string]string{model.MarkUnreadNotifyProp: model.ChannelMarkUnreadMention})
	require.NoError(t, err)
	newPost(t, f.alice, f.ch.Id, "@"+carol.User.Username+" still there?")
	unreads, _, err := carol.GetTeamsUnreadForUser(ctx, carol.User.Id, "", false)
	require.NoError(t, err)
	for _, u := range unreads {
		if u.TeamId == f.team.Id {
			require.Equal(t, int64(2), u.MentionCount)
		}
	}
	cu, _, err := carol.GetChannelUnread(ctx, f.ch.Id, carol.User.Id)
	require.NoError(t, err)
	require.Zero(t, cu.MsgCount)
	require.Equal(t, int64(2), cu.MentionCount)

	// Thread participants.
	reply, _, err := f.bob.CreatePost(ctx, &model.Post{ChannelId: f.ch.Id, RootId: p.Id, Message: "on it"})
	require.NoError(t, err)
	thread, _, err := f.alice.GetPostThread(ctx, p.Id, "", false)
	require.NoError(t, err)
	root := thread.Posts[p.Id]
	require.Equal(t, int64(1), root.ReplyCount)
	require.Equal(t, reply.CreateAt, root.LastReplyAt)
	require.Len(t, root.Participants, 1)
	require.Equal(t, f.bob.User.Id, root.Participants[0].Id)
	require.Equal(t, f.bob.User.Username, root.Participants[0].Username)
}
