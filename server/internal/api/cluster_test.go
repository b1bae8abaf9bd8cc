package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// testCluster is n servers on one database, joined by an in-process bus
// (the memberlist implementation passes the same conformance suite; the
// end-to-end tests run it across network namespaces).
type testCluster struct {
	bus   *cluster.Bus
	nodes []*testServer
}

func newTestCluster(t *testing.T, n int, mutate ...func(*app.Settings, *api.Options)) *testCluster {
	t.Helper()
	dsn := pgtest.New(t)
	tc := &testCluster{bus: cluster.NewBus()}
	for i := range n {
		id := "node" + strconv.Itoa(i)
		tc.nodes = append(tc.nodes, newTestNode(t, dsn, tc.bus.Join(cluster.Node{ID: id, Address: id + ":8074"}), mutate...))
	}
	return tc
}

// on returns c's session as a client of another node.
func (c *client) on(ts *testServer) *client {
	cp := *c
	cp.ts = ts
	return &cp
}

func TestClusterEventsReachEveryNode(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3)
	n0, n2 := tc.nodes[0], tc.nodes[2]
	admin := n0.newUser()
	team := admin.createTeam(true)
	ch := admin.createChannel(team.ID, model.ChannelOpen)
	reader := n0.newUser()
	admin.addToTeam(team.ID, reader)
	admin.addToChannel(ch.ID, reader)
	ws := reader.ws() // on node 0

	writer := admin.on(n2)
	var ids []string
	for i := range 20 {
		ids = append(ids, writer.post(ch.ID, "from node 2 #"+strconv.Itoa(i)).ID)
	}
	for i, id := range ids {
		ev := ws.next("posted")
		require.Contains(t, ev.Data["post"], id, "post %d arrives in order", i)
	}
	// Reactions and typing cross too.
	writer.mustDo("POST", "/reactions", map[string]any{"user_id": admin.User.ID, "post_id": ids[0], "emoji_name": "smile"},
		http.StatusOK, nil)
	ws.next("reaction_added")
}

func TestClusterRevokeIsImmediateOnEveryNode(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3)
	n0, n1, n2 := tc.nodes[0], tc.nodes[1], tc.nodes[2]
	admin := n0.newUser()
	u := n0.newUser()
	// Every node has the session cached.
	for _, ts := range tc.nodes {
		u.on(ts).mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	}
	ws := u.on(n2).ws()
	u.mustDo("POST", "/users/logout", nil, http.StatusOK, nil)
	u.on(n1).requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	u.on(n2).requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	requireSocketClosed(t, ws)

	// Deactivation on node 1 ends sessions cached on node 0 and 2.
	v := n0.newUser()
	for _, ts := range tc.nodes {
		v.on(ts).mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	}
	admin.on(n1).mustDo("PUT", "/users/"+v.User.ID+"/active", map[string]any{"active": false}, http.StatusOK, nil)
	for _, ts := range []*testServer{n0, n2} {
		v.on(ts).requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")
	}
}

func TestClusterMemberRemovalIsImmediate(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	n0, n1 := tc.nodes[0], tc.nodes[1]
	admin := n0.newUser()
	team := admin.createTeam(true)
	ch := admin.createChannel(team.ID, model.ChannelPrivate)
	u := n0.newUser()
	admin.addToTeam(team.ID, u)
	admin.addToChannel(ch.ID, u)
	u.on(n1).mustDo("GET", "/channels/"+ch.ID+"/posts", nil, http.StatusOK, nil) // node 1 caches the members
	admin.mustDo("DELETE", "/channels/"+ch.ID+"/members/"+u.User.ID, nil, http.StatusOK, nil)
	u.on(n1).requireAppError("GET", "/channels/"+ch.ID+"/posts", nil, http.StatusForbidden, "api.context.permissions.app_error")
}

// TestClusterNodeOutOfSyncReadsDatabase: a node cut off from the others
// cannot be told of a revoke, so it stops trusting its caches.
func TestClusterNodeOutOfSyncReadsDatabase(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	n0, n1 := tc.nodes[0], tc.nodes[1]
	n0.newUser()
	u := n0.newUser()
	u.on(n1).mustDo("GET", "/users/me", nil, http.StatusOK, nil)
	tc.bus.Cut("node0", "node1")
	u.mustDo("POST", "/users/logout", nil, http.StatusOK, nil)
	u.on(n1).requireAppError("GET", "/users/me", nil, http.StatusUnauthorized, "api.context.session_expired.app_error")

	// Healed, the node trusts its caches again, which start empty.
	tc.bus.Heal()
	w := n0.newUser()
	w.on(n1).mustDo("GET", "/users/me", nil, http.StatusOK, nil)
}

func TestClusterStatus(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3)
	admin := tc.nodes[0].newUser()
	user := tc.nodes[0].newUser()
	var nodes []map[string]any
	admin.on(tc.nodes[1]).mustDo("GET", "/cluster/status", nil, http.StatusOK, &nodes)
	require.Len(t, nodes, 3)
	require.Equal(t, "node1", nodes[0]["id"], "the answering node first")
	for _, n := range nodes {
		for _, k := range []string{"id", "version", "schema_version", "config_hash", "ipaddress", "hostname", "database_replicas"} {
			require.Contains(t, n, k)
		}
	}
	user.requireAppError("GET", "/cluster/status", nil, http.StatusForbidden, "api.context.permissions.app_error")
	(&client{ts: tc.nodes[0]}).requireAppError("GET", "/cluster/status", nil, http.StatusUnauthorized,
		"api.context.session_expired.app_error")

	// A server on its own lists itself.
	solo := newTestServer(t)
	a := solo.newUser()
	a.mustDo("GET", "/cluster/status", nil, http.StatusOK, &nodes)
	require.Len(t, nodes, 1)
	require.Equal(t, "test", nodes[0]["id"])
}

func TestClusterStatusesCountEveryNode(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2, func(s *app.Settings, _ *api.Options) {
		s.EnableUserStatuses, s.UserStatusAwayTimeout = true, 5*time.Minute
	})
	n0, n1 := tc.nodes[0], tc.nodes[1]
	watcher := n0.newUser()
	u := n0.newUser()
	w0 := u.ws()
	w1 := u.on(n1).ws()
	status := func() string { return watcher.getStatus(u.User.ID).Status }
	require.Eventually(t, func() bool { return status() == model.StatusOnline }, 10*time.Second, 10*time.Millisecond)

	require.Eventually(t, func() bool { return n0.App.SocketsElsewhere(u.User.ID) == 1 }, 10*time.Second, 10*time.Millisecond)

	// The socket on node 0 closes; the one on node 1 keeps the user online.
	// Node 0 tells the others only after it has decided on the status, so
	// once node 1 knows, the status is settled.
	w0.closeWS()
	require.Eventually(t, func() bool { return n1.App.SocketsElsewhere(u.User.ID) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, model.StatusOnline, status())

	w1.closeWS()
	require.Eventually(t, func() bool { return status() == model.StatusOffline }, 10*time.Second, 10*time.Millisecond)
}
