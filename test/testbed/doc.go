// Package testbed builds the multi-node testbed the end-to-end tests of
// the cluster run on: network namespaces joined by a bridge on one
// machine, a process (or Postgres, or nginx) per node, network faults, and
// clients that dial from inside a namespace.
//
// # Safety
//
// Before anything else a run adds a blackhole route for its /24 in the
// root namespace, and every client aimed at a node address runs inside a
// namespace: processes through Node.Start, the test's own clients through
// Node.DialContext, Node.HTTPClient, Node.WebSocketDialer and
// Node.ConnectPG. A client mistakenly run in the root namespace fails on
// this machine (the blackhole) instead of sending testbed traffic out of
// it. The root namespace gets no links and no firewall rules: the bridge
// lives in a switch namespace and faults are iptables rules inside the
// nodes' namespaces.
//
// Each run has a unique name prefix and subnet, so runs never collide;
// it records what it creates under /run/garrison-testbed, holding a lock
// for as long as it lives. The teardown (registered with t.Cleanup, so it
// also runs after a failure) kills the run's processes by PID, deletes its
// namespaces, route and scratch directory; a later run sweeps whatever a
// run that died (SIGKILL, -timeout) left behind. Nothing that is not
// recorded as a run's own is ever touched.
//
// The tests need root, ip (iproute2), iptables (nf_tables backend) and,
// for the helpers that use them, Postgres 15 and nginx. New skips a test
// when one is missing, and in -short mode; under CI=true a missing tool
// is a failure.
//
// # The cluster topology
//
// Three app nodes behind nginx, a Postgres primary and a streaming
// replica, and a client node for the test's clients:
//
//	func TestFailover(t *testing.T) {
//		ctx := t.Context()
//		tb := testbed.New(t, testbed.Options{Postgres: true, Nginx: true})
//		nodes, err := tb.AddNodes(ctx, "app1", "app2", "app3", "lb", "db1", "db2", "client")
//		require.NoError(t, err)
//		app, lb, db1, db2, client := nodes[:3], nodes[3], nodes[4], nodes[5], nodes[6]
//
//		primary, err := db1.StartPostgres(ctx, testbed.PostgresOptions{})
//		require.NoError(t, err)
//		replica, err := db2.StartReplica(ctx, primary, testbed.PostgresOptions{})
//		require.NoError(t, err)
//
//		var upstream []nginx.Server
//		for _, n := range app {
//			p, err := n.Start("garrison", garrisonBin, []string{"server"}, []string{
//				"MM_SERVICESETTINGS_LISTENADDRESS=" + n.HostPort(8065),
//				"MM_SQLSETTINGS_DATASOURCE=" + primary.DSN("garrison"),
//			})
//			require.NoError(t, err)
//			require.NoError(t, p.WaitListening(ctx, client, n.HostPort(8065)))
//			upstream = append(upstream, nginx.Server{Addr: n.HostPort(8065)})
//		}
//		_, err = lb.StartNginx(ctx, nginx.Config{
//			App:               nginx.Upstream{Servers: upstream},
//			ClientMaxBodySize: 100 << 20,
//		})
//		require.NoError(t, err)
//
//		http := client.HTTPClient() // dials from the client node
//		resp, err := http.Get("http://" + lb.HostPort(80) + "/api/v4/system/ping")
//		...
//		ws, _, err := client.WebSocketDialer().DialContext(ctx, "ws://"+lb.HostPort(80)+"/api/v4/websocket", nil)
//		...
//
//		// The primary vanishes silently; the replica takes over.
//		require.NoError(t, tb.Blackhole(ctx, db1))
//		require.NoError(t, replica.Promote(ctx))
//		...
//		require.NoError(t, tb.Heal(ctx))
//	}
//
// # Faults
//
// Testbed.Partition (two groups of nodes cannot talk, silently),
// Testbed.Isolate (a node drops everything but lo), Testbed.Blackhole (a
// node vanishes without anyone getting an error), Testbed.Loss (random
// packet loss; there is no netem here), Testbed.LinkDown and
// Testbed.Unplug (the node's or the switch's side of its link down), and
// Testbed.Heal, which undoes them all. Process faults: Process.Kill
// (SIGKILL), Process.Stop (SIGTERM, then SIGKILL), Postgres.Kill (the
// postmaster crashes), Postgres.PauseReplay (a replica falls behind).
//
// # Later: systemd nodes
//
// Nodes are processes in a namespace for now. Booted systemd-nspawn nodes
// are meant to join behind the same Node, started with
// --network-namespace-path=/run/netns/<Node.Namespace()>: addresses,
// faults and dialing stay as they are; only how a node starts a process
// (a unit instead of `ip netns exec`) changes.
package testbed
