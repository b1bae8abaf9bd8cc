// Package postgres holds every SQL statement Garrison runs, the embedded
// schema migrations, and the connection pool set-up: a primary that may
// fail over (failover.go) and replicas for reads that tolerate a bounded
// lag (replica.go). Rows map to the wire types in package model; errors map
// to ErrNotFound, ErrConflict and ErrUnavailable so the layers above never
// see pgx types.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness rule; the
// wrapped error names the constraint.
var ErrConflict = errors.New("conflict")

// ConflictError says which unique constraint a write violated.
type ConflictError struct{ Constraint string }

func (e *ConflictError) Error() string { return "conflict on " + e.Constraint }

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// mapErr turns pgx errors into the package's error kinds.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return &ConflictError{Constraint: pe.ConstraintName}
	}
	if unavailable(err) {
		return &unavailableError{err: err}
	}
	return err
}

// PoolOptions are the settings of a connection pool, taken from
// SqlSettings.
type PoolOptions struct {
	DataSource      string
	MaxOpenConns    int
	MaxConnLifetime time.Duration
	MaxConnIdleTime time.Duration
	// QueryTimeout bounds every statement on the server side.
	QueryTimeout time.Duration
	// ApplicationName is shown in pg_stat_activity.
	ApplicationName string

	// ConnectTimeout bounds connecting to one host when the DSN sets no
	// connect_timeout; 0 means 10 s.
	ConnectTimeout time.Duration
	// TCPUserTimeout closes a connection whose sent data stays
	// unacknowledged this long, and sets the keepalives that probe an
	// idle one to give up within it; 0 means 15 s.
	TCPUserTimeout time.Duration
	// ResponseTimeout closes a connection that waits this long for any
	// byte of an answer; 0 means QueryTimeout + 5 s (none without a
	// QueryTimeout).
	ResponseTimeout time.Duration
	// HealthTimeout bounds the ping of a connection that was idle for a
	// second before it is used again; 0 means 5 s.
	HealthTimeout time.Duration

	// Replicas are the DSNs of streaming replicas for reads that tolerate
	// ReplicaLagMax of lag (SqlSettings.DataSourceReplicas); each gets a
	// pool of MaxOpenConns.
	Replicas []string
	// SearchReplicas are tried before Replicas for search
	// (SqlSettings.DataSourceSearchReplicas).
	SearchReplicas []string
	// ReplicaLagMax is the most a replica may lag and still serve reads;
	// 0 keeps every read on the primary.
	ReplicaLagMax time.Duration
	// Logger receives replicas leaving and rejoining the rotation; nil
	// discards it.
	Logger *slog.Logger
}

// libpqOnlyParams are DSN parameters Mattermost's stock DataSource carries
// for lib/pq that pgx would otherwise send to the server as run-time
// settings, which the server rejects.
var libpqOnlyParams = []string{"binary_parameters", "disable_prepared_binary_result"}

// defaultConnectTimeout applies when the DSN sets no connect_timeout, so a
// dead database host yields an error instead of a hang.
const defaultConnectTimeout = 10 * time.Second

// ParseConfig builds the pgxpool config of the primary from o. Several
// hosts may be listed (host=a,b target_session_attrs=read-write or the URL
// form); when target_session_attrs is not set, several hosts mean
// read-write, since the primary pool writes.
func ParseConfig(o PoolOptions) (*pgxpool.Config, error) {
	cfg, err := parseDSN(o.DataSource, o)
	if err != nil {
		return nil, err
	}
	explicit := strings.Contains(o.DataSource, "target_session_attrs") || os.Getenv("PGTARGETSESSIONATTRS") != ""
	if cc := cfg.ConnConfig; !explicit && len(hosts(cc)) > 1 {
		cc.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
	}
	return cfg, nil
}

// parseDSN builds a pool config for dsn with o's pool settings and
// timeouts (see failover.go).
func parseDSN(dsn string, o PoolOptions) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx errors can quote the DSN, password included: do not wrap.
		return nil, errors.New("postgres: invalid DataSource (check its syntax; the value is not shown because it may hold a password)")
	}
	cc := cfg.ConnConfig
	for _, k := range libpqOnlyParams {
		delete(cc.RuntimeParams, k)
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = cmp.Or(o.ConnectTimeout, defaultConnectTimeout)
	}
	response := o.ResponseTimeout
	if response == 0 && o.QueryTimeout > 0 {
		response = o.QueryTimeout + responseGrace
	}
	cc.DialFunc = dialer(cc.ConnectTimeout, cmp.Or(o.TCPUserTimeout, defaultTCPUserTimeout), response)
	if o.QueryTimeout > 0 {
		ms := strconv.FormatInt(o.QueryTimeout.Milliseconds(), 10)
		cc.RuntimeParams["statement_timeout"] = ms
		cc.RuntimeParams["lock_timeout"] = ms
		// A transaction left open by a stalled client must not hold locks
		// for ever.
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(2*o.QueryTimeout.Milliseconds(), 10)
	}
	if o.ApplicationName != "" {
		cc.RuntimeParams["application_name"] = o.ApplicationName
	}
	if o.MaxOpenConns > 0 {
		cfg.MaxConns = int32(o.MaxOpenConns)
	}
	if o.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = o.MaxConnLifetime
	}
	if o.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = o.MaxConnIdleTime
	}
	cfg.PingTimeout = cmp.Or(o.HealthTimeout, defaultHealthTimeout)
	return cfg, nil
}

// hosts lists the distinct host:port pairs a connection may go to.
func hosts(cc *pgx.ConnConfig) []string {
	out := []string{net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))}
	for _, f := range cc.Fallbacks {
		if h := net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port))); !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// Store runs Garrison's queries on a primary pool, and the reads that
// tolerate lag on replicas (replica.go).
type Store struct {
	pool *pgxpool.Pool
	// replicas chooses a replica for a read; nil on a replica's view and
	// on a store without replicas.
	replicas *replicaSet
}

// Open connects to the database described by o. It does not wait for the
// database to answer: the pool connects lazily, and Ping checks health.
// With replicas, it starts their monitor, which Close stops.
func Open(ctx context.Context, o PoolOptions) (*Store, error) {
	cfg, err := ParseConfig(o)
	if err != nil {
		return nil, err
	}
	pool, err := newPool(ctx, cfg, &health{primary: true})
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{pool: pool}
	if s.replicas, err = openReplicas(ctx, s, o); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// NewStore wraps an existing pool (tests).
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Close stops the replica monitor and closes the pools.
func (s *Store) Close() {
	if s.replicas != nil {
		s.replicas.close()
	}
	s.pool.Close()
}

// Pool returns the underlying pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the primary answers a write-capable query. It writes and
// deletes a health-check row, as Mattermost's ping does, so a read-only
// server (a replica or a fenced old primary) counts as unhealthy.
func (s *Store) Ping(ctx context.Context, nodeID string) error {
	const q = `WITH w AS (INSERT INTO systems (name, value) VALUES ($1, '1')
	  ON CONFLICT (name) DO UPDATE SET value = excluded.value RETURNING name)
	DELETE FROM systems WHERE name IN (SELECT name FROM w)`
	_, err := s.pool.Exec(ctx, q, "health_check_"+nodeID)
	if err != nil {
		return fmt.Errorf("postgres: ping: %w", mapErr(err))
	}
	return nil
}

// InTx runs fn in a transaction, committing if it returns nil.
func (s *Store) InTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
