package ws

import (
	"context"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// socket is one upgraded WebSocket. Its reader runs in the ServeHTTP
// goroutine; its pump is the only goroutine that writes data frames.
type socket struct {
	ws         *websocket.Conn
	replies    chan reply      // reader → pump
	attach     chan attachment // reader → pump, unbuffered: taken only by a live pump
	readerDone chan struct{}   // closed when the reader returns
	pumpDone   chan struct{}   // closed when the pump returns
	cancel     context.CancelFunc

	authOnce sync.Once
	authed   chan struct{} // closed by the reader once it has a session

	killOnce  sync.Once
	kill      chan struct{} // closed by kick or replace
	killCode  int           // the kill fields are written before kill is closed
	killText  string
	killAwait bool // wait for the client to answer the close frame
}

type reply struct {
	data  []byte
	close bool // close the socket (1008) once written
}

// attachment gives a registered conn to the pump.
type attachment struct {
	conn    *conn
	session Session // the session this socket registered with
	mode    startMode
	from    int64
	first   []byte // reply to write before anything else (the challenge's OK)
}

func newSocket(c *websocket.Conn, cancel context.CancelFunc) *socket {
	return &socket{
		ws:         c,
		replies:    make(chan reply, 8),
		attach:     make(chan attachment),
		readerDone: make(chan struct{}),
		pumpDone:   make(chan struct{}),
		cancel:     cancel,
		authed:     make(chan struct{}),
		kill:       make(chan struct{}),
	}
}

// authenticated tells the pump that the client has proved who it is, so the
// authentication timeout no longer applies, even while registering waits for
// an earlier socket of the same connection to let go.
func (s *socket) authenticated() {
	s.authOnce.Do(func() { close(s.authed) })
}

// kick asks the pump to close the socket with a close frame. It never blocks,
// so shards may call it.
func (s *socket) kick(code int, text string) {
	s.end(code, text, true)
}

// replace kicks a socket whose client has come back on another one. The old
// client is presumed gone (the socket is half open), so the pump does not
// wait for it to answer the close frame: the reconnect is waiting for the
// connection it holds. It never blocks.
func (s *socket) replace() {
	s.end(websocket.CloseNormalClosure, "replaced by a new connection", false)
}

func (s *socket) end(code int, text string, await bool) {
	s.killOnce.Do(func() {
		s.killCode, s.killText, s.killAwait = code, text, await
		close(s.kill)
	})
}

func (h *Hub) track(s *socket) {
	h.mu.Lock()
	h.sockets[s] = struct{}{}
	h.mu.Unlock()
}

func (h *Hub) untrack(s *socket) {
	h.mu.Lock()
	delete(h.sockets, s)
	h.mu.Unlock()
}

// pump writes everything that goes to the socket: replies, the hello or
// replay, queued events and pings. It closes the socket when the client has
// not authenticated within AuthTimeout and, at a ping tick, once the session
// has expired. When it returns the socket is closed and its conn, if any, is
// handed back to the shard as inactive.
func (h *Hub) pump(sock *socket) {
	defer h.wg.Done()
	w := writer{ws: sock.ws, timeout: h.opts.WriteTimeout}
	var (
		c        *conn
		sess     Session     // c's session, as registered by this socket
		queue    chan []byte // nil, so never ready, until attached
		attach   = sock.attach
		authed   = sock.authed
		code     int // close frame to send on the way out; 0: none
		text     string
		await    = true // wait for the client's close reply
		readerUp = true
	)
	authTimer := time.NewTimer(h.opts.AuthTimeout)
	defer authTimer.Stop()
	ping := time.NewTicker(h.opts.PingInterval)
	defer ping.Stop()

loop:
	for {
		select {
		case <-authed:
			authed = nil
			authTimer.Stop()
		case a := <-attach:
			attach = nil
			c, sess, queue = a.conn, a.session, a.conn.queue
			if err := h.start(&w, a); err != nil {
				break loop
			}
		case frame := <-queue:
			if err := w.event(c, frame); err != nil {
				break loop
			}
		case r := <-sock.replies:
			if err := w.raw(r.data); err != nil {
				break loop
			}
			if r.close {
				code, text = websocket.ClosePolicyViolation, "invalid session"
				break loop
			}
		case <-ping.C:
			if c != nil && sess.expired(h.opts.Now()) {
				code, text = websocket.ClosePolicyViolation, "session expired"
				break loop
			}
			if err := sock.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.opts.WriteTimeout)); err != nil {
				break loop
			}
		case <-authTimer.C:
			select {
			case <-sock.authed:
				continue // authenticated in time; the timer just won the select
			default:
			}
			code, text = websocket.ClosePolicyViolation, "authentication timeout"
			break loop
		case <-sock.kill:
			code, text, await = sock.killCode, sock.killText, sock.killAwait
			break loop
		case <-h.done:
			code, text = websocket.CloseGoingAway, "server shutting down"
			break loop
		case <-sock.readerDone:
			readerUp = false
			// The reader may have queued a last reply (a failed challenge).
			for drained := false; !drained; {
				select {
				case r := <-sock.replies:
					if w.raw(r.data) == nil && r.close {
						code, text = websocket.ClosePolicyViolation, "invalid session"
						drained = true
					}
				default:
					drained = true
				}
			}
			break loop
		}
	}

	// Nothing the reader is still doing (an action, a challenge) can be
	// answered any more.
	sock.cancel()
	if code != 0 {
		grace := min(h.opts.WriteTimeout, 5*time.Second)
		msg := websocket.FormatCloseMessage(code, text)
		if sock.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(grace)) == nil && readerUp && await {
			// Let the client answer the close before the TCP close, so that
			// unread client data cannot turn our FIN into a reset that
			// destroys the close frame.
			t := time.NewTimer(grace)
			select {
			case <-sock.readerDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	_ = sock.ws.Close()
	close(sock.pumpDone)
	h.untrack(sock)
	if c != nil {
		h.deactivate(c, sock)
	}
}

// start writes what a freshly attached connection needs first.
func (h *Hub) start(w *writer, a attachment) error {
	if a.first != nil {
		if err := w.raw(a.first); err != nil {
			return err
		}
	}
	c := a.conn
	switch a.mode {
	case startHello:
		frame, err := encodeHello(h.opts.ServerVersion, c.id, h.opts.Hostname, c.userID)
		if err != nil {
			return err
		}
		return w.event(c, frame)
	case startReplay:
		for i := range c.dead.n {
			e := c.dead.at(i)
			if e.seq < a.from {
				continue
			}
			if err := w.frame(e.frame, e.seq); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *Hub) deactivate(c *conn, sock *socket) {
	_ = h.send(h.shardFor(c.userID), shardMsg{op: func(s *shard) { s.deactivate(c, sock) }})
}

// writer writes frames on behalf of the pump.
type writer struct {
	ws      *websocket.Conn
	timeout time.Duration
	tail    []byte
}

// event gives frame the conn's next seq, keeps it for replay and writes it.
// It is kept even if the write fails, so a reconnect can replay it.
func (w *writer) event(c *conn, frame []byte) error {
	seq := c.nextSeq
	c.nextSeq++
	c.dead.push(seq, frame)
	return w.frame(frame, seq)
}

func (w *writer) frame(prefix []byte, seq int64) error {
	_ = w.ws.SetWriteDeadline(time.Now().Add(w.timeout))
	wc, err := w.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if _, err := wc.Write(prefix); err != nil {
		return err
	}
	w.tail = appendSeq(w.tail[:0], seq)
	if _, err := wc.Write(w.tail); err != nil {
		return err
	}
	return wc.Close()
}

func (w *writer) raw(data []byte) error {
	_ = w.ws.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ws.WriteMessage(websocket.TextMessage, data)
}
