package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/push"
	"github.com/garrison-chat/garrison/server/internal/push/pushtest"
)

// Push notifications (issue 5).

const testServerID = "garrisontestdiagnosticid01"

// pushOptions turns push on with sender and one worker, so jobs run in
// the order they were queued (pushEnv.flush relies on it).
func pushOptions(sender push.Sender, buffer int) func(*app.Options) {
	return func(o *app.Options) {
		o.Push, o.ServerID, o.PushWorkers = sender, testServerID, 1
		o.Settings.PushBuffer = buffer
	}
}

// pushEnv is a post environment with push on through a fake proxy.
type pushEnv struct {
	*postEnv
	fake *push.Fake
	// canary has a device; flush waits for a push to it.
	canary      *client
	canaryToken string
	seq         atomic.Int64
}

func newPushEnv(t *testing.T, n int, mutate ...func(*app.Settings, *api.Options)) *pushEnv {
	t.Helper()
	fake := push.NewFake(push.FakeOptions{AllowedHosts: []string{"push.site.example"}})
	store, err := postgres.Open(context.Background(), postgres.PoolOptions{DataSource: pgtest.New(t), MaxOpenConns: 10, QueryTimeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	ts := newTestNodeWith(t, store, nil, pushOptions(fake, 100), mutate...)
	e := &pushEnv{postEnv: newPostEnvOn(ts, n), fake: fake}
	e.canary = e.outsider()
	e.canaryToken = e.device(e.canary)
	return e
}

// device attaches a new mobile device to c's session and returns its
// token (the part the proxy sees as device_id).
func (e *pushEnv) device(c *client) string {
	c.ts.t.Helper()
	token := fmt.Sprintf("tok-%s-%d", c.User.Username, e.seq.Add(1))
	c.mustDo("PUT", "/users/sessions/device", map[string]string{"device_id": "android_rn-v2:" + token}, http.StatusOK, nil)
	return token
}

// sentTo returns the pushes the fake received for a device token.
func (e *pushEnv) sentTo(token string) []push.Notification {
	var out []push.Notification
	for _, n := range e.fake.Sent() {
		if n.DeviceID == token {
			out = append(out, n)
		}
	}
	return out
}

// waitFor waits until the fake has received n pushes for token and
// returns them.
func (e *pushEnv) waitFor(t *testing.T, token string, n int) []push.Notification {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		changed := e.fake.Changed()
		if got := e.sentTo(token); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			require.FailNow(t, fmt.Sprintf("want %d pushes to %s, got %d", n, token, len(e.sentTo(token))))
		}
	}
}

// flush returns once every push job queued before it has run: the one
// worker runs jobs in order, and the canary's DM is queued last.
func (e *pushEnv) flush(t *testing.T) {
	t.Helper()
	before := len(e.sentTo(e.canaryToken))
	e.admin.post(e.dm(e.admin, e.canary).ID, "flush")
	e.waitFor(t, e.canaryToken, before+1)
}

// dm returns the direct channel of a and b.
func (e *pushEnv) dm(a, b *client) *model.Channel {
	var ch model.Channel
	a.mustDo("POST", "/channels/direct", []string{a.User.ID, b.User.ID}, http.StatusCreated, &ch)
	return &ch
}

func TestPushDecisions(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	sender := e.member()
	senderToken := e.device(sender)
	// Each case has its own channel (with the sender and the recipient),
	// so one case's channel-wide mention reaches no other.
	type setupFunc func(c *client, ch *model.Channel)
	type postFunc func(c *client, ch *model.Channel)
	inChannel := func(msg string) postFunc {
		return func(c *client, ch *model.Channel) {
			sender.post(ch.ID, strings.ReplaceAll(msg, "@me", "@"+c.User.Username))
		}
	}
	direct := func(c *client, _ *model.Channel) { sender.post(e.dm(sender, c).ID, "hello") }
	group := func(c *client, _ *model.Channel) {
		var gm model.Channel
		sender.mustDo("POST", "/channels/group", []string{sender.User.ID, c.User.ID, e.admin.User.ID}, http.StatusCreated, &gm)
		sender.post(gm.ID, "hello all")
	}
	props := func(p map[string]string) setupFunc { return func(c *client, _ *model.Channel) { c.setNotifyProps(p) } }
	memberProps := func(p map[string]string) setupFunc {
		return func(c *client, ch *model.Channel) { c.setChannelNotifyProps(ch.ID, p) }
	}
	status := func(pushStatus, st string) setupFunc {
		return func(c *client, _ *model.Channel) {
			c.setNotifyProps(map[string]string{"push_status": pushStatus})
			c.setStatus(st, 0)
		}
	}
	view := func(c *client, id string) {
		c.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": id}, http.StatusOK, nil)
	}
	tests := []struct {
		name  string
		setup setupFunc
		post  postFunc
		want  bool
	}{
		{"direct message", nil, direct, true},
		{"group message", nil, group, true},
		{"mention", nil, inChannel("hey @me"), true},
		{"channel-wide mention", nil, inChannel("@channel standup"), true},
		{"no mention", nil, inChannel("just chatting"), false},
		{"channel mentions off", props(map[string]string{"channel": "false"}), inChannel("@all standup"), false},
		{"ignoring channel mentions here", memberProps(map[string]string{"ignore_channel_mentions": "on"}), inChannel("@channel standup"), false},
		{"muted channel", memberProps(map[string]string{"mark_unread": "mention"}), inChannel("@me look"), false},
		{"muted direct message", func(c *client, _ *model.Channel) {
			c.setChannelNotifyProps(e.dm(sender, c).ID, map[string]string{"mark_unread": "mention"})
		}, direct, false},
		{"push all", props(map[string]string{"push": "all"}), inChannel("just chatting"), true},
		{"push none", props(map[string]string{"push": "none"}), inChannel("@me look"), false},
		{"channel push all", memberProps(map[string]string{"push": "all"}), inChannel("chatting"), true},
		{"channel push none", memberProps(map[string]string{"push": "none"}), inChannel("@me look"), false},
		{"channel push mention", func(c *client, ch *model.Channel) {
			c.setNotifyProps(map[string]string{"push": "all"})
			c.setChannelNotifyProps(ch.ID, map[string]string{"push": "mention"})
		}, inChannel("chatting"), false},
		{"dnd", func(c *client, _ *model.Channel) { c.setStatus(model.StatusDND, 0) }, direct, false},
		{"push when away, away", status("away", model.StatusAway), direct, true},
		{"push when away, online", status("away", model.StatusOnline), direct, false},
		{"push when offline, away", status("offline", model.StatusAway), direct, false},
		{"push when offline, offline", status("offline", model.StatusOffline), direct, true},
		{"push when online, online", status("online", model.StatusOnline), direct, true},
		{"reading the channel", func(c *client, ch *model.Channel) { view(c, ch.ID) }, inChannel("hey @me"), false},
		{"reading another channel", func(c *client, _ *model.Channel) { view(c, e.dm(c, e.admin).ID) }, inChannel("hey @me"), true},
	}
	tokens := make([]string, len(tests))
	for i, tt := range tests {
		ch := e.admin.createChannel(e.team.ID, model.ChannelOpen)
		c := e.member(ch.ID)
		e.admin.addToChannel(ch.ID, sender)
		tokens[i] = e.device(c)
		if tt.setup != nil {
			tt.setup(c, ch)
		}
		tt.post(c, ch)
	}
	e.flush(t)
	for i, tt := range tests {
		got := e.sentTo(tokens[i])
		if !tt.want {
			require.Empty(t, got, tt.name)
			continue
		}
		require.Len(t, got, 1, tt.name)
		require.Equal(t, push.TypeMessage, got[0].Type, tt.name)
	}
	require.Empty(t, e.sentTo(senderToken), "the sender hears nothing of their own posts")
}

func TestPushContentAndActiveChannelWindow(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob := e.member(e.ch.ID), e.member(e.ch.ID)
	token := e.device(bob)

	p := alice.post(e.ch.ID, "@"+bob.User.Username+" secret plans")
	got := e.waitFor(t, token, 1)[0]
	// id_loaded, Garrison's default: ids and a generic text, nothing else.
	require.Equal(t, push.Notification{
		AckID: got.AckID, Platform: "android_rn-v2", ServerID: testServerID, DeviceID: token,
		PostID: p.ID, ChannelID: e.ch.ID, TeamID: e.team.ID, Category: push.CategoryCanReply,
		Type: push.TypeMessage, Version: push.MessageV2, SenderID: alice.User.ID, IsIDLoaded: true,
		Message: "You've received a new message.", Badge: 1,
	}, got)
	require.True(t, model.IsValidID(got.AckID))

	// Bob reads the channel: the next mention within the window is not
	// pushed; after it, it is.
	bob.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": e.ch.ID}, http.StatusOK, nil)
	alice.post(e.ch.ID, "@"+bob.User.Username+" still there?")
	e.flush(t)
	require.Len(t, e.sentTo(token), 1)
	e.ts.advance(time.Minute)
	alice.post(e.ch.ID, "@"+bob.User.Username+" hello?")
	got = e.waitFor(t, token, 2)[1]
	require.Equal(t, 2, got.Badge, "the view cleared the first mention, not the one after it")
	require.NotEqual(t, e.sentTo(token)[0].AckID, got.AckID, "every push has its own ack id")
}

func TestPushFullContents(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0, func(s *app.Settings, _ *api.Options) { s.PushContents = "full" })
	alice, bob := e.member(e.ch.ID), e.member(e.ch.ID)
	token := e.device(bob)
	alice.post(e.ch.ID, "@"+bob.User.Username+" the plan")
	got := e.waitFor(t, token, 1)[0]
	require.False(t, got.IsIDLoaded)
	require.Equal(t, "@"+alice.User.Username+": @"+bob.User.Username+" the plan", got.Message)
	require.Equal(t, "@"+alice.User.Username, got.SenderName)
	require.Equal(t, e.ch.DisplayName, got.ChannelName)

	alice.post(e.dm(alice, bob).ID, "psst")
	got = e.waitFor(t, token, 2)[1]
	require.Equal(t, "psst", got.Message)
	require.Equal(t, "@"+alice.User.Username, got.ChannelName)
}

func TestPushFansOutToEveryDeviceSession(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob := e.member(e.ch.ID), e.member(e.ch.ID)
	phone := e.device(bob)
	tablet := e.device(e.ts.login(bob.User.Username, "password1"))
	_ = e.ts.login(bob.User.Username, "password1") // a browser without a device
	alice.post(e.dm(alice, bob).ID, "hi")
	e.flush(t)
	a, b := e.sentTo(phone), e.sentTo(tablet)
	require.Len(t, a, 1)
	require.Len(t, b, 1)
	require.Equal(t, a[0].PostID, b[0].PostID)
	require.NotEqual(t, a[0].AckID, b[0].AckID)
	var total int
	for _, n := range e.fake.Sent() {
		if n.PostID == a[0].PostID {
			total++
		}
	}
	require.Equal(t, 2, total, "one push per session with a device")
}

// sessionDevice returns the device id of c's session.
func sessionDevice(t *testing.T, c *client) string {
	t.Helper()
	var sessions []model.Session
	c.mustDo("GET", "/users/me/sessions", nil, http.StatusOK, &sessions)
	s, err := c.ts.App.Session(context.Background(), c.Token)
	require.Nil(t, err)
	for _, x := range sessions {
		if x.ID == s.ID {
			return x.DeviceID
		}
	}
	require.FailNow(t, "session not listed")
	return ""
}

func TestPushRemoveClearsTheDevice(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob := e.member(e.ch.ID), e.member(e.ch.ID)
	token := e.device(bob)
	e.fake.Answer(token, push.Response{Status: push.StatusRemove})
	dm := e.dm(alice, bob)
	alice.post(dm.ID, "one")
	e.waitFor(t, token, 1)
	e.flush(t)
	require.Empty(t, sessionDevice(t, bob), "REMOVE took the device off the session")
	alice.post(dm.ID, "two")
	e.flush(t)
	require.Len(t, e.sentTo(token), 1, "nothing more goes to a removed device")
	require.GreaterOrEqual(t, e.ts.App.PushQueue().Stats().Remove, uint64(1))
}

func TestAttachDevice(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	bob := e.member()
	other := e.ts.login(bob.User.Username, "password1")
	stranger := e.member()

	bob.mustDo("PUT", "/users/sessions/device", map[string]string{"device_id": "apple_rn-v2:same-device"}, http.StatusOK, nil)
	stranger.mustDo("PUT", "/users/sessions/device", map[string]string{"device_id": "apple_rn-v2:same-device"}, http.StatusOK, nil)
	var out model.StatusOK
	other.mustDo("PUT", "/users/sessions/device", map[string]string{"device_id": "apple_rn-v2:same-device"}, http.StatusOK, &out)
	require.Equal(t, "OK", out.Status)
	// Mattermost's rule: the user's other session on that device ends;
	// another user's does not.
	bob.requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	stranger.mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	require.Equal(t, "apple_rn-v2:same-device", sessionDevice(t, other))

	tests := []struct {
		body any
		id   string
	}{
		{map[string]string{}, "api.context.invalid_body_param.app_error"},
		{map[string]string{"device_id": "no-platform"}, "api.context.invalid_body_param.app_error"},
		{map[string]string{"device_id": "apple:"}, "api.context.invalid_body_param.app_error"},
		{map[string]string{"device_id": "apple:tok en"}, "api.context.invalid_body_param.app_error"},
		{map[string]string{"device_id": "apple:" + strings.Repeat("x", 600)}, "api.context.invalid_body_param.app_error"},
		{map[string]any{"device_id": 42}, "api.context.invalid_body_param.app_error"},
		{"not json", "api.context.invalid_body_param.app_error"},
		{map[string]string{"device_id": "webpush:someone-elses"}, "api.push_notification.device.webpush.app_error"},
	}
	for _, tt := range tests {
		other.requireAppError("PUT", "/users/sessions/device", tt.body, http.StatusBadRequest, tt.id)
	}
	e.ts.anon().requireAppError("PUT", "/users/sessions/device", map[string]string{"device_id": "apple:x"},
		http.StatusUnauthorized, "api.context.session_expired.app_error")
}

func TestAttachDeviceWithAccessToken(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0, func(s *app.Settings, _ *api.Options) { s.EnableUserAccessTokens = true })
	tok := e.admin.createToken(e.admin.User.ID, "ci")
	e.ts.as(tok.Token).requireAppError("PUT", "/users/sessions/device", map[string]string{"device_id": "apple:x"},
		http.StatusBadRequest, "api.push_notification.device.access_token.app_error")
}

func TestWebPushRoutes(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob := e.member(), e.member()

	var key map[string]string
	bob.mustDo("GET", "/notifications/webpush", nil, http.StatusOK, &key)
	want, err := e.fake.VAPIDPublicKey(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"vapid_public_key": want}, key)

	first := pushtest.Subscription(t, "https://push.site.example/push/1")
	bob.mustDo("POST", "/notifications/webpush", first, http.StatusOK, nil)
	dev := sessionDevice(t, bob)
	require.True(t, strings.HasPrefix(dev, "webpush:"), dev)
	firstID := strings.TrimPrefix(dev, "webpush:")
	require.True(t, e.fake.Registered(firstID))

	// A DM reaches the browser through its registration.
	alice.post(e.dm(alice, bob).ID, "hello browser")
	got := e.waitFor(t, firstID, 1)[0]
	require.Equal(t, push.PlatformWebPush, got.Platform)

	// A new subscription replaces (and unregisters) the session's old one.
	bob.mustDo("POST", "/notifications/webpush", pushtest.Subscription(t, "https://push.site.example/push/2"), http.StatusOK, nil)
	secondID := strings.TrimPrefix(sessionDevice(t, bob), "webpush:")
	require.NotEqual(t, firstID, secondID)
	require.True(t, e.fake.Registered(secondID))
	e.flush(t) // the old registration is dropped by a push job
	require.False(t, e.fake.Registered(firstID))

	bob.mustDo("DELETE", "/notifications/webpush", nil, http.StatusOK, nil)
	require.False(t, e.fake.Registered(secondID))
	require.Empty(t, sessionDevice(t, bob))
	bob.mustDo("DELETE", "/notifications/webpush", nil, http.StatusOK, nil) // nothing left: still fine

	// Logging out drops the browser's registration.
	carol := e.member()
	carol.mustDo("POST", "/notifications/webpush", pushtest.Subscription(t, "https://push.site.example/push/3"), http.StatusOK, nil)
	carolID := strings.TrimPrefix(sessionDevice(t, carol), "webpush:")
	carol.mustDo("POST", "/users/logout", nil, http.StatusOK, nil)
	e.flush(t)
	require.False(t, e.fake.Registered(carolID))

	bad := first
	bad.Keys.Auth = "short"
	foreign := pushtest.Subscription(t, "https://fcm.googleapis.com/fcm/send/abc")
	tests := []struct {
		name   string
		body   any
		status int
		id     string
	}{
		{"not json", "{", http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"bad keys", bad, http.StatusBadRequest, "api.push_notification.webpush.invalid_subscription.app_error"},
		{"no endpoint", map[string]any{"keys": first.Keys}, http.StatusBadRequest, "api.push_notification.webpush.invalid_subscription.app_error"},
		{"push host not allowed", foreign, http.StatusBadRequest, "api.push_notification.webpush.rejected.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bob.requireAppError("POST", "/notifications/webpush", tt.body, tt.status, tt.id)
		})
	}
	resp, body := bob.do("POST", "/notifications/webpush", foreign)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(body), "not allowed", "the proxy's reason reaches the client")
	e.ts.anon().requireAppError("GET", "/notifications/webpush", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
}

// TestWebPushSharedBrowser: two users take turns on one browser, which
// has one push subscription for the site. The registration follows the
// session that registered it last: the earlier user's pushes stop going
// to the browser, and their logout does not drop the later user's
// registration.
func TestWebPushSharedBrowser(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob, sender := e.member(), e.member(), e.member()
	browser := "https://push.site.example/push/shared-browser"

	alice.mustDo("POST", "/notifications/webpush", pushtest.Subscription(t, browser), http.StatusOK, nil)
	rid := strings.TrimPrefix(sessionDevice(t, alice), "webpush:")
	bob.mustDo("POST", "/notifications/webpush", pushtest.Subscription(t, browser), http.StatusOK, nil)
	require.Equal(t, "webpush:"+rid, sessionDevice(t, bob), "one browser, one registration")
	require.Empty(t, sessionDevice(t, alice), "alice's session no longer owns the browser's registration")

	sender.post(e.dm(sender, alice).ID, "for alice only")
	sender.post(e.dm(sender, bob).ID, "for bob")
	e.flush(t)
	got := e.sentTo(rid)
	require.Len(t, got, 1, "only bob's DM reaches the browser")

	alice.mustDo("POST", "/users/logout", nil, http.StatusOK, nil)
	e.flush(t)
	require.True(t, e.fake.Registered(rid), "alice's logout keeps bob's registration")
}

func TestWebPushProxyFailures(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	bob := e.member()
	sub := pushtest.Subscription(t, "https://push.site.example/push/1")
	tests := []struct {
		kind   error
		status int
		id     string
	}{
		{push.ErrUnavailable, http.StatusBadGateway, "api.push_notification.proxy_unavailable.app_error"},
		{push.ErrUnauthorized, http.StatusBadGateway, "api.push_notification.proxy_auth.app_error"},
		{push.ErrThrottled, http.StatusServiceUnavailable, "api.push_notification.proxy_throttled.app_error"},
	}
	for _, tt := range tests {
		e.fake.FailWith(&push.Error{Op: "register", URL: "fake", Kind: tt.kind})
		bob.requireAppError("GET", "/notifications/webpush", nil, tt.status, tt.id)
		bob.requireAppError("POST", "/notifications/webpush", sub, tt.status, tt.id)
	}
	e.fake.FailWith(nil)
	bob.mustDo("POST", "/notifications/webpush", sub, http.StatusOK, nil)
	id := strings.TrimPrefix(sessionDevice(t, bob), "webpush:")
	// A failed unregistration keeps the device, so the client can retry.
	e.fake.FailWith(&push.Error{Op: "unregister", URL: "fake", Kind: push.ErrUnavailable})
	bob.requireAppError("DELETE", "/notifications/webpush", nil, http.StatusBadGateway, "api.push_notification.proxy_unavailable.app_error")
	require.Equal(t, "webpush:"+id, sessionDevice(t, bob))
	e.fake.FailWith(nil)
	bob.mustDo("DELETE", "/notifications/webpush", nil, http.StatusOK, nil)
	require.False(t, e.fake.Registered(id))
}

func TestPushRoutesWhenPushIsOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.newUser()
	const id = "api.push_notification.disabled.app_error"
	c.requireAppError("GET", "/notifications/webpush", nil, http.StatusNotImplemented, id)
	c.requireAppError("POST", "/notifications/webpush", pushtest.Subscription(t, "https://push.site.example/1"), http.StatusNotImplemented, id)
	c.requireAppError("DELETE", "/notifications/webpush", nil, http.StatusNotImplemented, id)
	c.requireAppError("POST", "/notifications/ack", map[string]any{"id": "a", "platform": "android", "type": "message"},
		http.StatusNotImplemented, id)
	// Mobile apps attach their device whether or not the server pushes.
	c.mustDo("PUT", "/users/sessions/device", map[string]string{"device_id": "android_rn-v2:tok"}, http.StatusOK, nil)
}

func TestPushAck(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob := e.member(e.ch.ID), e.member(e.ch.ID)
	outsider := e.member()
	token := e.device(bob)
	p := alice.post(e.ch.ID, "@"+bob.User.Username+" the secret plan")
	n := e.waitFor(t, token, 1)[0]
	require.Empty(t, n.SenderName, "id-loaded: no content on the push path")

	ack := func(c *client, postID string, idLoaded bool, typ string) (*http.Response, []byte) {
		return c.do("POST", "/notifications/ack", map[string]any{"id": n.AckID, "received_at": time.Now().UnixMilli(),
			"platform": "android", "type": typ, "post_id": postID, "is_id_loaded": idLoaded})
	}
	resp, body := ack(bob, p.ID, true, push.TypeMessage)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var full push.Notification
	require.NoError(t, json.Unmarshal(body, &full))
	require.Equal(t, push.Notification{
		AckID: n.AckID, ServerID: testServerID, PostID: p.ID, ChannelID: e.ch.ID, TeamID: e.team.ID,
		Category: push.CategoryCanReply, Version: push.MessageV2, Type: push.TypeMessage,
		SenderID: alice.User.ID, SenderName: "@" + alice.User.Username, ChannelName: e.ch.DisplayName,
		Message: "@" + alice.User.Username + ": @" + bob.User.Username + " the secret plan", Badge: 1,
	}, full)

	// The receipt reaches the proxy.
	deadline := time.After(30 * time.Second)
	for !slices.ContainsFunc(e.fake.Acks(), func(a push.Ack) bool { return a.ID == n.AckID }) {
		select {
		case <-e.fake.Changed():
		case <-deadline:
			require.FailNow(t, "the ack was not forwarded")
		}
	}

	// Not id-loaded, or not a message: a plain OK.
	for _, tt := range []struct {
		idLoaded bool
		typ      string
	}{{false, push.TypeMessage}, {true, push.TypeClear}} {
		resp, body = ack(bob, p.ID, tt.idLoaded, tt.typ)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.JSONEq(t, `{"status":"OK"}`, string(body))
	}

	// Only a reader of the post gets its content.
	private := e.admin.createChannel(e.team.ID, model.ChannelPrivate)
	e.admin.addToChannel(private.ID, alice)
	secret := alice.post(private.ID, "private words")
	for _, c := range []*client{outsider, bob} {
		resp, body = ack(c, secret.ID, true, push.TypeMessage)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
		require.NotContains(t, string(body), "private words")
	}
	resp, _ = ack(bob, model.NewID(), true, push.TypeMessage)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	alice.mustDo("DELETE", "/posts/"+p.ID, nil, http.StatusOK, nil)
	resp, _ = ack(bob, p.ID, true, push.TypeMessage)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "a deleted post is gone")

	for name, body := range map[string]any{
		"no id":       map[string]any{"platform": "android", "type": "message"},
		"no platform": map[string]any{"id": "a", "type": "message"},
		"bad type":    map[string]any{"id": "a", "platform": "android", "type": "nonsense"},
		"bad post id": map[string]any{"id": "a", "platform": "android", "type": "message", "post_id": "../x"},
		"not json":    "nope",
	} {
		resp, b := bob.do("POST", "/notifications/ack", body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
		require.Contains(t, string(b), "api.context.invalid_body_param.app_error", name)
	}
}

func TestPushClearAndBadge(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob := e.member(e.ch.ID), e.member(e.ch.ID)
	phone := e.device(bob)
	web := e.ts.login(bob.User.Username, "password1")
	dm := e.dm(alice, bob)
	alice.post(dm.ID, "one")
	alice.post(dm.ID, "two")
	e.waitFor(t, phone, 2)

	// Reading the DM in the browser clears it from the phone.
	web.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": dm.ID}, http.StatusOK, nil)
	got := e.waitFor(t, phone, 3)[2]
	require.Equal(t, push.TypeClear, got.Type)
	require.Equal(t, dm.ID, got.ChannelID)
	require.Equal(t, 1, got.ContentAvailable)
	require.Zero(t, got.Badge)
	// Nothing left unread: no second clear.
	web.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": dm.ID}, http.StatusOK, nil)
	e.flush(t)
	require.Len(t, e.sentTo(phone), 3)

	// The viewing session's own device is not cleared. (Past the window in
	// which bob counts as reading the DM he viewed.)
	e.ts.advance(time.Minute)
	alice.post(dm.ID, "three")
	e.waitFor(t, phone, 4)
	bob.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": dm.ID}, http.StatusOK, nil)
	e.flush(t)
	require.Len(t, e.sentTo(phone), 4)

	// Leaving a channel with unread mentions updates the badge.
	alice.post(e.ch.ID, "@"+bob.User.Username+" ping")
	e.waitFor(t, phone, 5)
	bob.mustDo("DELETE", "/channels/"+e.ch.ID+"/members/"+bob.User.ID, nil, http.StatusOK, nil)
	got = e.waitFor(t, phone, 6)[5]
	require.Equal(t, push.TypeUpdateBadge, got.Type)
	require.Equal(t, "none", got.Sound)
	require.Zero(t, got.Badge)
}

// blockedSender is a proxy that never answers a send until released.
type blockedSender struct {
	*push.Fake
	release chan struct{}
}

func (b *blockedSender) Send(ctx context.Context, n *push.Notification) (push.Response, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return push.Response{}, ctx.Err()
	}
	return b.Fake.Send(ctx, n)
}

func TestPushNeverBlocksPosting(t *testing.T) {
	t.Parallel()
	b := &blockedSender{Fake: push.NewFake(push.FakeOptions{}), release: make(chan struct{})}
	store, err := postgres.Open(context.Background(), postgres.PoolOptions{DataSource: pgtest.New(t), MaxOpenConns: 10, QueryTimeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	ts := newTestNodeWith(t, store, nil, pushOptions(b, 1))
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(b.release) }) })
	e := newPostEnvOn(ts, 2)
	alice, bob := e.users[0], e.users[1]
	bob.mustDo("PUT", "/users/sessions/device", map[string]string{"device_id": "android_rn-v2:bob"}, http.StatusOK, nil)
	var dm model.Channel
	alice.mustDo("POST", "/channels/direct", []string{alice.User.ID, bob.User.ID}, http.StatusCreated, &dm)

	// The one worker is stuck on the first push and the queue holds one
	// job: every other post's pushes are dropped, and every post is made.
	const posts = 6
	for i := range posts {
		alice.post(dm.ID, fmt.Sprintf("message %d", i))
	}
	st := ts.App.PushQueue().Stats()
	require.GreaterOrEqual(t, st.Dropped, uint64(posts-2))
	require.LessOrEqual(t, st.Queued, 1)
	once.Do(func() { close(b.release) })
}

func TestPushOnlyFromTheNodeThatPosted(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	bus := cluster.NewBus()
	var nodes []*testServer
	var fakes []*push.Fake
	for _, id := range []string{"node1", "node2"} {
		store, err := postgres.Open(context.Background(), postgres.PoolOptions{DataSource: dsn, MaxOpenConns: 10, QueryTimeout: 30 * time.Second})
		require.NoError(t, err)
		t.Cleanup(store.Close)
		f := push.NewFake(push.FakeOptions{})
		fakes = append(fakes, f)
		nodes = append(nodes, newTestNodeWith(t, store, bus.Join(cluster.Node{ID: id, Address: id + ":8074"}), pushOptions(f, 100)))
	}
	one, two := nodes[0], nodes[1]
	e := newPostEnvOn(one, 2)
	alice, bob := e.users[0], e.users[1]
	bob.mustDo("PUT", "/users/sessions/device", map[string]string{"device_id": "android_rn-v2:bob"}, http.StatusOK, nil)
	var dm model.Channel
	alice.mustDo("POST", "/channels/direct", []string{alice.User.ID, bob.User.ID}, http.StatusCreated, &dm)

	count := func(f *push.Fake) int { return len(f.Sent()) }
	wait := func(f *push.Fake, n int) {
		deadline := time.After(30 * time.Second)
		for {
			changed := f.Changed()
			if count(f) >= n {
				return
			}
			select {
			case <-changed:
			case <-deadline:
				require.FailNow(t, "push not sent")
			}
		}
	}
	alice.post(dm.ID, "via node one")
	wait(fakes[0], 1)
	alice.on(two).post(dm.ID, "via node two")
	wait(fakes[1], 1)
	// Each node pushed its own post, once; the other node's posted event
	// reached its sockets but queued no push.
	alice.on(one).post(dm.ID, "via node one again")
	wait(fakes[0], 2)
	require.Equal(t, 2, count(fakes[0]))
	require.Equal(t, 1, count(fakes[1]))
}

func TestPushSkipsExpiredSessions(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, 0)
	alice, bob := e.member(), e.member()
	old := e.device(bob)
	e.ts.advance(20 * time.Hour)
	fresh := e.device(e.ts.login(bob.User.Username, "password1"))
	e.ts.advance(5 * time.Hour) // the first session (24 h) has expired, the second has not
	// Everyone else logs in again too.
	e.admin = e.ts.login(e.admin.User.Username, "password1")
	e.canary = e.ts.login(e.canary.User.Username, "password1")
	e.canaryToken = e.device(e.canary)
	alice = e.ts.login(alice.User.Username, "password1")
	alice.post(e.dm(alice, bob).ID, "hi")
	e.flush(t)
	require.Empty(t, e.sentTo(old))
	require.Len(t, e.sentTo(fresh), 1)
}
