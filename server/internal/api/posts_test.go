package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// postEnv is a test server with a system admin, an open team and an open
// channel whose members are the admin and users.
type postEnv struct {
	ts    *testServer
	admin *client
	team  *model.Team
	ch    *model.Channel
	users []*client
}

// newPostEnv starts a server with n channel members besides the admin.
func newPostEnv(t *testing.T, n int, mutate ...func(*app.Settings, *api.Options)) *postEnv {
	t.Helper()
	return newPostEnvOn(newTestServer(t, mutate...), n)
}

// newPostEnvOn is newPostEnv on a server already started.
func newPostEnvOn(ts *testServer, n int) *postEnv {
	ts.t.Helper()
	e := &postEnv{ts: ts, admin: ts.newUser()}
	e.team = e.admin.createTeam(true)
	e.ch = e.admin.createChannel(e.team.ID, model.ChannelOpen)
	for range n {
		e.users = append(e.users, e.member(e.ch.ID))
	}
	return e
}

// member returns a new team member who belongs to the given channels.
func (e *postEnv) member(channelIDs ...string) *client {
	u := e.outsider()
	for _, id := range channelIDs {
		e.admin.addToChannel(id, u)
	}
	return u
}

// outsider returns a new team member who is in no test channel.
func (e *postEnv) outsider() *client {
	u := e.ts.newUser()
	e.admin.addToTeam(e.team.ID, u)
	return u
}

// addToChannel has c add u to a channel.
func (c *client) addToChannel(channelID string, u *client) {
	c.ts.t.Helper()
	c.mustDo("POST", "/channels/"+channelID+"/members", map[string]any{"user_id": u.User.ID}, http.StatusCreated, nil)
}

// post creates a post; fields are merged into the body.
func (c *client) post(channelID, msg string, fields ...map[string]any) *model.Post {
	c.ts.t.Helper()
	body := map[string]any{"channel_id": channelID, "message": msg}
	for _, f := range fields {
		for k, v := range f {
			body[k] = v
		}
	}
	var p model.Post
	c.mustDo("POST", "/posts", body, http.StatusCreated, &p)
	return &p
}

// status sends a request and returns the response status, or 0 if it
// could not be sent. Unlike do it reports nothing to the test, so
// goroutines may call it.
func (c *client) status(method, path string, body any) int {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.ts.URL+"/api/v4"+path, rd)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (c *client) getPost(id string) *model.Post {
	c.ts.t.Helper()
	var p model.Post
	c.mustDo("GET", "/posts/"+id, nil, http.StatusOK, &p)
	return &p
}

func (c *client) postList(path string) *model.PostList {
	c.ts.t.Helper()
	var l model.PostList
	c.mustDo("GET", path, nil, http.StatusOK, &l)
	return &l
}

func (c *client) channelMember(channelID, userID string) *model.ChannelMember {
	c.ts.t.Helper()
	var m model.ChannelMember
	c.mustDo("GET", "/channels/"+channelID+"/members/"+userID, nil, http.StatusOK, &m)
	return &m
}

func (c *client) channel(id string) *model.Channel {
	c.ts.t.Helper()
	var ch model.Channel
	c.mustDo("GET", "/channels/"+id, nil, http.StatusOK, &ch)
	return &ch
}

func ids(posts ...*model.Post) []string {
	out := []string{}
	for _, p := range posts {
		out = append(out, p.ID)
	}
	return out
}

var postKeys = []string{"id", "create_at", "update_at", "edit_at", "delete_at", "is_pinned", "user_id", "channel_id",
	"root_id", "original_id", "message", "type", "props", "hashtags", "pending_post_id", "reply_count",
	"last_reply_at", "participants", "metadata"}

func TestCreatePost(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	u := e.users[0]
	before := u.channel(e.ch.ID)

	other := e.ts.newUser().User.ID
	resp, body := u.do("POST", "/posts", map[string]any{"channel_id": e.ch.ID, "message": "hello #world",
		"user_id": other, "create_at": 12345, "props": map[string]any{"k": "v", "deleteBy": "x"}})
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	requireKeys(t, body, postKeys...)
	var p model.Post
	require.NoError(t, json.Unmarshal(body, &p))
	require.True(t, model.IsValidID(p.ID))
	require.Equal(t, u.User.ID, p.UserID, "user_id is the session's")
	require.Greater(t, p.CreateAt, int64(12345), "create_at is honoured only for admins")
	require.Equal(t, p.CreateAt, p.UpdateAt)
	require.Equal(t, "#world", p.Hashtags)
	require.Equal(t, map[string]any{"k": "v"}, p.Props, "server props are dropped")
	require.NotNil(t, p.Metadata)

	got := u.getPost(p.ID)
	require.Equal(t, p.Message, got.Message)
	require.Equal(t, p.CreateAt, got.CreateAt)

	after := u.channel(e.ch.ID)
	require.Equal(t, before.TotalMsgCount+1, after.TotalMsgCount)
	require.Equal(t, before.TotalMsgCountRoot+1, after.TotalMsgCountRoot)
	require.Equal(t, p.CreateAt, after.LastPostAt)
	require.Equal(t, p.CreateAt, after.LastRootPostAt)
	m := u.channelMember(e.ch.ID, u.User.ID)
	require.Equal(t, after.TotalMsgCount, m.MsgCount, "posting reads the channel")
	require.Equal(t, after.TotalMsgCountRoot, m.MsgCountRoot)
	require.GreaterOrEqual(t, m.LastViewedAt, p.CreateAt)

	// A system admin may set create_at, and post in a channel without
	// being a member.
	ch2 := u.createChannel(e.team.ID, model.ChannelOpen)
	ap := e.admin.post(ch2.ID, "back-dated", map[string]any{"create_at": 1000})
	require.Equal(t, int64(1000), ap.CreateAt)

	// A message of MaxPostSize characters fits, whatever its bytes.
	u.post(e.ch.ID, strings.Repeat("é", app.MaxPostSizeDefault))
}

func TestCreatePostBadInput(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	u := e.users[0]
	root := u.post(e.ch.ID, "root")
	reply := u.post(e.ch.ID, "reply", map[string]any{"root_id": root.ID})
	otherCh := e.admin.createChannel(e.team.ID, model.ChannelOpen)
	e.admin.addToChannel(otherCh.ID, u)
	elsewhere := u.post(otherCh.ID, "elsewhere")
	gone := u.post(e.ch.ID, "gone")
	u.mustDo("DELETE", "/posts/"+gone.ID, nil, http.StatusOK, nil)

	const badBody = "api.context.invalid_body_param.app_error"
	ok := func(extra map[string]any) map[string]any {
		b := map[string]any{"channel_id": e.ch.ID, "message": "hi"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name   string
		body   any
		status int
		id     string
	}{
		{"malformed json", `{"channel_id":`, 400, badBody},
		{"wrong type", `{"channel_id":"` + e.ch.ID + `","message":5}`, 400, badBody},
		{"empty body", ``, 400, badBody},
		{"json null", `null`, 400, badBody},
		{"missing channel", map[string]any{"message": "hi"}, 400, badBody},
		{"bad channel id", ok(map[string]any{"channel_id": "nope"}), 400, badBody},
		{"empty message", ok(map[string]any{"message": "  "}), 400, badBody},
		{"oversize message", ok(map[string]any{"message": strings.Repeat("x", app.MaxPostSizeDefault+1)}), 400, "model.post.is_valid.message_length.app_error"},
		{"bad root id", ok(map[string]any{"root_id": "short"}), 400, "model.post.is_valid.root_id.app_error"},
		{"unknown root", ok(map[string]any{"root_id": model.NewID()}), 400, "api.post.create_post.root_id.app_error"},
		{"root is a reply", ok(map[string]any{"root_id": reply.ID}), 400, "api.post.create_post.root_id.app_error"},
		{"root in other channel", ok(map[string]any{"root_id": elsewhere.ID}), 400, "api.post.create_post.root_id.app_error"},
		{"deleted root", ok(map[string]any{"root_id": gone.ID}), 400, "api.post.create_post.root_id.app_error"},
		{"bad file id", ok(map[string]any{"file_ids": []string{"x"}}), 400, "model.post.is_valid.file_ids.app_error"},
		{"system type", ok(map[string]any{"type": "system_join_channel"}), 400, badBody},
		{"unknown channel", ok(map[string]any{"channel_id": model.NewID()}), 404, "app.channel.get.existing.app_error"},
		{"body too large", `{"channel_id":"` + e.ch.ID + `","message":"` + strings.Repeat("x", 300001) + `"}`, 413,
			"api.context.request_body_too_large.app_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u.requireAppError("POST", "/posts", tc.body, tc.status, tc.id)
		})
	}

	// Nothing was half written: the channel counts only the good posts.
	require.Equal(t, int64(3), u.channel(e.ch.ID).TotalMsgCount)
	require.Equal(t, int64(1), u.getPost(root.ID).ReplyCount)

	t.Run("no session", func(t *testing.T) {
		e.ts.anon().requireAppError("POST", "/posts", ok(nil), 401, "api.context.session_expired.app_error")
	})
}

func TestCreatePostPermissions(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	member, outsider := e.users[0], e.outsider()
	stranger := e.ts.newUser() // not even in the team
	private := e.admin.createChannel(e.team.ID, model.ChannelPrivate)
	e.admin.addToChannel(private.ID, member)

	const perm = "api.context.permissions.app_error"
	outsider.requireAppError("POST", "/posts", map[string]any{"channel_id": e.ch.ID, "message": "hi"}, 403, perm)
	stranger.requireAppError("POST", "/posts", map[string]any{"channel_id": e.ch.ID, "message": "hi"}, 403, perm)
	outsider.requireAppError("POST", "/posts", map[string]any{"channel_id": private.ID, "message": "hi"}, 403, perm)

	p := member.post(private.ID, "secret")
	pub := member.post(e.ch.ID, "public")
	// Reading: a team member reads public channels; a private channel
	// is closed to outsiders.
	require.Equal(t, "public", outsider.getPost(pub.ID).Message)
	outsider.requireAppError("GET", "/posts/"+p.ID, nil, 403, perm)
	outsider.requireAppError("GET", "/channels/"+private.ID+"/posts", nil, 403, perm)
	outsider.requireAppError("GET", "/posts/"+p.ID+"/thread", nil, 403, perm)
	stranger.requireAppError("GET", "/posts/"+pub.ID, nil, 403, perm)
	stranger.requireAppError("GET", "/channels/"+e.ch.ID+"/posts", nil, 403, perm)
	require.Equal(t, "secret", e.admin.getPost(p.ID).Message)

	// Bad ids.
	member.requireAppError("GET", "/posts/nope", nil, 400, "api.context.invalid_url_param.app_error")
	member.requireAppError("GET", "/posts/"+model.NewID(), nil, 404, "app.post.get.app_error")
	member.requireAppError("GET", "/channels/nope/posts", nil, 400, "api.context.invalid_url_param.app_error")
	member.requireAppError("GET", "/channels/"+e.ch.ID+"/posts?before=nope", nil, 400, "api.context.invalid_url_param.app_error")
	member.requireAppError("GET", "/channels/"+e.ch.ID+"/posts?since=x", nil, 400, "api.context.invalid_url_param.app_error")

	// An archived channel takes no posts.
	e.admin.mustDo("DELETE", "/channels/"+e.ch.ID, nil, http.StatusOK, nil)
	member.requireAppError("POST", "/posts", map[string]any{"channel_id": e.ch.ID, "message": "hi"}, 400,
		"api.post.create_post.can_not_post_to_deleted.error")
}

// TestPostReadRule checks every way of reading posts against the one read
// rule: members read their channels, team members public ones, system
// admins all; others get 403, and a channel that does not exist 404.
func TestPostReadRule(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	member, teamMate, stranger := e.users[0], e.outsider(), e.ts.newUser()
	private := e.admin.createChannel(e.team.ID, model.ChannelPrivate)
	e.admin.addToChannel(private.ID, member)
	paths := func(ch string, p *model.Post) []string {
		return []string{"/channels/" + ch + "/posts", "/channels/" + ch + "/posts?since=1", "/channels/" + ch + "/pinned",
			"/posts/" + p.ID, "/posts/" + p.ID + "/thread", "/posts/" + p.ID + "/reactions"}
	}
	pub, secret := member.post(e.ch.ID, "public"), member.post(private.ID, "secret")
	const perm = "api.context.permissions.app_error"
	tests := []struct {
		name string
		c    *client
		ch   string
		p    *model.Post
		ok   bool
	}{
		{"member, public", member, e.ch.ID, pub, true},
		{"member, private", member, private.ID, secret, true},
		{"team mate, public", teamMate, e.ch.ID, pub, true},
		{"team mate, private", teamMate, private.ID, secret, false},
		{"stranger, public", stranger, e.ch.ID, pub, false},
		{"system admin, private", e.admin, private.ID, secret, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second read of a page may come from the cache
				for _, path := range paths(tt.ch, tt.p) {
					if tt.ok {
						tt.c.mustDo("GET", path, nil, http.StatusOK, nil)
					} else {
						tt.c.requireAppError("GET", path, nil, http.StatusForbidden, perm)
					}
				}
			}
		})
	}
	for _, path := range paths(model.NewID(), pub)[:3] {
		member.requireAppError("GET", path, nil, http.StatusNotFound, "app.channel.get.existing.app_error")
	}
}

func TestCreatePostIdempotent(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	u := e.users[0]
	body := map[string]any{"channel_id": e.ch.ID, "message": "once", "pending_post_id": u.User.ID + ":1"}
	first := u.post(e.ch.ID, "once", body)
	again := u.post(e.ch.ID, "once", body)
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, first.PendingPostID, again.PendingPostID)

	// Concurrent retries still make one post.
	body["pending_post_id"] = u.User.ID + ":2"
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			resp, b := u.do("POST", "/posts", body)
			if resp.StatusCode == http.StatusCreated {
				var p model.Post
				if json.Unmarshal(b, &p) == nil {
					got[i] = p.ID
				}
			}
		})
	}
	wg.Wait()
	for _, id := range got {
		require.Equal(t, got[0], id)
	}
	require.NotEmpty(t, got[0])
	require.Equal(t, int64(2), u.channel(e.ch.ID).TotalMsgCount)

	// The same pending id from another user is another post.
	v := e.member(e.ch.ID)
	require.NotEqual(t, first.ID, v.post(e.ch.ID, "once", map[string]any{"pending_post_id": u.User.ID + ":1"}).ID)
}

func TestPostThreadsAndReplyCounts(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 2)
	a, b := e.users[0], e.users[1]
	root := a.post(e.ch.ID, "root")
	r1 := b.post(e.ch.ID, "r1", map[string]any{"root_id": root.ID})
	require.Equal(t, int64(1), r1.ReplyCount)
	r2 := a.post(e.ch.ID, "r2", map[string]any{"root_id": root.ID})
	r3 := b.post(e.ch.ID, "r3", map[string]any{"root_id": root.ID})
	require.Equal(t, int64(3), r3.ReplyCount)

	got := a.getPost(root.ID)
	require.Equal(t, int64(3), got.ReplyCount)
	require.Equal(t, r3.CreateAt, got.LastReplyAt)
	require.GreaterOrEqual(t, got.UpdateAt, r3.CreateAt, "a reply touches its root")
	require.Equal(t, int64(3), a.getPost(r1.ID).ReplyCount, "a reply reports its thread's count")
	ch := a.channel(e.ch.ID)
	require.Equal(t, int64(4), ch.TotalMsgCount)
	require.Equal(t, int64(1), ch.TotalMsgCountRoot)

	for _, id := range []string{root.ID, r2.ID} {
		l := a.postList("/posts/" + id + "/thread")
		require.Equal(t, ids(r3, r2, r1, root), l.Order, "newest first")
		require.Len(t, l.Posts, 4)
	}

	// Deleting a reply lowers the count; deleting the root takes the
	// thread with it.
	b.mustDo("DELETE", "/posts/"+r1.ID, nil, http.StatusOK, nil)
	require.Equal(t, int64(2), a.getPost(root.ID).ReplyCount)
	require.Equal(t, ids(r3, r2, root), a.postList("/posts/"+root.ID+"/thread").Order)
	a.requireAppError("GET", "/posts/"+r1.ID+"/thread", nil, 404, "app.post.get.app_error")

	a.mustDo("DELETE", "/posts/"+root.ID, nil, http.StatusOK, nil)
	for _, id := range []string{root.ID, r2.ID, r3.ID} {
		a.requireAppError("GET", "/posts/"+id, nil, 404, "app.post.get.app_error")
	}
	var deleted model.Post
	e.admin.mustDo("GET", "/posts/"+r3.ID+"?include_deleted=true", nil, http.StatusOK, &deleted)
	require.NotZero(t, deleted.DeleteAt)
	a.requireAppError("GET", "/posts/"+r3.ID+"?include_deleted=true", nil, 403, "api.context.permissions.app_error")
	a.requireAppError("POST", "/posts", map[string]any{"channel_id": e.ch.ID, "message": "late", "root_id": root.ID},
		400, "api.post.create_post.root_id.app_error")
}

// backdated has the admin create n posts in a channel, one second apart
// and an hour ago, oldest first, so the order is known.
func (e *postEnv) backdated(channelID string, n int) []*model.Post {
	base := time.Now().Add(-time.Hour).UnixMilli()
	out := make([]*model.Post, n)
	for i := range out {
		out[i] = e.admin.post(channelID, fmt.Sprintf("p%d", i), map[string]any{"create_at": base + int64(i)*1000})
	}
	return out
}

func TestChannelPostsCursors(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	u := e.users[0]
	p := e.backdated(e.ch.ID, 10)
	path := "/channels/" + e.ch.ID + "/posts"
	ghost := &model.Post{ID: model.NewID()}
	other := e.admin.createChannel(e.team.ID, model.ChannelPrivate)
	foreign := e.admin.post(other.ID, "elsewhere", map[string]any{"create_at": p[5].CreateAt - 500})

	cases := []struct {
		query      string
		order      []*model.Post
		next, prev *model.Post
	}{
		{"?per_page=3", []*model.Post{p[9], p[8], p[7]}, nil, p[6]},
		{"?page=1&per_page=3", []*model.Post{p[6], p[5], p[4]}, p[7], p[3]},
		{"?page=3&per_page=3", []*model.Post{p[0]}, p[1], nil},
		{"?page=4&per_page=3", nil, nil, nil},
		{"?per_page=10", []*model.Post{p[9], p[8], p[7], p[6], p[5], p[4], p[3], p[2], p[1], p[0]}, nil, nil},
		{"?before=" + p[5].ID + "&per_page=3", []*model.Post{p[4], p[3], p[2]}, p[5], p[1]},
		{"?before=" + p[5].ID + "&page=1&per_page=3", []*model.Post{p[1], p[0]}, p[2], nil},
		{"?before=" + p[2].ID + "&per_page=3", []*model.Post{p[1], p[0]}, p[2], nil},
		{"?before=" + p[0].ID, nil, p[0], nil},
		{"?after=" + p[5].ID + "&per_page=3", []*model.Post{p[8], p[7], p[6]}, p[9], p[5]},
		{"?after=" + p[5].ID + "&page=1&per_page=3", []*model.Post{p[9]}, nil, p[8]},
		{"?after=" + p[6].ID + "&per_page=3", []*model.Post{p[9], p[8], p[7]}, nil, p[6]},
		{"?after=" + p[9].ID, nil, nil, p[9]},
		{"?before=" + ghost.ID, nil, ghost, nil},
		{"?after=" + ghost.ID, nil, nil, ghost},
		// Another channel's post is no position in this one, even
		// when it was posted in the middle of this channel's posts.
		{"?before=" + foreign.ID, nil, foreign, nil},
		{"?after=" + foreign.ID, nil, nil, foreign},
		{"?before=" + foreign.ID + "&page=1&per_page=3", nil, nil, nil},
	}
	check := func(t *testing.T, query string, order []*model.Post, next, prev *model.Post) {
		t.Helper()
		l := u.postList(path + query)
		require.Equal(t, ids(order...), l.Order)
		require.Len(t, l.Posts, len(order))
		want := func(p *model.Post) string {
			if p == nil {
				return ""
			}
			return p.ID
		}
		require.Equal(t, want(next), l.NextPostID, "next_post_id")
		require.Equal(t, want(prev), l.PrevPostID, "prev_post_id")
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) { check(t, tc.query, tc.order, tc.next, tc.prev) })
	}

	// Deleted posts leave the pages; edited ones stay in place.
	since := p[9].CreateAt + 1
	e.admin.mustDo("DELETE", "/posts/"+p[8].ID, nil, http.StatusOK, nil)
	var edited model.Post
	e.admin.mustDo("PUT", "/posts/"+p[3].ID+"/patch", map[string]any{"message": "p3 edited"}, http.StatusOK, &edited)
	require.NotZero(t, edited.EditAt)
	check(t, "?per_page=3", []*model.Post{p[9], p[7], p[6]}, nil, p[5])
	check(t, "?before="+p[9].ID+"&per_page=2", []*model.Post{p[7], p[6]}, p[9], p[5])
	check(t, "?after="+p[2].ID+"&per_page=2", []*model.Post{p[4], p[3]}, p[5], p[2])

	// since: every change after the time, deleted ones included, newest
	// first, without cursors.
	l := u.postList(path + fmt.Sprintf("?since=%d", since))
	require.Equal(t, ids(p[8], p[3]), l.Order)
	require.NotZero(t, l.Posts[p[8].ID].DeleteAt)
	require.Equal(t, "p3 edited", l.Posts[p[3].ID].Message)
	require.Empty(t, l.NextPostID)
	require.Empty(t, l.PrevPostID)
	require.Equal(t, ids(p[9], p[8], p[7], p[6], p[5], p[3]), u.postList(path+fmt.Sprintf("?since=%d", p[4].CreateAt)).Order)

	// include_deleted is for admins.
	u.requireAppError("GET", path+"?include_deleted=true", nil, 403, "api.context.permissions.app_error")
	all := e.admin.postList(path + "?include_deleted=true&per_page=3")
	require.Equal(t, ids(p[9], p[8], p[7]), all.Order)
}

func TestChannelPostsIncludeRoots(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	u := e.users[0]
	p := e.backdated(e.ch.ID, 4)
	reply := u.post(e.ch.ID, "reply", map[string]any{"root_id": p[0].ID})
	path := "/channels/" + e.ch.ID + "/posts"

	l := u.postList(path + "?per_page=2")
	require.Equal(t, ids(reply, p[3]), l.Order)
	require.Len(t, l.Posts, 3, "the reply's root comes along")
	require.Equal(t, "p0", l.Posts[p[0].ID].Message)
	require.Equal(t, int64(1), l.Posts[reply.ID].ReplyCount)
	require.Equal(t, int64(1), l.Posts[p[0].ID].ReplyCount)

	l = u.postList(path + "?per_page=2&skipFetchThreads=true")
	require.Equal(t, ids(reply, p[3]), l.Order)
	require.Len(t, l.Posts, 2)

	// since also brings the roots of changed replies, outside the order.
	l = u.postList(path + fmt.Sprintf("?since=%d", reply.CreateAt-1))
	require.Equal(t, ids(reply, p[0]), l.Order, "the root changed too: its reply count")

	// Wire shape of a list.
	_, body := u.do("GET", path, nil)
	requireKeys(t, body, "order", "posts", "next_post_id", "prev_post_id", "first_inaccessible_post_time")
}

func TestEditPosts(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 2)
	a, b := e.users[0], e.users[1]
	p := a.post(e.ch.ID, "original", map[string]any{"props": map[string]any{"keep": "me"}})
	w := b.ws()

	// PUT replaces the editable fields; edit_at moves with the message.
	var up model.Post
	a.mustDo("PUT", "/posts/"+p.ID, map[string]any{"id": p.ID, "channel_id": e.ch.ID, "message": "edited #tag",
		"props": map[string]any{"new": "prop"}, "user_id": b.User.ID, "create_at": 1}, http.StatusOK, &up)
	require.Equal(t, "edited #tag", up.Message)
	require.Equal(t, "#tag", up.Hashtags)
	require.Equal(t, map[string]any{"new": "prop"}, up.Props)
	require.Equal(t, a.User.ID, up.UserID)
	require.Equal(t, p.CreateAt, up.CreateAt)
	require.NotZero(t, up.EditAt)
	require.GreaterOrEqual(t, up.UpdateAt, up.EditAt)
	ev := w.next("post_edited")
	var evPost model.Post
	require.NoError(t, json.Unmarshal([]byte(ev.Data["post"].(string)), &evPost))
	require.Equal(t, "edited #tag", evPost.Message)
	require.Equal(t, e.ch.ID, ev.Broadcast["channel_id"])

	// PATCH changes only what it names; pinning is not an edit.
	var patched model.Post
	a.mustDo("PUT", "/posts/"+p.ID+"/patch", map[string]any{"is_pinned": true}, http.StatusOK, &patched)
	require.True(t, patched.IsPinned)
	require.Equal(t, "edited #tag", patched.Message)
	require.Equal(t, up.EditAt, patched.EditAt)

	// Pin and unpin, by any channel member.
	b.mustDo("POST", "/posts/"+p.ID+"/unpin", nil, http.StatusOK, nil)
	require.False(t, a.getPost(p.ID).IsPinned)
	q := a.post(e.ch.ID, "second")
	b.mustDo("POST", "/posts/"+q.ID+"/pin", nil, http.StatusOK, nil)
	b.mustDo("POST", "/posts/"+p.ID+"/pin", nil, http.StatusOK, nil)
	pinned := a.postList("/channels/" + e.ch.ID + "/pinned")
	require.Equal(t, ids(q, p), pinned.Order)
	e.outsider().requireAppError("POST", "/posts/"+p.ID+"/pin", nil, 403, "api.context.permissions.app_error")

	// Others' posts: 403, unless system admin.
	const perm = "api.context.permissions.app_error"
	b.requireAppError("PUT", "/posts/"+p.ID+"/patch", map[string]any{"message": "hijack"}, 403, perm)
	b.requireAppError("PUT", "/posts/"+p.ID, map[string]any{"id": p.ID, "message": "hijack"}, 403, perm)
	b.requireAppError("PUT", "/posts/"+model.NewID()+"/patch", map[string]any{"message": "x"}, 403, perm)
	a.requireAppError("PUT", "/posts/"+p.ID, map[string]any{"id": q.ID, "message": "x"}, 400, "api.context.invalid_body_param.app_error")
	a.requireAppError("PUT", "/posts/"+p.ID+"/patch", `{"message":`, 400, "api.context.invalid_body_param.app_error")
	a.requireAppError("PUT", "/posts/"+p.ID+"/patch", map[string]any{"message": strings.Repeat("x", app.MaxPostSizeDefault+1)},
		400, "model.post.is_valid.message_length.app_error")
	var byAdmin model.Post
	e.admin.mustDo("PUT", "/posts/"+p.ID+"/patch", map[string]any{"message": "moderated"}, http.StatusOK, &byAdmin)
	require.Equal(t, "moderated", byAdmin.Message)
	require.Equal(t, a.User.ID, byAdmin.UserID)
}

func TestConcurrentPostEdits(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 2)
	a, b := e.users[0], e.users[1]
	for i := range 10 {
		p := a.post(e.ch.ID, "original")
		msg := fmt.Sprintf("edited %d", i)
		// Three writers of different fields at once: none may undo
		// another's change.
		var wg sync.WaitGroup
		codes := make([]int, 3)
		wg.Go(func() { codes[0] = a.status("PUT", "/posts/"+p.ID+"/patch", map[string]any{"message": msg}) })
		wg.Go(func() { codes[1] = b.status("POST", "/posts/"+p.ID+"/pin", nil) })
		wg.Go(func() {
			codes[2] = a.status("PUT", "/posts/"+p.ID+"/patch", map[string]any{"props": map[string]any{"k": "v"}})
		})
		wg.Wait()
		require.Equal(t, []int{200, 200, 200}, codes)
		got := a.getPost(p.ID)
		require.Equal(t, msg, got.Message)
		require.True(t, got.IsPinned)
		require.Equal(t, map[string]any{"k": "v"}, got.Props)
		require.NotZero(t, got.EditAt)
		require.Greater(t, got.UpdateAt, p.UpdateAt)
	}
}

func TestPostEditTimeLimit(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 0, func(s *app.Settings, _ *api.Options) { s.PostEditTimeLimit = time.Hour })
	old := e.admin.post(e.ch.ID, "old", map[string]any{"create_at": time.Now().Add(-2 * time.Hour).UnixMilli()})
	fresh := e.admin.post(e.ch.ID, "fresh")
	e.admin.requireAppError("PUT", "/posts/"+old.ID+"/patch", map[string]any{"message": "late"}, 400,
		"api.post.update_post.permissions_time_limit.app_error")
	// Changes other than the message are still allowed.
	e.admin.mustDo("POST", "/posts/"+old.ID+"/pin", nil, http.StatusOK, nil)
	e.admin.mustDo("PUT", "/posts/"+fresh.ID+"/patch", map[string]any{"message": "in time"}, http.StatusOK, nil)
}

func TestDeletePost(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 2)
	a, b := e.users[0], e.users[1]
	w := b.ws()
	p := a.post(e.ch.ID, "bye")
	const perm = "api.context.permissions.app_error"
	b.requireAppError("DELETE", "/posts/"+p.ID, nil, 403, perm)
	b.requireAppError("DELETE", "/posts/nope", nil, 400, "api.context.invalid_url_param.app_error")
	a.requireAppError("DELETE", "/posts/"+model.NewID(), nil, 404, "app.post.get.app_error")
	a.mustDo("DELETE", "/posts/"+p.ID, nil, http.StatusOK, nil)
	ev := w.next("post_deleted")
	var evPost model.Post
	require.NoError(t, json.Unmarshal([]byte(ev.Data["post"].(string)), &evPost))
	require.Equal(t, p.ID, evPost.ID)
	require.NotContains(t, ev.Data, "delete_by", "only admins learn who deleted")
	a.requireAppError("DELETE", "/posts/"+p.ID, nil, 404, "app.post.get.app_error")

	q := b.post(e.ch.ID, "moderate me")
	e.admin.mustDo("DELETE", "/posts/"+q.ID, nil, http.StatusOK, nil)

	// Permanent deletion needs the setting, then a system admin.
	r := b.post(e.ch.ID, "forever")
	e.admin.requireAppError("DELETE", "/posts/"+r.ID+"?permanent=true", nil, 501, "api.post.delete_post.not_enabled.app_error")

	e2 := newPostEnv(t, 1, func(s *app.Settings, _ *api.Options) { s.EnableAPIPostDeletion = true })
	u := e2.users[0]
	root := u.post(e2.ch.ID, "root")
	u.post(e2.ch.ID, "reply", map[string]any{"root_id": root.ID})
	u.requireAppError("DELETE", "/posts/"+root.ID+"?permanent=true", nil, 403, perm)
	e2.admin.mustDo("DELETE", "/posts/"+root.ID+"?permanent=true", nil, http.StatusOK, nil)
	e2.admin.requireAppError("GET", "/posts/"+root.ID+"?include_deleted=true", nil, 404, "app.post.get.app_error")
	require.Empty(t, e2.admin.postList("/channels/"+e2.ch.ID+"/posts?include_deleted=true").Order)
}

func TestPostMentionCounts(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 3)
	a, b, c := e.users[0], e.users[1], e.users[2]
	d := e.outsider()
	wb := b.ws()
	counts := func(u *client) (int64, int64) {
		t.Helper()
		m := u.channelMember(e.ch.ID, u.User.ID)
		return m.MentionCount, m.MentionCountRoot
	}
	requireCounts := func(u *client, all, root int64) {
		t.Helper()
		gotAll, gotRoot := counts(u)
		require.Equal(t, all, gotAll, "%s mention_count", u.User.Username)
		require.Equal(t, root, gotRoot, "%s mention_count_root", u.User.Username)
	}

	root := a.post(e.ch.ID, fmt.Sprintf("hi @%s, and @%s.", strings.ToUpper(b.User.Username), d.User.Username))
	ev := wb.next("posted")
	var mentioned []string
	require.NoError(t, json.Unmarshal([]byte(ev.Data["mentions"].(string)), &mentioned))
	require.Equal(t, []string{b.User.ID}, mentioned)
	requireCounts(b, 1, 1)
	requireCounts(c, 0, 0)

	a.post(e.ch.ID, "@channel look")
	requireCounts(b, 2, 2)
	requireCounts(c, 1, 1)
	requireCounts(a, 0, 0)

	a.post(e.ch.ID, "@"+c.User.Username+" in a thread", map[string]any{"root_id": root.ID})
	requireCounts(c, 2, 1)

	a.post(e.ch.ID, "`@"+b.User.Username+"` is code, and @"+a.User.Username+" is me")
	requireCounts(b, 2, 2)
	requireCounts(a, 0, 0)

	// Posting reads the channel for the sender.
	b.post(e.ch.ID, "read")
	requireCounts(b, 0, 0)

	// In a direct message the other member is always mentioned.
	var dm model.Channel
	a.mustDo("POST", "/channels/direct", []string{a.User.ID, d.User.ID}, http.StatusCreated, &dm)
	a.post(dm.ID, "psst")
	m := d.channelMember(dm.ID, d.User.ID)
	require.Equal(t, int64(1), m.MentionCount)
	require.Equal(t, int64(0), a.channelMember(dm.ID, a.User.ID).MentionCount)
}

func TestPostedEvent(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 2)
	a, b := e.users[0], e.users[1]
	w := b.ws()
	p := a.post(e.ch.ID, "hello")
	ev := w.next("posted")
	require.Equal(t, e.ch.ID, ev.Broadcast["channel_id"])
	var got model.Post
	require.NoError(t, json.Unmarshal([]byte(ev.Data["post"].(string)), &got))
	require.Equal(t, p.ID, got.ID)
	require.Equal(t, "hello", got.Message)
	require.Equal(t, "O", ev.Data["channel_type"])
	require.Equal(t, e.ch.Name, ev.Data["channel_name"])
	require.Equal(t, e.ch.DisplayName, ev.Data["channel_display_name"])
	require.Equal(t, "@"+a.User.Username, ev.Data["sender_name"])
	require.Equal(t, e.team.ID, ev.Data["team_id"])
	require.Equal(t, true, ev.Data["set_online"])
	require.NotContains(t, ev.Data, "mentions")

	a.mustDo("POST", "/posts?set_online=false", map[string]any{"channel_id": e.ch.ID, "message": "quiet"}, http.StatusCreated, nil)
	require.Equal(t, false, w.next("posted").Data["set_online"])

	// A retried post is not announced twice.
	body := map[string]any{"channel_id": e.ch.ID, "message": "dedupe", "pending_post_id": "x:1"}
	a.mustDo("POST", "/posts", body, http.StatusCreated, nil)
	a.mustDo("POST", "/posts", body, http.StatusCreated, nil)
	a.post(e.ch.ID, "marker")
	require.Equal(t, "dedupe", postMessage(t, w.next("posted")))
	require.Equal(t, "marker", postMessage(t, w.next("posted")))
}

func postMessage(t *testing.T, ev wsEvent) string {
	t.Helper()
	var p model.Post
	require.NoError(t, json.Unmarshal([]byte(ev.Data["post"].(string)), &p))
	return p.Message
}

func TestGetPostsByIDs(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	u := e.users[0]
	outsider := e.outsider()
	private := e.admin.createChannel(e.team.ID, model.ChannelPrivate)
	e.admin.addToChannel(private.ID, u)
	pub := u.post(e.ch.ID, "public")
	secret := u.post(private.ID, "secret")
	gone := u.post(e.ch.ID, "gone")
	u.mustDo("DELETE", "/posts/"+gone.ID, nil, http.StatusOK, nil)

	var got []*model.Post
	u.mustDo("POST", "/posts/ids", []string{pub.ID, secret.ID, gone.ID, model.NewID(), pub.ID}, http.StatusOK, &got)
	require.Equal(t, ids(secret, pub), ids(got...))
	outsider.mustDo("POST", "/posts/ids", []string{pub.ID, secret.ID}, http.StatusOK, &got)
	require.Equal(t, ids(pub), ids(got...))
	resp, body := outsider.do("POST", "/posts/ids", []string{secret.ID})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, "[]", string(body))

	u.requireAppError("POST", "/posts/ids", []string{}, 400, "api.context.invalid_body_param.app_error")
	u.requireAppError("POST", "/posts/ids", []string{"bad"}, 400, "api.context.invalid_body_param.app_error")
	u.requireAppError("POST", "/posts/ids", `{"a":1}`, 400, "api.context.invalid_body_param.app_error")
	many := make([]string, 1001)
	for i := range many {
		many[i] = model.NewID()
	}
	u.requireAppError("POST", "/posts/ids", many, 400, "api.post.posts_by_ids.invalid_body.request_error")
}

func TestPostsAroundUnread(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1)
	u := e.users[0]
	p := e.backdated(e.ch.ID, 5)
	u.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": e.ch.ID}, http.StatusOK, nil)
	path := "/users/me/channels/" + e.ch.ID + "/posts/unread"

	// Nothing unread: the newest limit_before posts.
	l := u.postList(path + "?limit_before=2&limit_after=3")
	require.Equal(t, ids(p[4], p[3]), l.Order)
	require.Empty(t, l.NextPostID)
	require.Equal(t, p[2].ID, l.PrevPostID)

	future := time.Now().Add(time.Hour).UnixMilli()
	for i := range 5 {
		p = append(p, e.admin.post(e.ch.ID, fmt.Sprintf("p%d", 5+i), map[string]any{"create_at": future + int64(i)}))
	}
	l = u.postList(path + "?limit_before=2&limit_after=3")
	require.Equal(t, ids(p[7], p[6], p[5], p[4], p[3]), l.Order)
	require.Equal(t, p[8].ID, l.NextPostID)
	require.Equal(t, p[2].ID, l.PrevPostID)

	l = u.postList(path + "?limit_before=0&limit_after=10")
	require.Equal(t, ids(p[9], p[8], p[7], p[6], p[5]), l.Order)
	require.Empty(t, l.NextPostID)
	require.Equal(t, p[4].ID, l.PrevPostID)

	u.requireAppError("GET", path+"?limit_after=0", nil, 400, "api.context.invalid_url_param.app_error")
	other := e.member(e.ch.ID)
	u.requireAppError("GET", "/users/"+other.User.ID+"/channels/"+e.ch.ID+"/posts/unread", nil, 403,
		"api.context.permissions.app_error")
}

func TestChannelPostsCacheSeesEveryChange(t *testing.T) {
	t.Parallel()
	// Compression on, as in production: cached pages are served gzipped.
	e := newPostEnv(t, 2, func(_ *app.Settings, o *api.Options) { o.Gzip = true })
	a, b := e.users[0], e.users[1]
	path := "/channels/" + e.ch.ID + "/posts?per_page=5"
	read := func() *model.PostList {
		t.Helper()
		first := a.postList(path)
		again := b.postList(path) // the second read comes from the cache
		require.Equal(t, first, again)
		return again
	}
	p := a.post(e.ch.ID, "first")
	require.Equal(t, ids(p), read().Order)
	q := b.post(e.ch.ID, "second")
	require.Equal(t, ids(q, p), read().Order)

	a.mustDo("PUT", "/posts/"+p.ID+"/patch", map[string]any{"message": "first, edited"}, http.StatusOK, nil)
	require.Equal(t, "first, edited", read().Posts[p.ID].Message)
	b.mustDo("POST", "/posts/"+p.ID+"/pin", nil, http.StatusOK, nil)
	require.True(t, read().Posts[p.ID].IsPinned)
	b.react(p.ID, "smile")
	require.Len(t, read().Posts[p.ID].Metadata.Reactions, 1)
	b.mustDo("DELETE", "/users/me/posts/"+p.ID+"/reactions/smile", nil, http.StatusOK, nil)
	require.False(t, read().Posts[p.ID].HasReactions)
	r := b.post(e.ch.ID, "reply", map[string]any{"root_id": q.ID})
	require.Equal(t, int64(1), read().Posts[q.ID].ReplyCount)
	b.mustDo("DELETE", "/posts/"+r.ID, nil, http.StatusOK, nil)
	require.Equal(t, int64(0), read().Posts[q.ID].ReplyCount)
	a.mustDo("DELETE", "/posts/"+p.ID, nil, http.StatusOK, nil)
	require.Equal(t, ids(q), read().Order)

	// The ETag follows the version: a 304 until something changes.
	resp, _ := a.do("GET", path, nil)
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	resp, body := a.do("GET", path, nil, "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
	require.Empty(t, body)
	a.post(e.ch.ID, "news")
	resp, _ = a.do("GET", path, nil, "If-None-Match", etag)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEqual(t, etag, resp.Header.Get("ETag"))

	// The read check comes before the cache.
	e.outsider().mustDo("GET", path, nil, http.StatusOK, nil)
	e.ts.newUser().requireAppError("GET", path, nil, 403, "api.context.permissions.app_error")
	a.requireAppError("GET", path+"&include_deleted=true", nil, 403, "api.context.permissions.app_error")
	a.requireAppError("GET", "/channels/"+model.NewID()+"/posts", nil, 404, "app.channel.get.existing.app_error")
}

func TestChannelPostsGzip(t *testing.T) {
	t.Parallel()
	e := newPostEnv(t, 1, func(_ *app.Settings, o *api.Options) { o.Gzip = true })
	u := e.users[0]
	for i := range 20 {
		u.post(e.ch.ID, fmt.Sprintf("post %d with enough text to be worth compressing", i))
	}
	url := e.ts.URL + "/api/v4/channels/" + e.ch.ID + "/posts"
	get := func(enc string) (*http.Response, []byte) {
		req, err := http.NewRequest("GET", url, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+u.Token)
		req.Header.Set("Accept-Encoding", enc)
		resp, err := http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	for range 2 { // a miss, then a hit
		resp, plain := get("identity")
		require.Empty(t, resp.Header.Get("Content-Encoding"))
		require.Equal(t, []string{"Accept-Encoding"}, resp.Header.Values("Vary"))
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.True(t, json.Valid(plain))
		resp, zipped := get("gzip, deflate")
		require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
		require.Equal(t, []string{"Accept-Encoding"}, resp.Header.Values("Vary"), "one Vary, from the handler or the middleware")
		zr, err := gzip.NewReader(bytes.NewReader(zipped))
		require.NoError(t, err)
		unzipped, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, plain, unzipped)
		resp, _ = get("gzip;q=0")
		require.Empty(t, resp.Header.Get("Content-Encoding"))
	}
}

// BenchmarkChannelPosts measures GET /channels/{id}/posts?per_page=60 in
// process, as the read load test calls it (gzip accepted).
func BenchmarkChannelPosts(b *testing.B) {
	ft := newFuzzTarget(b, func(o *api.Options) { o.Gzip = true })
	for i := range 60 {
		msg := fmt.Sprintf(`{"channel_id":%q,"message":"read fixture post %d: the quick brown fox jumps over the lazy dog, again and again and again."}`, ft.channelID, i)
		rec := ft.do(b, "POST", "/posts", msg)
		require.Equal(b, http.StatusCreated, rec.Code, rec.Body.String())
	}
	path := "/api/v4/channels/" + ft.channelID + "/posts?per_page=60"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+ft.token)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			ft.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
		}
	})
}

// BenchmarkCreatePost measures POST /posts in process (no WebSocket
// fan-out): the checks and the one-round-trip write batch.
func BenchmarkCreatePost(b *testing.B) {
	ft := newFuzzTarget(b)
	body := fmt.Sprintf(`{"channel_id":%q,"message":"the quick brown fox jumps over the lazy dog @fuzzer"}`, ft.channelID)
	b.ReportAllocs()
	b.SetParallelism(2) // four posters on two cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := ft.do(b, "POST", "/posts", body)
			if rec.Code != http.StatusCreated {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
		}
	})
}
