package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// ioTimeout bounds every client read so a broken hub fails a test instead of
// hanging it; no test asserts how long anything took.
const ioTimeout = 10 * time.Second

var testSessions = map[string]Session{
	"tok-alice":  {ID: "sess-alice", UserID: "alice"},
	"tok-alice2": {ID: "sess-alice2", UserID: "alice"},
	"tok-bob":    {ID: "sess-bob", UserID: "bob"},
	"tok-carol":  {ID: "sess-carol", UserID: "carol"},
	"tok-dave":   {ID: "sess-dave", UserID: "dave", IsAdmin: true},
	"tok-slow":   {ID: "sess-slow", UserID: "slow"},
	"tok-fast1":  {ID: "sess-fast1", UserID: "fast1"},
	"tok-fast2":  {ID: "sess-fast2", UserID: "fast2"},
}

type fakeAuth struct{}

func (fakeAuth) Authenticate(_ context.Context, token string) (Session, error) {
	s, ok := testSessions[token]
	if !ok {
		return Session{}, errors.New("invalid token")
	}
	return s, nil
}

type fakeAudience struct {
	channels map[string][]string
	teams    map[string][]string
}

func (a fakeAudience) ChannelMembers(_ context.Context, id string) ([]string, error) {
	m, ok := a.channels[id]
	if !ok {
		return nil, errors.New("no such channel")
	}
	return m, nil
}

func (a fakeAudience) TeamMembers(_ context.Context, id string) ([]string, error) {
	m, ok := a.teams[id]
	if !ok {
		return nil, errors.New("no such team")
	}
	return m, nil
}

var testAudience = fakeAudience{
	channels: map[string][]string{
		"town":  {"alice", "bob", "dave"},
		"bench": {},
	},
	teams: map[string][]string{"t1": {"alice", "carol"}},
}

type testAppError struct{}

func (testAppError) Error() string { return "forbidden" }
func (testAppError) AppErrorJSON() []byte {
	return []byte(`{"id":"api.test.forbidden.app_error","message":"nope","detailed_error":"","status_code":403}`)
}

type fakeActions struct{}

func (fakeActions) HandleAction(_ context.Context, s Session, connID, action string, data json.RawMessage) (any, error) {
	switch action {
	case "echo":
		return map[string]any{"user_id": s.UserID, "connection_id": connID, "data": data}, nil
	case "app_fail":
		return nil, fmt.Errorf("wrapped: %w", testAppError{})
	case "boom":
		return nil, errors.New("database on fire")
	case "panic":
		panic("handler bug")
	}
	return nil, testAppError{}
}

// tokenFromRequest mirrors Mattermost: the cookie wins over the header.
func tokenFromRequest(r *http.Request) (string, bool) {
	if c, err := r.Cookie("MMAUTHTOKEN"); err == nil && c.Value != "" {
		return c.Value, true
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return a[7:], false
	}
	return "", false
}

type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	hub   *Hub
	srv   *httptest.Server
	url   string
	clock *fakeClock
	opts  Options
}

func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	opts := Options{
		Auth:             fakeAuth{},
		Audience:         testAudience,
		Actions:          fakeActions{},
		TokenFromRequest: tokenFromRequest,
		ServerVersion:    "10.5.0.1.abc.false",
		Hostname:         "node-1",
		Shards:           4,
		Now:              clock.Now,
	}
	if mod != nil {
		mod(&opts)
	}
	hub := New(opts)
	require.NoError(t, hub.Start(context.Background()))
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, hub.Stop(ctx))
		srv.Close()
	})
	return &env{hub: hub, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http"), clock: clock, opts: opts}
}

// frame is any server frame: an event or a reply.
type frame struct {
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Broadcast *struct {
		OmitUsers        map[string]bool `json:"omit_users"`
		UserID           string          `json:"user_id"`
		ChannelID        string          `json:"channel_id"`
		TeamID           string          `json:"team_id"`
		ConnectionID     string          `json:"connection_id"`
		OmitConnectionID string          `json:"omit_connection_id"`
	} `json:"broadcast"`
	Seq      *int64 `json:"seq"`
	Status   string `json:"status"`
	SeqReply int64  `json:"seq_reply"`
	Error    *struct {
		ID            string `json:"id"`
		Message       string `json:"message"`
		DetailedError string `json:"detailed_error"`
		StatusCode    int    `json:"status_code"`
	} `json:"error"`
	raw []byte
}

type client struct {
	t   testing.TB
	ws  *websocket.Conn
	seq int64
}

func (e *env) dial(t testing.TB, header http.Header, query string) (*client, *http.Response, error) {
	t.Helper()
	u := e.url + "/api/v4/websocket"
	if query != "" {
		u += "?" + query
	}
	c, resp, err := websocket.DefaultDialer.Dial(u, header)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, ws: c}, resp, nil
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// connect dials with a Bearer token and returns the client and its hello.
func (e *env) connect(t testing.TB, token, query string) (*client, frame) {
	t.Helper()
	c, _, err := e.dial(t, bearer(token), query)
	require.NoError(t, err)
	hello := c.read()
	require.Equal(t, "hello", hello.Event, "got %s", hello.raw)
	return c, hello
}

func (c *client) read() frame {
	c.t.Helper()
	f, err := c.tryRead()
	require.NoError(c.t, err)
	return f
}

func (c *client) tryRead() (frame, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(ioTimeout))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	f := frame{raw: b}
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, fmt.Errorf("decode %s: %w", b, err)
	}
	return f, nil
}

// readEvent reads the next frame and requires it to be event name with seq.
func (c *client) readEvent(name string, seq int64) frame {
	c.t.Helper()
	f := c.read()
	require.Equal(c.t, name, f.Event, "got %s", f.raw)
	require.NotNil(c.t, f.Seq, "got %s", f.raw)
	require.Equal(c.t, seq, *f.Seq, "got %s", f.raw)
	return f
}

func (c *client) send(action string, data any) int64 {
	c.t.Helper()
	c.seq++
	require.NoError(c.t, c.ws.WriteJSON(map[string]any{"seq": c.seq, "action": action, "data": data}))
	return c.seq
}

func (c *client) sendRaw(b string) {
	c.t.Helper()
	require.NoError(c.t, c.ws.WriteMessage(websocket.TextMessage, []byte(b)))
}

// requireClosed reads until the server's close frame and requires its code.
func (c *client) requireClosed(code int) {
	c.t.Helper()
	for {
		_, err := c.tryRead()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(c.t, err, &ce)
		require.Equal(c.t, code, ce.Code, "close %v", ce)
		return
	}
}

// leave closes the client's socket and waits until the hub has noticed.
func (e *env) leave(t testing.TB, c *client, userID string, remaining int) {
	t.Helper()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(ioTimeout))
	_ = c.ws.Close()
	eventually(t, func() bool { return e.hub.UserConnectionCount(userID) == remaining })
}

func (e *env) publish(t testing.TB, name string, data map[string]any, b Broadcast) {
	t.Helper()
	require.NoError(t, e.hub.Publish(context.Background(), &Event{Name: name, Data: data, Broadcast: b}))
}

func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, ioTimeout, 2*time.Millisecond)
}
