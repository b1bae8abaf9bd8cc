package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Discovery is the table through which nodes find each other (Mattermost's
// ClusterDiscovery): each node records itself and refreshes its heartbeat,
// and reads the others whose heartbeat is fresh. The database's clock
// judges freshness, so node clocks do not matter.
type Discovery interface {
	Heartbeat(ctx context.Context, e DiscoveryEntry) error
	Live(ctx context.Context, clusterName string, maxAge time.Duration) ([]DiscoveryEntry, error)
	Remove(ctx context.Context, id string) error
}

// DiscoveryEntry is one node in the discovery table.
type DiscoveryEntry struct {
	ID          string
	ClusterName string
	Hostname    string
	Address     string // gossip host:port
}

// GossipOptions configure a Gossip node.
type GossipOptions struct {
	// Self describes this node; Self.ID is required and names it in
	// memberlist. Self.Address is set from the advertised address.
	Self        Node
	ClusterName string
	// BindAddress and BindPort are where gossip (TCP and UDP) listens;
	// AdvertiseAddress/Port what others dial ("" and 0: the bound ones).
	BindAddress      string
	BindPort         int
	AdvertiseAddress string
	AdvertisePort    int
	// SecretKey (16, 24 or 32 bytes) encrypts gossip and streams; nil
	// means plain text, for single-host tests only.
	SecretKey []byte
	// Peers are gossip addresses to join at start, besides discovery.
	Peers []string
	// Discovery, if set, is used to find peers, and its live nodes must
	// all be heard from for this node to be in sync.
	Discovery Discovery
	Logger    *slog.Logger

	// Lease and PingInterval: see the package doc; zero means the
	// defaults.
	Lease, PingInterval time.Duration
	// DiscoveryInterval is how often the heartbeat is written (default
	// 2s); a node whose heartbeat is older than 5 intervals is not live.
	DiscoveryInterval time.Duration
	// QueueLimit bounds the messages waiting for one peer (default
	// 100000); beyond it the oldest are dropped and the peer loses sync.
	QueueLimit int
	// ProbeInterval, if set, replaces memberlist's failure detector
	// interval (tests make it short).
	ProbeInterval time.Duration
}

// Gossip is the memberlist implementation of Cluster.
type Gossip struct {
	o        GossipOptions
	log      *slog.Logger
	epochID  [16]byte // this run of the process, for resends
	started  time.Time
	handlers map[string]Handler
	onJoined []func(string)
	onLeft   []func(string)

	ml *memberlist.Memberlist
	tr *demuxTransport

	stop chan struct{}
	wg   sync.WaitGroup

	// Join and leave callbacks run on their own goroutine, in order:
	// memberlist's event hooks must not block.
	noteMu     sync.Mutex // guards notes
	notes      []func()
	noteSignal chan struct{} // buffered(1)

	mu          sync.Mutex // guards the fields below
	self        Node
	members     map[string]Node       // memberlist's live nodes but self
	discovered  map[string]string     // discovery's live nodes but self: id → address
	discoveryAt time.Time             // when discovery was last read
	peers       map[string]*peer      // outgoing streams
	recv        map[string]*recvState // by sender id
	inSync      bool
	syncEpoch   uint64
	stopping    bool
}

// recvState is what this node has handled from one sender.
type recvState struct {
	epoch     [16]byte
	delivered uint64
	// fresh: nothing has arrived from this run of the sender yet, so the
	// first seq seen (the oldest it still holds for this node) is where
	// this node starts; nothing before it was meant for this node.
	fresh bool
	// lastOK is when (on g's monotonic clock, which is past zero by the
	// first ping) this node sent the latest ping the sender has answered,
	// after everything it sent before answering was handled; 0: none yet.
	lastOK time.Duration
}

var _ Cluster = (*Gossip)(nil)

// NewGossip prepares a node; it joins at Start.
func NewGossip(o GossipOptions) (*Gossip, error) {
	if o.Self.ID == "" {
		return nil, errors.New("cluster: node id required")
	}
	switch len(o.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return nil, errors.New("cluster: gossip key must be 16, 24 or 32 bytes")
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.DiscoveryInterval <= 0 {
		o.DiscoveryInterval = 2 * time.Second
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 100000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gossip{
		o: o, log: o.Logger.With("component", "cluster"), handlers: map[string]Handler{}, self: o.Self,
		members: map[string]Node{}, discovered: map[string]string{}, peers: map[string]*peer{},
		recv: map[string]*recvState{}, stop: make(chan struct{}), noteSignal: make(chan struct{}, 1),
	}
	if _, err := rand.Read(g.epochID[:]); err != nil {
		return nil, err
	}
	return g, nil
}

// Self implements Cluster.
func (g *Gossip) Self() Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.self
}

// Nodes implements Cluster.
func (g *Gossip) Nodes() []Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []Node{g.self}
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		out = append(out, g.members[id])
	}
	return out
}

// Handle implements Cluster.
func (g *Gossip) Handle(event string, h Handler) { g.handlers[event] = h }

// OnNodeJoined implements Cluster.
func (g *Gossip) OnNodeJoined(f func(string)) { g.onJoined = append(g.onJoined, f) }

// OnNodeLeft implements Cluster.
func (g *Gossip) OnNodeLeft(f func(string)) { g.onLeft = append(g.onLeft, f) }

// Start implements Cluster: it binds the gossip port and joins the peers
// it is given and those discovery knows.
func (g *Gossip) Start(ctx context.Context) error {
	g.started = time.Now()
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = g.o.Self.ID
	cfg.Label = g.o.ClusterName
	cfg.BindAddr = g.o.BindAddress
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	cfg.BindPort = g.o.BindPort
	cfg.AdvertiseAddr = g.o.AdvertiseAddress
	cfg.AdvertisePort = g.o.AdvertisePort
	if len(g.o.SecretKey) > 0 {
		cfg.SecretKey = g.o.SecretKey
		cfg.GossipVerifyIncoming, cfg.GossipVerifyOutgoing = true, true
	}
	if g.o.ProbeInterval > 0 {
		cfg.ProbeInterval = g.o.ProbeInterval
		cfg.ProbeTimeout = g.o.ProbeInterval / 2
		cfg.GossipInterval = g.o.ProbeInterval / 5
		cfg.PushPullInterval = 10 * g.o.ProbeInterval
		cfg.SuspicionMult = 2
	}
	g.wg.Add(1)
	go g.notifier()
	cfg.Logger = log.New(&slogWriter{log: g.log}, "", 0)
	cfg.Delegate = &delegate{g: g}
	cfg.Events = &events{g: g}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{cfg.BindAddr}, BindPort: cfg.BindPort, Logger: cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("cluster: gossip listener: %w", err)
	}
	g.tr = newDemuxTransport(nt, g.acceptStream)
	cfg.Transport = g.tr
	if cfg.BindPort == 0 {
		cfg.BindPort = nt.GetAutoBindPort()
	}
	if cfg.AdvertisePort == 0 {
		// memberlist advertises the port it is given with an address:
		// without one, other nodes would be told port 0.
		cfg.AdvertisePort = cfg.BindPort
	}
	ip, port, err := nt.FinalAdvertiseAddr(cfg.AdvertiseAddr, cfg.AdvertisePort)
	if err != nil {
		_ = nt.Shutdown()
		return fmt.Errorf("cluster: advertise address: %w", err)
	}
	if cfg.AdvertisePort == 0 {
		cfg.AdvertisePort = port
	}
	g.mu.Lock()
	g.self.Address = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	g.mu.Unlock()
	ml, err := memberlist.Create(cfg)
	if err != nil {
		_ = nt.Shutdown()
		return fmt.Errorf("cluster: gossip: %w", err)
	}
	g.ml = ml
	if len(g.o.Peers) > 0 {
		if _, err := ml.Join(g.o.Peers); err != nil {
			g.log.Warn("join peers", "peers", g.o.Peers, "err", err)
		}
	}
	if g.o.Discovery != nil {
		g.discover(ctx)
	}
	g.wg.Add(1)
	go g.loop()
	g.log.Info("cluster started", "node", g.o.Self.ID, "gossip", g.Self().Address, "cluster", g.o.ClusterName,
		"encrypted", len(g.o.SecretKey) > 0)
	return nil
}

// Stop implements Cluster: it leaves gracefully, so others see the node
// go at once rather than after the failure detector's delay.
func (g *Gossip) Stop(ctx context.Context) error {
	return g.halt(ctx, true)
}

// crash stops the node without leaving, as a killed process would (for
// tests of failure handling).
func (g *Gossip) crash() { _ = g.halt(context.Background(), false) }

// halt stops the node, leaving the cluster first if leave is set.
func (g *Gossip) halt(ctx context.Context, leave bool) error {
	g.mu.Lock()
	if g.stopping || g.ml == nil {
		g.mu.Unlock()
		return nil
	}
	g.stopping = true
	peers := slices.Collect(maps.Values(g.peers))
	g.mu.Unlock()
	if leave {
		timeout := 2 * time.Second
		if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
			timeout = time.Until(d)
		}
		if err := g.ml.Leave(timeout); err != nil {
			g.log.Warn("leave cluster", "err", err)
		}
	}
	close(g.stop)
	for _, p := range peers {
		p.close()
	}
	err := g.ml.Shutdown()
	g.tr.closeStreams()
	// After the loop has ended, so no heartbeat writes the row back.
	g.wg.Wait()
	if leave && g.o.Discovery != nil {
		if derr := g.o.Discovery.Remove(ctx, g.o.Self.ID); derr != nil {
			g.log.Warn("remove from discovery", "err", derr)
		}
	}
	return err
}

// notify queues f for the notifier goroutine.
func (g *Gossip) notify(f func()) {
	g.noteMu.Lock()
	g.notes = append(g.notes, f)
	g.noteMu.Unlock()
	select {
	case g.noteSignal <- struct{}{}:
	default:
	}
}

// notifier runs the queued callbacks in order until the node stops.
func (g *Gossip) notifier() {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case <-g.noteSignal:
		}
		g.noteMu.Lock()
		notes := g.notes
		g.notes = nil
		g.noteMu.Unlock()
		for _, f := range notes {
			f()
		}
	}
}

// loop pings peers, refreshes discovery and keeps peers in step with
// membership.
func (g *Gossip) loop() {
	defer g.wg.Done()
	ping := time.NewTicker(g.o.PingInterval)
	defer ping.Stop()
	disc := time.NewTicker(g.o.DiscoveryInterval)
	defer disc.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-ping.C:
			g.mu.Lock()
			now := g.sinceStart()
			for _, p := range g.peers {
				p.queuePing(now)
			}
			g.checkSyncLocked()
			g.mu.Unlock()
		case <-disc.C:
			if g.o.Discovery != nil {
				ctx, cancel := context.WithTimeout(context.Background(), g.o.DiscoveryInterval)
				g.discover(ctx)
				cancel()
			}
		}
	}
}

// sinceStart is the monotonic clock pings carry.
func (g *Gossip) sinceStart() uint64 { return uint64(time.Since(g.started)) }

func (g *Gossip) discover(ctx context.Context) {
	self := g.Self()
	if err := g.o.Discovery.Heartbeat(ctx, DiscoveryEntry{ID: self.ID, ClusterName: g.o.ClusterName,
		Hostname: self.Hostname, Address: self.Address}); err != nil {
		g.log.Warn("discovery heartbeat", "err", err)
		return
	}
	live, err := g.o.Discovery.Live(ctx, g.o.ClusterName, 5*g.o.DiscoveryInterval)
	if err != nil {
		g.log.Warn("discovery read", "err", err)
		return
	}
	var join []string
	g.mu.Lock()
	clear(g.discovered)
	for _, e := range live {
		if e.ID == self.ID {
			continue
		}
		g.discovered[e.ID] = e.Address
		if _, ok := g.members[e.ID]; !ok {
			join = append(join, e.Address)
		}
	}
	g.discoveryAt = time.Now()
	g.syncPeersLocked()
	g.mu.Unlock()
	if len(join) > 0 {
		if _, err := g.ml.Join(join); err != nil {
			g.log.Debug("join discovered nodes", "addrs", join, "err", err)
		}
	}
}

// syncPeersLocked opens a stream to every node that is live in
// memberlist or discovery and closes those to nodes live in neither.
func (g *Gossip) syncPeersLocked() {
	if g.stopping {
		return
	}
	want := map[string]string{}
	for id, addr := range g.discovered {
		want[id] = addr
	}
	for id, n := range g.members {
		want[id] = n.Address
	}
	for id, addr := range want {
		p := g.peers[id]
		if p == nil {
			p = newPeer(g, id, addr)
			g.peers[id] = p
			g.wg.Add(1)
			go p.run()
		} else {
			p.setAddr(addr)
		}
	}
	for id, p := range g.peers {
		if _, ok := want[id]; !ok {
			delete(g.peers, id)
			delete(g.recv, id)
			p.close()
		}
	}
	g.checkSyncLocked()
}

// checkSyncLocked recomputes whether this node is in sync; becoming so
// starts a new epoch.
func (g *Gossip) checkSyncLocked() bool {
	ok := !g.stopping
	if g.o.Discovery != nil && time.Since(g.discoveryAt) > 3*g.o.DiscoveryInterval {
		ok = false // this node cannot tell which nodes are live
	}
	now := time.Duration(g.sinceStart())
	for id := range g.peers {
		r := g.recv[id]
		if r == nil || r.lastOK == 0 || now-r.lastOK >= g.o.Lease {
			ok = false
			break
		}
	}
	if ok && !g.inSync {
		g.syncEpoch++
	}
	g.inSync = ok
	return ok
}

// Sync implements Cluster.
func (g *Gossip) Sync() (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ok := g.checkSyncLocked()
	return g.syncEpoch, ok
}

// lostLocked records that messages from a sender were lost: caches
// filled until now may miss an invalidation.
func (g *Gossip) lostLocked(from string) {
	g.log.Warn("messages from a node were lost; dropping cached security state", "from", from)
	g.syncEpoch++
}

// Alone implements Cluster.
func (g *Gossip) Alone() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.peers) == 0
}

// Send implements Cluster.
func (g *Gossip) Send(m Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.peers {
		p.queueMsg(m)
	}
}

// SendAcked implements Cluster.
func (g *Gossip) SendAcked(ctx context.Context, m Message) []string {
	return g.sendWaiting(ctx, m, func(p *peer, pongAt time.Time) time.Time {
		if pongAt.IsZero() {
			return time.Now() // never answered: the peer has no lease from this node
		}
		// Until the peer's lease from this node has run out. Clocks of two
		// hosts run at nearly the same rate; leave a margin for the
		// difference and for scheduling.
		return pongAt.Add(g.o.Lease + g.o.Lease/10 + 50*time.Millisecond)
	})
}

// SendReliable implements Cluster.
func (g *Gossip) SendReliable(ctx context.Context, m Message) []string {
	return g.sendWaiting(ctx, m, func(p *peer, _ time.Time) time.Time {
		if p.inContact(g.o.Lease) {
			return time.Time{} // as long as ctx allows
		}
		return time.Now()
	})
}

// sendWaiting queues m for every peer and waits for each to acknowledge
// it, or until the time until gives for that peer (zero: no bound but
// ctx). until gets when this node last answered the peer's ping. It
// returns the peers that did not acknowledge.
func (g *Gossip) sendWaiting(ctx context.Context, m Message, until func(p *peer, pongAt time.Time) time.Time) []string {
	type wait struct {
		id    string
		ch    <-chan struct{}
		until time.Time
	}
	var waits []wait
	g.mu.Lock()
	for id, p := range g.peers {
		ch, pongAt := p.queueAcked(m)
		waits = append(waits, wait{id, ch, until(p, pongAt)})
	}
	g.mu.Unlock()
	var missing []string
	for _, w := range waits {
		var expired <-chan time.Time
		if !w.until.IsZero() {
			t := time.NewTimer(time.Until(w.until))
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-w.ch:
		case <-expired:
			missing = append(missing, w.id)
		case <-ctx.Done():
			missing = append(missing, w.id)
		}
	}
	return missing
}

// acceptStream serves a stream another node dialed: it handles the
// messages in order and acknowledges them.
func (g *Gossip) acceptStream(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var transcript bytes.Buffer
	transcript.WriteString(streamMagic)
	theirs, raw, err := readHandshake(br)
	if err != nil {
		g.log.Debug("stream handshake", "remote", conn.RemoteAddr(), "err", err)
		return
	}
	transcript.Write(raw)
	ours, err := newHandshake(g.epochID, g.o.Self.ID)
	if err != nil {
		return
	}
	g.mu.Lock()
	r := g.recv[theirs.id]
	var delivered uint64
	if r != nil && r.epoch == theirs.epoch {
		delivered = r.delivered
	}
	g.mu.Unlock()
	var reply bytes.Buffer
	ours.encode(&reply)
	reply.Write(u64Body(0, delivered)[1:])
	transcript.Write(reply.Bytes())
	recvC, sendC, err := newCodecs(g.o.SecretKey, theirs, ours)
	if err != nil {
		return
	}
	sum := sha256.Sum256(transcript.Bytes())
	if _, err := conn.Write(sendC.appendHello(reply.Bytes(), sum)); err != nil {
		return
	}
	if err := recvC.checkHello(br, sum); err != nil {
		g.log.Warn("cluster stream refused", "remote", conn.RemoteAddr(), "err", err)
		return
	}
	g.mu.Lock()
	r = g.recv[theirs.id]
	if r == nil || r.epoch != theirs.epoch {
		if r != nil {
			// The sender restarted: what it queued for the old run is gone
			// with it, and nothing it sent is missing from the new one.
			r.epoch, r.delivered, r.fresh = theirs.epoch, 0, true
		} else {
			r = &recvState{epoch: theirs.epoch, fresh: true}
			g.recv[theirs.id] = r
		}
	}
	g.mu.Unlock()

	lease := g.o.Lease
	var buf []byte
	ackBuf := make([]byte, 0, 64)
	unacked := 0
	for {
		_ = conn.SetReadDeadline(time.Now().Add(2 * lease))
		body, err := recvC.readFrame(br, buf, frameLimit)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				g.log.Debug("cluster stream ended", "from", theirs.id, "err", err)
			}
			return
		}
		buf = body[:0]
		ack := false
		switch body[0] {
		case frameMsg:
			seq, m, err := parseMsg(body[1:])
			if err != nil {
				g.log.Warn("cluster stream", "from", theirs.id, "err", err)
				return
			}
			g.mu.Lock()
			cur := g.recv[theirs.id]
			if cur != r { // the peer was dropped meanwhile
				g.mu.Unlock()
				return
			}
			if r.fresh {
				r.delivered, r.fresh = seq-1, false
			}
			if seq <= r.delivered {
				g.mu.Unlock()
				ack = true
				break
			}
			if seq != r.delivered+1 {
				g.lostLocked(theirs.id)
			}
			r.delivered = seq
			g.mu.Unlock()
			if h := g.handlers[m.Event]; h != nil {
				h(theirs.id, m)
			}
			ack = true
		case framePing:
			// A ping to answer: the answer goes on this node's own stream
			// to the sender, behind what it already queued there.
			v, err := parseU64s(body[1:], 1)
			if err != nil {
				return
			}
			g.mu.Lock()
			if p := g.peers[theirs.id]; p != nil {
				p.queuePong(v[0])
			}
			g.mu.Unlock()
			ack = true // keeps the dialer's read deadline alive
		case framePong:
			v, err := parseU64s(body[1:], 2)
			if err != nil {
				return
			}
			g.mu.Lock()
			if g.recv[theirs.id] == r {
				if r.fresh {
					r.delivered, r.fresh = v[1], false
				}
				if r.delivered < v[1] {
					// Messages sent before the pong never arrived (dropped
					// from a full queue, or the stream restarted past them).
					g.lostLocked(theirs.id)
					r.delivered = v[1]
				}
				r.lastOK = max(r.lastOK, time.Duration(v[0]))
				g.checkSyncLocked()
			}
			g.mu.Unlock()
		default:
			g.log.Warn("cluster stream: unknown frame", "from", theirs.id, "type", body[0])
			return
		}
		if ack {
			unacked++
		}
		// Acknowledge when caught up with what has arrived, and at least
		// every 256 messages.
		if unacked > 0 && (br.Buffered() == 0 || unacked >= 256) {
			unacked = 0
			g.mu.Lock()
			d := r.delivered
			g.mu.Unlock()
			ackBuf = sendC.appendFrame(ackBuf[:0], u64Body(frameAck, d))
			_ = conn.SetWriteDeadline(time.Now().Add(lease))
			if _, err := conn.Write(ackBuf); err != nil {
				return
			}
		}
	}
}

// memberlist hooks.

type delegate struct{ g *Gossip }

func (d *delegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(d.g.Self())
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

type events struct{ g *Gossip }

func nodeOf(n *memberlist.Node) Node {
	var out Node
	_ = json.Unmarshal(n.Meta, &out)
	out.ID = n.Name
	out.Address = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	return out
}

func (e *events) NotifyJoin(n *memberlist.Node) {
	g := e.g
	if n.Name == g.o.Self.ID {
		return
	}
	node := nodeOf(n)
	g.mu.Lock()
	g.members[n.Name] = node
	g.syncPeersLocked()
	self := g.self
	g.mu.Unlock()
	g.log.Info("node joined", "peer", n.Name, "addr", n.Address(), "version", node.Version)
	if node.Version != self.Version || node.ConfigHash != self.ConfigHash {
		g.log.Warn("a node runs another version or configuration", "peer", n.Name,
			"version", node.Version, "config_hash", node.ConfigHash, "own_version", self.Version, "own_config_hash", self.ConfigHash)
	}
	name := n.Name
	g.notify(func() {
		for _, f := range g.onJoined {
			f(name)
		}
	})
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	g := e.g
	if n.Name == g.o.Self.ID {
		return
	}
	g.mu.Lock()
	g.members[n.Name] = nodeOf(n)
	g.syncPeersLocked()
	g.mu.Unlock()
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	g := e.g
	if n.Name == g.o.Self.ID {
		return
	}
	g.mu.Lock()
	delete(g.members, n.Name)
	g.syncPeersLocked()
	g.mu.Unlock()
	g.log.Info("node left", "peer", n.Name)
	name := n.Name
	g.notify(func() {
		for _, f := range g.onLeft {
			f(name)
		}
	})
}

// slogWriter bridges memberlist's log lines ("[WARN] memberlist: ...")
// to slog at the matching level.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	if tag, rest, ok := strings.Cut(line, " "); ok {
		switch tag {
		case "[DEBUG]":
			level, line = slog.LevelDebug, rest
		case "[INFO]":
			line = rest
		case "[WARN]":
			level, line = slog.LevelWarn, rest
		case "[ERR]":
			level, line = slog.LevelError, rest
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
