package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// setNotifyProps merges notify_props (and optionally other fields) into
// c's own user.
func (c *client) setNotifyProps(props map[string]string, fields ...map[string]any) {
	c.ts.t.Helper()
	body := map[string]any{"notify_props": props}
	for _, f := range fields {
		for k, v := range f {
			body[k] = v
		}
	}
	c.mustDo("PUT", "/users/me/patch", body, http.StatusOK, nil)
}

// setChannelNotifyProps merges notify_props into c's membership.
func (c *client) setChannelNotifyProps(channelID string, props map[string]string) {
	c.ts.t.Helper()
	c.mustDo("PUT", "/channels/"+channelID+"/members/"+c.User.ID+"/notify_props", props, http.StatusOK, nil)
}

func TestMentionKeywordsAndChannelMentions(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 6)
	a, keys, first, noChannel, ignoring, muted := e.users[0], e.users[1], e.users[2], e.users[3], e.users[4], e.users[5]
	keys.setNotifyProps(map[string]string{"mention_keys": "deploy, Ops-Team"})
	first.setNotifyProps(map[string]string{"first_name": "true"}, map[string]any{"first_name": "Carol"})
	noChannel.setNotifyProps(map[string]string{"channel": "false"})
	ignoring.setChannelNotifyProps(e.ch.ID, map[string]string{"ignore_channel_mentions": "on"})
	muted.setChannelNotifyProps(e.ch.ID, map[string]string{"mark_unread": "mention"})
	// The sender's own keywords never mention them.
	a.setNotifyProps(map[string]string{"mention_keys": "deploy"})

	// The muted member has read everything else in the team, so their
	// team unread counts only what follows.
	townSquare := e.admin.channelByName(e.team.ID, model.DefaultChannelName)
	muted.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": townSquare.ID}, http.StatusOK, nil)
	muted.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": e.ch.ID}, http.StatusOK, nil)

	// @here reaches members who are online, with the same opt-outs.
	for _, u := range []*client{keys, ignoring, a} {
		u.mustDo("PUT", "/users/me/status", map[string]any{"user_id": u.User.ID, "status": "online"}, http.StatusOK, nil)
	}
	first.mustDo("PUT", "/users/me/status", map[string]any{"user_id": first.User.ID, "status": "away"}, http.StatusOK, nil)

	everyone := []*client{a, keys, first, noChannel, ignoring, muted}
	count := func(u *client) int64 { return u.channelMember(e.ch.ID, u.User.ID).MentionCount }
	before := map[*client]int64{}
	for _, u := range everyone {
		before[u] = count(u)
	}
	steps := []struct {
		msg       string
		mentioned []*client
	}{
		{"time to deploy.", []*client{keys}},
		{"DEPLOY and ping the ops-team", []*client{keys}},
		{"deployment is not a keyword", nil},
		{"ask carol", nil}, // a capitalised first name matches exactly
		{"Carol?", []*client{first}},
		{"`deploy` in code", nil},
		{"@channel hello", []*client{keys, first}},
		{"@here and @all", []*client{keys, first}},
		{"@HERE:", []*client{keys}},
		{"@" + muted.User.Username + " muted still hears you", []*client{muted}},
		{"@" + noChannel.User.Username + " and Carol", []*client{noChannel, first}},
	}
	for _, st := range steps {
		a.post(e.ch.ID, st.msg)
		for _, u := range everyone {
			want := before[u]
			for _, m := range st.mentioned {
				if m == u {
					want++
				}
			}
			require.Equal(t, want, count(u), "%q: mention_count of %s", st.msg, u.User.Username)
			before[u] = want
		}
	}

	// A muted member who asks for channel mentions gets them.
	muted.setChannelNotifyProps(e.ch.ID, map[string]string{"ignore_channel_mentions": "off"})
	a.post(e.ch.ID, "@all again")
	require.Equal(t, before[muted]+1, count(muted))

	// The muted channel's messages are not unread, its mentions are.
	var unreads []model.TeamUnread
	muted.mustDo("GET", "/users/me/teams/unread", nil, http.StatusOK, &unreads)
	require.Len(t, unreads, 1)
	require.Equal(t, e.team.ID, unreads[0].TeamID)
	require.Zero(t, unreads[0].MsgCount)
	require.Zero(t, unreads[0].MsgCountRoot)
	require.Equal(t, int64(2), unreads[0].MentionCount)
	var cu model.ChannelUnread
	muted.mustDo("GET", "/users/me/channels/"+e.ch.ID+"/unread", nil, http.StatusOK, &cu)
	require.Zero(t, cu.MsgCount)
	require.Equal(t, int64(2), cu.MentionCount)

	keys.mustDo("GET", "/users/me/teams/unread", nil, http.StatusOK, &unreads)
	require.Len(t, unreads, 1)
	require.GreaterOrEqual(t, unreads[0].MsgCount, int64(len(steps)+1))
}

func TestPostedMentionsPerRecipient(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 4)
	a, b, c, d := e.users[0], e.users[1], e.users[2], e.users[3]
	d.setNotifyProps(map[string]string{"mention_keys": "launchpad"})
	conns := map[*client]*wsClient{a: a.ws(), b: b.ws(), c: c.ws(), d: d.ws()}

	p := a.post(e.ch.ID, "@"+b.User.Username+" the launchpad is ready")
	a.post(e.ch.ID, "marker")
	want := map[*client][]string{a: nil, b: {b.User.ID}, c: nil, d: {d.User.ID}}
	for u, w := range conns {
		var got []wsEvent
		for {
			ev := w.next("posted")
			if postMessage(t, ev) == "marker" {
				require.NotContains(t, ev.Data, "mentions")
				break
			}
			got = append(got, ev)
		}
		require.Len(t, got, 1, "%s gets one posted event", u.User.Username)
		ev := got[0]
		var gotPost model.Post
		require.NoError(t, json.Unmarshal([]byte(ev.Data["post"].(string)), &gotPost))
		require.Equal(t, p.ID, gotPost.ID)
		require.Equal(t, e.ch.ID, ev.Broadcast["channel_id"])
		require.Nil(t, ev.Broadcast["omit_users"], "the wire never names the omitted (mentioned) users")
		require.Equal(t, "@"+a.User.Username, ev.Data["sender_name"])
		require.Equal(t, e.ch.Name, ev.Data["channel_name"])
		if want[u] == nil {
			require.NotContains(t, ev.Data, "mentions", "%s is not told who else was mentioned", u.User.Username)
			continue
		}
		var mentioned []string
		require.NoError(t, json.Unmarshal([]byte(ev.Data["mentions"].(string)), &mentioned))
		require.Equal(t, want[u], mentioned, "%s sees only their own mention", u.User.Username)
		require.Equal(t, u.User.ID, ev.Broadcast["user_id"])
	}

	// In a direct message the other member is mentioned, and told so.
	var dm model.Channel
	a.mustDo("POST", "/channels/direct", []string{a.User.ID, b.User.ID}, http.StatusCreated, &dm)
	a.post(dm.ID, "psst")
	ev := conns[b].next("posted")
	require.Equal(t, "psst", postMessage(t, ev))
	require.Equal(t, `["`+b.User.ID+`"]`, ev.Data["mentions"])
	ev = conns[a].next("posted")
	require.Equal(t, "psst", postMessage(t, ev))
	require.NotContains(t, ev.Data, "mentions")
}

func TestThreadParticipants(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 3)
	a, b, c := e.users[0], e.users[1], e.users[2]
	root := a.post(e.ch.ID, "root")
	reply := map[string]any{"root_id": root.ID}
	b1 := b.post(e.ch.ID, "b one", reply)
	c1 := c.post(e.ch.ID, "c one", reply)
	b2 := b.post(e.ch.ID, "b two", reply)
	plain := a.post(e.ch.ID, "no replies")

	participants := func(p *model.Post) []string {
		out := []string{}
		for _, u := range p.Participants {
			out = append(out, u.ID)
		}
		return out
	}
	thread := a.postList("/posts/" + b1.ID + "/thread")
	got := thread.Posts[root.ID]
	require.Equal(t, int64(3), got.ReplyCount)
	require.Equal(t, b2.CreateAt, got.LastReplyAt)
	require.Equal(t, []string{b.User.ID, c.User.ID}, participants(got), "repliers in order of first reply")
	for _, u := range got.Participants {
		require.NotEmpty(t, u.Username)
		require.Nil(t, u.NotifyProps, "participants are sanitised")
		require.Empty(t, u.Password)
		require.Zero(t, u.LastPasswordUpdate)
	}
	require.Nil(t, thread.Posts[b1.ID].Participants, "replies carry no participants")

	page := c.postList("/channels/" + e.ch.ID + "/posts")
	require.Equal(t, []string{b.User.ID, c.User.ID}, participants(page.Posts[root.ID]))
	require.Nil(t, page.Posts[plain.ID].Participants)
	require.Equal(t, int64(3), page.Posts[b2.ID].ReplyCount)

	// The raw wire shape: an array of user objects.
	resp, body := a.do("GET", "/posts/"+root.ID+"/thread", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var raw struct {
		Posts map[string]map[string]json.RawMessage `json:"posts"`
	}
	require.NoError(t, json.Unmarshal(body, &raw))
	var users []map[string]any
	require.NoError(t, json.Unmarshal(raw.Posts[root.ID]["participants"], &users))
	require.Len(t, users, 2)
	require.Equal(t, b.User.Username, users[0]["username"])
	require.NotContains(t, users[0], "notify_props")
	require.JSONEq(t, "null", string(raw.Posts[b1.ID]["participants"]))

	// A participant leaves with their last live reply.
	c.mustDo("DELETE", "/posts/"+c1.ID, nil, http.StatusOK, nil)
	require.Equal(t, []string{b.User.ID}, participants(a.postList("/posts/" + root.ID + "/thread").Posts[root.ID]))
	b.mustDo("DELETE", "/posts/"+b1.ID, nil, http.StatusOK, nil)
	got = a.postList("/posts/" + root.ID + "/thread").Posts[root.ID]
	require.Equal(t, []string{b.User.ID}, participants(got), "b still has a reply")
	require.Equal(t, int64(1), got.ReplyCount)
	b.mustDo("DELETE", "/posts/"+b2.ID, nil, http.StatusOK, nil)
	got = a.postList("/posts/" + root.ID + "/thread").Posts[root.ID]
	require.Nil(t, got.Participants)
	require.Zero(t, got.ReplyCount)
}
