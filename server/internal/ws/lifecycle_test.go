package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// A reconnect that takes over a socket whose client has stopped reading (a
// half-open connection, as after a network switch) is neither held up by
// waiting for that client's close reply nor closed by the authentication
// timeout while it waits for the old socket to let go.
func TestReconnectTakesOverHalfOpenSocket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		seq   func(hello frame) string
		first string // first event the new socket gets
	}{
		{name: "replay", seq: func(h frame) string { return resumeQuery(h, 1) }, first: "posted"},
		{name: "lost: hello", seq: func(h frame) string { return resumeQuery(h, 9) }, first: "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// An authentication timeout well below the 5 s the old pump
			// used to wait for the dead client's close reply.
			e := newEnv(t, func(o *Options) { o.AuthTimeout = time.Second })
			_, hello := e.connect(t, "tok-alice", "")
			// From here on the old client reads nothing: it neither takes
			// this event nor answers the close frame.
			e.publish(t, "posted", map[string]any{"n": 1}, Broadcast{UserID: "alice"})

			c2, _, err := e.dial(t, bearer("tok-alice"), tt.seq(hello))
			require.NoError(t, err)
			f := c2.read()
			require.Equal(t, tt.first, f.Event, "got %s", f.raw)
			if tt.first == "hello" {
				require.EqualValues(t, 0, *f.Seq)
				require.NotEqual(t, hello.Data["connection_id"], f.Data["connection_id"])
			} else {
				require.EqualValues(t, 1, *f.Seq)
				require.EqualValues(t, 1, f.Data["n"])
			}
			e.publish(t, "marker", nil, Broadcast{UserID: "alice"})
			c2.readEvent("marker", *f.Seq+1)
			require.Equal(t, 1, e.hub.UserConnectionCount("alice"))
		})
	}
}

// expiringAuth gives alice's sessions an expiry ttl after now; the others
// never expire.
type expiringAuth struct {
	now func() time.Time
	ttl time.Duration
}

func (a expiringAuth) Authenticate(ctx context.Context, token string) (Session, error) {
	s, err := fakeAuth{}.Authenticate(ctx, token)
	if s.UserID == "alice" {
		s.ExpiresAt = a.now().Add(a.ttl).UnixMilli()
	}
	return s, err
}

// wireItem is one thing a client saw, in wire order: a frame or a ping, or
// the error that ended its reading.
type wireItem struct {
	f    frame
	ping bool
	err  error
}

// stream reads c in the background until it fails and reports what it sees,
// pings included, in wire order.
func (c *client) stream(t *testing.T) <-chan wireItem {
	items := make(chan wireItem, 16)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	c.ws.SetPingHandler(func(data string) error {
		_ = c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(ioTimeout))
		select {
		case items <- wireItem{ping: true}:
		case <-done:
		}
		return nil
	})
	go func() { // ends at the first read error or when the test ends
		for {
			f, err := c.tryRead()
			select {
			case items <- wireItem{f: f, err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return items
}

// A socket whose session expires is closed with 1008 at the next ping tick,
// by the hub's clock; one at its expiry instant, or without one, stays.
func TestExpiredSessionClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) {
		o.Auth = expiringAuth{now: o.Now, ttl: time.Hour}
		o.PingInterval = 5 * time.Millisecond
	})
	alice, _ := e.connect(t, "tok-alice", "")
	bob, _ := e.connect(t, "tok-bob", "")
	items := alice.stream(t)
	next := func() wireItem {
		t.Helper()
		select {
		case it := <-items:
			return it
		case <-time.After(ioTimeout):
			t.Fatal("alice saw nothing")
			return wireItem{}
		}
	}

	// At the expiry instant the session is still valid (model.Session.IsExpired).
	e.clock.Advance(time.Hour)
	e.publish(t, "marker", nil, Broadcast{UserID: "alice"})
	for it := next(); it.f.Event != "marker"; it = next() {
		require.NoError(t, it.err)
	}
	// The pump wrote this ping after the marker, so after the clock moved.
	for it := next(); !it.ping; it = next() {
		require.NoError(t, it.err)
	}

	e.clock.Advance(time.Millisecond)
	var err error
	for err == nil { // frames and pings until the close
		err = next().err
	}
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	require.Equal(t, "session expired", ce.Text)
	eventually(t, func() bool { return e.hub.UserConnectionCount("alice") == 0 })

	e.publish(t, "posted", nil, Broadcast{UserID: "bob"})
	bob.readEvent("posted", 1)
}

// Events outlive the request that caused them: a context cancelled before or
// during Publish loses none of them.
func TestPublishWithCancelledContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.Audience = boundedAudience{testAudience} })
	clients := map[string]*client{}
	seqs := map[string]int64{}
	var carolConn string
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		c, hello := e.connect(t, "tok-"+u, "")
		clients[u] = c
		if u == "carol" {
			carolConn = hello.Data["connection_id"].(string)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	const n = 20 // each event used to be lost with a chance of one in two
	tests := []struct {
		name string
		b    Broadcast
		want []string
	}{
		{"user", Broadcast{UserID: "bob"}, []string{"bob"}},
		{"channel", Broadcast{ChannelID: "town"}, []string{"alice", "bob", "dave"}},
		{"team", Broadcast{TeamID: "t1"}, []string{"alice", "carol"}},
		{"everyone", Broadcast{}, []string{"alice", "bob", "carol", "dave"}},
		{"connection", Broadcast{ConnectionID: carolConn}, []string{"carol"}},
	}
	// Not parallel: the cases share the four connections.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range n {
				require.NoError(t, e.hub.Publish(ctx, &Event{Name: "posted", Data: map[string]any{"i": i}, Broadcast: tt.b}))
			}
			for u, c := range clients {
				require.NoError(t, e.hub.Publish(ctx, &Event{Name: "marker", Broadcast: Broadcast{UserID: u}}))
				if contains(tt.want, u) {
					for i := range n {
						seqs[u]++
						f := c.readEvent("posted", seqs[u])
						require.EqualValues(t, i, f.Data["i"], "user %s", u)
					}
				}
				seqs[u]++
				c.readEvent("marker", seqs[u])
			}
		})
	}
}

// requireBounded fails unless ctx is live and ends within opTimeout, as the
// app's database calls need.
func requireBounded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, ok := ctx.Deadline()
	if !ok {
		return errors.New("context without a deadline")
	}
	if time.Until(d) > opTimeout {
		return fmt.Errorf("deadline %v away", time.Until(d))
	}
	return nil
}

type boundedAudience struct{ fakeAudience }

func (a boundedAudience) ChannelMembers(ctx context.Context, id string) ([]string, error) {
	if err := requireBounded(ctx); err != nil {
		return nil, err
	}
	return a.fakeAudience.ChannelMembers(ctx, id)
}

func (a boundedAudience) TeamMembers(ctx context.Context, id string) ([]string, error) {
	if err := requireBounded(ctx); err != nil {
		return nil, err
	}
	return a.fakeAudience.TeamMembers(ctx, id)
}

type boundedAuth struct{}

func (boundedAuth) Authenticate(ctx context.Context, token string) (Session, error) {
	if err := requireBounded(ctx); err != nil {
		return Session{}, err
	}
	return fakeAuth{}.Authenticate(ctx, token)
}

type boundedActions struct{}

func (boundedActions) HandleAction(ctx context.Context, s Session, connID, action string, data json.RawMessage) (any, error) {
	if err := requireBounded(ctx); err != nil {
		return nil, err
	}
	return fakeActions{}.HandleAction(ctx, s, connID, action, data)
}

// Authentication, both ways, and actions run on contexts with a deadline.
func TestAppCallsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) {
		o.Auth = boundedAuth{}
		o.Actions = boundedActions{}
	})
	c, _ := e.connect(t, "tok-alice", "")
	seq := c.send("echo", map[string]any{"x": 1})
	r := c.read()
	require.Equal(t, seq, r.SeqReply)
	require.Equal(t, "OK", r.Status, "got %s", r.raw)

	c2, _, err := e.dial(t, nil, "")
	require.NoError(t, err)
	c2.send("authentication_challenge", map[string]any{"token": "tok-bob"})
	require.Equal(t, "OK", c2.read().Status)
	c2.readEvent("hello", 0)
}
