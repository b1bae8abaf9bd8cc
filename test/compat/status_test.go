package compat

import (
	"net/http"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func TestUserStatus(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := newUser(t)
	other := newUser(t)

	// A user who never connected is offline.
	st, resp, err := u.GetUserStatus(ctx, other.User.Id, "")
	require.NoError(t, err, "GetUserStatus")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, &model.Status{UserId: other.User.Id, Status: model.StatusOffline}, st)

	tests := []struct {
		status string
		manual bool
	}{
		{model.StatusAway, true}, {model.StatusOnline, false}, {model.StatusOffline, true}, {model.StatusDnd, true},
	}
	for _, tt := range tests {
		st, _, err := u.UpdateUserStatus(ctx, u.User.Id, &model.Status{UserId: u.User.Id, Status: tt.status})
		require.NoError(t, err, "UpdateUserStatus %s", tt.status)
		require.Equal(t, tt.status, st.Status)
		require.Equal(t, tt.manual, st.Manual, tt.status)
		got, _, err := other.GetUserStatus(ctx, u.User.Id, "")
		require.NoError(t, err)
		require.Equal(t, st, got)
	}

	// A timed do-not-disturb: dnd_end_time is in seconds, rounded to the minute.
	end := time.Now().Add(2 * time.Hour).Unix()
	st, _, err = u.UpdateUserStatus(ctx, u.User.Id, &model.Status{UserId: u.User.Id, Status: model.StatusDnd, DNDEndTime: end})
	require.NoError(t, err)
	require.Equal(t, time.Unix(end, 0).Truncate(time.Minute).Unix(), st.DNDEndTime)

	list, _, err := other.GetUsersStatusesByIds(ctx, []string{u.User.Id, other.User.Id})
	require.NoError(t, err, "GetUsersStatusesByIds")
	require.Len(t, list, 2)
	require.Equal(t, u.User.Id, list[0].UserId)
	require.Equal(t, model.StatusDnd, list[0].Status)
	require.Equal(t, model.StatusOffline, list[1].Status)

	// Refusals.
	_, resp, err = u.UpdateUserStatus(ctx, other.User.Id, &model.Status{UserId: other.User.Id, Status: model.StatusAway})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, resp, err = u.UpdateUserStatus(ctx, u.User.Id, &model.Status{UserId: other.User.Id, Status: model.StatusAway})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	_, resp, err = u.UpdateUserStatus(ctx, u.User.Id, &model.Status{UserId: u.User.Id, Status: "busy"})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	_, resp, err = u.GetUsersStatusesByIds(ctx, []string{"short"})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")

	// A system admin may set anyone's status.
	st, _, err = srv.admin.UpdateUserStatus(ctx, other.User.Id, &model.Status{UserId: other.User.Id, Status: model.StatusAway})
	require.NoError(t, err)
	require.Equal(t, model.StatusAway, st.Status)
}

// statusWS is a driver WebSocket that keeps its events and replies.
type statusWS struct {
	ws      *model.WebSocketClient
	events  chan *model.WebSocketEvent
	replies chan *model.WebSocketResponse
}

func connectStatusWS(t *testing.T, a *account) *statusWS {
	t.Helper()
	ws, err := model.NewWebSocketClient4(srv.wsURL, a.AuthToken)
	require.NoError(t, err, "NewWebSocketClient4")
	ws.Listen()
	c := &statusWS{ws: ws, events: make(chan *model.WebSocketEvent, 64), replies: make(chan *model.WebSocketResponse, 64)}
	done := make(chan struct{})
	go func() { // ends when the driver closes its channels
		defer close(done)
		evs, reps := ws.EventChannel, ws.ResponseChannel
		for evs != nil || reps != nil {
			select {
			case ev, ok := <-evs:
				if !ok {
					evs = nil
					continue
				}
				c.events <- ev
			case r, ok := <-reps:
				if !ok {
					reps = nil
					continue
				}
				c.replies <- r
			case <-ws.PingTimeoutChannel:
			}
		}
	}()
	t.Cleanup(func() { c.ws.Close(); <-done })
	return c
}

// statusChange waits for the next status_change event.
func (c *statusWS) statusChange(t *testing.T) map[string]any {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case ev := <-c.events:
			if ev.EventType() == model.WebsocketEventStatusChange {
				return ev.GetData()
			}
		case <-deadline:
			require.FailNow(t, "no status_change event")
		}
	}
}

// reply waits for the reply to the last request.
func (c *statusWS) reply(t *testing.T) *model.WebSocketResponse {
	t.Helper()
	want := c.ws.Sequence - 1
	deadline := time.After(eventTimeout)
	for {
		select {
		case r := <-c.replies:
			if r.SeqReply == want {
				return r
			}
		case <-deadline:
			require.FailNow(t, "no reply")
		}
	}
}

func TestStatusOverWebSocket(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := newUser(t)
	dnd := newUser(t)
	_, _, err := dnd.UpdateUserStatus(ctx, dnd.User.Id, &model.Status{UserId: dnd.User.Id, Status: model.StatusDnd})
	require.NoError(t, err)

	// Connecting makes the user online, and tells their connections.
	c1 := connectStatusWS(t, u)
	require.Equal(t, map[string]any{"status": model.StatusOnline, "user_id": u.User.Id}, c1.statusChange(t))
	c2 := connectStatusWS(t, u)

	c2.ws.GetStatuses()
	r := c2.reply(t)
	require.Equal(t, model.StatusOk, r.Status)
	require.Equal(t, model.StatusOnline, r.Data[u.User.Id])
	require.Equal(t, model.StatusDnd, r.Data[dnd.User.Id])

	unknown := model.NewId()
	c2.ws.GetStatusesByIds([]string{u.User.Id, dnd.User.Id, unknown})
	r = c2.reply(t)
	require.Equal(t, model.StatusOk, r.Status)
	require.Equal(t, map[string]any{u.User.Id: model.StatusOnline, dnd.User.Id: model.StatusDnd, unknown: model.StatusOffline}, r.Data)

	// Both connections hear a change.
	_, _, err = u.UpdateUserStatus(ctx, u.User.Id, &model.Status{UserId: u.User.Id, Status: model.StatusAway})
	require.NoError(t, err)
	for _, c := range []*statusWS{c1, c2} {
		require.Equal(t, model.StatusAway, c.statusChange(t)["status"])
	}
	_, _, err = u.UpdateUserStatus(ctx, u.User.Id, &model.Status{UserId: u.User.Id, Status: model.StatusOnline})
	require.NoError(t, err)
	for _, c := range []*statusWS{c1, c2} {
		require.Equal(t, model.StatusOnline, c.statusChange(t)["status"])
	}

	// Once every socket is gone, the user is offline.
	c1.ws.Close()
	c2.ws.Close()
	require.Eventually(t, func() bool {
		st, _, err := dnd.GetUserStatus(ctx, u.User.Id, "")
		return err == nil && st.Status == model.StatusOffline
	}, eventTimeout, 10*time.Millisecond, "offline after the last socket closed")
}
