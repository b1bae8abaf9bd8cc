package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// newStatusServer is newTestServer with automatic statuses on (unless
// mutate turns them off) and a 5-minute away timeout.
func newStatusServer(t *testing.T, mutate ...func(*app.Settings)) *testServer {
	t.Helper()
	return newTestServer(t, func(s *app.Settings, _ *api.Options) {
		s.EnableUserStatuses, s.UserStatusAwayTimeout = true, 5*time.Minute
		for _, f := range mutate {
			f(s)
		}
	})
}

// now is the App's clock.
func (ts *testServer) now() time.Time { return time.Now().Add(time.Duration(ts.skew.Load())) }

func (c *client) getStatus(userID string) model.Status {
	c.ts.t.Helper()
	var st model.Status
	c.mustDo("GET", "/users/"+userID+"/status", nil, http.StatusOK, &st)
	return st
}

func (c *client) setStatus(status string, dndEnd int64) model.Status {
	c.ts.t.Helper()
	var st model.Status
	c.mustDo("PUT", "/users/me/status", map[string]any{"user_id": c.User.ID, "status": status, "dnd_end_time": dndEnd}, http.StatusOK, &st)
	return st
}

// waitStatus polls until userID's status is want.
func (c *client) waitStatus(userID, want string) {
	c.ts.t.Helper()
	require.Eventually(c.ts.t, func() bool {
		_, b := c.do("GET", "/users/"+userID+"/status", nil)
		return strings.Contains(string(b), `"status":"`+want+`"`)
	}, 10*time.Second, 5*time.Millisecond, "status of %s never became %s", userID, want)
}

// nextStatus returns the next status_change event's status.
func (w *wsClient) nextStatus(userID string) string {
	w.t.Helper()
	ev := w.next("status_change")
	require.Equal(w.t, userID, ev.Data["user_id"])
	require.Equal(w.t, userID, ev.Broadcast["user_id"])
	return ev.Data["status"].(string)
}

// statusAction sends a client action and returns its reply and the
// statuses of the first want status_change events, which may come before
// or after the reply (action would skip those before).
func (w *wsClient) statusAction(name string, data any, want int) (wsEvent, []string) {
	w.t.Helper()
	w.seq++
	require.NoError(w.t, w.conn.WriteJSON(map[string]any{"seq": w.seq, "action": name, "data": data}))
	var (
		changes []string
		reply   *wsEvent
	)
	for reply == nil || len(changes) < want {
		ev := w.read()
		if ev.Event == "status_change" {
			changes = append(changes, ev.Data["status"].(string))
		}
		if ev.Event == "" && ev.SeqReply == w.seq {
			reply = &ev
		}
	}
	return *reply, changes
}

// closeWS closes the socket as a client going away does.
func (w *wsClient) closeWS() {
	_ = w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = w.conn.Close()
}

var statusKeys = []string{"user_id", "status", "manual", "last_activity_at", "dnd_end_time"}

func TestUserStatusGetAndUpdate(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	admin := ts.newUser()
	u := ts.newUser()
	other := ts.newUser()

	// A user who never connected is offline; so is an unknown id.
	resp, body := u.do("GET", "/users/"+other.User.ID+"/status", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	requireKeys(t, body, statusKeys...)
	require.Equal(t, model.Status{UserID: other.User.ID, Status: "offline"}, other.getStatus(other.User.ID))
	unknown := model.NewID()
	require.Equal(t, "offline", u.getStatus(unknown).Status)

	steps := []struct {
		status string
		manual bool
	}{
		{"away", true}, {"online", false}, {"offline", true}, {"dnd", true}, {"online", false},
	}
	for _, s := range steps {
		got := u.setStatus(s.status, 0)
		require.Equal(t, s.status, got.Status)
		require.Equal(t, s.manual, got.Manual, s.status)
		require.Equal(t, u.User.ID, got.UserID)
		require.Equal(t, got, other.getStatus(u.User.ID), "anyone may read it")
	}

	// A timed dnd, rounded down to the minute.
	end := ts.now().Add(90 * time.Minute).Unix()
	got := u.setStatus("dnd", end)
	require.Equal(t, "dnd", got.Status)
	require.Equal(t, time.Unix(end, 0).Truncate(time.Minute).Unix(), got.DNDEndTime)
	require.Equal(t, got.DNDEndTime, u.getStatus("me").DNDEndTime)
	// dnd_end_time means nothing for other statuses.
	got = u.setStatus("away", end)
	require.Zero(t, got.DNDEndTime)

	// A system admin sets anyone's status.
	admin.mustDo("PUT", "/users/"+other.User.ID+"/status", map[string]any{"user_id": other.User.ID, "status": "dnd"}, http.StatusOK, &got)
	require.Equal(t, "dnd", got.Status)
	require.True(t, got.Manual)
}

func TestUserStatusUpdateErrors(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	admin := ts.newUser()
	u := ts.newUser()
	other := ts.newUser()
	body := func(userID, status string) map[string]any { return map[string]any{"user_id": userID, "status": status} }

	tests := []struct {
		name   string
		c      *client
		path   string
		body   any
		status int
		id     string
	}{
		{"body names another user", u, "/users/" + u.User.ID + "/status", body(other.User.ID, "away"), 400, "api.context.invalid_body_param.app_error"},
		{"body without user", u, "/users/" + u.User.ID + "/status", map[string]any{"status": "away"}, 400, "api.context.invalid_body_param.app_error"},
		{"someone else's status", u, "/users/" + other.User.ID + "/status", body(other.User.ID, "away"), 403, "api.context.permissions.app_error"},
		{"unknown status", u, "/users/me/status", body(u.User.ID, "busy"), 400, "api.context.invalid_body_param.app_error"},
		{"ooo is not set by hand", u, "/users/me/status", body(u.User.ID, "ooo"), 400, "api.context.invalid_body_param.app_error"},
		{"empty status", u, "/users/me/status", body(u.User.ID, ""), 400, "api.context.invalid_body_param.app_error"},
		{"dnd ending in the past", u, "/users/me/status",
			map[string]any{"user_id": u.User.ID, "status": "dnd", "dnd_end_time": time.Now().Add(-time.Hour).Unix()}, 400, "api.context.invalid_body_param.app_error"},
		{"negative dnd end", u, "/users/me/status",
			map[string]any{"user_id": u.User.ID, "status": "dnd", "dnd_end_time": -5}, 400, "api.context.invalid_body_param.app_error"},
		{"not json", u, "/users/me/status", "{", 400, "api.context.invalid_body_param.app_error"},
		{"no body", u, "/users/me/status", nil, 400, "api.context.invalid_body_param.app_error"},
		{"bad user id", u, "/users/nope/status", body("nope", "away"), 400, "api.context.invalid_url_param.app_error"},
		{"admin, unknown user", admin, "/users/" + strings.Repeat("a", 26) + "/status", body(strings.Repeat("a", 26), "away"), 404, "app.user.missing_account.const"},
		{"anonymous", ts.anon(), "/users/" + u.User.ID + "/status", body(u.User.ID, "away"), 401, "api.context.session_expired.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.requireAppError("PUT", tt.path, tt.body, tt.status, tt.id)
		})
	}
	// Nothing was written by the failures.
	require.Equal(t, model.Status{UserID: other.User.ID, Status: "offline"}, u.getStatus(other.User.ID))
	require.Equal(t, model.Status{UserID: u.User.ID, Status: "offline"}, u.getStatus(u.User.ID))

	ts.anon().requireAppError("GET", "/users/"+u.User.ID+"/status", nil, 401, "api.context.session_expired.app_error")
	u.requireAppError("GET", "/users/x/status", nil, 400, "api.context.invalid_url_param.app_error")
}

func TestUserStatusesByIDs(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	ts.newUser()
	u := ts.newUser()
	other := ts.newUser()
	other.setStatus("dnd", 0)
	unknown := model.NewID()

	var list []model.Status
	u.mustDo("POST", "/users/status/ids", []string{other.User.ID, unknown, u.User.ID, other.User.ID}, http.StatusOK, &list)
	require.Len(t, list, 3, "each user once")
	require.Equal(t, other.User.ID, list[0].UserID)
	require.Equal(t, "dnd", list[0].Status)
	require.True(t, list[0].Manual)
	require.Equal(t, model.Status{UserID: unknown, Status: "offline"}, list[1])
	require.Equal(t, model.Status{UserID: u.User.ID, Status: "offline"}, list[2])

	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = model.NewID()
	}
	tests := []struct {
		name string
		body any
	}{
		{"empty list", []string{}},
		{"bad id", []string{u.User.ID, "short"}},
		{"too many", tooMany},
		{"not a list", map[string]any{"user_ids": []string{u.User.ID}}},
		{"no body", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u.requireAppError("POST", "/users/status/ids", tt.body, 400, "api.context.invalid_body_param.app_error")
		})
	}
	ts.anon().requireAppError("POST", "/users/status/ids", []string{u.User.ID}, 401, "api.context.session_expired.app_error")
}

func TestStatusChangeGoesToTheUserOnly(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	ts.newUser()
	u := ts.newUser()
	other := ts.newUser()
	uws1 := u.ws()
	require.Equal(t, "online", uws1.nextStatus(u.User.ID), "connecting makes the user online")
	uws2 := u.ws() // the second socket changes nothing: no event
	ows := other.ws()
	require.Equal(t, "online", ows.nextStatus(other.User.ID))

	u.setStatus("dnd", 0)
	// Every connection of the user hears it, in order.
	for _, w := range []*wsClient{uws1, uws2} {
		require.Equal(t, "dnd", w.nextStatus(u.User.ID))
	}
	u.setStatus("online", 0)
	for _, w := range []*wsClient{uws1, uws2} {
		require.Equal(t, "online", w.nextStatus(u.User.ID))
	}
	// Others do not: the next event they see is their own.
	other.setStatus("away", 0)
	ev := ows.nextEvent()
	require.Equal(t, "status_change", ev.Event)
	require.Equal(t, other.User.ID, ev.Data["user_id"])
}

func TestStatusFollowsSockets(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	ts.newUser()
	u := ts.newUser()
	witness := ts.newUser()

	w1 := u.ws()
	require.Equal(t, "online", w1.nextStatus(u.User.ID))
	w2 := u.ws()
	require.Eventually(t, func() bool { return ts.Hub.UserConnectionCount(u.User.ID) == 2 }, 10*time.Second, 2*time.Millisecond)

	// One of two sockets goes: still online. The hub reports connection
	// changes in order from one goroutine, so once a user who connects
	// after that has seen their own status change, ours has been applied.
	w1.closeWS()
	require.Eventually(t, func() bool { return ts.Hub.UserConnectionCount(u.User.ID) == 1 }, 10*time.Second, 2*time.Millisecond)
	ww := witness.ws()
	require.Equal(t, "online", ww.nextStatus(witness.User.ID))
	require.Equal(t, "online", u.getStatus(u.User.ID).Status)

	// The last one goes: offline, and not manual.
	w2.closeWS()
	u.waitStatus(u.User.ID, "offline")
	require.False(t, u.getStatus(u.User.ID).Manual)

	// A manual status outlives the sockets.
	u.setStatus("dnd", 0)
	w3 := u.ws()
	require.Eventually(t, func() bool { return ts.Hub.UserConnectionCount(u.User.ID) == 1 }, 10*time.Second, 2*time.Millisecond)
	ww.closeWS() // the witness's last socket: offline, after ours
	witness.waitStatus(witness.User.ID, "offline")
	require.Equal(t, "dnd", u.getStatus(u.User.ID).Status, "connecting left dnd alone")
	w3.closeWS()
	require.Eventually(t, func() bool { return ts.Hub.UserConnectionCount(u.User.ID) == 0 }, 10*time.Second, 2*time.Millisecond)
	witness.ws() // online, after ours
	witness.waitStatus(witness.User.ID, "online")
	require.Equal(t, "dnd", u.getStatus(u.User.ID).Status, "disconnecting left dnd alone")
}

func TestStatusAwayAndDNDSweeps(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	ts.newUser()
	u := ts.newUser()
	w := u.ws()
	require.Equal(t, "online", w.nextStatus(u.User.ID))
	ctx := context.Background()

	// Idle for less than the timeout: nothing.
	ts.advance(4 * time.Minute)
	require.NoError(t, ts.App.SweepStatuses(ctx))
	require.Equal(t, "online", u.getStatus("me").Status)

	// Past it: away, automatically.
	ts.advance(2 * time.Minute)
	require.NoError(t, ts.App.SweepStatuses(ctx))
	require.Equal(t, "away", w.nextStatus(u.User.ID))
	st := u.getStatus("me")
	require.Equal(t, "away", st.Status)
	require.False(t, st.Manual)

	// Activity brings the user back.
	r, changes := w.statusAction("user_update_active_status", map[string]any{"user_is_active": true, "manual": false}, 1)
	require.Equal(t, "OK", r.Status)
	require.Equal(t, []string{"online"}, changes)

	// A timed dnd returns to what it replaced once it ends.
	end := ts.now().Add(2 * time.Minute).Unix()
	u.setStatus("dnd", end)
	require.Equal(t, "dnd", w.nextStatus(u.User.ID))
	require.NoError(t, ts.App.SweepStatuses(ctx))
	require.Equal(t, "dnd", u.getStatus("me").Status, "not over yet")
	ts.advance(3 * time.Minute)
	require.NoError(t, ts.App.SweepStatuses(ctx))
	require.Equal(t, "online", w.nextStatus(u.User.ID))
	st = u.getStatus("me")
	require.Equal(t, "online", st.Status)
	require.Zero(t, st.DNDEndTime)

	// A manual away is never swept, nor touched by activity.
	u.setStatus("away", 0)
	require.Equal(t, "away", w.nextStatus(u.User.ID))
	ts.advance(time.Hour)
	require.NoError(t, ts.App.SweepStatuses(ctx))
	w.statusAction("user_update_active_status", map[string]any{"user_is_active": true}, 0)
	w.statusAction("user_typing", map[string]any{"channel_id": model.NewID()}, 0)
	st = u.getStatus("me")
	require.Equal(t, "away", st.Status)
	require.True(t, st.Manual)
}

func TestStatusWebSocketActions(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	ts.newUser()
	u := ts.newUser()
	dnd := ts.newUser()
	dnd.setStatus("dnd", 0)
	off := ts.newUser()
	off.setStatus("offline", 0)
	w := u.ws()
	require.Equal(t, "online", w.nextStatus(u.User.ID))

	r := w.action("get_statuses", nil)
	require.Equal(t, "OK", r.Status)
	require.Equal(t, map[string]any{u.User.ID: "online", dnd.User.ID: "dnd"}, r.Data, "offline users are left out")

	unknown := model.NewID()
	r = w.action("get_statuses_by_ids", map[string]any{"user_ids": []string{dnd.User.ID, off.User.ID, unknown}})
	require.Equal(t, "OK", r.Status)
	require.Equal(t, map[string]any{dnd.User.ID: "dnd", off.User.ID: "offline", unknown: "offline"}, r.Data)

	// Inactive by hand is a manual away; active by hand clears it.
	r, changes := w.statusAction("user_update_active_status", map[string]any{"user_is_active": false, "manual": true}, 1)
	require.Equal(t, "OK", r.Status)
	require.Equal(t, []string{"away"}, changes)
	require.True(t, u.getStatus("me").Manual)
	_, changes = w.statusAction("user_update_active_status", map[string]any{"user_is_active": true, "manual": true}, 1)
	require.Equal(t, []string{"online"}, changes)
	require.False(t, u.getStatus("me").Manual)
	// Inactive but not idle yet: no change.
	w.statusAction("user_update_active_status", map[string]any{"user_is_active": false}, 0)
	require.Equal(t, "online", u.getStatus("me").Status)
	// Any other action is activity: after an automatic away, it is
	// online again.
	ts.advance(10 * time.Minute)
	_, changes = w.statusAction("user_update_active_status", map[string]any{"user_is_active": false}, 1)
	require.Equal(t, []string{"away"}, changes)
	_, changes = w.statusAction("presence", map[string]any{"channel_id": ""}, 1)
	require.Equal(t, []string{"online"}, changes)

	bad := []struct {
		action string
		data   any
	}{
		{"get_statuses_by_ids", nil},
		{"get_statuses_by_ids", map[string]any{"user_ids": []string{}}},
		{"get_statuses_by_ids", map[string]any{"user_ids": []string{"nope"}}},
		{"get_statuses_by_ids", map[string]any{"user_ids": "x"}},
		{"user_update_active_status", map[string]any{}},
		{"user_update_active_status", map[string]any{"user_is_active": "yes"}},
	}
	for _, b := range bad {
		r := w.action(b.action, b.data)
		require.Equal(t, "FAIL", r.Status, "%s %v", b.action, b.data)
		require.Equal(t, "api.websocket_handler.invalid_param.app_error", r.Error["id"], "%s %v", b.action, b.data)
	}
}

func TestUserStatusesDisabled(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t, func(s *app.Settings) { s.EnableUserStatuses = false })
	ts.newUser()
	u := ts.newUser()
	ctx := context.Background()

	// Automatic changes are off...
	ts.App.UserConnections(ctx, u.User.ID, 1)
	ts.App.RecordActivity(ctx, u.User.ID)
	require.Equal(t, "offline", u.getStatus("me").Status)
	// ...manual ones work.
	require.Equal(t, "online", u.setStatus("online", 0).Status)
	ts.advance(time.Hour)
	require.NoError(t, ts.App.SweepStatuses(ctx))
	require.Equal(t, "online", u.getStatus("me").Status, "no away sweep")
	ts.App.UserConnections(ctx, u.User.ID, 0)
	require.Equal(t, "online", u.getStatus("me").Status, "no offline on disconnect")
}

func TestStatusActivityIsThrottled(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	ts.newUser()
	u := ts.newUser()
	ctx := context.Background()

	ts.App.RecordActivity(ctx, u.User.ID)
	first := u.getStatus("me")
	require.Equal(t, "online", first.Status)
	// Within the write interval activity is not written again.
	ts.advance(30 * time.Second)
	ts.App.RecordActivity(ctx, u.User.ID)
	require.Equal(t, first.LastActivityAt, u.getStatus("me").LastActivityAt)
	// After it, it is.
	ts.advance(45 * time.Second)
	ts.App.RecordActivity(ctx, u.User.ID)
	require.Greater(t, u.getStatus("me").LastActivityAt, first.LastActivityAt)
}

func TestStatusPostingIsActivity(t *testing.T) {
	t.Parallel()
	ts := newStatusServer(t)
	ts.newUser()
	u := ts.newUser()
	team := u.createTeam(true)
	town := u.channelByName(team.ID, "town-square")
	w := u.ws()
	require.Equal(t, "online", w.nextStatus(u.User.ID))
	ctx := context.Background()
	ts.advance(6 * time.Minute)
	require.NoError(t, ts.App.SweepStatuses(ctx))
	require.Equal(t, "away", w.nextStatus(u.User.ID))

	// set_online=false (bots, integrations) leaves the status alone...
	u.mustDo("POST", "/posts?set_online=false", map[string]any{"channel_id": town.ID, "message": "quiet"}, http.StatusCreated, nil)
	require.Equal(t, "away", u.getStatus("me").Status)
	// ...an ordinary post brings the user back online.
	u.post(town.ID, "back")
	require.Equal(t, "online", w.nextStatus(u.User.ID))
	require.Equal(t, "online", u.getStatus("me").Status)
}
