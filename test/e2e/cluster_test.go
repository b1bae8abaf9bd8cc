package e2e

// The end-to-end tests run one after the other, not in parallel: each
// builds a seven-node site whose failure detectors (memberlist probes, the
// cluster's 2 s leases, Postgres and nginx timeouts) need CPU on time, and
// the machine has two cores shared with the rest of `make test`.

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/test/testbed"
)

// TestEventsCrossNodesInOrder: a user connected to app1 receives, in
// the order they were made and with no gap in the connection's seq, the
// posts, the typing event and the reactions a user makes through app3.
func TestEventsCrossNodesInOrder(t *testing.T) {
	s := newSite(t, siteOptions{})
	ctx := t.Context()
	ch, m := s.setup(ctx, "order", "O", 2)
	reader, writer := m[0], m[1]
	app1, app3 := s.apps[0], s.apps[2]
	rs := s.socket(ctx, nodeURL(app1), reader.rest.token)
	ws3 := s.socket(ctx, nodeURL(app3), writer.rest.token)
	w := writer.on(app3)

	const posts = 50
	var want []string
	ids := map[string]bool{}
	var first string
	for i := range posts {
		p, err := w.createPost(ctx, ch.ID, fmt.Sprintf("order #%d", i))
		require.NoError(t, err)
		want = append(want, "posted "+p.ID)
		ids[p.ID] = true
		if i == 0 {
			first = p.ID
		}
	}
	// The action's reply comes after the typing event was published, so
	// the reaction below is published after it.
	ws3.reply(ws3.action("user_typing", map[string]string{"channel_id": ch.ID}))
	require.NoError(t, w.addReaction(ctx, writer.ID, first, "smile"))
	require.NoError(t, w.removeReaction(ctx, writer.ID, first, "smile"))
	want = append(want, "typing "+writer.ID, "reaction_added "+first+" smile", "reaction_removed "+first+" smile")

	start := time.Now()
	var got []string
	for len(got) < len(want) {
		var line string
		rs.next(func(ev event) bool {
			switch ev.Event {
			case "posted":
				p, err := ev.post()
				require.NoError(t, err)
				if ids[p.ID] {
					line = "posted " + p.ID
				}
			case "typing":
				if ev.Broadcast.ChannelID == ch.ID {
					line = "typing " + ev.str("user_id")
				}
			case "reaction_added", "reaction_removed":
				postID, emoji, err := ev.reaction()
				require.NoError(t, err)
				if ids[postID] {
					line = ev.Event + " " + postID + " " + emoji
				}
			}
			return line != ""
		})
		got = append(got, line)
	}
	require.Equal(t, want, got, "app1's socket gets app3's events in order")
	report(t, "events-in-order", map[string]any{
		"events":                len(want),
		"drain_after_last_call": time.Since(start).String(),
	})
}

// TestRevokeIsImmediateOnEveryNode: once a revoke made on app1 has
// returned, the first request with that session to app3 (and app2), which
// had it cached, gets 401, and its WebSocket there is closed. Removing a
// member from a private channel is as immediate.
func TestRevokeIsImmediateOnEveryNode(t *testing.T) {
	s := newSite(t, siteOptions{})
	ctx := t.Context()
	ch, m := s.setup(ctx, "revoke", "P", 1)
	u := m[0]
	app1, app2, app3 := s.apps[0], s.apps[1], s.apps[2]
	anon1 := s.api(nodeURL(app1))

	const rounds = 6
	var took []time.Duration
	for round := range rounds {
		c, _, err := anon1.login(ctx, u.Username, password)
		require.NoError(t, err)
		for _, n := range []*testbed.Node{app2, app3} {
			_, err := c.at(nodeURL(n)).me(ctx)
			require.NoError(t, err, "the session works on %s, which caches it", n)
		}
		ws3 := s.socket(ctx, nodeURL(app3), c.token)

		start := time.Now()
		how := "logout"
		if round%2 == 0 {
			require.NoError(t, c.logout(ctx))
		} else {
			how = "admin revoke"
			admin1 := s.admin.at(nodeURL(app1))
			sessions, err := admin1.sessions(ctx, u.ID)
			require.NoError(t, err)
			newest := slices.MaxFunc(sessions, func(a, b session) int { return cmp.Compare(a.CreateAt, b.CreateAt) })
			require.NoError(t, admin1.revokeSession(ctx, u.ID, newest.ID))
		}
		took = append(took, time.Since(start))

		for _, n := range []*testbed.Node{app3, app2} {
			_, err := c.at(nodeURL(n)).me(ctx)
			require.Equal(t, http.StatusUnauthorized, statusOf(err),
				"round %d (%s on app1): the first request to %s after the revoke returned: %v", round, how, n, err)
		}
		require.NoError(t, ws3.closedByServer(eventTimeout), "round %d: the revoked session's socket on app3", round)
	}

	// Member removal: app3 caches the private channel's members, app1
	// removes the user.
	c, _, err := anon1.login(ctx, u.Username, password)
	require.NoError(t, err)
	_, err = c.at(nodeURL(app3)).channelPosts(ctx, ch.ID)
	require.NoError(t, err)
	require.NoError(t, s.admin.at(nodeURL(app1)).removeChannelMember(ctx, ch.ID, u.ID))
	_, err = c.at(nodeURL(app3)).channelPosts(ctx, ch.ID)
	require.Equal(t, http.StatusForbidden, statusOf(err), "app3 after the removal on app1 returned: %v", err)

	report(t, "revoke", map[string]any{"rounds": rounds, "revoke_call_durations": fmt.Sprint(took)})
}

// TestPartitionedNodeLeavesAndRejoins: app3 cut off from app1 and app2
// (its database link kept) drops out of app1's cluster status and comes
// back once healed. While it is cut off, a session revoked on app1 is
// refused on app3 as soon as the revoke returned: app3, out of sync,
// reads the database instead of its cache.
func TestPartitionedNodeLeavesAndRejoins(t *testing.T) {
	s := newSite(t, siteOptions{})
	ctx := t.Context()
	ch, m := s.setup(ctx, "part", "O", 2)
	u, watcher := m[0], m[1]
	app1, app2, app3 := s.apps[0], s.apps[1], s.apps[2]
	_, err := u.on(app3).me(ctx)
	require.NoError(t, err, "app3 caches the session")
	ws1 := s.socket(ctx, nodeURL(app1), watcher.rest.token)

	require.NoError(t, s.tb.Partition(ctx, app3, app1, app2))
	cut := time.Now()
	require.NoError(t, u.on(app1).logout(ctx))
	revoke := time.Since(cut)
	_, err = u.on(app3).me(ctx)
	require.Equal(t, http.StatusUnauthorized, statusOf(err), "app3, cut off, after the revoke on app1 returned: %v", err)

	require.NoError(t, s.waitCluster(ctx, app1, "app1", "app2"), "app1 sees app3 leave")
	gone1 := time.Since(cut)
	require.NoError(t, s.waitCluster(ctx, app3, "app3"), "app3 sees itself alone")
	gone3 := time.Since(cut)
	p, err := s.admin.at(nodeURL(app3)).createPost(ctx, ch.ID, "posted on app3 while it is cut off")
	require.NoError(t, err, "app3 still has its database")

	require.NoError(t, s.tb.Heal(ctx))
	healed := time.Now()
	for _, n := range s.apps {
		require.NoError(t, s.waitCluster(ctx, n, "app1", "app2", "app3"), "%s sees the three nodes again", n)
	}
	rejoin := time.Since(healed)

	// Events flow from app3 again, and app3 trusts sessions again.
	p2, err := s.admin.at(nodeURL(app3)).createPost(ctx, ch.ID, "posted on app3 after the heal")
	require.NoError(t, err)
	// The post made on app3 while it was cut off may still arrive, from
	// the stream app3 kept for app1 (app1 stayed in the discovery table);
	// if it does, it comes first.
	late := false
	ws1.next(func(ev event) bool {
		if ev.Event != "posted" {
			return false
		}
		got, err := ev.post()
		require.NoError(t, err)
		late = late || got.ID == p.ID
		return got.ID == p2.ID
	})
	_, err = watcher.on(app3).me(ctx)
	require.NoError(t, err)

	report(t, "partition", map[string]any{
		"revoke_call_while_cut_off":              revoke.String(),
		"app3_gone_from_app1":                    gone1.String(),
		"app3_alone":                             gone3.String(),
		"rejoined_after_heal":                    rejoin.String(),
		"post_from_cut_off_delivered_after_heal": late,
	})
}

// TestAdvertiseAddress: nodes with ClusterSettings.AdvertiseAddress set
// (as an installer sets it on multi-homed hosts) advertise their gossip
// port and form a cluster.
func TestAdvertiseAddress(t *testing.T) {
	s := newSite(t, siteOptions{advertise: true, noWait: true})
	ctx := t.Context()
	for _, n := range s.apps {
		nodes, err := s.admin.at(nodeURL(n)).clusterStatus(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, nodes)
		require.Equal(t, n.HostPort(gossipPort), nodes[0].IPAddress, "%s advertises its address and gossip port", n)
	}
	for _, n := range s.apps {
		require.NoError(t, s.waitCluster(ctx, n, "app1", "app2", "app3"))
	}
}
