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
