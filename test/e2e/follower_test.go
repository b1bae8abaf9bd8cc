package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Reconnect bounds of a follower: attempts and the backoff between them,
// doubling from the first to the last.
const (
	reconnectAttempts = 40
	backoffFirst      = 20 * time.Millisecond
	backoffMax        = time.Second
	// resyncMargin is how far before the newest post it saw a follower
	// asks for the channel's changes: events from different nodes need
	// not arrive in creation order.
	resyncMargin = 10 * time.Second
)

// follower is a user's WebSocket that behaves as a Mattermost client:
// when the socket breaks it reconnects with connection_id and
// sequence_number; when the server answers with a new connection (a hello:
// the node it reached does not know the old one) it resyncs the channel
// with GET /channels/{id}/posts?since=. It collects the channel's post
// ids from both.
type follower struct {
	name    string
	rest    *api // the user's client, for the resync
	dialer  *websocket.Dialer
	base    string // where it connects (and reconnects)
	channel string
	ready   chan struct{} // closed at the first hello

	mu         sync.Mutex // guards the fields below
	posts      map[string]bool
	newest     int64 // the newest create_at seen, Unix ms
	reconnects []reconnect
	gaps       []string // seq jumps on one connection
	err        error    // why it gave up
}

// reconnect is one broken socket and its replacement.
type reconnect struct {
	lost, back time.Time
	// fresh says the server started a new connection (hello) rather than
	// resuming the old one; resynced counts the posts the resync returned.
	fresh    bool
	resynced int
}

func newFollower(name string, rest *api, d *websocket.Dialer, base, channelID string) *follower {
	return &follower{name: name, rest: rest, dialer: d, base: base, channel: channelID,
		ready: make(chan struct{}), posts: map[string]bool{}}
}

// run follows the channel until ctx ends or it gives up (err).
func (f *follower) run(ctx context.Context) {
	conn, err := dialWS(ctx, f.dialer, f.base, f.rest.token, nil)
	if err != nil {
		f.fail(err)
		return
	}
	connID, seq := "", int64(-1)
	for {
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		err := f.read(ctx, conn, &connID, &seq)
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return
		}
		lost := time.Now()
		conn, err = f.redial(ctx, resume{connID: connID, next: seq + 1}, err)
		if err != nil {
			if ctx.Err() == nil {
				f.fail(err)
			}
			return
		}
		f.mu.Lock()
		f.reconnects = append(f.reconnects, reconnect{lost: lost, back: time.Now()})
		f.mu.Unlock()
	}
}

// redial reconnects with backoff, a bounded number of times.
func (f *follower) redial(ctx context.Context, r resume, cause error) (*websocket.Conn, error) {
	wait := backoffFirst
	var last error
	for range reconnectAttempts {
		conn, err := dialWS(ctx, f.dialer, f.base, f.rest.token, &r)
		if err == nil {
			return conn, nil
		}
		last = err
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, backoffMax)
	}
	return nil, fmt.Errorf("%s: socket lost (%v), no reconnect in %d attempts: %w", f.name, cause, reconnectAttempts, last)
}

// read handles the connection's frames until it breaks.
func (f *follower) read(ctx context.Context, conn *websocket.Conn, connID *string, seq *int64) error {
	for {
		// No deadline: the server pings, and a dead node is noticed by
		// nginx or TCP; ctx closes the socket at the end.
		ev, err := readEvent(conn, time.Time{})
		if err != nil {
			return err
		}
		if ev.isReply() {
			continue
		}
		if ev.Event == "hello" {
			id := ev.str("connection_id")
			fresh := *connID != ""
			*connID, *seq = id, ev.Seq
			if !fresh {
				close(f.ready)
			} else {
				if err := f.resync(ctx); err != nil {
					return err
				}
			}
			continue
		}
		if ev.Seq != *seq+1 {
			f.mu.Lock()
			f.gaps = append(f.gaps, fmt.Sprintf("connection %s: seq %d after %d (%s)", *connID, ev.Seq, *seq, ev.Event))
			f.mu.Unlock()
		}
		*seq = ev.Seq
		if ev.Event != "posted" || ev.Broadcast.ChannelID != f.channel {
			continue
		}
		p, err := ev.post()
		if err != nil {
			return fmt.Errorf("%s: bad posted event: %w", f.name, err)
		}
		f.add(p)
	}
}

// resync fetches the channel's posts since shortly before the newest one
// seen, as a Mattermost client does after a reconnect that got a new
// connection.
func (f *follower) resync(ctx context.Context) error {
	f.mu.Lock()
	since := f.newest - resyncMargin.Milliseconds()
	f.mu.Unlock()
	l, err := f.rest.postsSince(ctx, f.channel, since)
	if err != nil {
		return fmt.Errorf("%s: resync: %w", f.name, err)
	}
	for _, p := range l.Posts {
		f.add(p)
	}
	f.mu.Lock()
	if n := len(f.reconnects); n > 0 {
		// The reconnect is recorded once the dial returned, before this
		// connection's first frame was read.
		f.reconnects[n-1].fresh = true
		f.reconnects[n-1].resynced = len(l.Posts)
	} else {
		f.gaps = append(f.gaps, "a hello with a new connection id without a reconnect")
	}
	f.mu.Unlock()
	return nil
}

func (f *follower) add(p post) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts[p.ID] = true
	f.newest = max(f.newest, p.CreateAt)
}

func (f *follower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// missing returns how many of ids the follower has not seen, one of
// them, and why it gave up if it did.
func (f *follower) missing(ids []string) (int, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, one := 0, ""
	for _, id := range ids {
		if !f.posts[id] {
			n++
			one = id
		}
	}
	return n, one, f.err
}

// state returns a copy of the reconnects and gaps.
func (f *follower) state() ([]reconnect, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]reconnect(nil), f.reconnects...), append([]string(nil), f.gaps...)
}

// waitAll polls until every follower has seen every id, or timeout.
func waitAll(ctx context.Context, fs []*follower, ids []string, timeout time.Duration) error {
	return poll(ctx, timeout, func(context.Context) error {
		var errs []error
		for _, f := range fs {
			n, one, err := f.missing(ids)
			if err != nil {
				return &stopPolling{fmt.Errorf("%s gave up: %w", f.name, err)}
			}
			if n > 0 {
				errs = append(errs, fmt.Errorf("%s misses %d of %d posts (e.g. %s)", f.name, n, len(ids), one))
			}
		}
		return errors.Join(errs...)
	})
}
