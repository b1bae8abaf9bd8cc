package pushservice

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The device side: GET /ws, Firefox's push protocol.
//
// Each socket has three goroutines. The reader (the HTTP handler's own
// goroutine) decodes frames and answers them; the writer is the only one
// that writes data frames, and sends pings; the deliverer, started after
// hello, copies the device's mailbox to the socket whenever it is woken.
// Whoever else has something for the socket (the LISTEN loop, a POST on
// this process) only pokes the deliverer or offers a frame without
// waiting: a socket that cannot keep up is closed, never waited for.

const (
	// outQueue is how many frames may wait for the writer.
	outQueue = 64
	// replayPage is how many mailbox rows the deliverer reads at a time.
	replayPage = 64
	// closeGrace is how long a closing socket waits for the client's
	// close frame, so that our close frame is not lost to a TCP reset.
	closeGrace = 2 * time.Second
	// dbTimeout bounds each database call made for a socket.
	dbTimeout = 10 * time.Second
)

// conn is one device socket.
type conn struct {
	ws   *websocket.Conn
	out  chan []byte   // frames for the writer
	wake chan struct{} // capacity 1: the mailbox may have news

	// uaid and gen are set by the reader at hello, before the conn is
	// attached to the hub, and never change after.
	uaid string
	gen  int64

	killOnce sync.Once
	kill     chan struct{} // closed by end
	killCode int           // the close frame to send; written before kill is closed
	killText string

	readerDone chan struct{}
	writerDone chan struct{}
}

func newConn(ws *websocket.Conn) *conn {
	return &conn{
		ws:         ws,
		out:        make(chan []byte, outQueue),
		wake:       make(chan struct{}, 1),
		kill:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// end asks the writer to close the socket, with a close frame of code
// unless code is 0. Only the first call counts. It never blocks.
func (c *conn) end(code int, text string) {
	c.killOnce.Do(func() {
		c.killCode, c.killText = code, text
		close(c.kill)
	})
}

// poke wakes the deliverer without waiting.
func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default: // already awake
	}
}

// send offers a frame without waiting. If the queue is full the client is
// not reading: the socket is closed and send reports false.
func (c *conn) send(frame []byte) bool {
	select {
	case <-c.kill:
		return false
	default:
	}
	select {
	case c.out <- frame:
		return true
	default:
		c.end(closeSlow, "too slow")
		return false
	}
}

// sendWait queues a frame from the socket's own goroutines, waiting while
// the queue is full; the writer's deadline bounds that wait.
func (c *conn) sendWait(frame []byte) bool {
	select {
	case c.out <- frame:
		return true
	case <-c.kill:
		return false
	}
}

// serveWS upgrades GET /ws and runs the socket until it closes.
func (s *Service) serveWS(w http.ResponseWriter, r *http.Request) error {
	if err := s.acquireSocket(); err != nil {
		w.Header().Set("Retry-After", "30")
		return &apiError{status: http.StatusServiceUnavailable, errno: errnoUnavailable, msg: err.Error()}
	}
	defer s.releaseSocket()
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the client already.
		s.log.Debug("push websocket upgrade failed", "err", err)
		return nil
	}
	c := newConn(ws)
	s.hub.track(c)
	defer s.hub.untrack(c)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-c.kill:
			cancel() // abandon the reader's database work
		case <-ctx.Done():
		}
	}()

	go s.writeLoop(c)
	var deliverDone chan struct{}
	s.readLoop(ctx, c, func() {
		deliverDone = make(chan struct{})
		go func() { defer close(deliverDone); s.deliverLoop(ctx, c) }()
	})
	close(c.readerDone)
	c.end(0, "")
	<-c.writerDone
	cancel()
	if deliverDone != nil {
		<-deliverDone
	}
	if c.gen != 0 { // hello reached the database: record that the socket is gone
		s.hub.detach(c)
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(r.Context()), dbTimeout)
		defer dcancel()
		if err := s.disconnectDevice(dctx, c.uaid, c.gen, s.now()); err != nil {
			s.log.Warn("push device disconnect not recorded", "uaid", redact(c.uaid), "err", err)
		}
		s.log.Debug("push device disconnected", "uaid", redact(c.uaid))
	}
	return nil
}

// readLoop reads and answers frames until the socket fails or is ended.
// startDelivery is called once, after a successful hello.
func (s *Service) readLoop(ctx context.Context, c *conn, startDelivery func()) {
	attached := false
	c.ws.SetReadLimit(maxClientFrame)
	idle := s.opts.PingInterval + s.opts.PongTimeout
	_ = c.ws.SetReadDeadline(time.Now().Add(s.opts.HelloTimeout))
	c.ws.SetPongHandler(func(string) error {
		if attached {
			return c.ws.SetReadDeadline(time.Now().Add(idle))
		}
		return nil
	})
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			s.logReadError(c, err)
			if errors.Is(err, websocket.ErrReadLimit) {
				c.end(websocket.CloseMessageTooBig, "frame too large")
			}
			return
		}
		if attached {
			_ = c.ws.SetReadDeadline(time.Now().Add(idle))
		}
		if mt != websocket.TextMessage {
			c.end(websocket.CloseUnsupportedData, "text frames only")
			return
		}
		f, err := parseClientFrame(data)
		if err != nil {
			s.log.Debug("push websocket frame refused", "uaid", redact(c.uaid), "err", err)
			c.end(websocket.CloseInvalidFramePayloadData, "invalid frame")
			return
		}
		if !attached && f.Type != typeHello {
			c.end(websocket.ClosePolicyViolation, "hello first")
			return
		}
		switch f.Type {
		case typeHello:
			if attached {
				c.end(websocket.ClosePolicyViolation, "hello twice")
				return
			}
			if !s.onHello(ctx, c, f) {
				return
			}
			attached = true
			_ = c.ws.SetReadDeadline(time.Now().Add(idle))
			startDelivery()
			c.poke() // replay the mailbox
		case typePing:
			c.sendWait(pingReply)
		case typeRegister:
			s.onRegister(ctx, c, f)
		case typeUnregister:
			s.onUnregister(ctx, c, f)
		case typeAck:
			s.onAck(ctx, c, f)
		case typeNack:
			s.onNack(ctx, c, f)
		case typeBroadcastSub:
			// Remote Settings' megaphone broadcasts: there are none on this
			// network, and Firefox expects no reply.
		default:
			s.log.Debug("push websocket message type ignored", "uaid", redact(c.uaid), "message_type", truncate(f.Type, 32))
		}
		select {
		case <-c.kill:
			return
		default:
		}
	}
}

func (s *Service) logReadError(c *conn, err error) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		s.log.Debug("push websocket closed by device", "uaid", redact(c.uaid), "code", ce.Code)
	case errors.As(err, &ne) && ne.Timeout():
		s.log.Debug("push websocket idle timeout", "uaid", redact(c.uaid))
	default:
		s.log.Debug("push websocket read ended", "uaid", redact(c.uaid), "err", err)
	}
}

// onHello attaches the socket to its device, answers, and reports whether
// the socket goes on.
func (s *Service) onHello(ctx context.Context, c *conn, f clientFrame) bool {
	dctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	uaid, gen, resumed, err := s.helloDevice(dctx, f.UAID, s.now())
	if err != nil {
		s.log.Error("push hello failed", "err", err)
		c.end(websocket.CloseInternalServerErr, "internal error")
		return false
	}
	c.uaid, c.gen = uaid, gen
	if !c.sendWait(encode(helloReply{
		MessageType: typeHello, Status: http.StatusOK, UAID: uaid, UseWebPush: true, Broadcasts: map[string]any{},
	})) {
		return false
	}
	if !s.hub.attach(c) {
		c.end(closeSuperseded, "superseded by a new connection")
		return false
	}
	// A newer hello on another process may have notified its kick before
	// this socket was attached; the database has the last word.
	if cur, err := s.deviceGeneration(dctx, uaid); err == nil && cur > gen {
		s.hub.kick(uaid, cur)
	}
	s.log.Debug("push device connected", "uaid", redact(uaid), "resumed", resumed,
		"requested_uaid", redact(f.UAID))
	return true
}

// deviceGeneration reads the device's current socket generation.
func (s *Service) deviceGeneration(ctx context.Context, uaid string) (int64, error) {
	var gen int64
	err := s.pool.QueryRow(ctx, `SELECT conn_gen FROM ps_devices WHERE uaid = $1`, uaid).Scan(&gen)
	return gen, err
}

func (s *Service) onRegister(ctx context.Context, c *conn, f clientFrame) {
	reply := registerReply{MessageType: typeRegister, ChannelID: f.ChannelID}
	var key []byte
	var err error
	switch {
	case !validChannelID(f.ChannelID):
		reply.Status, err = http.StatusBadRequest, errors.New("invalid channelID")
	case f.Key != "":
		if key, err = parseP256Point(f.Key); err != nil {
			reply.Status = http.StatusBadRequest
		}
	}
	if err == nil {
		dctx, cancel := context.WithTimeout(ctx, dbTimeout)
		defer cancel()
		var capability string
		capability, err = s.registerChannel(dctx, c.uaid, f.ChannelID, key, s.now())
		switch {
		case err == nil:
			reply.Status, reply.PushEndpoint = http.StatusOK, s.base+"/push/"+capability
			s.log.Debug("push channel registered", "uaid", redact(c.uaid), "cap", redact(capability), "vapid", key != nil)
		case errors.Is(err, errKeyConflict):
			reply.Status = http.StatusConflict
		case errors.Is(err, errTooManySubs):
			reply.Status = http.StatusTooManyRequests
		case errors.Is(err, errDeviceUnknown):
			// Forgotten while connected (should not happen: connected
			// devices are never idle). Make Firefox start over.
			c.end(websocket.CloseInternalServerErr, "device unknown")
			return
		default:
			s.log.Error("push register failed", "uaid", redact(c.uaid), "err", err)
			reply.Status = http.StatusInternalServerError
		}
	}
	if reply.Status != http.StatusOK {
		s.log.Debug("push register refused", "uaid", redact(c.uaid), "status", reply.Status, "err", err)
	}
	c.sendWait(encode(reply))
}

func (s *Service) onUnregister(ctx context.Context, c *conn, f clientFrame) {
	reply := unregisterReply{MessageType: typeUnregister, ChannelID: f.ChannelID, Status: http.StatusOK}
	if !validChannelID(f.ChannelID) {
		reply.Status = http.StatusBadRequest
	} else {
		dctx, cancel := context.WithTimeout(ctx, dbTimeout)
		defer cancel()
		if err := s.unregisterChannel(dctx, c.uaid, f.ChannelID, s.now()); err != nil {
			s.log.Error("push unregister failed", "uaid", redact(c.uaid), "err", err)
			reply.Status = http.StatusInternalServerError
		}
	}
	c.sendWait(encode(reply))
}

// onAck deletes the acknowledged messages, whatever the code: 100
// (delivered) and 101 (could not decrypt) and 102 (not delivered, e.g.
// permission revoked) are all final for the client, which would drop a
// replay as a duplicate anyway.
func (s *Service) onAck(ctx context.Context, c *conn, f clientFrame) {
	dctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	for _, u := range f.Updates {
		s.metrics.acks.WithLabelValues(codeLabel(u.Code, 100, 101, 102)).Inc()
		if !validMsgID(u.Version) {
			continue // a TTL 0 message of another service, or garbage
		}
		received, err := s.ackMessage(dctx, c.uaid, u.Version)
		switch {
		case err == nil:
			s.metrics.latency.Observe(max(0, s.now().Sub(received).Seconds()))
		case errors.Is(err, errNotFound):
			// Acked twice, cancelled, expired, or TTL 0 (never stored).
		default:
			s.log.Warn("push ack not recorded", "uaid", redact(c.uaid), "err", err)
			return
		}
		if u.Code != 100 {
			s.log.Info("push message not delivered by device", "uaid", redact(c.uaid),
				"msg_id", redact(u.Version), "code", u.Code)
		}
	}
}

// onNack drops the message: the device's service worker failed on it
// (301 threw, 302 promise rejected, 303 internal error) and the client
// will not retry; replaying it at every reconnect would only fail again.
func (s *Service) onNack(ctx context.Context, c *conn, f clientFrame) {
	s.metrics.nacks.WithLabelValues(codeLabel(f.Code, 301, 302, 303)).Inc()
	s.log.Info("push message refused by device", "uaid", redact(c.uaid), "msg_id", redact(f.Version), "code", f.Code)
	if !validMsgID(f.Version) {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	if _, err := s.ackMessage(dctx, c.uaid, f.Version); err != nil && !errors.Is(err, errNotFound) {
		s.log.Warn("push nack not recorded", "uaid", redact(c.uaid), "err", err)
	}
}

// deliverLoop sends the device's mailbox, in receive order, each time it
// is woken: all of it after hello (the replay), then what arrived since.
// A message goes to a socket once; a reconnect replays what is unacked.
func (s *Service) deliverLoop(ctx context.Context, c *conn) {
	var cursor int64 // the seq of the last message sent on this socket
	for {
		select {
		case <-c.wake:
		case <-c.kill:
			return
		}
		for {
			dctx, cancel := context.WithTimeout(ctx, dbTimeout)
			msgs, err := s.pendingMessages(dctx, c.uaid, cursor, s.now(), replayPage)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					// The next wake or re-scan tries again.
					s.log.Warn("push mailbox read failed", "uaid", redact(c.uaid), "err", err)
				}
				break
			}
			for _, m := range msgs {
				if !c.sendWait(encodeNotification(m.channelID, m.id, m.body)) {
					return
				}
				cursor = m.seq
				s.metrics.delivered.Inc()
			}
			if len(msgs) < replayPage {
				break
			}
		}
	}
}

// writeLoop writes queued frames and pings until the socket is ended or a
// write fails, then closes it.
func (s *Service) writeLoop(c *conn) {
	defer close(c.writerDone)
	ping := time.NewTicker(s.opts.PingInterval)
	defer ping.Stop()
loop:
	for {
		select {
		case f := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, f); err != nil {
				s.writeFailed(c, err)
				c.end(0, "")
				break loop
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.opts.WriteTimeout)); err != nil {
				s.writeFailed(c, err)
				c.end(0, "")
				break loop
			}
		case <-c.kill:
			break loop
		}
	}
	if c.killCode == closeSlow {
		s.metrics.slow.Inc()
		s.log.Info("push device socket closed: too slow", "uaid", redact(c.uaid))
	}
	if c.killCode != 0 {
		msg := websocket.FormatCloseMessage(c.killCode, c.killText)
		// ErrCloseSent: gorilla sent one itself (a frame over the read
		// limit).
		if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace)); err == nil || errors.Is(err, websocket.ErrCloseSent) {
			t := time.NewTimer(closeGrace)
			select {
			case <-c.readerDone:
			case <-t.C:
			}
			t.Stop()
			lingerClose(c)
			return
		}
	}
	_ = c.ws.Close()
}

// lingerClose closes the connection of a socket that has sent its close
// frame. Once the reader is done, it first shuts our side down and reads
// what the client still sends (for a bounded time and size): closing with
// unread data would make the kernel send a reset, which can destroy the
// close frame before the client reads it.
func lingerClose(c *conn) {
	select {
	case <-c.readerDone:
	default:
		_ = c.ws.Close()
		return
	}
	if tc, ok := c.ws.NetConn().(interface{ CloseWrite() error }); ok && tc.CloseWrite() == nil {
		nc := c.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
		_, _ = io.CopyN(io.Discard, nc, 1<<20)
	}
	_ = c.ws.Close()
}

func (s *Service) writeFailed(c *conn, err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.metrics.slow.Inc()
		s.log.Info("push device socket closed: write timed out", "uaid", redact(c.uaid))
		return
	}
	s.log.Debug("push websocket write failed", "uaid", redact(c.uaid), "err", err)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
