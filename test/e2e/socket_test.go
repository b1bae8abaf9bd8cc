package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// eventTimeout bounds the wait for one expected event.
const eventTimeout = 30 * time.Second

// socket is a WebSocket read by the test goroutine that opened it. Every
// event read must carry the seq after the previous one: the Mattermost
// contract for one connection, and what proves that nothing was lost or
// reordered on the way from another node.
type socket struct {
	t      *testing.T
	conn   *websocket.Conn
	connID string
	seq    int64 // the seq of the last event read
	req    int64 // the seq of the last action sent
	// replies holds action replies read while looking for events.
	replies map[int64]event
}

// socket opens a WebSocket to base with token and reads its hello.
func (s *site) socket(ctx context.Context, base, token string) *socket {
	s.t.Helper()
	conn, err := dialWS(ctx, s.wsd, base, token, nil)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = conn.Close() })
	w := &socket{t: s.t, conn: conn, seq: -1, replies: map[int64]event{}}
	hello := w.next(func(ev event) bool { return ev.Event == "hello" })
	w.connID = hello.str("connection_id")
	require.NotEmpty(s.t, w.connID, "hello carries the connection id")
	return w
}

// next reads frames until an event match accepts, and returns it.
func (w *socket) next(match func(event) bool) event {
	w.t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		ev, err := readEvent(w.conn, deadline)
		require.NoError(w.t, err, "waiting for an event")
		if ev.isReply() {
			w.replies[ev.SeqReply] = ev
			continue
		}
		require.Equal(w.t, w.seq+1, ev.Seq, "event %s: seq follows the previous event's", ev.Event)
		w.seq = ev.Seq
		if match(ev) {
			return ev
		}
	}
}

// action sends a client action (model.WebSocketRequest) and returns its
// seq.
func (w *socket) action(name string, data any) int64 {
	w.t.Helper()
	w.req++
	require.NoError(w.t, w.conn.SetWriteDeadline(time.Now().Add(eventTimeout)))
	require.NoError(w.t, w.conn.WriteJSON(map[string]any{"seq": w.req, "action": name, "data": data}))
	return w.req
}

// reply waits for the reply to action seq and requires it to be OK.
func (w *socket) reply(seq int64) {
	w.t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		if r, ok := w.replies[seq]; ok {
			require.Equal(w.t, "OK", r.Status, "reply to action %d: %+v", seq, r.Error)
			return
		}
		ev, err := readEvent(w.conn, deadline)
		require.NoError(w.t, err, "waiting for the reply to action %d", seq)
		if ev.isReply() {
			w.replies[ev.SeqReply] = ev
			continue
		}
		require.Equal(w.t, w.seq+1, ev.Seq, "event %s: seq follows the previous event's", ev.Event)
		w.seq = ev.Seq
	}
}

// closedByServer reads until the server ends the connection, and fails
// if it is still open after timeout.
func (w *socket) closedByServer(timeout time.Duration) error {
	if err := w.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	for {
		_, _, err := w.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("the socket is still open after %s", timeout)
		}
		return nil
	}
}

// reaction decodes data.reaction of a reaction event.
func (e event) reaction() (postID, emoji string, err error) {
	var r struct {
		PostID    string `json:"post_id"`
		EmojiName string `json:"emoji_name"`
	}
	err = json.Unmarshal([]byte(e.str("reaction")), &r)
	return r.PostID, r.EmojiName, err
}
