package cluster_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/cluster/clustertest"
)

// gossipFactory starts nodes on loopback with a fast failure detector.
func gossipFactory(key []byte) clustertest.Factory {
	return func(t *testing.T, n int, setup func(int, cluster.Cluster)) *clustertest.Env {
		env := &clustertest.Env{}
		var nodes []*cluster.Gossip
		for i := range n {
			var peers []string
			if i > 0 {
				peers = []string{nodes[0].Self().Address}
			}
			g, err := cluster.NewGossip(cluster.GossipOptions{
				Self: cluster.Node{ID: "node-" + string(rune('a'+i)), Hostname: "host"}, ClusterName: "test",
				BindAddress: "127.0.0.1", SecretKey: key, Peers: peers,
				Lease: time.Second, PingInterval: 100 * time.Millisecond, ProbeInterval: 100 * time.Millisecond,
			})
			require.NoError(t, err)
			setup(i, g)
			require.NoError(t, g.Start(context.Background()))
			t.Cleanup(func() { _ = g.Stop(context.Background()) })
			nodes = append(nodes, g)
			env.Nodes = append(env.Nodes, g)
		}
		env.Crash = func(i int) { cluster.Crash(nodes[i]) }
		return env
	}
}

func TestGossip(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	clustertest.Run(t, gossipFactory(key))
}

func TestGossipPlain(t *testing.T) {
	t.Parallel()
	clustertest.Run(t, gossipFactory(nil))
}

// TestGossipAdvertiseAddress: with an advertised address and no
// advertised port, a node advertises the port it bound, and nodes join.
func TestGossipAdvertiseAddress(t *testing.T) {
	t.Parallel()
	var nodes []*cluster.Gossip
	for i := range 2 {
		var peers []string
		if i > 0 {
			peers = []string{nodes[0].Self().Address}
		}
		g, err := cluster.NewGossip(cluster.GossipOptions{Self: cluster.Node{ID: "adv-" + string(rune('a'+i))},
			ClusterName: "adv", BindAddress: "127.0.0.1", AdvertiseAddress: "127.0.0.1", Peers: peers,
			ProbeInterval: 100 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, g.Start(context.Background()))
		t.Cleanup(func() { _ = g.Stop(context.Background()) })
		require.NotContains(t, g.Self().Address, ":0", "the bound port is advertised")
		nodes = append(nodes, g)
	}
	require.Eventually(t, func() bool { return len(nodes[0].Nodes()) == 2 && len(nodes[1].Nodes()) == 2 },
		30*time.Second, 10*time.Millisecond)
}
