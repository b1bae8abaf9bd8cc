package debroot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSweepKillsOrphanedNodes: a test process killed by -timeout runs no
// cleanup; the next CreateNode finds its booted node and removes it.
func TestSweepKillsOrphanedNodes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	base := Prepare(t)
	parent := t.TempDir()
	n, err := CreateNode(ctx, base, NodeOptions{Name: "orphan", Dir: parent, Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { removeNode(t, n) })
	require.NoError(t, n.Boot(ctx, BootOptions{}))
	leader, err := n.Leader()
	require.NoError(t, err)
	b := n.boot

	// Another node, whose owner (this process) is alive: never touched.
	live, err := CreateNode(ctx, base, NodeOptions{Name: "live", Dir: parent, Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { removeNode(t, live) })

	// Make the first node's owner a process that has exited.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	require.NoError(t, os.WriteFile(filepath.Join(n.Dir(), "owner.pid"), []byte(strconv.Itoa(dead.Process.Pid)), 0o644))

	Sweep(parent, t.Logf)
	require.NoDirExists(t, n.Dir())
	require.DirExists(t, live.Dir())
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the orphan's unshare is still running")
	}
	require.True(t, waitGone(leader, 10*time.Second), "the orphan's systemd is gone")
	require.NoDirExists(t, filepath.Join("/run/systemd/nspawn/propagate", b.machine))
	require.NotEmpty(t, b.cgroups)
	for _, cg := range b.cgroups {
		require.NoDirExists(t, cg)
	}
}

// removeNode removes a node at cleanup with a context of its own:
// t.Context() is already cancelled then, which would skip the poweroff.
// The swept node may already be gone in part, so an error is only logged.
func removeNode(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Remove(ctx); err != nil {
		t.Logf("remove node %s: %v", n.Name(), err)
	}
}
