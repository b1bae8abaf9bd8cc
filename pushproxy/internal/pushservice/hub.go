package pushservice

import (
	"sync"

	"github.com/gorilla/websocket"
)

// Close codes.
const (
	// closeSuperseded ends a socket whose device said hello on a newer
	// one. It is Firefox's 4774, "do not reconnect automatically": the
	// client that opened the newer socket is the one that matters, and a
	// still-running old client (a copied profile sharing the uaid) must
	// not reconnect and supersede it back, forever.
	closeSuperseded = 4774
	// closeSlow ends a socket that cannot take frames fast enough. Firefox
	// reconnects and the mailbox replays what it missed.
	closeSlow = websocket.CloseTryAgainLater
)

// hub is the registry of this process's device sockets. Nothing in it
// blocks: it is called from HTTP handlers and the LISTEN loop, which must
// never wait on a device.
type hub struct {
	m *metrics

	mu     sync.Mutex // guards the fields below
	byUAID map[string]*conn
	all    map[*conn]struct{} // every open socket, with or without a device yet
}

func newHub(m *metrics) *hub {
	return &hub{m: m, byUAID: make(map[string]*conn), all: make(map[*conn]struct{})}
}

func (h *hub) track(c *conn) {
	h.mu.Lock()
	h.all[c] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) untrack(c *conn) {
	h.mu.Lock()
	delete(h.all, c)
	h.mu.Unlock()
}

// attach makes c the socket of its device, superseding an older one. It
// returns false, leaving things as they are, if a newer socket of the
// device is already attached.
func (h *hub) attach(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.byUAID[c.uaid]
	if old != nil && old.gen > c.gen {
		return false
	}
	h.byUAID[c.uaid] = c
	h.m.connected.Set(float64(len(h.byUAID)))
	if old != nil {
		old.end(closeSuperseded, "superseded by a new connection")
	}
	return true
}

// detach removes c if it is still its device's socket.
func (h *hub) detach(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byUAID[c.uaid] == c {
		delete(h.byUAID, c.uaid)
		h.m.connected.Set(float64(len(h.byUAID)))
	}
}

func (h *hub) get(uaid string) *conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byUAID[uaid]
}

// wake tells the device's socket, if it is here, to look at the mailbox.
func (h *hub) wake(uaid string) {
	if c := h.get(uaid); c != nil {
		c.poke()
	}
}

// deliver hands a ready frame (a TTL 0 notification) to the device's
// socket of generation gen, if it is here. A socket that cannot take it
// is closed.
func (h *hub) deliver(uaid string, gen int64, frame []byte) {
	if c := h.get(uaid); c != nil && c.gen == gen && c.send(frame) {
		h.m.delivered.Inc()
	}
}

// kick closes the device's socket if it is older than generation gen: the
// device said hello again, perhaps on another process.
func (h *hub) kick(uaid string, gen int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.byUAID[uaid]
	if c == nil || c.gen >= gen {
		return
	}
	delete(h.byUAID, uaid)
	h.m.connected.Set(float64(len(h.byUAID)))
	c.end(closeSuperseded, "superseded by a new connection")
}

// uaids lists the devices connected here.
func (h *hub) uaids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.byUAID))
	for u := range h.byUAID {
		out = append(out, u)
	}
	return out
}

// closeAll asks every socket to close with code.
func (h *hub) closeAll(code int, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.all {
		c.end(code, text)
	}
}

// abortAll cuts every socket without a close handshake.
func (h *hub) abortAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.all {
		_ = c.ws.Close()
	}
}
