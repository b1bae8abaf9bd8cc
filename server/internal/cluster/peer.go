package cluster

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// peer is this node's outgoing stream to one other node: the messages
// not yet acknowledged, and the connection that carries them.
type peer struct {
	g  *Gossip
	id string

	signal chan struct{} // buffered(1): work may be waiting
	done   chan struct{} // closed by close

	mu      sync.Mutex // guards the fields below
	addr    string
	queue   []queued // unacknowledged messages, by seq
	lastSeq uint64   // the last seq given out
	sent    uint64   // the last seq written on the current connection
	acked   uint64
	waiters []waiter
	pong    uint64 // the peer's latest ping to answer, 0 if none
	ping    uint64 // a ping to send (g's monotonic clock), 0 if none
	pongAt  time.Time
	ackAt   time.Time // when the peer last acknowledged anything
	closed  bool
	conn    net.Conn
}

type queued struct {
	seq uint64
	m   Message
}

type waiter struct {
	seq uint64
	ch  chan struct{}
}

func newPeer(g *Gossip, id, addr string) *peer {
	return &peer{g: g, id: id, addr: addr, signal: make(chan struct{}, 1), done: make(chan struct{})}
}

func (p *peer) wake() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	p.addr = addr
	p.mu.Unlock()
}

func (p *peer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	close(p.done)
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.queue = nil
}

func (p *peer) queueMsg(m Message) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queueMsgLocked(m)
}

func (p *peer) queueMsgLocked(m Message) uint64 {
	if p.closed {
		return 0
	}
	p.lastSeq++
	p.queue = append(p.queue, queued{seq: p.lastSeq, m: m})
	if len(p.queue) > p.g.o.QueueLimit {
		// The peer is too far behind: drop the oldest tenth at once, so a
		// peer that stays behind costs one copy per many messages. It
		// notices the gap (pongs carry the last seq) and drops its caches.
		drop := len(p.queue) - p.g.o.QueueLimit + p.g.o.QueueLimit/10
		p.g.log.Warn("cluster queue full; dropping messages for a node", "peer", p.id, "dropped", drop)
		p.queue = append(p.queue[:0:0], p.queue[drop:]...)
	}
	p.wake()
	return p.lastSeq
}

// queueAcked queues m and returns a channel closed once the peer has
// handled it, and when this node last answered the peer's pings.
func (p *peer) queueAcked(m Message) (<-chan struct{}, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	seq := p.queueMsgLocked(m)
	if seq == 0 || seq <= p.acked {
		close(ch)
	} else {
		p.waiters = append(p.waiters, waiter{seq, ch})
	}
	return ch, p.pongAt
}

func (p *peer) queuePong(echo uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	// Only the latest ping matters: answering it renews the most.
	p.pong = echo
	p.pongAt = time.Now()
	p.wake()
}

func (p *peer) queuePing(now uint64) {
	p.mu.Lock()
	p.ping = now
	p.mu.Unlock()
	p.wake()
}

// inContact reports whether the peer acknowledged anything within d
// (it acknowledges every ping, so a live link does so continually).
func (p *peer) inContact(d time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.ackAt.IsZero() && time.Since(p.ackAt) < d
}

// ackedUpTo records the peer's acknowledgement of every seq up to d.
func (p *peer) ackedUpTo(d uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ackAt = time.Now()
	if d <= p.acked {
		return
	}
	p.acked = d
	i := 0
	for i < len(p.queue) && p.queue[i].seq <= d {
		i++
	}
	p.queue = p.queue[i:]
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.seq <= d {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	p.waiters = kept
}

// run keeps a connection to the peer and writes to it until closed.
func (p *peer) run() {
	defer p.g.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		err := p.session()
		select {
		case <-p.done:
			return
		default:
		}
		if err != nil {
			p.g.log.Debug("cluster stream to peer", "peer", p.id, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-p.done:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// session dials, hands shake and writes until the connection fails.
func (p *peer) session() error {
	g := p.g
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		conn.Close()
		return nil
	}
	p.conn = conn
	p.mu.Unlock()
	defer conn.Close()

	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	ours, err := newHandshake(g.epochID, g.o.Self.ID)
	if err != nil {
		return err
	}
	var hello bytes.Buffer
	hello.WriteString(streamMagic)
	ours.encode(&hello)
	if _, err := conn.Write(hello.Bytes()); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	theirs, raw, err := readHandshake(br)
	if err != nil {
		return err
	}
	if theirs.id != p.id {
		return errors.New("peer answered with another node id: " + theirs.id)
	}
	var dl [8]byte
	if _, err := io.ReadFull(br, dl[:]); err != nil {
		return err
	}
	delivered := binary.BigEndian.Uint64(dl[:])
	transcript := append(hello.Bytes(), raw...)
	transcript = append(transcript, dl[:]...)
	sum := sha256.Sum256(transcript)
	sendC, recvC, err := newCodecs(g.o.SecretKey, ours, theirs)
	if err != nil {
		return err
	}
	if err := recvC.checkHello(br, sum); err != nil {
		return err
	}
	if _, err := conn.Write(sendC.appendHello(nil, sum)); err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Time{})

	// Resend from what the peer has.
	p.ackedUpTo(delivered)
	p.mu.Lock()
	p.sent = max(delivered, p.acked)
	p.mu.Unlock()

	var readErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readErr = p.readAcks(conn, br, recvC)
	}()
	err = p.writeLoop(conn, sendC, readDone)
	conn.Close()
	<-readDone
	return errOr(err, readErr)
}

// readAcks reads the peer's acknowledgements until the connection fails;
// they come at least once per ping, so silence means a dead link.
func (p *peer) readAcks(conn net.Conn, br *bufio.Reader, c *codec) error {
	var buf []byte
	for {
		_ = conn.SetReadDeadline(time.Now().Add(2 * p.g.o.Lease))
		body, err := c.readFrame(br, buf, frameLimit)
		if err != nil {
			return err
		}
		buf = body[:0]
		if body[0] != frameAck {
			return errors.New("unexpected frame from the acceptor")
		}
		v, err := parseU64s(body[1:], 1)
		if err != nil {
			return err
		}
		p.ackedUpTo(v[0])
	}
}

// writeLoop writes queued messages, then pongs and pings, in that order:
// a pong must follow every message queued before it.
func (p *peer) writeLoop(conn net.Conn, c *codec, readDone <-chan struct{}) error {
	var out []byte
	for {
		select {
		case <-p.done:
			return nil
		case <-readDone:
			return nil
		case <-p.signal:
		}
		p.mu.Lock()
		out = out[:0]
		for _, q := range p.queue {
			if q.seq > p.sent {
				out = c.appendFrame(out, msgBody(q.seq, q.m))
				p.sent = q.seq
			}
		}
		if p.pong != 0 {
			out = c.appendFrame(out, u64Body(framePong, p.pong, p.lastSeq))
			p.pong = 0
		}
		if p.ping != 0 {
			out = c.appendFrame(out, u64Body(framePing, p.ping))
			p.ping = 0
		}
		p.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(2 * p.g.o.Lease))
		if _, err := conn.Write(out); err != nil {
			return err
		}
	}
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// demuxTransport is memberlist's network transport with the cluster's
// own streams taken off its TCP listener: connections that open with
// streamMagic go to accept, the rest to memberlist.
type demuxTransport struct {
	*memberlist.NetTransport
	accept  func(net.Conn)
	streams chan net.Conn
	stop    chan struct{} // closed by closeStreams

	mu    sync.Mutex // guards the fields below
	conns map[net.Conn]struct{}
	done  bool
}

func newDemuxTransport(nt *memberlist.NetTransport, accept func(net.Conn)) *demuxTransport {
	t := &demuxTransport{NetTransport: nt, accept: accept, streams: make(chan net.Conn),
		stop: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	go t.route()
	return t
}

// StreamCh implements memberlist.Transport.
func (t *demuxTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *demuxTransport) route() {
	in := t.NetTransport.StreamCh()
	for {
		select {
		case conn := <-in:
			go t.classify(conn)
		case <-t.stop:
			return
		}
	}
}

func (t *demuxTransport) classify(conn net.Conn) {
	br := bufio.NewReaderSize(conn, 64<<10)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	head, err := br.Peek(len(streamMagic))
	if err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	wrapped := &demuxConn{Conn: conn, r: br}
	if string(head) != streamMagic {
		select {
		case t.streams <- wrapped:
		case <-t.stop:
			conn.Close()
		}
		return
	}
	_, _ = br.Discard(len(streamMagic))
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		conn.Close()
		return
	}
	t.conns[conn] = struct{}{}
	t.mu.Unlock()
	t.accept(wrapped)
	t.mu.Lock()
	delete(t.conns, conn)
	t.mu.Unlock()
}

// closeStreams ends the accepted cluster streams (memberlist's own
// shutdown closes only its listener).
func (t *demuxTransport) closeStreams() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		close(t.stop)
	}
	t.done = true
	for c := range t.conns {
		_ = c.Close()
	}
}
