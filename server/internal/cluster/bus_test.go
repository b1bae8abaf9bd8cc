package cluster_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/cluster/clustertest"
)

func TestBus(t *testing.T) {
	t.Parallel()
	clustertest.Run(t, func(t *testing.T, n int, setup func(int, cluster.Cluster)) *clustertest.Env {
		bus := cluster.NewBus()
		env := &clustertest.Env{Cut: func(i, j int) {}, Heal: bus.Heal}
		ids := make([]string, n)
		for i := range n {
			ids[i] = "node" + string(rune('a'+i))
			c := bus.Join(cluster.Node{ID: ids[i], Address: "bus:" + ids[i]})
			setup(i, c)
			require.NoError(t, c.Start(context.Background()))
			t.Cleanup(func() { _ = c.Stop(context.Background()) })
			env.Nodes = append(env.Nodes, c)
		}
		env.Cut = func(i, j int) { bus.Cut(ids[i], ids[j]) }
		return env
	})
}
