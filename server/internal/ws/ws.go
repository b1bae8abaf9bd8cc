// Package ws is the WebSocket hub behind GET /api/v4/websocket. It speaks the
// Mattermost WebSocket protocol (hello, per-connection seq, replies, reliable
// reconnect with replay) and knows nothing about the database: the app hands it
// an Authenticator, an Audience and an ActionHandler.
//
// Connections are sharded by user id; each shard is owned by one goroutine that
// holds its user → connections map and never blocks on a socket. Every
// connection has a bounded send queue drained by its own write pump; a client
// that lets its queue fill up is dropped. Each published event is serialised
// once and the same bytes go to every recipient, each connection appending only
// its own `,"seq":N}`.
package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Session is what the hub needs of an authenticated session.
type Session struct {
	ID        string
	UserID    string
	IsAdmin   bool
	ExpiresAt int64 // ms since the epoch, 0: never; its sockets close at the first ping after it
}

// expired reports whether the session has expired at now, as
// model.Session.IsExpired does.
func (s Session) expired(now time.Time) bool {
	return s.ExpiresAt > 0 && now.UnixMilli() > s.ExpiresAt
}

// Authenticator resolves a session token. An error means the token is invalid
// or expired.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Session, error)
}

// Audience tells who may receive channel- and team-scoped events. It may hit
// the database (the app caches it); it is called in the publisher's goroutine.
type Audience interface {
	ChannelMembers(ctx context.Context, channelID string) ([]string, error)
	TeamMembers(ctx context.Context, teamID string) ([]string, error)
}

// ActionHandler serves client → server actions other than
// authentication_challenge and ping. The reply is rendered as
// {"status":"OK","seq_reply":N,"data":reply}; it should marshal to a JSON
// object, which is what Mattermost clients decode. An error that has an
// `AppErrorJSON() []byte` method is sent verbatim as the reply's "error";
// any other error becomes a generic 500 AppError and is logged.
type ActionHandler interface {
	HandleAction(ctx context.Context, s Session, connID string, action string, data json.RawMessage) (reply any, err error)
}

// Broadcast says who receives an Event, with Mattermost's precedence:
// ConnectionID (only that connection; with UserID it must be that user's),
// else UserID (only that user), else ChannelID (its members), else TeamID
// (its members), else everyone.
// OmitUsers and OmitConnectionID exclude recipients; OnlyAdmins and
// OnlyNonAdmins are Mattermost's contains_sensitive_data and
// contains_sanitized_data and are not sent to clients.
//
// The JSON tags of Broadcast and Event are how an event crosses the
// cluster between nodes; clients get Mattermost's wire shapes (wire.go).
type Broadcast struct {
	UserID           string          `json:"user_id,omitempty"`
	ChannelID        string          `json:"channel_id,omitempty"`
	TeamID           string          `json:"team_id,omitempty"`
	ConnectionID     string          `json:"connection_id,omitempty"`
	OmitConnectionID string          `json:"omit_connection_id,omitempty"`
	OmitUsers        map[string]bool `json:"omit_users,omitempty"`
	OnlyAdmins       bool            `json:"only_admins,omitempty"`
	OnlyNonAdmins    bool            `json:"only_non_admins,omitempty"`
}

// Event is a server → client event such as "posted". Data is marshalled with
// encoding/json when the event is published.
type Event struct {
	Name      string         `json:"name"`
	Data      map[string]any `json:"data"`
	Broadcast Broadcast      `json:"broadcast"`
}

// Options configures a Hub. Zero values take the defaults noted per field.
type Options struct {
	Auth             Authenticator // required; nil rejects every token
	Audience         Audience      // needed for channel- and team-scoped events
	Actions          ActionHandler // nil: every action other than ping fails
	TokenFromRequest func(r *http.Request) (token string, fromCookie bool)

	SiteURL       string       // Origin check; empty: the Origin must match the request Host
	Logger        *slog.Logger // nil: discard
	ServerVersion string       // hello server_version and ping version
	Hostname      string       // hello server_hostname; empty: os.Hostname()

	Shards          int           // 0: runtime.NumCPU()
	SendQueueSize   int           // events queued per connection; 0: 256
	DeadQueueSize   int           // sent events kept for replay; 0: 128
	InactiveTimeout time.Duration // how long a dropped connection can be resumed; 0: 5m
	PingInterval    time.Duration // 0: 60s
	ReadTimeout     time.Duration // refreshed by every frame and pong; 0: 100s
	WriteTimeout    time.Duration // 0: 30s
	AuthTimeout     time.Duration // 0: 5s
	MaxFrameSize    int64         // largest client frame; 0: 64 KiB
	Now             func() time.Time

	// OnConnections, if set, is told a user's number of live sockets on
	// this hub after it changes (a socket registered, resumed, closed or
	// dropped). One goroutine of the hub makes the calls, never a shard;
	// a user's updates come in order and may coalesce into the latest.
	OnConnections func(ctx context.Context, userID string, live int)
	// OnActivity, if set, is called in the socket's read goroutine for
	// every action an authenticated client sends (ping included; the
	// callee decides what counts as activity), before the action runs.
	OnActivity func(ctx context.Context, userID, action string)
}

func (o *Options) setDefaults() {
	if o.Auth == nil {
		o.Auth = rejectAll{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.Shards <= 0 {
		o.Shards = runtime.NumCPU()
	}
	if o.SendQueueSize <= 0 {
		o.SendQueueSize = 256
	}
	if o.DeadQueueSize <= 0 {
		o.DeadQueueSize = 128
	}
	if o.InactiveTimeout <= 0 {
		o.InactiveTimeout = 5 * time.Minute
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 60 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 100 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 5 * time.Second
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = 64 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// rejectAll stands in for a missing Authenticator: nobody gets in.
type rejectAll struct{}

func (rejectAll) Authenticate(context.Context, string) (Session, error) {
	return Session{}, errors.New("ws: no authenticator configured")
}

// ErrNotRunning is returned by Publish before Start and after Stop.
var ErrNotRunning = errors.New("ws: hub is not running")

// Stats are counters for metrics.
type Stats struct {
	Connections        int64 // registered connections with an open socket
	Inactive           int64 // dropped connections kept for a reconnect
	SlowClientsDropped int64 // connections closed because their send queue was full
	EventsSkipped      int64 // typing/status events skipped because a queue was over half full
	ReconnectsReplayed int64 // resumed with missed events replayed
	ReconnectsResumed  int64 // resumed with nothing missed
	ReconnectsReset    int64 // resume refused (lost or too old): new connection id and hello
}

type hubState int

const (
	stateNew hubState = iota
	stateRunning
	stateStopped
)

// Hub is the WebSocket hub. Create it with New, then Start it.
type Hub struct {
	opts       Options
	siteOrigin string // "scheme://host" of SiteURL, "" when unset
	badSiteURL bool
	upgrader   websocket.Upgrader
	seed       maphash.Seed
	shards     []*shard
	presence   *presence     // nil without OnConnections
	done       chan struct{} // closed by Stop
	stopped    chan struct{} // closed when every goroutine has returned
	wg         sync.WaitGroup

	active, inactive                  atomic.Int64
	slowDropped, skipped              atomic.Int64
	replayed, resumed, resumeRefusals atomic.Int64

	mu      sync.Mutex // guards the fields below
	state   hubState
	sockets map[*socket]struct{}
}

// New returns a Hub that is not started yet.
func New(opts Options) *Hub {
	opts.setDefaults()
	h := &Hub{
		opts:    opts,
		seed:    maphash.MakeSeed(),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		sockets: make(map[*socket]struct{}),
	}
	if opts.SiteURL != "" {
		u, err := url.Parse(opts.SiteURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			// Fail closed: no browser origin is accepted until SiteURL is fixed.
			opts.Logger.Error("ws: invalid site url, rejecting every origin", "site_url", opts.SiteURL)
			h.badSiteURL = true
		} else {
			h.siteOrigin = normalizeOrigin(u.Scheme, u.Host)
		}
	}
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     h.checkOrigin,
	}
	if opts.OnConnections != nil {
		h.presence = newPresence()
	}
	h.shards = make([]*shard, opts.Shards)
	for i := range h.shards {
		h.shards[i] = &shard{hub: h, in: make(chan shardMsg, 256), users: make(map[string]map[string]*conn)}
	}
	return h
}

// Start launches the shard goroutines and the reaper of inactive connections.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateNew {
		return errors.New("ws: start: hub already started or stopped")
	}
	h.state = stateRunning
	h.wg.Add(len(h.shards) + 1)
	for _, s := range h.shards {
		go s.run()
	}
	go h.reaper()
	if h.presence != nil {
		h.wg.Add(1)
		go h.presenceLoop()
	}
	h.opts.Logger.DebugContext(ctx, "ws: hub started", "shards", len(h.shards))
	return nil
}

// Stop closes every socket with 1001 "going away" and waits, bounded by ctx,
// for every goroutine of the hub to return. When ctx ends first the remaining
// sockets are closed without a close frame.
func (h *Hub) Stop(ctx context.Context) error {
	h.mu.Lock()
	if h.state != stateStopped {
		h.state = stateStopped
		close(h.done)
		go func() { // owned by Stop: ends when the hub's goroutines have
			h.wg.Wait()
			close(h.stopped)
		}()
	}
	h.mu.Unlock()
	select {
	case <-h.stopped:
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		for s := range h.sockets {
			_ = s.ws.Close()
		}
		h.mu.Unlock()
		return fmt.Errorf("ws: stop: %w", ctx.Err())
	}
}

// enter admits a new HTTP handler goroutine; the caller must call h.wg.Done.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateRunning {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *Hub) running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state == stateRunning
}

func (h *Hub) shardFor(userID string) *shard {
	return h.shards[maphash.String(h.seed, userID)%uint64(len(h.shards))]
}

// send hands msg to s; it fails only when the hub stops. It blocks only while
// s's inbox is full, and a shard never blocks on a socket, so it never blocks
// for long.
func (h *Hub) send(s *shard, msg shardMsg) error {
	select {
	case s.in <- msg:
		return nil
	case <-h.done:
		return ErrNotRunning
	}
}

// Publish delivers ev to its audience. The audience is resolved in the
// caller's goroutine; the event is serialised once and queued on every
// recipient connection. It returns once every shard has the event, not when
// clients have received it.
//
// A cancelled ctx does not stop delivery: the event has happened, and a
// client that misses it has no way to know. Publish uses ctx only for its
// values; the audience lookup gets its own deadline of opTimeout.
func (h *Hub) Publish(ctx context.Context, ev *Event) error {
	if ev == nil || ev.Name == "" {
		return errors.New("ws: publish: event without a name")
	}
	if !h.running() {
		return ErrNotRunning
	}
	b := ev.Broadcast
	frame, err := encodeEvent(ev.Name, ev.Data, b)
	if err != nil {
		return fmt.Errorf("ws: publish: %w", err)
	}
	pe := &preparedEvent{
		frame:         frame,
		connID:        b.ConnectionID,
		omitConnID:    b.OmitConnectionID,
		onlyAdmins:    b.OnlyAdmins,
		onlyNonAdmins: b.OnlyNonAdmins,
		droppable:     droppable(ev.Name),
	}

	var users []string
	switch {
	case b.UserID != "":
		// As in Mattermost, a user-scoped event ignores omit_users.
		return h.send(h.shardFor(b.UserID), shardMsg{deliver: &delivery{ev: pe, users: []string{b.UserID}}})
	case b.ConnectionID != "":
		// The connection's user is unknown here: every shard looks for it.
		return h.deliverAll(pe, b.OmitUsers)
	case b.ChannelID != "", b.TeamID != "":
		if users, err = h.audience(ctx, b); err != nil {
			return fmt.Errorf("ws: publish: %w", err)
		}
	default:
		return h.deliverAll(pe, b.OmitUsers)
	}

	buckets := make([][]string, len(h.shards))
	for _, u := range users {
		if b.OmitUsers[u] {
			continue
		}
		i := maphash.String(h.seed, u) % uint64(len(h.shards))
		buckets[i] = append(buckets[i], u)
	}
	for i, us := range buckets {
		if len(us) == 0 {
			continue
		}
		if err := h.send(h.shards[i], shardMsg{deliver: &delivery{ev: pe, users: us}}); err != nil {
			return fmt.Errorf("ws: publish: %w", err)
		}
	}
	return nil
}

// audience returns the members of b's channel, or else of its team. The
// lookup ignores the publisher's cancellation (see Publish) but is bounded.
func (h *Hub) audience(ctx context.Context, b Broadcast) ([]string, error) {
	scope := "channel"
	if b.ChannelID == "" {
		scope = "team"
	}
	if h.opts.Audience == nil {
		return nil, fmt.Errorf("%s event without an Audience", scope)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	var (
		users []string
		err   error
	)
	if b.ChannelID != "" {
		users, err = h.opts.Audience.ChannelMembers(ctx, b.ChannelID)
	} else {
		users, err = h.opts.Audience.TeamMembers(ctx, b.TeamID)
	}
	if err != nil {
		return nil, fmt.Errorf("%s members: %w", scope, err)
	}
	return users, nil
}

func (h *Hub) deliverAll(pe *preparedEvent, omit map[string]bool) error {
	pe.all = true
	pe.omitUsers = maps.Clone(omit) // the caller may reuse its map once we return
	for _, s := range h.shards {
		if err := h.send(s, shardMsg{deliver: &delivery{ev: pe}}); err != nil {
			return fmt.Errorf("ws: publish: %w", err)
		}
	}
	return nil
}

func droppable(name string) bool {
	switch name {
	case "typing", "status_change", "multiple_channels_viewed":
		return true
	}
	return false
}

// CloseSession closes, with a normal close frame, every connection of the
// session and forgets them: they cannot be resumed.
func (h *Hub) CloseSession(sessionID string) {
	if !h.running() {
		return
	}
	for _, s := range h.shards {
		_ = h.send(s, shardMsg{op: func(s *shard) { s.closeSession(sessionID) }})
	}
}

// CloseUser closes, with a normal close frame, every connection of the user
// and forgets them: they cannot be resumed.
func (h *Hub) CloseUser(userID string) {
	if !h.running() {
		return
	}
	_ = h.send(h.shardFor(userID), shardMsg{op: func(s *shard) { s.closeUser(userID) }})
}

// ConnectionCount is the number of registered connections with an open
// socket; 0 when the hub is not running.
func (h *Hub) ConnectionCount() int {
	if !h.running() {
		return 0
	}
	return int(h.active.Load())
}

// UserConnectionCount is the number of the user's connections with an open
// socket; 0 when the hub is not running.
func (h *Hub) UserConnectionCount(userID string) int {
	if !h.running() {
		return 0
	}
	reply := make(chan int, 1)
	op := func(s *shard) { reply <- s.countUser(userID) }
	if h.send(h.shardFor(userID), shardMsg{op: op}) != nil {
		return 0
	}
	select {
	case n := <-reply:
		return n
	case <-h.done:
		return 0
	}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Connections:        h.active.Load(),
		Inactive:           h.inactive.Load(),
		SlowClientsDropped: h.slowDropped.Load(),
		EventsSkipped:      h.skipped.Load(),
		ReconnectsReplayed: h.replayed.Load(),
		ReconnectsResumed:  h.resumed.Load(),
		ReconnectsReset:    h.resumeRefusals.Load(),
	}
}

// reaper forgets inactive connections once InactiveTimeout has passed.
func (h *Hub) reaper() {
	defer h.wg.Done()
	interval := max(h.opts.InactiveTimeout/4, time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.reap()
		case <-h.done:
			return
		}
	}
}

func (h *Hub) reap() {
	now := h.opts.Now()
	for _, s := range h.shards {
		_ = h.send(s, shardMsg{op: func(s *shard) { s.reap(now) }})
	}
}
