// Package testbed builds the multi-node testbed the end-to-end tests of
// the cluster run on: network namespaces joined by a bridge on one
// machine, a process (or Postgres, or nginx) per node or a booted Debian
// machine (systemd-nspawn) on it, network faults, and clients that dial
// from inside a namespace.
//
// # Safety
//
// Before anything else a run adds a blackhole route for its /24 in the
// root namespace, and every client aimed at a node address runs inside a
// namespace: processes through Node.Start, Node.Command and Node.Run, the
// test's own clients through Node.DialContext, Node.HTTPClient,
// Node.WebSocketDialer, Node.ConnectPG and Node.DialSSH. A client
// mistakenly run in the root namespace fails on this machine (the
// blackhole) instead of sending testbed traffic out of it. The root
// namespace gets no links and no firewall rules: the bridge lives in a
// switch namespace and faults are iptables rules inside the nodes'
// namespaces. A node's namespace has no route but the subnet's: nothing
// on a node, machines included, can reach an address outside it
// ("Network is unreachable").
//
// Each run has a unique name prefix and subnet, so runs never collide;
// it records what it creates under /run/garrison-testbed, holding a lock
// for as long as it lives. The teardown (registered with t.Cleanup, so it
// also runs after a failure) kills the run's processes by PID, deletes its
// namespaces, route and scratch directory; a later run sweeps whatever a
// run that died (SIGKILL, -timeout) left behind, machines included.
// Nothing that is not recorded as a run's own is ever touched.
//
// The tests need root, ip (iproute2), iptables (nf_tables backend) and,
// for the helpers that use them, Postgres 15 and nginx; machines also need
// what debroot needs (debootstrap, systemd-container; see debroot.Check)
// and ssh-keygen (openssh-client). New skips a test when one is missing,
// and in -short mode; under CI=true a missing tool is a failure.
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
// # Machines
//
// Node.Boot makes a node a Machine: a copy of debroot's cached Debian
// base root, named after the node, booted with systemd-nspawn -b in the
// node's namespace, so that addresses, faults and dialing stay as they
// are. It runs a real systemd and sshd; root trusts the testbed's SSH key
// (Testbed.SSHKeyFile, made by the first Boot); /etc/hosts lists every
// node of the testbed by name (WriteHosts; Boot and AddNode keep it
// current). Boot returns once systemd is running and sshd answers on the
// node's address. The installer's end-to-end test runs garrisonctl from a
// plain node:
//
//	func TestInstall(t *testing.T) {
//		ctx := t.Context()
//		tb := testbed.New(t, testbed.Options{Machines: 2}) // checks disk and memory for 2 up front
//		base := debroot.Prepare(t)                          // the cached base root
//		nodes, err := tb.AddNodes(ctx, "admin", "app1", "app2")
//		require.NoError(t, err)
//		admin := nodes[0]
//		app1, err := nodes[1].Boot(ctx, base, testbed.BootOptions{})
//		require.NoError(t, err)
//		fp, err := app1.HostKeyFingerprint(ctx) // "SHA256:...", for the inventory
//		require.NoError(t, err)
//		// ... app2 likewise; an inventory with the nodes' Addr(), fp and tb.SSHKeyFile()
//
//		cmd := admin.Command(ctx, garrisonctl, "install", inventory, bundle)
//		out, err := cmd.CombinedOutput()
//		require.NoError(t, err, "%s", out)
//
//		c, err := admin.DialSSH(ctx, app1) // the test's own look, host key checked
//		require.NoError(t, err)
//		defer c.Close()
//		out2, err := app1.Exec(ctx, "systemctl", "is-active", "garrison") // or inside, by nsenter
//		...
//		require.NoError(t, tb.Partition(ctx, app1.Node(), app2.Node()))
//		require.NoError(t, app2.Kill()) // a pulled power cord; app2.Start(ctx) boots it again
//	}
//
// Each machine needs Options.MachineDisk (1.2 GiB: the copy is about 215
// MB and grows with the bundle's packages) free under Options.BaseDir and
// Options.MachineMemory (700 MiB) of free memory; New (with
// Options.Machines) and every Boot check, and fail naming need and
// availability (ErrResources). The copy dominates a boot: 3 to 15 s on
// the dev machine's ext4 disk, 0.4 s on tmpfs (BaseDir /dev/shm, if
// memory allows), then about 0.5 s to "running" and a few ms for sshd.
//
// Close powers every machine off (killed by PID if still up after 30 s)
// and removes its copy; when the test failed, New's cleanup first logs
// each machine's journal and console. Machine.Poweroff and Machine.Kill
// take one down during a test, Machine.Start boots it again with its
// identity (machine-id, host keys, what was installed).
package testbed
