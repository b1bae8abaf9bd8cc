package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgcluster"
	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// TestDatabaseUnavailableIs503: when the database cannot serve a request,
// the client gets a retryable 503 AppError, not a 500.
func TestDatabaseUnavailableIs503(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	u := ts.newUser()
	u.mustDo("GET", "/users/me", nil, http.StatusOK, nil) // the session is cached from now on

	// The database stops taking connections and ends the open ones, as
	// a server shutting down for a failover does.
	pgtest.AllowConnections(t, ts.Store.Pool().Config().ConnConfig.ConnString(), false)

	for range 2 { // a connection that was ended, then a new one refused
		resp, body := u.do("GET", "/users/me", nil)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
		var ae model.AppError
		require.NoError(t, json.Unmarshal(body, &ae), string(body))
		require.Equal(t, "app.database.unavailable.app_error", ae.ID)
		require.Equal(t, http.StatusServiceUnavailable, ae.StatusCode)
		require.NotEmpty(t, ae.RequestID)
	}
}

func TestPingListsDatabaseReplicasForAdmins(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin, user := ts.newUser(), ts.newUser()
	ping := func(c *client) map[string]any {
		var out map[string]any
		c.mustDo("GET", "/system/ping?get_server_status=true", nil, http.StatusOK, &out)
		return out
	}
	require.Equal(t, []any{}, ping(admin)["database_replicas"], "none configured")
	require.NotContains(t, ping(user), "database_replicas")
}

// replicaPair starts a primary and a streaming replica of it (pgcluster)
// holding a migrated database, and returns their DSNs.
func replicaPair(t *testing.T) (primary, replica *pgcluster.Cluster) {
	t.Helper()
	if _, err := pgcluster.Find(""); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx := t.Context()
	base, err := os.MkdirTemp("/tmp", "garrison-api-replica-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755)) // the postgres user must reach it when we are root
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	primary, err = pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(base, "primary")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	require.NoError(t, primary.CreateDatabase(ctx, "garrison", ""))
	require.NoError(t, postgres.MigrateDSN(ctx, primary.DSN("garrison")))
	replica, err = pgcluster.StartReplica(ctx, primary, "replica_1", pgcluster.Options{Dir: filepath.Join(base, "replica")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = replica.Stop(context.Background()) })
	return primary, replica
}

// TestReadYourWritesAcrossNodes: two nodes read from one replica whose
// replay is paused, under a lag bound long enough to keep it in rotation.
// A user's write on one node sends their reads on the other to the
// primary, while other users keep reading the replica; a channel's post
// page never comes from a replica older than the channel's posts.
func TestReadYourWritesAcrossNodes(t *testing.T) {
	t.Parallel()
	primary, replica := replicaPair(t)
	ctx := t.Context()
	bus := cluster.NewBus()
	node := func(id string) *testServer {
		s, err := postgres.Open(ctx, postgres.PoolOptions{DataSource: primary.DSN("garrison"),
			Replicas: []string{replica.DSN("garrison")}, ReplicaLagMax: 10 * time.Minute,
			MaxOpenConns: 10, QueryTimeout: 30 * time.Second})
		require.NoError(t, err)
		t.Cleanup(s.Close)
		return newTestNodeOn(t, s, bus.Join(cluster.Node{ID: id, Address: id + ":8074"}))
	}
	n0, n1 := node("node0"), node("node1")

	alice := n0.newUser()
	team := alice.createTeam(true)
	bob := n0.newUser()
	alice.addToTeam(team.ID, bob)
	town := alice.channelByName(team.ID, "town-square")
	publicNames := func(c *client) []string {
		var cs []*model.Channel
		c.mustDo("GET", "/teams/"+team.ID+"/channels", nil, http.StatusOK, &cs)
		var names []string
		for _, ch := range cs {
			names = append(names, ch.Name)
		}
		return names
	}
	// Until a node has read once, it holds every read to the moment it
	// did (notes sent before it joined may be missing); wait for the
	// replica to pass that moment on both nodes.
	for _, n := range []*testServer{n0, n1} {
		publicNames(bob.on(n))
		require.Eventually(t, func() bool { return n.Store.Replica(ctx, bob.User.ID) != n.Store },
			30*time.Second, 10*time.Millisecond)
	}
	var ping struct {
		Replicas []struct {
			Name       string `json:"name"`
			LagMs      int64  `json:"lag_ms"`
			InRotation bool   `json:"in_rotation"`
		} `json:"database_replicas"`
	}
	alice.on(n1).mustDo("GET", "/system/ping?get_server_status=true", nil, http.StatusOK, &ping) // alice is the system admin
	require.Len(t, ping.Replicas, 1)
	require.Equal(t, net.JoinHostPort(replica.ListenAddr(), strconv.Itoa(replica.Port())), ping.Replicas[0].Name)
	require.True(t, ping.Replicas[0].InRotation)
	require.GreaterOrEqual(t, ping.Replicas[0].LagMs, int64(0))

	// Cluster status shows each node's view of the replicas, once the
	// node has reported it.
	n1.App.ShareNodeStatus()
	require.Eventually(t, func() bool {
		var nodes []struct {
			ID       string `json:"id"`
			Replicas []struct {
				Name string `json:"name"`
			} `json:"database_replicas"`
		}
		alice.mustDo("GET", "/cluster/status", nil, http.StatusOK, &nodes)
		return len(nodes) == 2 && nodes[0].ID == "node0" && len(nodes[0].Replicas) == 1 &&
			nodes[1].ID == "node1" && len(nodes[1].Replicas) == 1 && nodes[1].Replicas[0].Name == ping.Replicas[0].Name
	}, 30*time.Second, 10*time.Millisecond)

	require.NoError(t, replica.PauseReplay(ctx))
	require.Eventually(t, func() bool {
		r, err := replica.ReplayStatus(ctx)
		return err == nil && r.PauseState == "paused"
	}, 30*time.Second, 10*time.Millisecond)

	// Alice writes on node 0; node 1 serves her from the primary.
	ch := alice.createChannel(team.ID, model.ChannelOpen)
	require.Contains(t, publicNames(alice.on(n1)), ch.Name)
	var mine []*model.Channel
	alice.on(n1).mustDo("GET", "/users/me/teams/"+team.ID+"/channels", nil, http.StatusOK, &mine)
	require.True(t, slices.ContainsFunc(mine, func(c *model.Channel) bool { return c.ID == ch.ID }))
	// Bob did not write: the paused replica serves him, without it.
	require.NotContains(t, publicNames(bob.on(n1)), ch.Name)

	// A post page is never older than the channel's post version, for
	// anyone: the replica is skipped while it lacks the post.
	p := alice.post(town.ID, "hello from node 0")
	page := bob.on(n1).postList("/channels/" + town.ID + "/posts")
	require.Contains(t, page.Posts, p.ID)

	require.NoError(t, replica.ResumeReplay(ctx))
	require.Eventually(t, func() bool { return slices.Contains(publicNames(bob.on(n1)), ch.Name) },
		30*time.Second, 10*time.Millisecond)
}
