package ws

import (
	"context"
	"fmt"
	"sync"
)

// presence carries changes of users' live socket counts from the shards to
// OnConnections. A shard only records the latest count (never blocking, never
// dropping); one worker goroutine of the hub makes the calls, so a slow
// callback delays statuses but never a shard. Updates of one user coalesce:
// the callback sees the latest count, in order with that user's earlier ones.
type presence struct {
	wake chan struct{} // capacity 1: "there is something pending"

	mu      sync.Mutex     // guards the fields below
	pending map[string]int // user id → live sockets
	order   []string       // users in pending, oldest first
}

func newPresence() *presence {
	return &presence{wake: make(chan struct{}, 1), pending: make(map[string]int)}
}

// put records that userID now has live sockets. It never blocks.
func (p *presence) put(userID string, live int) {
	p.mu.Lock()
	if _, ok := p.pending[userID]; !ok {
		p.order = append(p.order, userID)
	}
	p.pending[userID] = live
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

type presenceUpdate struct {
	userID string
	live   int
}

// take empties the pending updates, oldest first.
func (p *presence) take() []presenceUpdate {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]presenceUpdate, len(p.order))
	for i, u := range p.order {
		out[i] = presenceUpdate{u, p.pending[u]}
	}
	clear(p.pending)
	p.order = p.order[:0]
	return out
}

// liveChanged records the current live socket count of userID, if anyone
// listens. Shards call it after every change of a user's sockets.
func (s *shard) liveChanged(userID string) {
	if p := s.hub.presence; p != nil {
		p.put(userID, s.countUser(userID))
	}
}

// presenceLoop calls OnConnections with the pending updates until the hub
// stops; updates still pending then are dropped.
func (h *Hub) presenceLoop() {
	defer h.wg.Done()
	// Callbacks in flight are cancelled when the hub stops.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends with the loop at the latest
		select {
		case <-h.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-h.presence.wake:
			for _, u := range h.presence.take() {
				select {
				case <-h.done:
					return
				default:
				}
				h.callback(ctx, "connections", func(ctx context.Context) { h.opts.OnConnections(ctx, u.userID, u.live) })
			}
		case <-h.done:
			return
		}
	}
}

// activity tells OnActivity that an authenticated client sent an action.
func (h *Hub) activity(ctx context.Context, userID, action string) {
	if h.opts.OnActivity == nil {
		return
	}
	h.callback(ctx, "activity", func(ctx context.Context) { h.opts.OnActivity(ctx, userID, action) })
}

// callback runs fn under opTimeout, turning a panic into a log line.
func (h *Hub) callback(parent context.Context, name string, fn func(context.Context)) {
	ctx, cancel := context.WithTimeout(parent, opTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			h.opts.Logger.Error("ws: callback panicked", "callback", name, "err", fmt.Errorf("panic: %v", p))
		}
	}()
	fn(ctx)
}
