package ws

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func TestAuthenticationAndHello(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header http.Header
		auth   func(c *client) // after dialling; nil: authenticated by the upgrade
	}{
		{name: "challenge", auth: func(c *client) {
			seq := c.send("authentication_challenge", map[string]any{"token": "tok-alice"})
			r := c.read()
			require.Equal(t, "OK", r.Status, "got %s", r.raw)
			require.Equal(t, seq, r.SeqReply)
			require.JSONEq(t, `{"status":"OK","seq_reply":1}`, string(r.raw))
		}},
		{name: "bearer header", header: bearer("tok-alice")},
		{name: "cookie", header: http.Header{"Cookie": {"MMAUTHTOKEN=tok-alice"}}},
		{name: "cookie wins over header", header: http.Header{"Cookie": {"MMAUTHTOKEN=tok-alice"}, "Authorization": {"Bearer tok-bob"}}},
		{name: "bad header token, then challenge", header: bearer("nope"), auth: func(c *client) {
			c.send("authentication_challenge", map[string]any{"token": "tok-alice"})
			require.Equal(t, "OK", c.read().Status)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			c, _, err := e.dial(t, tt.header, "")
			require.NoError(t, err)
			if tt.auth != nil {
				tt.auth(c)
			}
			hello := c.readEvent("hello", 0)
			id, _ := hello.Data["connection_id"].(string)
			require.True(t, model.IsValidID(id), "connection id %q", id)
			for _, r := range id {
				require.Contains(t, "ybndrfg8ejkmcpqxot1uwisza345h769", string(r))
			}
			require.Equal(t, "10.5.0.1.abc.false", hello.Data["server_version"])
			require.Equal(t, "node-1", hello.Data["server_hostname"])
			require.Equal(t, "alice", hello.Broadcast.UserID)
			require.Nil(t, hello.Broadcast.OmitUsers)
			eventually(t, func() bool { return e.hub.UserConnectionCount("alice") == 1 })
			require.Equal(t, 1, e.hub.ConnectionCount())

			for i := int64(1); i <= 3; i++ {
				e.publish(t, "posted", map[string]any{"n": i}, Broadcast{UserID: "alice"})
			}
			for i := int64(1); i <= 3; i++ {
				f := c.readEvent("posted", i)
				require.EqualValues(t, i, f.Data["n"])
			}
		})
	}
}

func TestBadTokenChallengeFailsAndCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, _, err := e.dial(t, nil, "")
	require.NoError(t, err)
	c.send("authentication_challenge", map[string]any{"token": "nope"})
	r := c.read()
	require.Equal(t, "FAIL", r.Status)
	require.EqualValues(t, 1, r.SeqReply)
	require.Equal(t, "api.context.session_expired.app_error", r.Error.ID)
	require.Equal(t, http.StatusUnauthorized, r.Error.StatusCode)
	c.requireClosed(websocket.ClosePolicyViolation)
	require.Zero(t, e.hub.ConnectionCount())
}

func TestAuthTimeoutCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.AuthTimeout = 20 * time.Millisecond })
	c, _, err := e.dial(t, nil, "")
	require.NoError(t, err)
	c.requireClosed(websocket.ClosePolicyViolation)
}

func TestChallengeOnAuthenticatedConnectionIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, _ := e.connect(t, "tok-alice", "")
	c.send("authentication_challenge", map[string]any{"token": "tok-bob"})
	seq := c.send("ping", nil)
	r := c.read() // the ping's reply comes first: the challenge got none
	require.Equal(t, seq, r.SeqReply, "got %s", r.raw)
	require.Equal(t, "pong", r.Data["text"])
}

func TestClientFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, hello := e.connect(t, "tok-alice", "")
	connID := hello.Data["connection_id"].(string)

	tests := []struct {
		name    string
		frame   string
		binary  bool
		want    string // reply JSON; "error" compared separately
		errID   string
		errCode int
	}{
		{name: "not json", frame: `nope`, want: `{"status":"FAIL"}`,
			errID: "api.web_socket_router.no_action.app_error", errCode: 400},
		{name: "missing seq", frame: `{"action":"ping"}`, want: `{"status":"FAIL"}`,
			errID: "api.web_socket_router.bad_seq.app_error", errCode: 400},
		{name: "negative seq", frame: `{"seq":-2,"action":"ping"}`, want: `{"status":"FAIL","seq_reply":-2}`,
			errID: "api.web_socket_router.bad_seq.app_error", errCode: 400},
		{name: "missing action", frame: `{"seq":3}`, want: `{"status":"FAIL","seq_reply":3}`,
			errID: "api.web_socket_router.no_action.app_error", errCode: 400},
		{name: "binary", frame: `{"seq":4,"action":"ping"}`, binary: true, want: `{"status":"FAIL"}`,
			errID: "api.web_socket_router.binary_not_supported.app_error", errCode: 400},
		{name: "ping", frame: `{"seq":5,"action":"ping"}`,
			want: `{"status":"OK","seq_reply":5,"data":{"text":"pong","version":"10.5.0.1.abc.false","server_time":` +
				jsonNumber(e.clock.Now().UnixMilli()) + `,"node_id":""}}`},
		{name: "action", frame: `{"seq":6,"action":"echo","data":{"x":1}}`,
			want: `{"status":"OK","seq_reply":6,"data":{"user_id":"alice","connection_id":"` + connID + `","data":{"x":1}}}`},
		{name: "app error", frame: `{"seq":7,"action":"app_fail"}`, want: `{"status":"FAIL","seq_reply":7}`,
			errID: "api.test.forbidden.app_error", errCode: 403},
		{name: "plain error", frame: `{"seq":8,"action":"boom"}`, want: `{"status":"FAIL","seq_reply":8}`,
			errID: "api.web_socket_router.action.app_error", errCode: 500},
		{name: "panic", frame: `{"seq":9,"action":"panic"}`, want: `{"status":"FAIL","seq_reply":9}`,
			errID: "api.web_socket_router.action.app_error", errCode: 500},
	}
	// Not parallel: the cases share one connection and read its replies in order.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt := websocket.TextMessage
			if tt.binary {
				mt = websocket.BinaryMessage
			}
			require.NoError(t, c.ws.WriteMessage(mt, []byte(tt.frame)))
			r := c.read()
			got := map[string]json.RawMessage{}
			require.NoError(t, json.Unmarshal(r.raw, &got))
			errJSON, hasErr := got["error"]
			delete(got, "error")
			rest, _ := json.Marshal(got)
			require.JSONEq(t, tt.want, string(rest))
			require.Equal(t, tt.errID != "", hasErr, "got %s", r.raw)
			if hasErr {
				var ae map[string]any
				require.NoError(t, json.Unmarshal(errJSON, &ae))
				require.Equal(t, tt.errID, ae["id"])
				require.EqualValues(t, tt.errCode, ae["status_code"])
				require.Contains(t, ae, "message")
				require.Contains(t, ae, "detailed_error")
			}
		})
	}
	// The connection survived all of it.
	e.publish(t, "posted", nil, Broadcast{UserID: "alice"})
	c.readEvent("posted", 1)
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestUnauthenticatedActionFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, _, err := e.dial(t, nil, "")
	require.NoError(t, err)
	c.send("ping", nil)
	r := c.read()
	require.Equal(t, "FAIL", r.Status)
	require.Equal(t, "api.web_socket_router.not_authenticated.app_error", r.Error.ID)
	c.send("authentication_challenge", map[string]any{"token": "tok-alice"})
	require.Equal(t, "OK", c.read().Status)
	c.readEvent("hello", 0)
}

func TestFrameSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MaxFrameSize = 1024 })
	c, _ := e.connect(t, "tok-alice", "")
	c.sendRaw(`{"seq":1,"action":"echo","data":"` + strings.Repeat("x", 2048) + `"}`)
	c.requireClosed(websocket.CloseMessageTooBig)
}

func TestAudienceAndFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	clients := map[string]*client{}
	connIDs := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		c, hello := e.connect(t, "tok-"+u, "")
		clients[u] = c
		connIDs[u] = hello.Data["connection_id"].(string)
	}
	seqs := map[string]int64{}
	next := func(u string) int64 { seqs[u]++; return seqs[u] }

	tests := []struct {
		name string
		b    Broadcast
		want []string
	}{
		{"channel", Broadcast{ChannelID: "town"}, []string{"alice", "bob", "dave"}},
		{"team", Broadcast{TeamID: "t1"}, []string{"alice", "carol"}},
		{"user", Broadcast{UserID: "bob"}, []string{"bob"}},
		{"everyone", Broadcast{}, []string{"alice", "bob", "carol", "dave"}},
		{"everyone but alice", Broadcast{OmitUsers: map[string]bool{"alice": true}}, []string{"bob", "carol", "dave"}},
		{"channel but bob", Broadcast{ChannelID: "town", OmitUsers: map[string]bool{"bob": true}}, []string{"alice", "dave"}},
		{"connection", Broadcast{ConnectionID: connIDs["carol"]}, []string{"carol"}},
		{"connection of user", Broadcast{UserID: "carol", ConnectionID: connIDs["carol"]}, []string{"carol"}},
		{"omit connection", Broadcast{OmitConnectionID: connIDs["carol"]}, []string{"alice", "bob", "dave"}},
		{"admins only", Broadcast{OnlyAdmins: true}, []string{"dave"}},
		{"non-admins in channel", Broadcast{ChannelID: "town", OnlyNonAdmins: true}, []string{"alice", "bob"}},
	}
	// Not parallel: the cases share the four connections.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.publish(t, "posted", map[string]any{"case": tt.name}, tt.b)
			for u, c := range clients {
				// A marker after the event shows whether the event came first.
				e.publish(t, "marker", nil, Broadcast{UserID: u})
				if contains(tt.want, u) {
					f := c.readEvent("posted", next(u))
					require.Equal(t, tt.name, f.Data["case"], "user %s", u)
				}
				c.readEvent("marker", next(u))
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPublishAndControlErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := New(Options{Auth: fakeAuth{}, Audience: testAudience})
	require.ErrorIs(t, h.Publish(ctx, &Event{Name: "posted"}), ErrNotRunning)
	require.Zero(t, h.UserConnectionCount("alice")) // none of these block before Start
	require.Zero(t, h.ConnectionCount())
	h.CloseUser("alice")
	h.CloseSession("sess-alice")
	require.NoError(t, h.Start(ctx))
	t.Cleanup(func() { require.NoError(t, h.Stop(ctx)) })
	require.Error(t, h.Publish(ctx, &Event{}))
	require.ErrorContains(t, h.Publish(ctx, &Event{Name: "posted", Broadcast: Broadcast{ChannelID: "nope"}}), "no such channel")
	require.ErrorContains(t, h.Publish(ctx, &Event{Name: "posted", Data: map[string]any{"f": func() {}}}), "encode posted event")

	noAudience := New(Options{Auth: fakeAuth{}})
	require.NoError(t, noAudience.Start(ctx))
	t.Cleanup(func() { require.NoError(t, noAudience.Stop(ctx)) })
	require.Error(t, noAudience.Publish(ctx, &Event{Name: "posted", Broadcast: Broadcast{TeamID: "t1"}}))
}

// A client that never reads is dropped once its queue is full, and the others
// still get every event.
func TestSlowClientDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.SendQueueSize = 32 })
	slow, _ := e.connect(t, "tok-slow", "")

	type result struct {
		posted int
		err    error
	}
	var published atomic.Int64
	acks := make([]chan struct{}, 2)
	results := make(chan result, 2)
	for i, tok := range []string{"tok-fast1", "tok-fast2"} {
		c, _ := e.connect(t, tok, "")
		acks[i] = make(chan struct{}, 1<<16)
		go func(c *client, ack chan<- struct{}) { // ends at the "done" event or a read error
			n, want := 0, int64(1)
			for {
				f, err := c.tryRead()
				if err != nil {
					results <- result{n, err}
					return
				}
				if f.Seq == nil || *f.Seq != want {
					results <- result{n, fmt.Errorf("seq %v, want %d: %s", f.Seq, want, f.raw)}
					return
				}
				want++
				if f.Event == "done" {
					results <- result{n, nil}
					return
				}
				n++
				ack <- struct{}{}
			}
		}(c, acks[i])
	}

	payload := strings.Repeat("x", 16<<10)
	for e.hub.Stats().SlowClientsDropped == 0 {
		require.Less(t, published.Load(), int64(100_000), "slow client never dropped")
		const batch = 8
		for range batch {
			e.publish(t, "posted", map[string]any{"message": payload}, Broadcast{})
			published.Add(1)
		}
		for _, ack := range acks { // pace the publisher to the fast readers
			for range batch {
				select {
				case <-ack:
				case r := <-results:
					t.Fatalf("fast reader stopped: %+v", r)
				}
			}
		}
	}
	eventually(t, func() bool { return e.hub.UserConnectionCount("slow") == 0 })
	require.EqualValues(t, 2, e.hub.ConnectionCount())
	_ = slow.ws.Close() // frees its pump, which may be blocked writing

	e.publish(t, "done", nil, Broadcast{})
	for range 2 {
		r := <-results
		require.NoError(t, r.err)
		require.EqualValues(t, published.Load(), r.posted)
	}
	require.EqualValues(t, 1, e.hub.Stats().SlowClientsDropped)
}

func TestTypingSkippedWhenQueueHalfFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.SendQueueSize = 8 })
	c, hello := e.connect(t, "tok-alice", "")
	e.leave(t, c, "alice", 0)

	for i := range 5 { // 5 of 8: over half full
		e.publish(t, "posted", map[string]any{"n": i}, Broadcast{UserID: "alice"})
	}
	for _, name := range []string{"typing", "status_change", "multiple_channels_viewed"} {
		e.publish(t, name, nil, Broadcast{UserID: "alice"})
	}
	e.publish(t, "posted", map[string]any{"n": 5}, Broadcast{UserID: "alice"}) // still fits

	c2, _, err := e.dial(t, bearer("tok-alice"), resumeQuery(hello, 1))
	require.NoError(t, err)
	for i := range 6 {
		f := c2.readEvent("posted", int64(i+1))
		require.EqualValues(t, i, f.Data["n"])
	}
	e.publish(t, "marker", nil, Broadcast{UserID: "alice"})
	c2.readEvent("marker", 7)
	require.EqualValues(t, 3, e.hub.Stats().EventsSkipped)
}

func resumeQuery(hello frame, seq int64) string {
	return url.Values{
		"connection_id":   {hello.Data["connection_id"].(string)},
		"sequence_number": {jsonNumber(seq)},
	}.Encode()
}

func TestReconnectResumes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		seq       int64 // next seq the client expects
		challenge bool
		first     int64 // first event number received after the reconnect
	}{
		{name: "replay the missed written event", seq: 1, first: 1},
		{name: "nothing missed before leaving", seq: 2, first: 2},
		{name: "challenge auth", seq: 1, first: 1, challenge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			c, hello := e.connect(t, "tok-alice", "")
			connID := hello.Data["connection_id"].(string)
			e.publish(t, "posted", map[string]any{"n": 1}, Broadcast{UserID: "alice"})
			c.readEvent("posted", 1)
			e.leave(t, c, "alice", 0)
			for n := 2; n <= 4; n++ {
				e.publish(t, "posted", map[string]any{"n": n}, Broadcast{UserID: "alice"})
			}

			var c2 *client
			var err error
			if tt.challenge {
				c2, _, err = e.dial(t, nil, resumeQuery(hello, tt.seq))
				require.NoError(t, err)
				c2.send("authentication_challenge", map[string]any{"token": "tok-alice2"})
				require.Equal(t, "OK", c2.read().Status)
			} else {
				c2, _, err = e.dial(t, bearer("tok-alice"), resumeQuery(hello, tt.seq))
				require.NoError(t, err)
			}
			for n := tt.first; n <= 4; n++ {
				f := c2.readEvent("posted", n) // no hello: same connection, seq goes on
				require.EqualValues(t, n, f.Data["n"])
			}
			e.publish(t, "posted", map[string]any{"n": 5}, Broadcast{ConnectionID: connID})
			c2.readEvent("posted", 5)
			require.Equal(t, 1, e.hub.UserConnectionCount("alice"))
			st := e.hub.Stats()
			require.EqualValues(t, 1, st.ReconnectsReplayed+st.ReconnectsResumed)
			require.Zero(t, st.Inactive)
		})
	}
}

func TestReconnectStartsAfresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    func(*Options)
		before  func(t *testing.T, e *env, c *client) // while connected
		away    func(t *testing.T, e *env)            // after leaving
		token   string
		query   func(hello frame) string
		oldKept bool // the old connection can still be resumed afterwards
	}{
		{
			name: "sequence number too old",
			opts: func(o *Options) { o.DeadQueueSize = 4 },
			before: func(t *testing.T, e *env, c *client) {
				for i := int64(1); i <= 6; i++ {
					e.publish(t, "posted", nil, Broadcast{UserID: "alice"})
					c.readEvent("posted", i)
				}
			},
			query: func(h frame) string { return resumeQuery(h, 1) },
		},
		{name: "sequence number ahead", query: func(h frame) string { return resumeQuery(h, 9) }},
		{name: "sequence number missing", query: func(h frame) string {
			return "connection_id=" + h.Data["connection_id"].(string)
		}},
		{name: "sequence number invalid", query: func(h frame) string {
			return "connection_id=" + h.Data["connection_id"].(string) + "&sequence_number=x"
		}},
		{name: "unknown connection id", query: func(frame) string { return "connection_id=" + model.NewID() + "&sequence_number=1" }, oldKept: true},
		{
			name:  "expired",
			away:  func(_ *testing.T, e *env) { e.clock.Advance(5 * time.Minute) },
			query: func(h frame) string { return resumeQuery(h, 1) },
		},
		{
			name: "messages lost while away",
			opts: func(o *Options) { o.SendQueueSize = 4 },
			away: func(t *testing.T, e *env) {
				for range 5 {
					e.publish(t, "posted", nil, Broadcast{UserID: "alice"})
				}
			},
			query: func(h frame) string { return resumeQuery(h, 1) },
		},
		{name: "another user", token: "tok-bob", query: func(h frame) string { return resumeQuery(h, 1) }, oldKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts)
			c, hello := e.connect(t, "tok-alice", "")
			oldID := hello.Data["connection_id"].(string)
			if tt.before != nil {
				tt.before(t, e, c)
			}
			e.leave(t, c, "alice", 0)
			if tt.away != nil {
				tt.away(t, e)
			}
			token := tt.token
			if token == "" {
				token = "tok-alice"
			}
			_, hello2 := e.connect(t, token, tt.query(hello))
			require.EqualValues(t, 0, *hello2.Seq)
			newConnID := hello2.Data["connection_id"].(string)
			require.True(t, model.IsValidID(newConnID))
			require.NotEqual(t, oldID, newConnID)

			if tt.oldKept {
				// Alice can still take her connection back.
				c3, _, err := e.dial(t, bearer("tok-alice"), resumeQuery(hello, 1))
				require.NoError(t, err)
				e.publish(t, "posted", nil, Broadcast{ConnectionID: oldID})
				c3.readEvent("posted", 1)
			} else {
				require.Zero(t, e.hub.Stats().Inactive)
			}
		})
	}
}

// A reconnect that arrives before the hub noticed the old socket die takes
// the connection over.
func TestReconnectTakesOverLiveSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	old, hello := e.connect(t, "tok-alice", "")
	connID := hello.Data["connection_id"].(string)
	c2, _, err := e.dial(t, bearer("tok-alice"), resumeQuery(hello, 1))
	require.NoError(t, err)
	old.requireClosed(websocket.CloseNormalClosure)
	e.publish(t, "posted", nil, Broadcast{ConnectionID: connID})
	c2.readEvent("posted", 1)
	require.Equal(t, 1, e.hub.UserConnectionCount("alice"))
}

func TestReaperForgetsInactiveConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, _ := e.connect(t, "tok-alice", "")
	e.leave(t, c, "alice", 0)
	require.EqualValues(t, 1, e.hub.Stats().Inactive)
	e.hub.reap()
	require.EqualValues(t, 1, e.hub.Stats().Inactive) // not yet due
	e.clock.Advance(5 * time.Minute)
	e.hub.reap()
	eventually(t, func() bool { return e.hub.Stats().Inactive == 0 })
}

func TestCloseUserAndSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a1, hello1 := e.connect(t, "tok-alice", "")
	a2, _ := e.connect(t, "tok-alice2", "")
	b, _ := e.connect(t, "tok-bob", "")

	e.hub.CloseSession("sess-alice")
	a1.requireClosed(websocket.CloseNormalClosure)
	eventually(t, func() bool { return e.hub.UserConnectionCount("alice") == 1 })
	e.publish(t, "posted", nil, Broadcast{UserID: "alice"})
	a2.readEvent("posted", 1)

	e.hub.CloseUser("alice")
	a2.requireClosed(websocket.CloseNormalClosure)
	eventually(t, func() bool { return e.hub.UserConnectionCount("alice") == 0 })
	require.Zero(t, e.hub.Stats().Inactive) // forgotten, not kept for a resume

	_, hello3 := e.connect(t, "tok-alice", resumeQuery(hello1, 1))
	require.NotEqual(t, hello1.Data["connection_id"], hello3.Data["connection_id"])

	e.publish(t, "posted", nil, Broadcast{UserID: "bob"})
	b.readEvent("posted", 1)
}

func TestStopSendsGoingAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a, _ := e.connect(t, "tok-alice", "")
	b, _ := e.connect(t, "tok-bob", "")
	pending, _, err := e.dial(t, nil, "") // not authenticated yet
	require.NoError(t, err)

	// Clients read while the hub stops: it waits for their close replies.
	codes := make(chan int, 3)
	for _, c := range []*client{a, b, pending} {
		go func() { // ends at the close frame or a read error
			for {
				_, err := c.tryRead()
				if err != nil {
					code := -1
					if ce, ok := err.(*websocket.CloseError); ok {
						code = ce.Code
					}
					codes <- code
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, e.hub.Stop(ctx))
	for range 3 {
		require.Equal(t, websocket.CloseGoingAway, <-codes)
	}
	require.Zero(t, e.hub.ConnectionCount())
	require.ErrorIs(t, e.hub.Publish(ctx, &Event{Name: "posted"}), ErrNotRunning)
	_, resp, err := e.dial(t, bearer("tok-alice"), "")
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NoError(t, e.hub.Stop(ctx)) // idempotent
	require.Error(t, e.hub.Start(ctx))
}

func TestOriginCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		siteURL string
		origin  string // "host" is replaced by the test server's host
		ok      bool
	}{
		{"no origin", "https://chat.example.com", "", true},
		{"null", "https://chat.example.com", "null", false},
		{"site url", "https://chat.example.com/subpath", "https://chat.example.com", true},
		{"site url, case and default port", "https://chat.example.com", "https://CHAT.example.com:443", true},
		{"other scheme", "https://chat.example.com", "http://chat.example.com", false},
		{"other host", "https://chat.example.com", "https://evil.example.com", false},
		{"other port", "https://chat.example.com", "https://chat.example.com:8443", false},
		{"garbage", "https://chat.example.com", "::", false},
		{"no site url, same host", "", "http://host", true},
		{"no site url, other host", "", "http://evil.example.com", false},
		{"invalid site url fails closed", "not a url", "http://host", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *Options) { o.SiteURL = tt.siteURL })
			h := bearer("tok-alice")
			if tt.origin != "" {
				h.Set("Origin", strings.Replace(tt.origin, "host", strings.TrimPrefix(e.srv.URL, "http://"), 1))
			}
			c, resp, err := e.dial(t, h, "")
			if !tt.ok {
				require.Error(t, err)
				require.Equal(t, http.StatusForbidden, resp.StatusCode)
				return
			}
			require.NoError(t, err)
			c.readEvent("hello", 0)
		})
	}
}

func TestNotAnUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	resp, err := http.Get(e.srv.URL + "/api/v4/websocket")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
