package ws

import (
	"errors"
	"time"

	"github.com/gorilla/websocket"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// conn is one Mattermost web connection: the id a client can resume, its
// queues and its seq. It outlives its socket for InactiveTimeout so that a
// reconnect can take it over.
type conn struct {
	id     string
	userID string
	queue  chan []byte // events not yet written: the shard sends, the pump receives

	// Owned by the shard goroutine.
	session       Session
	sock          *socket // nil while inactive
	inactiveSince time.Time
	lost          bool         // the queue overflowed while inactive
	pending       *registerReq // a reconnect waiting for sock to let go

	// Owned by the pump while the connection has a socket and by the shard
	// otherwise; ownership moves with the attachment and deactivate messages.
	dead    deadQueue
	nextSeq int64
}

// preparedEvent is a published event, serialised once and shared read-only by
// every shard and connection.
type preparedEvent struct {
	frame         []byte // the envelope without seq and closing brace
	all           bool
	omitUsers     map[string]bool // only with all; a private copy
	connID        string
	omitConnID    string
	onlyAdmins    bool
	onlyNonAdmins bool
	droppable     bool
}

type delivery struct {
	ev    *preparedEvent
	users []string // recipients in this shard, unless ev.all
}

// shardMsg is either a delivery or an operation run on the shard goroutine.
type shardMsg struct {
	deliver *delivery
	op      func(*shard)
}

type startMode int

const (
	startHello    startMode = iota // new connection id: hello with seq 0
	startReplay                    // resumed: replay the dead queue from seq
	startContinue                  // resumed with nothing missed
)

type registerReq struct {
	session   Session
	sock      *socket
	resumeID  string
	resumeSeq int64
	hasSeq    bool
	reply     chan registerResult // buffered: the shard replies exactly once
}

type registerResult struct {
	conn *conn
	mode startMode
	from int64 // first seq to replay
	err  error
}

var errClosedByServer = errors.New("ws: connection closed by the server")

// shard holds the connections of the users that hash to it. Only its run
// goroutine touches users and the conns in it, and it never blocks on a socket.
type shard struct {
	hub   *Hub
	in    chan shardMsg
	users map[string]map[string]*conn
}

func (s *shard) run() {
	defer s.hub.wg.Done()
	for {
		select {
		case m := <-s.in:
			if m.deliver != nil {
				s.deliver(m.deliver)
			} else {
				m.op(s)
			}
		case <-s.hub.done:
			return
		}
	}
}

func (s *shard) deliver(d *delivery) {
	if d.ev.all {
		for uid, conns := range s.users {
			if d.ev.omitUsers[uid] {
				continue
			}
			for _, c := range conns {
				s.offer(c, d.ev)
			}
		}
		return
	}
	for _, uid := range d.users {
		for _, c := range s.users[uid] {
			s.offer(c, d.ev)
		}
	}
}

// offer queues ev on c without ever blocking.
func (s *shard) offer(c *conn, ev *preparedEvent) {
	switch {
	case ev.connID != "" && c.id != ev.connID,
		ev.omitConnID != "" && c.id == ev.omitConnID,
		ev.onlyAdmins && !c.session.IsAdmin,
		ev.onlyNonAdmins && c.session.IsAdmin,
		c.lost:
		return
	}
	if ev.droppable && len(c.queue) > cap(c.queue)/2 {
		s.hub.skipped.Add(1)
		return
	}
	select {
	case c.queue <- ev.frame:
	default:
		if c.sock == nil {
			// Nobody drains an inactive queue; a resume must start afresh.
			c.lost = true
			return
		}
		s.hub.slowDropped.Add(1)
		s.hub.opts.Logger.Warn("ws: dropping slow client", "user_id", c.userID, "connection_id", c.id)
		s.remove(c, websocket.ClosePolicyViolation, "send queue full", nil)
	}
}

// remove forgets c and closes its socket. A reconnect waiting for c gets
// pendingErr, or a new connection when pendingErr is nil.
func (s *shard) remove(c *conn, code int, text string, pendingErr error) {
	wasLive := c.sock != nil
	conns := s.users[c.userID]
	delete(conns, c.id)
	if len(conns) == 0 {
		delete(s.users, c.userID)
	}
	if c.sock != nil {
		c.sock.kick(code, text)
		c.sock = nil
		s.hub.active.Add(-1)
	} else {
		s.hub.inactive.Add(-1)
	}
	if p := c.pending; p != nil {
		c.pending = nil
		if pendingErr != nil {
			p.reply <- registerResult{err: pendingErr}
		} else {
			s.fresh(p)
		}
	}
	if wasLive {
		s.liveChanged(c.userID)
	}
}

func (s *shard) register(req *registerReq) {
	if req.resumeID != "" {
		if c := s.users[req.session.UserID][req.resumeID]; c != nil {
			if c.sock == nil {
				s.resume(c, req)
				return
			}
			// The client is back before we noticed its old socket die: end
			// that socket and resume once its pump has handed the state back.
			if old := c.pending; old != nil {
				s.fresh(old)
			}
			c.pending = req
			c.sock.replace()
			return
		}
	}
	s.fresh(req)
}

// resume hands the inactive c to req's socket if the client can continue
// where it left off, and starts a new connection otherwise.
func (s *shard) resume(c *conn, req *registerReq) {
	h := s.hub
	mode := startContinue
	switch {
	case !s.hub.opts.Now().Before(c.inactiveSince.Add(h.opts.InactiveTimeout)):
		// Expired but not reaped yet: as if unknown, without counting a reset.
		s.remove(c, websocket.CloseNormalClosure, "", nil)
		s.fresh(req)
		return
	case c.lost || !req.hasSeq:
		mode = startHello
	case c.dead.contains(req.resumeSeq):
		mode = startReplay
	case c.nextSeq != req.resumeSeq:
		mode = startHello
	}
	if mode == startHello {
		h.resumeRefusals.Add(1)
		s.remove(c, websocket.CloseNormalClosure, "", nil)
		s.fresh(req)
		return
	}
	if mode == startReplay {
		h.replayed.Add(1)
	} else {
		h.resumed.Add(1)
	}
	c.sock = req.sock
	c.session = req.session
	h.inactive.Add(-1)
	h.active.Add(1)
	req.reply <- registerResult{conn: c, mode: mode, from: req.resumeSeq}
	s.liveChanged(c.userID)
}

func (s *shard) fresh(req *registerReq) {
	c := &conn{
		id:      model.NewID(),
		userID:  req.session.UserID,
		queue:   make(chan []byte, s.hub.opts.SendQueueSize),
		session: req.session,
		sock:    req.sock,
		dead:    newDeadQueue(s.hub.opts.DeadQueueSize),
	}
	conns := s.users[c.userID]
	if conns == nil {
		conns = make(map[string]*conn)
		s.users[c.userID] = conns
	}
	conns[c.id] = c
	s.hub.active.Add(1)
	req.reply <- registerResult{conn: c, mode: startHello}
	s.liveChanged(c.userID)
}

// deactivate records that sock, c's socket, is gone; c stays for a reconnect.
func (s *shard) deactivate(c *conn, sock *socket) {
	if s.users[c.userID][c.id] != c || c.sock != sock {
		return // already removed or taken over
	}
	c.sock = nil
	c.inactiveSince = s.hub.opts.Now()
	s.hub.active.Add(-1)
	s.hub.inactive.Add(1)
	if p := c.pending; p != nil {
		c.pending = nil
		s.resume(c, p)
	}
	s.liveChanged(c.userID)
}

func (s *shard) reap(now time.Time) {
	for _, conns := range s.users {
		for _, c := range conns {
			if c.sock == nil && !now.Before(c.inactiveSince.Add(s.hub.opts.InactiveTimeout)) {
				s.remove(c, websocket.CloseNormalClosure, "", nil)
			}
		}
	}
}

func (s *shard) closeSession(sessionID string) {
	for _, conns := range s.users {
		for _, c := range conns {
			if p := c.pending; p != nil && p.session.ID == sessionID {
				c.pending = nil
				p.reply <- registerResult{err: errClosedByServer}
			}
			if c.session.ID == sessionID {
				s.remove(c, websocket.CloseNormalClosure, "session closed", nil)
			}
		}
	}
}

func (s *shard) closeUser(userID string) {
	for _, c := range s.users[userID] {
		s.remove(c, websocket.CloseNormalClosure, "user closed", errClosedByServer)
	}
}

func (s *shard) countUser(userID string) int {
	n := 0
	for _, c := range s.users[userID] {
		if c.sock != nil {
			n++
		}
	}
	return n
}

// deadQueue is a ring of the last events written to a connection.
type deadQueue struct {
	entries []deadEntry
	start   int // index of the oldest entry
	n       int
}

type deadEntry struct {
	seq   int64
	frame []byte
}

func newDeadQueue(size int) deadQueue {
	return deadQueue{entries: make([]deadEntry, size)}
}

func (q *deadQueue) push(seq int64, frame []byte) {
	if len(q.entries) == 0 {
		return
	}
	if q.n < len(q.entries) {
		q.entries[(q.start+q.n)%len(q.entries)] = deadEntry{seq, frame}
		q.n++
		return
	}
	q.entries[q.start] = deadEntry{seq, frame}
	q.start = (q.start + 1) % len(q.entries)
}

func (q *deadQueue) at(i int) deadEntry {
	return q.entries[(q.start+i)%len(q.entries)]
}

func (q *deadQueue) contains(seq int64) bool {
	for i := range q.n {
		if q.at(i).seq == seq {
			return true
		}
	}
	return false
}
