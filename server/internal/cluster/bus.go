package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// Bus is an in-process cluster for tests: nodes made by Join exchange
// messages through memory. It keeps Gossip's contract (ordered delivery,
// acknowledgements, sync) and can cut the link between two nodes, which
// makes both of them lose sync until the cut heals; messages sent over a
// cut link wait and are delivered when it heals, as a reconnecting stream
// would deliver them.
type Bus struct {
	mu    sync.Mutex // guards the fields below
	nodes map[string]*BusNode
	order []string            // ids of started nodes, in join order
	cut   map[[2]string]bool  // sorted id pairs that cannot talk
	links map[[2]string]*link // from, to → ordered queue
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	return &Bus{nodes: map[string]*BusNode{}, cut: map[[2]string]bool{}, links: map[[2]string]*link{}}
}

// Join returns a node of the bus; it takes part once started.
func (b *Bus) Join(self Node) *BusNode {
	return &BusNode{bus: b, self: self, handlers: map[string]Handler{}}
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Cut stops traffic between two nodes until Heal.
func (b *Bus) Cut(a, c string) {
	b.mu.Lock()
	b.cut[pair(a, c)] = true
	for _, n := range b.nodes {
		n.checkSyncLocked()
	}
	b.mu.Unlock()
}

// Heal restores every cut link and delivers what waited on them.
func (b *Bus) Heal() {
	b.mu.Lock()
	clear(b.cut)
	for _, n := range b.nodes {
		n.checkSyncLocked()
	}
	links := make([]*link, 0, len(b.links))
	for _, l := range b.links {
		links = append(links, l)
	}
	b.mu.Unlock()
	for _, l := range links {
		l.wake()
	}
}

func (b *Bus) isCut(a, c string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cut[pair(a, c)]
}

// BusNode is one node of a Bus.
type BusNode struct {
	bus      *Bus
	self     Node
	handlers map[string]Handler // set before Start, read-only after
	onJoined []func(string)
	onLeft   []func(string)

	// Guarded by bus.mu.
	started bool
	inSync  bool
	epoch   uint64
}

var _ Cluster = (*BusNode)(nil)

// Self implements Cluster.
func (n *BusNode) Self() Node { return n.self }

// Nodes implements Cluster.
func (n *BusNode) Nodes() []Node {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	out := []Node{n.self}
	for _, id := range n.bus.order {
		if id != n.self.ID && !n.bus.cut[pair(id, n.self.ID)] {
			out = append(out, n.bus.nodes[id].self)
		}
	}
	return out
}

// Handle implements Cluster.
func (n *BusNode) Handle(event string, h Handler) { n.handlers[event] = h }

// OnNodeJoined implements Cluster.
func (n *BusNode) OnNodeJoined(f func(string)) { n.onJoined = append(n.onJoined, f) }

// OnNodeLeft implements Cluster.
func (n *BusNode) OnNodeLeft(f func(string)) { n.onLeft = append(n.onLeft, f) }

// Start implements Cluster.
func (n *BusNode) Start(context.Context) error {
	b := n.bus
	b.mu.Lock()
	if n.started {
		b.mu.Unlock()
		return errors.New("cluster: bus node already started")
	}
	if _, dup := b.nodes[n.self.ID]; dup {
		b.mu.Unlock()
		return errors.New("cluster: bus node id in use: " + n.self.ID)
	}
	n.started = true
	b.nodes[n.self.ID] = n
	b.order = append(b.order, n.self.ID)
	var others []*BusNode
	for _, o := range b.nodes {
		o.checkSyncLocked()
		if o != n {
			others = append(others, o)
		}
	}
	b.mu.Unlock()
	for _, o := range others {
		for _, f := range o.onJoined {
			f(n.self.ID)
		}
		for _, f := range n.onJoined {
			f(o.self.ID)
		}
	}
	return nil
}

// Stop implements Cluster: the node leaves and what was queued for it
// is dropped.
func (n *BusNode) Stop(context.Context) error {
	b := n.bus
	b.mu.Lock()
	if !n.started {
		b.mu.Unlock()
		return nil
	}
	n.started = false
	delete(b.nodes, n.self.ID)
	b.order = slices.DeleteFunc(b.order, func(id string) bool { return id == n.self.ID })
	var stop []*link
	for k, l := range b.links {
		if k[0] == n.self.ID || k[1] == n.self.ID {
			stop = append(stop, l)
			delete(b.links, k)
		}
	}
	var others []*BusNode
	for _, o := range b.nodes {
		o.checkSyncLocked()
		others = append(others, o)
	}
	b.mu.Unlock()
	for _, l := range stop {
		l.close()
	}
	for _, o := range others {
		for _, f := range o.onLeft {
			f(n.self.ID)
		}
	}
	return nil
}

// checkSyncLocked updates whether n is in sync: it is while it can reach
// every other started node.
func (n *BusNode) checkSyncLocked() {
	if !n.started {
		return
	}
	ok := true
	for id := range n.bus.nodes {
		if id != n.self.ID && n.bus.cut[pair(id, n.self.ID)] {
			ok = false
		}
	}
	if ok && !n.inSync {
		n.epoch++
	}
	n.inSync = ok
}

// Sync implements Cluster.
func (n *BusNode) Sync() (uint64, bool) {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	return n.epoch, n.started && n.inSync
}

// Alone implements Cluster.
func (n *BusNode) Alone() bool {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	return len(n.bus.nodes) <= 1
}

// Send implements Cluster.
func (n *BusNode) Send(m Message) { n.send(m) }

func (n *BusNode) send(m Message) []*delivery {
	b := n.bus
	b.mu.Lock()
	if !n.started {
		b.mu.Unlock()
		return nil
	}
	var out []*delivery
	for _, id := range b.order {
		if id == n.self.ID {
			continue
		}
		k := [2]string{n.self.ID, id}
		l := b.links[k]
		if l == nil {
			l = newLink(b, n.self.ID, b.nodes[id])
			b.links[k] = l
		}
		d := &delivery{to: id, m: Message{Event: m.Event, Data: slices.Clone(m.Data)}, done: make(chan struct{})}
		l.push(d)
		out = append(out, d)
	}
	b.mu.Unlock()
	return out
}

// SendAcked implements Cluster. A node cut off from this one is out of
// sync at once, so it is not waited for.
func (n *BusNode) SendAcked(ctx context.Context, m Message) []string {
	var missing []string
	for _, d := range n.send(m) {
		if n.bus.isCut(n.self.ID, d.to) {
			missing = append(missing, d.to)
			continue
		}
		select {
		case <-d.done:
		case <-ctx.Done():
			missing = append(missing, d.to)
		}
	}
	return missing
}

// SendReliable implements Cluster: on a bus every node not cut off is in
// contact.
func (n *BusNode) SendReliable(ctx context.Context, m Message) []string { return n.SendAcked(ctx, m) }

// delivery is one message on its way to one node.
type delivery struct {
	to   string
	m    Message
	done chan struct{} // closed once handled
}

// link delivers the messages of one node to another, in order, while
// the pair is not cut.
type link struct {
	bus      *Bus
	from, to string
	dst      *BusNode

	mu     sync.Mutex // guards the fields below
	queue  []*delivery
	closed bool
	signal chan struct{} // buffered(1): work may be waiting
}

func newLink(b *Bus, from string, dst *BusNode) *link {
	l := &link{bus: b, from: from, to: dst.self.ID, dst: dst, signal: make(chan struct{}, 1)}
	go l.run()
	return l
}

func (l *link) push(d *delivery) {
	l.mu.Lock()
	l.queue = append(l.queue, d)
	l.mu.Unlock()
	l.wake()
}

func (l *link) wake() {
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wake()
}

func (l *link) run() {
	for range l.signal {
		for {
			cut := l.bus.isCut(l.from, l.to) // before l.mu: send holds bus.mu, then l.mu
			l.mu.Lock()
			if l.closed {
				l.mu.Unlock()
				return
			}
			if len(l.queue) == 0 || cut {
				l.mu.Unlock()
				break
			}
			d := l.queue[0]
			l.queue = l.queue[1:]
			l.mu.Unlock()
			if h := l.dst.handlers[d.m.Event]; h != nil {
				h(l.from, d.m)
			}
			close(d.done)
		}
	}
}
