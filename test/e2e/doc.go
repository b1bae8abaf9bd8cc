// Package e2e holds the end-to-end tests of a Garrison cluster: real
// garrison processes on the multi-node testbed (test/testbed), each in its
// own network namespace, over a Postgres primary and its streaming
// replica, behind nginx, with every client request made from a client
// node.
//
// Each test builds its own site (see site in site_test.go) and breaks
// something in it:
//
//   - TestEventsCrossNodesInOrder: events made through one node reach a
//     socket on another in order, with consecutive seq.
//   - TestKillNodeUnderLoad: a node killed under a posting load loses no
//     acknowledged post; its sockets reconnect through nginx and resync.
//   - TestPartitionedNodeLeavesAndRejoins: a node cut off from the others
//     leaves their cluster status, refuses a session revoked elsewhere
//     (it reads the database while out of sync), and rejoins when healed.
//   - TestDBFailoverKill, TestDBFailoverBlackhole: the primary crashes or
//     vanishes, the replica is promoted, and posting resumes without a
//     restart.
//   - TestRevokeIsImmediateOnEveryNode: a revoke on one node is refused on
//     the others by the first request after it returned.
//   - TestAdvertiseAddress: nodes with ClusterSettings.AdvertiseAddress
//     form a cluster.
//
// Durations (reconnect time, write outages, detection times) are
// reported with t.Log, and as <scenario>.json in $E2E_REPORT_DIR when it
// is set; they are never asserted. TestBenchCluster measures cross-node
// delivery latency and posts/s with 1,500 sockets; it runs only with
// GARRISON_BENCH=1 (make bench-cluster).
//
// The tests need root, iproute2, iptables, Postgres 15 and nginx; they
// skip without them and in -short mode, and fail instead under CI=true.
// They build garrison once per run, or test the binary $GARRISON_BIN
// names (make test-e2e passes make build's). They run one after the
// other: a site is seven nodes whose failure detectors need CPU on time,
// and the machine has two cores.
package e2e
