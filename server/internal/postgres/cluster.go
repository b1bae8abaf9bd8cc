package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/cluster"
)

// dbMillis is the database's clock in milliseconds.
const dbMillis = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

// Discovery is the cluster discovery table; it implements
// cluster.Discovery.
type Discovery struct{ s *Store }

// Discovery returns the store's discovery table.
func (s *Store) Discovery() *Discovery { return &Discovery{s: s} }

var _ cluster.Discovery = (*Discovery)(nil)

// Heartbeat records e and refreshes its last_ping_at.
func (d *Discovery) Heartbeat(ctx context.Context, e cluster.DiscoveryEntry) error {
	_, err := d.s.pool.Exec(ctx, `INSERT INTO cluster_discovery (id, cluster_name, hostname, gossip_addr, create_at, last_ping_at)
		VALUES ($1, $2, $3, $4, `+dbMillis+`, `+dbMillis+`)
		ON CONFLICT (id) DO UPDATE SET cluster_name = EXCLUDED.cluster_name, hostname = EXCLUDED.hostname,
			gossip_addr = EXCLUDED.gossip_addr, last_ping_at = EXCLUDED.last_ping_at`,
		e.ID, e.ClusterName, e.Hostname, e.Address)
	if err != nil {
		return fmt.Errorf("cluster discovery: heartbeat: %w", mapErr(err))
	}
	return nil
}

// Live returns the nodes of a cluster whose heartbeat is at most maxAge
// old.
func (d *Discovery) Live(ctx context.Context, clusterName string, maxAge time.Duration) ([]cluster.DiscoveryEntry, error) {
	rows, err := d.s.pool.Query(ctx, `SELECT id, cluster_name, hostname, gossip_addr FROM cluster_discovery
		WHERE cluster_name = $1 AND last_ping_at >= `+dbMillis+` - $2 ORDER BY id`, clusterName, maxAge.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("cluster discovery: live: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cluster.DiscoveryEntry, error) {
		var e cluster.DiscoveryEntry
		err := r.Scan(&e.ID, &e.ClusterName, &e.Hostname, &e.Address)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster discovery: live: %w", mapErr(err))
	}
	return out, nil
}

// Prune removes the rows of nodes silent for longer than age (the hourly
// cleanup; Mattermost keeps them 30 minutes) and returns how many.
func (d *Discovery) Prune(ctx context.Context, age time.Duration) (int64, error) {
	tag, err := d.s.pool.Exec(ctx, `DELETE FROM cluster_discovery WHERE last_ping_at < `+dbMillis+` - $1`, age.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("cluster discovery: prune: %w", mapErr(err))
	}
	return tag.RowsAffected(), nil
}

// Remove deletes a node's row (it is leaving).
func (d *Discovery) Remove(ctx context.Context, id string) error {
	if _, err := d.s.pool.Exec(ctx, `DELETE FROM cluster_discovery WHERE id = $1`, id); err != nil {
		return fmt.Errorf("cluster discovery: remove: %w", mapErr(err))
	}
	return nil
}

// jobLockSpace keeps job locks apart from the other advisory locks.
const jobLockSpace = 0x67617272 // "garr"

// RunExclusive runs fn if no other node is running the job of that name,
// holding a Postgres session advisory lock meanwhile; it reports whether
// fn ran. Should the lock's connection die, Postgres releases the lock,
// so a crashed node never blocks the job for the others.
func (s *Store) RunExclusive(ctx context.Context, job string, fn func(context.Context) error) (bool, error) {
	h := fnv.New32a()
	h.Write([]byte(job))
	key := int32(h.Sum32())
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("job %s: lock: %w", job, mapErr(err))
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, int32(jobLockSpace), key).Scan(&got); err != nil {
		return false, fmt.Errorf("job %s: lock: %w", job, mapErr(err))
	}
	if !got {
		return false, nil
	}
	defer func() {
		// Unlock even if ctx has ended; if this fails the connection is
		// closed, which releases the lock too.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, int32(jobLockSpace), key); err != nil {
			_ = conn.Conn().Close(uctx)
		}
	}()
	return true, fn(ctx)
}
