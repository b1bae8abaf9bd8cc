package ws

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// liveRecorder records OnConnections and OnActivity calls.
type liveRecorder struct {
	mu       sync.Mutex // guards the fields below
	live     map[string]int
	calls    map[string]int
	activity []string
}

func newLiveRecorder() *liveRecorder {
	return &liveRecorder{live: map[string]int{}, calls: map[string]int{}}
}

func (r *liveRecorder) onConnections(_ context.Context, userID string, live int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[userID] = live
	r.calls[userID]++
}

func (r *liveRecorder) onActivity(_ context.Context, userID, action string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.activity = append(r.activity, userID+":"+action)
}

func (r *liveRecorder) liveOf(userID string) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.live[userID]
	return n, ok
}

func (r *liveRecorder) activities() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.activity...)
}

func TestPresenceCallbacks(t *testing.T) {
	t.Parallel()
	rec := newLiveRecorder()
	e := newEnv(t, func(o *Options) {
		o.OnConnections = rec.onConnections
		o.OnActivity = rec.onActivity
	})
	waitLive := func(user string, want int) {
		t.Helper()
		eventually(t, func() bool { n, ok := rec.liveOf(user); return ok && n == want })
	}

	c1, _ := e.connect(t, "tok-alice", "")
	waitLive("alice", 1)
	c2, _ := e.connect(t, "tok-alice2", "") // another session of the same user
	waitLive("alice", 2)

	e.leave(t, c1, "alice", 1)
	waitLive("alice", 1)
	e.leave(t, c2, "alice", 0)
	waitLive("alice", 0)

	// Actions report activity; the protocol's ping action too, for the
	// callee to ignore.
	c3, _ := e.connect(t, "tok-bob", "")
	waitLive("bob", 1)
	c3.send("echo", nil)
	c3.read()
	c3.send("ping", nil)
	c3.read()
	require.Equal(t, []string{"bob:echo", "bob:ping"}, rec.activities())
}

func TestPresenceResumeKeepsCount(t *testing.T) {
	t.Parallel()
	rec := newLiveRecorder()
	e := newEnv(t, func(o *Options) { o.OnConnections = rec.onConnections })
	c, hello := e.connect(t, "tok-carol", "")
	waitFor := func(want int) {
		t.Helper()
		eventually(t, func() bool { n, ok := rec.liveOf("carol"); return ok && n == want })
	}
	waitFor(1)
	e.leave(t, c, "carol", 0)
	waitFor(0)
	// A reliable reconnect brings the same connection back to life.
	c2, _, err := e.dial(t, bearer("tok-carol"), resumeQuery(hello, 1))
	require.NoError(t, err)
	waitFor(1)
	e.leave(t, c2, "carol", 0)
	waitFor(0)
}

func TestPresenceSlowCallbackNeverBlocksShards(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	e := newEnv(t, func(o *Options) {
		o.Shards = 1
		o.OnConnections = func(ctx context.Context, _ string, _ int) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	defer close(release)
	// The callback is stuck, yet connections, events and counts go on.
	for range 3 {
		c, _ := e.connect(t, "tok-dave", "")
		e.publish(t, "posted", map[string]any{"n": 1}, Broadcast{UserID: "dave"})
		c.readEvent("posted", 1)
		e.leave(t, c, "dave", 0)
	}
}
