package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// benchEnv turns TestBenchCluster on (make bench-cluster).
const benchEnv = "GARRISON_BENCH"

// The bench's size: 3 nodes × 500 sockets, kept modest for two cores
// that also run the three nodes, nginx, two Postgres servers and the
// clients. Users have several sockets each (a user with a few devices),
// which spares 1,350 bcrypt sign-ups and logins in the set-up.
const (
	benchUsers      = 150
	benchSocketsPer = 10 // per user, spread over the nodes
	benchPosters    = 6  // two per node, posting directly to it
	benchPostsPer   = 150
	benchWait       = time.Minute // for the last deliveries
)

// TestBenchCluster measures cross-node delivery latency (post sent →
// event read, p50/p99) and the posts/s the cluster accepts while it fans
// every post out to 1,500 sockets spread over the three nodes. Figures
// are reported, not asserted. Skipped unless GARRISON_BENCH=1.
func TestBenchCluster(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skipf("set %s=1 to run (make bench-cluster)", benchEnv)
	}
	s := newSite(t, siteOptions{})
	ctx := t.Context()
	setupStart := time.Now()
	ch, m := s.setup(ctx, "bench", "O", benchUsers)

	var socks []*benchSocket
	for i := range benchUsers {
		for j := range benchSocketsPer {
			socks = append(socks, &benchSocket{node: (i + j) % len(s.apps), token: m[i].rest.token})
		}
	}
	var readers sync.WaitGroup
	var closing atomic.Bool
	defer func() {
		closing.Store(true)
		for _, b := range socks {
			if b.conn != nil {
				_ = b.conn.Close()
			}
		}
		readers.Wait()
	}()
	var delivered [2]atomic.Int64 // per phase
	err := forEach(ctx, len(socks), 16, func(ctx context.Context, i int) error {
		b := socks[i]
		conn, err := dialWS(ctx, s.wsd, nodeURL(s.apps[b.node]), b.token, nil)
		if err != nil {
			return err
		}
		b.conn = conn
		if _, err := readEvent(conn, time.Now().Add(eventTimeout)); err != nil { // the hello
			return fmt.Errorf("socket %d: %w", i, err)
		}
		_ = conn.SetReadDeadline(time.Time{})
		readers.Go(func() { b.read(&delivered, &closing) })
		return nil
	})
	require.NoError(t, err)
	setup := time.Since(setupStart)

	figures := map[string]any{
		"nodes":   len(s.apps),
		"sockets": len(socks),
		"users":   benchUsers,
		"setup":   setup.Round(time.Millisecond).String(),
	}
	for _, ph := range benchPhases {
		maps.Copy(figures, runBenchPhase(ctx, t, s, ch.ID, m, ph, socks, &delivered[ph.id]))
	}
	closing.Store(true)
	for _, b := range socks {
		_ = b.conn.Close()
	}
	readers.Wait()
	for _, ph := range benchPhases {
		for other, where := range []string{"same_node", "cross_node"} {
			var all []int64
			first := map[int64]int64{} // post (its send time) → its first delivery here
			for _, b := range socks {
				for _, d := range b.lat[ph.id][other] {
					all = append(all, d.lat)
					if f, ok := first[d.sent]; !ok || d.lat < f {
						first[d.sent] = d.lat
					}
				}
			}
			figures[ph.name+"_latency_"+where+"_ms"] = percentiles(all, "deliveries")
			figures[ph.name+"_first_delivery_"+where+"_ms"] = percentiles(slices.Collect(maps.Values(first)), "posts")
		}
	}
	lost := 0
	for _, b := range socks {
		if b.err != nil {
			lost++
		}
	}
	figures["sockets_lost"] = lost
	report(t, "bench-cluster", figures)
}

// benchPhase is one posting pattern of the bench.
type benchPhase struct {
	id   int
	name string
	// every is each poster's interval between posts; 0 posts as fast as
	// the server answers.
	every time.Duration
	posts int // per poster
}

// benchPhases: latency at a steady 10 posts/s (6 posters, one post every
// 600 ms each), then the rate the cluster sustains when the posters go
// as fast as they are answered, and the latency under that load.
var benchPhases = []benchPhase{
	{id: 0, name: "paced", every: 600 * time.Millisecond, posts: 20},
	{id: 1, name: "saturated", posts: benchPostsPer},
}

// runBenchPhase posts with every poster directly to its node and waits
// for the deliveries.
func runBenchPhase(ctx context.Context, t *testing.T, s *site, channelID string, m []member, ph benchPhase,
	socks []*benchSocket, delivered *atomic.Int64) map[string]any {
	var accepted, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var posting sync.WaitGroup
	for k := range benchPosters {
		node := k % len(s.apps)
		c := m[k].on(s.apps[node])
		posting.Go(func() {
			var tick <-chan time.Time
			if ph.every > 0 {
				tk := time.NewTicker(ph.every)
				defer tk.Stop()
				tick = tk.C
			}
			for i := range ph.posts {
				msg := fmt.Sprintf("bench %d %d %d %d", ph.id, node, time.Now().UnixNano(), i)
				if _, err := c.createPost(ctx, channelID, msg); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					accepted.Add(1)
				}
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}
	posting.Wait()
	postingTime := time.Since(start)
	want := accepted.Load() * int64(len(socks))
	waitStart := time.Now()
	err := poll(ctx, benchWait, func(context.Context) error {
		if got := delivered.Load(); got < want {
			return fmt.Errorf("%d of %d deliveries", got, want)
		}
		return nil
	})
	if err != nil {
		t.Logf("%s: %v", ph.name, err)
	}
	return map[string]any{
		ph.name + "_posts_accepted":        accepted.Load(),
		ph.name + "_posts_failed":          failed.Load(),
		ph.name + "_first_post_error":      fmt.Sprint(firstErr.Load()),
		ph.name + "_posting_time":          postingTime.Round(time.Millisecond).String(),
		ph.name + "_posts_per_second":      fmt.Sprintf("%.1f", float64(accepted.Load())/postingTime.Seconds()),
		ph.name + "_deliveries":            fmt.Sprintf("%d of %d", delivered.Load(), want),
		ph.name + "_drain_after_last_post": time.Since(waitStart).Round(time.Millisecond).String(),
	}
}

// benchSocket is one socket of the bench; its fields below conn belong
// to its reader.
type benchSocket struct {
	node  int // index of the app node it is connected to
	token string
	conn  *websocket.Conn

	lat [2][2][]delivery // [phase][0 same node, 1 other node]
	err error            // why it ended before the bench closed it
}

// delivery is a post read on a socket: when it was sent (which names it)
// and how long after that it was read, in nanoseconds.
type delivery struct{ sent, lat int64 }

// read records the bench's posted events until the socket ends. It runs
// 1,500 times on the machine the nodes run on, so it scans frames rather
// than decoding them.
func (b *benchSocket) read(delivered *[2]atomic.Int64, closing *atomic.Bool) {
	key := []byte(`\"message\":\"bench `)
	for {
		_, frame, err := b.conn.ReadMessage()
		if err != nil {
			if !closing.Load() {
				b.err = err
			}
			return
		}
		now := time.Now().UnixNano()
		i := bytes.Index(frame, key)
		if i < 0 || !bytes.Contains(frame[:i], []byte(`"event":"posted"`)) {
			continue
		}
		rest := frame[i+len(key):]
		end := bytes.Index(rest, []byte(`\"`))
		if end < 0 {
			continue
		}
		f := strings.Fields(string(rest[:end])) // phase, node, sent, seq
		if len(f) != 4 {
			continue
		}
		phase, err1 := strconv.Atoi(f[0])
		node, err2 := strconv.Atoi(f[1])
		sent, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || phase < 0 || phase >= len(b.lat) {
			continue
		}
		other := 0
		if node != b.node {
			other = 1
		}
		b.lat[phase][other] = append(b.lat[phase][other], delivery{sent: sent, lat: now - sent})
		delivered[phase].Add(1)
	}
}

// percentiles summarises latencies in nanoseconds as milliseconds; what
// names what was counted.
func percentiles(ns []int64, what string) string {
	if len(ns) == 0 {
		return "none"
	}
	slices.Sort(ns)
	at := func(q float64) float64 { return float64(ns[int(q*float64(len(ns)-1))]) / 1e6 }
	return fmt.Sprintf("p50 %.1f  p90 %.1f  p99 %.1f  max %.1f (%d %s)", at(0.5), at(0.9), at(0.99), at(1), len(ns), what)
}
