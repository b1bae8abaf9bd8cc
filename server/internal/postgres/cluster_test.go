package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/cluster"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, store := newMigrator(t)
	require.NoError(t, m.Up(ctx, "0.1.0"))
	d := store.Discovery()
	a := cluster.DiscoveryEntry{ID: "a", ClusterName: "site", Hostname: "app1", Address: "10.0.0.11:8074"}
	b := cluster.DiscoveryEntry{ID: "b", ClusterName: "site", Hostname: "app2", Address: "10.0.0.12:8074"}
	other := cluster.DiscoveryEntry{ID: "c", ClusterName: "elsewhere", Address: "10.0.1.1:8074"}
	for _, e := range []cluster.DiscoveryEntry{a, b, other} {
		require.NoError(t, d.Heartbeat(ctx, e))
	}
	live, err := d.Live(ctx, "site", time.Minute)
	require.NoError(t, err)
	require.Equal(t, []cluster.DiscoveryEntry{a, b}, live)

	// A node whose heartbeat is old is not live; pruning removes only
	// those far older.
	_, err = store.Pool().Exec(ctx, `UPDATE cluster_discovery SET last_ping_at = last_ping_at - 120000 WHERE id = 'b'`)
	require.NoError(t, err)
	live, err = d.Live(ctx, "site", time.Minute)
	require.NoError(t, err)
	require.Equal(t, []cluster.DiscoveryEntry{a}, live)
	n, err := d.Prune(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = store.Pool().Exec(ctx, `UPDATE cluster_discovery SET last_ping_at = last_ping_at - 86400000 WHERE id = 'b'`)
	require.NoError(t, err)
	n, err = d.Prune(ctx, time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	var rows int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM cluster_discovery WHERE id = 'b'`).Scan(&rows))
	require.Zero(t, rows)

	// A heartbeat brings a node back, with its new address.
	a.Address = "10.0.0.99:8074"
	require.NoError(t, d.Heartbeat(ctx, a))
	require.NoError(t, d.Remove(ctx, "c"))
	live, err = d.Live(ctx, "site", time.Minute)
	require.NoError(t, err)
	require.Equal(t, []cluster.DiscoveryEntry{a}, live)
}

func TestRunExclusive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, store := newMigrator(t)
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ran, err := store.RunExclusive(ctx, "cleanup", func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
		if err == nil && !ran {
			err = errors.New("the first runner did not run")
		}
		done <- err
	}()
	<-inside
	ran, err := store.RunExclusive(ctx, "cleanup", func(context.Context) error { return errors.New("must not run") })
	require.NoError(t, err)
	require.False(t, ran, "a second node skips a job that is running")
	ran, err = store.RunExclusive(ctx, "another job", func(context.Context) error { return nil })
	require.NoError(t, err)
	require.True(t, ran, "other jobs are not blocked")
	close(release)
	require.NoError(t, <-done)

	boom := errors.New("boom")
	ran, err = store.RunExclusive(ctx, "cleanup", func(context.Context) error { return boom })
	require.True(t, ran, "the lock was released")
	require.ErrorIs(t, err, boom)
	ran, err = store.RunExclusive(ctx, "cleanup", func(context.Context) error { return nil })
	require.NoError(t, err)
	require.True(t, ran, "released after an error too")
}
