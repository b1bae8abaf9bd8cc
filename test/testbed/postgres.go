package testbed

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"

	"github.com/garrison-chat/garrison/internal/pgcluster"
)

// PostgresOptions configures a Postgres server on a node.
type PostgresOptions struct {
	// Port is the TCP port on the node's address; default 5432.
	Port int
	// Settings are extra server settings (-c name=value), such as
	// wal_receiver_timeout or synchronous_standby_names.
	Settings map[string]string
	// Fsync keeps Postgres' durability settings; off by default, as in the
	// other test clusters (see pgcluster.Options.Fsync).
	Fsync bool
}

// Postgres is a PostgreSQL server running on a node, listening on the
// node's address and trusting every client in the testbed's subnet. It
// embeds the pgcluster.Cluster, whose methods drive it: DSN (on the node's
// address: connect from a node, with Node.ConnectPG or Node.DialContext),
// SocketDSN (through the unix socket, for checks from the test process
// that must not depend on the network), Kill (SIGKILL to the postmaster
// by PID: the primary crashes), Promote, PauseReplay and ResumeReplay,
// ReplayStatus, WaitReplayed, CurrentLSN, Standbys and Stop.
type Postgres struct {
	*pgcluster.Cluster
	node *Node
	opts pgcluster.Options
}

// StartPostgres initialises a cluster in <node dir>/pgdata and starts it
// in the node's namespace, as the postgres user when the test runs as
// root.
func (n *Node) StartPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	opts := n.pgOptions(o)
	c, err := pgcluster.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", n.name, err)
	}
	return n.tb.addPostgres(&Postgres{Cluster: c, node: n, opts: opts})
}

// StartReplica makes a streaming replica of primary in <node dir>/pgdata
// (pg_basebackup from the primary's address, through replication slot
// named after this node) and starts it in the node's namespace.
func (n *Node) StartReplica(ctx context.Context, primary *Postgres, o PostgresOptions) (*Postgres, error) {
	opts := n.pgOptions(o)
	c, err := pgcluster.StartReplica(ctx, primary.Cluster, n.name, opts)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", n.name, err)
	}
	return n.tb.addPostgres(&Postgres{Cluster: c, node: n, opts: opts})
}

func (n *Node) pgOptions(o PostgresOptions) pgcluster.Options {
	port := o.Port
	if port == 0 {
		port = 5432
	}
	return pgcluster.Options{
		Dir:           filepath.Join(n.dir, "pgdata"),
		Port:          port,
		ListenAddr:    n.addr.String(),
		Exec:          []string{toolPath("ip"), "netns", "exec", n.ns},
		TrustNetworks: []string{n.tb.subnet.String()},
		Settings:      maps.Clone(o.Settings),
		Fsync:         o.Fsync,
	}
}

func (tb *Testbed) addPostgres(pg *Postgres) (*Postgres, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.closed {
		_ = pg.StopWith(context.Background(), pgcluster.StopImmediate)
		return nil, fmt.Errorf("testbed: %s: the testbed is closed", pg.node.name)
	}
	tb.pgs = append(tb.pgs, pg)
	return pg, nil
}

// Node returns the node the server runs on.
func (pg *Postgres) Node() *Node { return pg.node }

// Restart starts the server again on the same data directory, after Kill
// or Stop (a killed primary runs crash recovery; a replica resumes
// streaming), and returns the new handle; pg itself stays stopped.
func (pg *Postgres) Restart(ctx context.Context) (*Postgres, error) {
	c, err := pgcluster.Start(ctx, pg.opts)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", pg.node.name, err)
	}
	return pg.node.tb.addPostgres(&Postgres{Cluster: c, node: pg.node, opts: pg.opts})
}

// Lag returns how many bytes of WAL written on pg, a primary, replica has
// not replayed yet: 0 when it has caught up. A replica paused with
// PauseReplay, or cut off by a fault, falls behind.
func (pg *Postgres) Lag(ctx context.Context, replica *Postgres) (int64, error) {
	primaryLSN, err := pg.CurrentLSN(ctx)
	if err != nil {
		return 0, fmt.Errorf("testbed: lag: %w", err)
	}
	r, err := replica.ReplayStatus(ctx)
	if err != nil {
		return 0, fmt.Errorf("testbed: lag: %w", err)
	}
	if r.Replayed >= primaryLSN {
		return 0, nil
	}
	return int64(primaryLSN - r.Replayed), nil
}
