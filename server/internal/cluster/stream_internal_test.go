package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func randKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

// acceptor serves g's streams on a loopback listener, as the demux
// transport would.
func acceptor(t *testing.T, g *Gossip) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(conn)
				if _, err := br.Discard(len(streamMagic)); err != nil {
					conn.Close()
					return
				}
				g.acceptStream(&demuxConn{Conn: conn, r: br})
			}()
		}
	}()
	return ln.Addr().String()
}

func newTestGossip(t *testing.T, id string, key []byte) *Gossip {
	t.Helper()
	g, err := NewGossip(GossipOptions{Self: Node{ID: id}, SecretKey: key, Lease: time.Second})
	require.NoError(t, err)
	g.started = time.Now()
	return g
}

func TestStreamRefusesAnotherKey(t *testing.T) {
	t.Parallel()
	a := newTestGossip(t, "a", randKey(t))
	b := newTestGossip(t, "b", randKey(t))
	p := newPeer(b, "a", acceptor(t, a))
	err := p.session()
	require.ErrorContains(t, err, "does not verify")

	plain := newTestGossip(t, "c", nil)
	p = newPeer(plain, "a", acceptor(t, a))
	require.ErrorContains(t, p.session(), "does not verify", "a node without the key is refused too")
}

func TestStreamRefusesAnotherNode(t *testing.T) {
	t.Parallel()
	key := randKey(t)
	a := newTestGossip(t, "a", key)
	b := newTestGossip(t, "b", key)
	p := newPeer(b, "not-a", acceptor(t, a))
	require.ErrorContains(t, p.session(), "another node id")
}

// TestStreamResendsAfterReconnect breaks the connection again and again
// while messages flow: each arrives once, in order.
func TestStreamResendsAfterReconnect(t *testing.T) {
	t.Parallel()
	key := randKey(t)
	a := newTestGossip(t, "a", key)
	var mu sync.Mutex
	var got []string
	a.Handle("m", func(from string, m Message) {
		mu.Lock()
		got = append(got, string(m.Data))
		mu.Unlock()
	})
	b := newTestGossip(t, "b", key)
	p := newPeer(b, "a", acceptor(t, a))
	b.wg.Add(1)
	go p.run()
	t.Cleanup(func() { p.close(); b.wg.Wait() })

	const count = 2000
	for i := range count {
		p.queueMsg(Message{Event: "m", Data: []byte(strconv.Itoa(i))})
		if i%300 == 150 {
			p.mu.Lock()
			if p.conn != nil {
				p.conn.Close() // the link breaks; the peer redials
			}
			p.mu.Unlock()
		}
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= count
	}, 30*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, count)
	for i, s := range got {
		require.Equal(t, strconv.Itoa(i), s)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Equal(t, uint64(0), a.syncEpoch, "nothing was lost")
}

// TestLeaseRunsOut: a node whose peer stops answering loses sync within
// the lease, long before the failure detector declares the peer dead,
// and is back in sync, in a new epoch, once the peer is gone.
func TestLeaseRunsOut(t *testing.T) {
	t.Parallel()
	key := randKey(t)
	mk := func(id string, peers []string) *Gossip {
		g, err := NewGossip(GossipOptions{Self: Node{ID: id}, ClusterName: "lease", BindAddress: "127.0.0.1",
			SecretKey: key, Peers: peers, Lease: 300 * time.Millisecond, PingInterval: 50 * time.Millisecond,
			ProbeInterval: time.Second})
		require.NoError(t, err)
		require.NoError(t, g.Start(context.Background()))
		t.Cleanup(func() { _ = g.Stop(context.Background()) })
		return g
	}
	a := mk("a", nil)
	b := mk("b", []string{a.Self().Address})
	require.Eventually(t, func() bool {
		_, okA := a.Sync()
		_, okB := b.Sync()
		return okA && okB && len(a.Nodes()) == 2
	}, 30*time.Second, 10*time.Millisecond)
	before, _ := a.Sync()
	b.crash()
	require.Eventually(t, func() bool { _, ok := a.Sync(); return !ok }, 30*time.Second, 5*time.Millisecond)
	require.Len(t, a.Nodes(), 2, "lost sync before the failure detector acted")
	require.Eventually(t, func() bool { _, ok := a.Sync(); return ok && len(a.Nodes()) == 1 }, 30*time.Second, 10*time.Millisecond)
	after, _ := a.Sync()
	require.Greater(t, after, before)
}

// TestHelloIsSmall: before the peer has proved it holds the key, a frame
// header claiming a large body is refused without reading (or allocating)
// the body.
func TestHelloIsSmall(t *testing.T) {
	t.Parallel()
	c := &codec{}
	var sum [32]byte
	header := []byte{0x00, 0x80, 0x00, 0x00} // 8 MiB
	err := c.checkHello(bytes.NewReader(header), sum)
	require.ErrorContains(t, err, "bad frame size")

	var good bytes.Buffer
	good.Write(c.appendHello(nil, sum))
	require.NoError(t, (&codec{}).checkHello(&good, sum))
	other := sum
	other[0] = 1
	good.Write((&codec{}).appendHello(nil, other))
	require.ErrorContains(t, (&codec{}).checkHello(&good, sum), "does not verify")
}
