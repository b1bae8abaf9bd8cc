// Package clustertest is the conformance suite every cluster.Cluster
// implementation passes.
package clustertest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/cluster"
)

// Env is a started cluster of nodes made by a Factory.
type Env struct {
	Nodes []cluster.Cluster
	// Cut, if set, stops all traffic between nodes i and j; Heal undoes
	// every cut.
	Cut  func(i, j int)
	Heal func()
	// Crash, if set, stops node i the way a killed process stops: without
	// telling anyone.
	Crash func(i int)
}

// Factory makes n nodes, calls setup on each before starting it, starts
// them and returns once they are started (not necessarily joined).
type Factory func(t *testing.T, n int, setup func(i int, c cluster.Cluster)) *Env

// Deadline bounds every wait of the suite; the failure detectors of the
// implementations under test must be tuned to act well within it.
const Deadline = 30 * time.Second

const event = "test"

// recorder keeps what one node received.
type recorder struct {
	mu  sync.Mutex // guards got
	got map[string][]string
}

func (r *recorder) handle(from string, m cluster.Message) {
	r.mu.Lock()
	r.got[from] = append(r.got[from], string(m.Data))
	r.mu.Unlock()
}

func (r *recorder) from(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[id])
}

type left struct {
	mu  sync.Mutex // guards ids
	ids []string
}

func (l *left) add(id string) {
	l.mu.Lock()
	l.ids = append(l.ids, id)
	l.mu.Unlock()
}

func (l *left) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.ids, id)
}

type fixture struct {
	*Env
	recs   []*recorder
	left   []*left
	joined []*left
}

func start(t *testing.T, f Factory, n int) *fixture {
	t.Helper()
	fx := &fixture{}
	env := f(t, n, func(i int, c cluster.Cluster) {
		r := &recorder{got: map[string][]string{}}
		l, j := &left{}, &left{}
		fx.recs = append(fx.recs, r)
		fx.left = append(fx.left, l)
		fx.joined = append(fx.joined, j)
		c.Handle(event, r.handle)
		c.OnNodeLeft(l.add)
		c.OnNodeJoined(j.add)
	})
	require.Len(t, env.Nodes, n)
	fx.Env = env
	fx.waitFormed(t, allIndexes(n))
	return fx
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// waitFormed waits until each listed node sees exactly the listed nodes
// and is in sync.
func (fx *fixture) waitFormed(t *testing.T, idx []int) {
	t.Helper()
	want := make([]string, 0, len(idx))
	for _, i := range idx {
		want = append(want, fx.Nodes[i].Self().ID)
	}
	slices.Sort(want)
	require.Eventually(t, func() bool {
		for _, i := range idx {
			var ids []string
			for _, n := range fx.Nodes[i].Nodes() {
				ids = append(ids, n.ID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, want) {
				return false
			}
			if _, ok := fx.Nodes[i].Sync(); !ok {
				return false
			}
		}
		return true
	}, Deadline, 10*time.Millisecond, "cluster of %v did not form", want)
}

func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, Deadline, 10*time.Millisecond, fmt.Sprintf(msg, args...))
}

// Run runs the suite against the implementation f makes.
func Run(t *testing.T, f Factory) {
	t.Run("Identity", func(t *testing.T) {
		fx := start(t, f, 3)
		for i, c := range fx.Nodes {
			nodes := c.Nodes()
			require.Equal(t, c.Self().ID, nodes[0].ID, "node %d lists itself first", i)
			require.False(t, c.Alone(), "node %d has others to send to", i)
			for _, n := range nodes {
				require.NotEmpty(t, n.Address, "node %s has an address", n.ID)
			}
			for _, o := range fx.Nodes {
				if o != c {
					id := o.Self().ID
					eventually(t, func() bool { return fx.joined[i].has(id) }, "node %d told that %s joined", i, id)
				}
			}
		}
	})

	t.Run("OrderedDelivery", func(t *testing.T) {
		fx := start(t, f, 3)
		const count = 500
		var want []string
		for i := range count {
			want = append(want, strconv.Itoa(i))
			fx.Nodes[0].Send(cluster.Message{Event: event, Data: []byte(strconv.Itoa(i))})
		}
		src := fx.Nodes[0].Self().ID
		for _, i := range []int{1, 2} {
			eventually(t, func() bool { return len(fx.recs[i].from(src)) >= count }, "node %d got all", i)
			require.Equal(t, want, fx.recs[i].from(src), "node %d: in order, once each", i)
		}
		require.Empty(t, fx.recs[0].from(src), "a node does not receive its own messages")
	})

	t.Run("ConcurrentSenders", func(t *testing.T) {
		fx := start(t, f, 2)
		const senders, each = 4, 100
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				for i := range each {
					fx.Nodes[0].Send(cluster.Message{Event: event, Data: fmt.Appendf(nil, "%d-%d", s, i)})
				}
			})
		}
		wg.Wait()
		src := fx.Nodes[0].Self().ID
		eventually(t, func() bool { return len(fx.recs[1].from(src)) >= senders*each }, "all arrive")
		got := fx.recs[1].from(src)
		require.Len(t, got, senders*each)
		next := make([]int, senders)
		for _, g := range got {
			var s, i int
			_, err := fmt.Sscanf(g, "%d-%d", &s, &i)
			require.NoError(t, err)
			require.Equal(t, next[s], i, "sender %d's messages in order", s)
			next[s]++
		}
	})

	t.Run("SendAckedWaitsForHandlers", func(t *testing.T) {
		fx := start(t, f, 3)
		ctx, cancel := context.WithTimeout(context.Background(), Deadline)
		defer cancel()
		for i := range 20 {
			msg := "acked-" + strconv.Itoa(i)
			send := fx.Nodes[1].SendAcked
			if i%2 == 1 {
				send = fx.Nodes[1].SendReliable
			}
			missing := send(ctx, cluster.Message{Event: event, Data: []byte(msg)})
			require.Empty(t, missing)
			src := fx.Nodes[1].Self().ID
			for _, n := range []int{0, 2} {
				got := fx.recs[n].from(src)
				require.NotEmpty(t, got)
				require.Equal(t, msg, got[len(got)-1], "node %d handled it before SendAcked returned", n)
			}
		}
	})

	t.Run("StopIsSeen", func(t *testing.T) {
		fx := start(t, f, 3)
		gone := fx.Nodes[2].Self().ID
		ctx, cancel := context.WithTimeout(context.Background(), Deadline)
		defer cancel()
		require.NoError(t, fx.Nodes[2].Stop(ctx))
		fx.waitFormed(t, []int{0, 1})
		for _, i := range []int{0, 1} {
			eventually(t, func() bool { return fx.left[i].has(gone) }, "node %d told that %s left", i, gone)
		}
		require.NoError(t, fx.Nodes[1].Stop(ctx))
		fx.waitFormed(t, []int{0})
		eventually(t, fx.Nodes[0].Alone, "node 0 is alone once the others left")
		// Sending to a cluster that lost a node neither blocks nor fails.
		require.Empty(t, fx.Nodes[0].SendAcked(ctx, cluster.Message{Event: event, Data: []byte("after")}))

	})

	t.Run("Crash", func(t *testing.T) {
		fx := start(t, f, 3)
		if fx.Crash == nil {
			t.Skip("the implementation cannot crash a node")
		}
		gone := fx.Nodes[2].Self().ID
		fx.Crash(2)
		// The survivors find out, and are in sync without it (they may or
		// may not lose sync meanwhile, depending on which of the lease and
		// the failure detector runs out first).
		fx.waitFormed(t, []int{0, 1})
		for _, i := range []int{0, 1} {
			eventually(t, func() bool { return fx.left[i].has(gone) }, "node %d told that %s left", i, gone)
		}
		ctx, cancel := context.WithTimeout(context.Background(), Deadline)
		defer cancel()
		require.Empty(t, fx.Nodes[0].SendAcked(ctx, cluster.Message{Event: event, Data: []byte("after")}))
	})

	t.Run("Partition", func(t *testing.T) {
		fx := start(t, f, 3)
		if fx.Cut == nil {
			t.Skip("the implementation cannot cut links")
		}
		e0, _ := fx.Nodes[0].Sync()
		e2, _ := fx.Nodes[2].Sync()
		fx.Cut(0, 2)
		for _, i := range []int{0, 2} {
			eventually(t, func() bool { _, ok := fx.Nodes[i].Sync(); return !ok }, "node %d loses sync", i)
		}
		// Node 2 cannot acknowledge, but it is out of sync, so the send
		// returns without waiting for ever.
		ctx, cancel := context.WithTimeout(context.Background(), Deadline)
		defer cancel()
		missing := fx.Nodes[0].SendAcked(ctx, cluster.Message{Event: event, Data: []byte("during")})
		require.NoError(t, ctx.Err(), "SendAcked returned because the cut node is out of sync")
		require.Contains(t, missing, fx.Nodes[2].Self().ID)
		require.NotContains(t, missing, fx.Nodes[1].Self().ID)
		missing = fx.Nodes[0].SendReliable(ctx, cluster.Message{Event: event, Data: []byte("during, reliable")})
		require.NoError(t, ctx.Err(), "SendReliable does not wait for a node out of contact")
		require.Contains(t, missing, fx.Nodes[2].Self().ID)
		require.Contains(t, fx.recs[1].from(fx.Nodes[0].Self().ID), "during, reliable", "node 1 handled it")

		fx.Heal()
		fx.waitFormed(t, []int{0, 1, 2})
		n0, _ := fx.Nodes[0].Sync()
		n2, _ := fx.Nodes[2].Sync()
		require.NotEqual(t, e0, n0, "node 0 is in a new epoch")
		require.NotEqual(t, e2, n2, "node 2 is in a new epoch")
		// What was sent during the cut arrives once it heals, or node 2
		// knows it lost it (a new epoch, checked above).
		src := fx.Nodes[0].Self().ID
		eventually(t, func() bool {
			fx.Nodes[0].Send(cluster.Message{Event: event, Data: []byte("healed")})
			return slices.Contains(fx.recs[2].from(src), "healed")
		}, "delivery resumes after the cut heals")
	})
}
