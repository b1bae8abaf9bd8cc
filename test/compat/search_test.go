package compat

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func TestSearchPostsDriver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	priv := channelWith(t, f.alice, f.team.Id, model.ChannelTypePrivate)
	fox := newPost(t, f.alice, f.ch.Id, "the quick brown fox #Animals")
	reply := newPost(t, f.bob, f.ch.Id, "quick reply from bob")
	secret := newPost(t, f.alice, priv.Id, "quick secret")

	list, resp, err := f.bob.SearchPosts(ctx, f.team.Id, "quick", false)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, []string{reply.Id, fox.Id}, list.Order, "newest first; no private channel of alice's")
	require.Equal(t, fox.Message, list.Posts[fox.Id].Message)

	list, _, err = f.alice.SearchPosts(ctx, f.team.Id, "quick brown", true)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{fox.Id, reply.Id, secret.Id}, list.Order)

	terms := `"brown fox" from:` + f.alice.User.Username + " in:" + f.ch.Name
	perPage, page := 10, 0
	list, _, err = f.bob.SearchPostsWithParams(ctx, "", &model.SearchParameter{Terms: &terms, PerPage: &perPage, Page: &page})
	require.NoError(t, err, "cross-team search")
	require.Equal(t, []string{fox.Id}, list.Order)

	res, _, err := f.bob.SearchPostsWithMatches(ctx, f.team.Id, "#animals", false)
	require.NoError(t, err)
	require.Equal(t, []string{fox.Id}, res.Order)
	require.Equal(t, model.PostSearchMatches{fox.Id: {"#Animals"}}, res.Matches)

	empty := ""
	_, resp, err = f.bob.SearchPostsWithParams(ctx, f.team.Id, &model.SearchParameter{Terms: &empty})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	long := strings.Repeat("x", 2000)
	_, resp, err = f.bob.SearchPostsWithParams(ctx, f.team.Id, &model.SearchParameter{Terms: &long})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.post.search_posts.terms_too_long.app_error")
	stranger := newUser(t)
	_, resp, err = stranger.SearchPosts(ctx, f.team.Id, "quick", false)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestSearchFilesDriver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	priv := channelWith(t, f.alice, f.team.Id, model.ChannelTypePrivate)
	// attach uploads a file and posts it.
	attach := func(by *account, channelID, name string, data []byte) *model.FileInfo {
		up, _, err := by.UploadFile(ctx, data, channelID, name)
		require.NoError(t, err)
		info := up.FileInfos[0]
		_, _, err = by.CreatePost(ctx, &model.Post{ChannelId: channelID, Message: "file", FileIds: model.StringArray{info.Id}})
		require.NoError(t, err)
		return info
	}
	plan := attach(f.alice, f.ch.Id, "Budget_Plan-2025.txt", []byte("plan"))
	photo := attach(f.bob, f.ch.Id, "budget photo.png", compatPNG(t, 8, 8))
	attach(f.alice, priv.Id, "secret budget.txt", []byte("secret"))
	_, _, err := f.alice.UploadFile(ctx, []byte("never posted"), f.ch.Id, "unposted budget.txt")
	require.NoError(t, err)

	list, resp, err := f.bob.SearchFiles(ctx, f.team.Id, "budget", false)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.ElementsMatch(t, []string{plan.Id, photo.Id}, list.Order, "no private channel of alice's, no unposted file")
	require.GreaterOrEqual(t, list.FileInfos[list.Order[0]].CreateAt, list.FileInfos[list.Order[1]].CreateAt, "newest first")
	got := list.FileInfos[plan.Id]
	require.Equal(t, "Budget_Plan-2025.txt", got.Name)
	require.Equal(t, f.ch.Id, got.ChannelId)
	require.NotEmpty(t, got.PostId)
	require.Empty(t, got.Path, "storage paths are never sent")

	list, _, err = f.bob.SearchFilesAcrossTeams(ctx, "ext:png", false)
	require.NoError(t, err)
	require.Equal(t, []string{photo.Id}, list.Order)
	list, _, err = f.alice.SearchFiles(ctx, f.team.Id, "plan photo", true)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{plan.Id, photo.Id}, list.Order)

	terms := "budget_plan from:" + f.alice.User.Username + " in:" + f.ch.Name + " -ext:png"
	perPage, page := 10, 0
	list, _, err = f.bob.SearchFilesWithParams(ctx, "", &model.SearchParameter{Terms: &terms, PerPage: &perPage, Page: &page})
	require.NoError(t, err, "cross-team search")
	require.Equal(t, []string{plan.Id}, list.Order)

	empty := ""
	_, resp, err = f.bob.SearchFilesWithParams(ctx, f.team.Id, &model.SearchParameter{Terms: &empty})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	stranger := newUser(t)
	_, resp, err = stranger.SearchFiles(ctx, f.team.Id, "budget", false)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestSearchUsersAndChannelsDriver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	priv := channelWith(t, f.alice, f.team.Id, model.ChannelTypePrivate)

	users, _, err := f.bob.SearchUsers(ctx, &model.UserSearch{Term: f.alice.User.Username, TeamId: f.team.Id, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{f.alice.User.Id}, userIDs(users))
	users, _, err = f.bob.SearchUsers(ctx, &model.UserSearch{Term: f.bob.User.Username, InChannelId: f.ch.Id})
	require.NoError(t, err)
	require.Equal(t, []string{f.bob.User.Id}, userIDs(users))
	_, resp, err := f.bob.SearchUsers(ctx, &model.UserSearch{Term: "u", InChannelId: priv.Id})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, resp, err = f.bob.SearchUsers(ctx, &model.UserSearch{})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")

	chans, _, err := f.bob.SearchChannels(ctx, f.team.Id, &model.ChannelSearch{Term: f.ch.Name})
	require.NoError(t, err)
	require.Len(t, chans, 1)
	require.Equal(t, f.ch.Id, chans[0].Id)
	chans, _, err = f.bob.SearchChannels(ctx, f.team.Id, &model.ChannelSearch{Term: priv.Name})
	require.NoError(t, err)
	require.Empty(t, chans, "private channels are not searched")

	list, _, err := f.alice.AutocompleteChannelsForTeam(ctx, f.team.Id, priv.Name)
	require.NoError(t, err)
	require.Len(t, list, 1, "alice's own private channel")
	list, _, err = f.bob.AutocompleteChannelsForTeam(ctx, f.team.Id, priv.Name)
	require.NoError(t, err)
	require.Empty(t, list)
	list, _, err = f.bob.AutocompleteChannelsForTeamForSearch(ctx, f.team.Id, f.ch.Name)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, f.ch.Id, list[0].Id)

	stranger := newUser(t)
	_, resp, err = stranger.AutocompleteChannelsForTeam(ctx, f.team.Id, "c")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}
