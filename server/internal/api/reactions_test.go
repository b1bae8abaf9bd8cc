package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func (c *client) react(postID, emoji string) *model.Reaction {
	c.ts.t.Helper()
	var r model.Reaction
	c.mustDo("POST", "/reactions", map[string]any{"user_id": c.User.ID, "post_id": postID, "emoji_name": emoji}, http.StatusOK, &r)
	return &r
}

func eventReaction(t *testing.T, ev wsEvent) *model.Reaction {
	t.Helper()
	var r model.Reaction
	require.NoError(t, json.Unmarshal([]byte(ev.Data["reaction"].(string)), &r))
	return &r
}

func TestReactions(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 2)
	a, b := e.users[0], e.users[1]
	w := a.ws()
	p := a.post(e.ch.ID, "react to me")
	q := a.post(e.ch.ID, "no reactions")
	require.False(t, p.HasReactions)

	resp, body := b.do("POST", "/reactions", map[string]any{"user_id": b.User.ID, "post_id": p.ID, "emoji_name": "smile"})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	requireKeys(t, body, "user_id", "post_id", "emoji_name", "create_at", "update_at", "delete_at", "remote_id", "channel_id")
	var r model.Reaction
	require.NoError(t, json.Unmarshal(body, &r))
	require.Equal(t, b.User.ID, r.UserID)
	require.Equal(t, e.ch.ID, r.ChannelID)
	require.NotZero(t, r.CreateAt)
	ev := w.next("reaction_added")
	require.Equal(t, e.ch.ID, ev.Broadcast["channel_id"])
	require.Equal(t, "smile", eventReaction(t, ev).EmojiName)

	// Adding it again changes nothing.
	again := b.react(p.ID, "smile")
	require.Equal(t, r.CreateAt, again.CreateAt)
	a.react(p.ID, "+1")
	require.Equal(t, "+1", eventReaction(t, w.next("reaction_added")).EmojiName, "the repeat is not announced")

	got := a.getPost(p.ID)
	require.True(t, got.HasReactions)
	require.GreaterOrEqual(t, got.UpdateAt, r.CreateAt, "a reaction touches its post")
	require.Len(t, got.Metadata.Reactions, 2)
	l := a.postList("/channels/" + e.ch.ID + "/posts")
	require.Len(t, l.Posts[p.ID].Metadata.Reactions, 2)
	require.Empty(t, l.Posts[q.ID].Metadata.Reactions)

	var rs []*model.Reaction
	b.mustDo("GET", "/posts/"+p.ID+"/reactions", nil, http.StatusOK, &rs)
	require.Len(t, rs, 2)
	require.Equal(t, "smile", rs[0].EmojiName, "oldest first")
	resp, body = b.do("GET", "/posts/"+q.ID+"/reactions", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, "[]", string(body))

	var bulk map[string][]*model.Reaction
	b.mustDo("POST", "/posts/ids/reactions", []string{p.ID, q.ID}, http.StatusOK, &bulk)
	require.Len(t, bulk[p.ID], 2)
	require.NotNil(t, bulk[q.ID])
	require.Empty(t, bulk[q.ID])
	_, body = b.do("POST", "/posts/ids/reactions", []string{})
	require.JSONEq(t, "{}", string(body))

	// Removing: your own, or anyone's as a system admin.
	const perm = "api.context.permissions.app_error"
	a.requireAppError("DELETE", "/users/"+b.User.ID+"/posts/"+p.ID+"/reactions/smile", nil, 403, perm)
	e.admin.mustDo("DELETE", "/users/"+b.User.ID+"/posts/"+p.ID+"/reactions/smile", nil, http.StatusOK, nil)
	ev = w.next("reaction_removed")
	require.Equal(t, "smile", eventReaction(t, ev).EmojiName)
	require.Equal(t, b.User.ID, eventReaction(t, ev).UserID)
	a.mustDo("DELETE", "/users/me/posts/"+p.ID+"/reactions/+1", nil, http.StatusOK, nil)
	got = a.getPost(p.ID)
	require.False(t, got.HasReactions)
	require.Empty(t, got.Metadata.Reactions)
	// Removing a reaction that is not there is fine.
	a.mustDo("DELETE", "/users/me/posts/"+p.ID+"/reactions/+1", nil, http.StatusOK, nil)
}

func TestReactionsBadInput(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 2)
	a, b := e.users[0], e.users[1]
	outsider := e.outsider()
	p := a.post(e.ch.ID, "post")
	gone := a.post(e.ch.ID, "gone")
	a.mustDo("DELETE", "/posts/"+gone.ID, nil, http.StatusOK, nil)

	const invalid = "api.reaction.save_reaction.invalid.app_error"
	const perm = "api.context.permissions.app_error"
	body := func(user, post, emoji string) map[string]any {
		return map[string]any{"user_id": user, "post_id": post, "emoji_name": emoji}
	}
	cases := []struct {
		name   string
		c      *client
		body   any
		status int
		id     string
	}{
		{"malformed json", a, `{"user_id":`, 400, "api.context.invalid_body_param.app_error"},
		{"bad post id", a, body(a.User.ID, "nope", "smile"), 400, invalid},
		{"empty emoji", a, body(a.User.ID, p.ID, ""), 400, invalid},
		{"long emoji", a, body(a.User.ID, p.ID, strings.Repeat("a", 65)), 400, invalid},
		{"bad emoji", a, body(a.User.ID, p.ID, "no spaces"), 400, invalid},
		{"someone else", a, body(b.User.ID, p.ID, "smile"), 403, "api.reaction.save_reaction.user_id.app_error"},
		{"not a member", outsider, body(outsider.User.ID, p.ID, "smile"), 403, perm},
		{"unknown post", a, body(a.User.ID, model.NewID(), "smile"), 403, perm},
		{"deleted post", a, body(a.User.ID, gone.ID, "smile"), 403, perm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.requireAppError("POST", "/reactions", tc.body, tc.status, tc.id)
		})
	}
	a.requireAppError("DELETE", "/users/me/posts/"+p.ID+"/reactions/bad%20name", nil, 400, "api.context.invalid_url_param.app_error")
	a.requireAppError("DELETE", "/users/me/posts/nope/reactions/smile", nil, 400, "api.context.invalid_url_param.app_error")
	// Reading follows the channel's read rule: team members read public
	// channels.
	outsider.mustDo("GET", "/posts/"+p.ID+"/reactions", nil, http.StatusOK, nil)
	stranger := e.ts.newUser()
	stranger.requireAppError("GET", "/posts/"+p.ID+"/reactions", nil, 403, perm)
	stranger.requireAppError("POST", "/posts/ids/reactions", []string{p.ID}, 403, perm)
	a.requireAppError("POST", "/posts/ids/reactions", []string{model.NewID()}, 403, perm)
	require.False(t, a.getPost(p.ID).HasReactions, "nothing was written")

	// At most 50 different emojis on a post; more of an existing one is
	// fine.
	for i := range 50 {
		a.react(p.ID, fmt.Sprintf("e%d", i))
	}
	a.requireAppError("POST", "/reactions", body(a.User.ID, p.ID, "one_more"), 400, "app.reaction.save.save.too_many_reactions")
	b.react(p.ID, "e7")

	// An archived channel takes no reactions.
	e.admin.mustDo("DELETE", "/channels/"+e.ch.ID, nil, http.StatusOK, nil)
	b.requireAppError("POST", "/reactions", body(b.User.ID, p.ID, "smile"), 403, "api.reaction.save.archived_channel.app_error")
	b.requireAppError("DELETE", "/users/me/posts/"+p.ID+"/reactions/e7", nil, 403, "api.reaction.delete.archived_channel.app_error")
}
