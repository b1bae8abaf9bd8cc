// Package postgres holds every SQL statement Garrison runs, the embedded
// schema migrations, and the connection pool set-up. Rows map to the wire
// types in package model; errors map to ErrNotFound and ErrConflict so the
// layers above never see pgx types.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
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
}

// libpqOnlyParams are DSN parameters Mattermost's stock DataSource carries
// for lib/pq that pgx would otherwise send to the server as run-time
// settings, which the server rejects.
var libpqOnlyParams = []string{"binary_parameters", "disable_prepared_binary_result"}

// defaultConnectTimeout applies when the DSN sets no connect_timeout, so a
// dead database host yields an error instead of a hang.
const defaultConnectTimeout = 10 * time.Second

// ParseConfig builds a pgxpool config from o. Several hosts may be listed
// (host=a,b target_session_attrs=read-write or the URL form).
func ParseConfig(o PoolOptions) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(o.DataSource)
	if err != nil {
		// pgx errors can quote the DSN, password included: do not wrap.
		return nil, errors.New("postgres: invalid DataSource (check its syntax; the value is not shown because it may hold a password)")
	}
	cc := cfg.ConnConfig
	for _, k := range libpqOnlyParams {
		delete(cc.RuntimeParams, k)
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = defaultConnectTimeout
	}
	// Keepalives notice an idle connection whose peer vanished without
	// closing it (packets dropped rather than refused) within about 30 s;
	// requests in flight are bounded by their context and the server's
	// statement_timeout.
	d := &net.Dialer{Timeout: cc.ConnectTimeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3,
	}}
	cc.DialFunc = d.DialContext
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
	return cfg, nil
}

// Store runs Garrison's queries on a primary pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database described by o. It does not wait for the
// database to answer: the pool connects lazily, and Ping checks health.
func Open(ctx context.Context, o PoolOptions) (*Store, error) {
	cfg, err := ParseConfig(o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return &Store{pool: pool}, nil
}

// NewStore wraps an existing pool (tests).
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

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
		return fmt.Errorf("postgres: ping: %w", err)
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
