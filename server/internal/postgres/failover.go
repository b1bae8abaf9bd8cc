package postgres

// What lets the pool follow a promoted primary and never hang on a dead
// server.
//
// When the primary fails, every request using it must end with a clean,
// retryable error and the next one must reach the new primary, with no
// restart and no configuration change:
//
//   - DataSource lists every database host with target_session_attrs=
//     read-write, so a new connection skips a replica and lands on
//     whichever host is the primary now (ParseConfig asks for read-write
//     itself when several hosts are listed).
//   - A primary that vanishes without closing its connections (packets
//     dropped, not refused) is noticed by the client: a connect timeout per
//     host; TCP_USER_TIMEOUT, which closes a connection whose sent data stays
//     unacknowledged that long; keepalives, which probe an idle connection;
//     and a response timeout (deadlineConn), which closes a connection that
//     receives no byte of an answer for longer than the server's own
//     statement_timeout allows. The kernel options cannot see a peer whose
//     kernel still acknowledges but whose server no longer answers (a
//     frozen host or proxy); the response timeout can.
//   - A pooled connection to the old primary is dropped as soon as any
//     query finds it gone or demoted (health.observe resets the pool: a
//     demoted server keeps its connections open and answers every write
//     with "read-only transaction", SQLSTATE 25006); connections idle for
//     a second are pinged, within HealthTimeout, before use.
//   - Such failures are ErrUnavailable, which the API answers with 503 and
//     Retry-After: the request did not happen, or did and may be retried.

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is returned when the database could not serve a request:
// no server reachable, the connection lost or timed out, or the server no
// longer the primary. The request may be retried.
var ErrUnavailable = errors.New("database unavailable")

// unavailableError keeps the cause of an ErrUnavailable.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// IsUnavailable reports whether err is ErrUnavailable, or a driver error
// that means it (store methods that do not map their errors return those
// as they are).
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || unavailable(err)
}

// unavailable classifies a driver error: the server is unreachable, gone,
// starting or stopping, or not (any longer) the primary.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	hasPg := errors.As(err, &pe)
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// A refused login or a missing database is a configuration
		// error, not an outage.
		return !hasPg || !(strings.HasPrefix(pe.Code, "28") || pe.Code == "3D000" || pe.Code == "42501")
	}
	if hasPg {
		return serverGone(pe.Code)
	}
	// pgconn's errors for a broken, closed or timed-out connection are the
	// ones that say whether a retry is safe.
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) || pgconn.Timeout(err) {
		return true
	}
	// What a connection cut mid-statement or mid-transaction may surface
	// as, unwrapped by pgconn.
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &ne) || errors.Is(err, pgx.ErrTxClosed)
}

// serverGone reports whether a SQLSTATE means the server is not (or no
// longer) one we can use: read_only_sql_transaction (a demoted primary),
// connection exceptions, shutdown and start-up.
func serverGone(code string) bool {
	switch code {
	case "25006", "57P01", "57P02", "57P03", "53300":
		return true
	}
	return strings.HasPrefix(code, "08")
}

// Connection defaults (PoolOptions).
const (
	defaultTCPUserTimeout = 15 * time.Second
	defaultHealthTimeout  = 5 * time.Second
	// responseGrace is how much longer than statement_timeout the client
	// waits for an answer: the server's own cancellation and the reply
	// must have time to arrive.
	responseGrace = 5 * time.Second
	// resetInterval spaces pool resets: the many requests that fail
	// together in a failover reset the pool once.
	resetInterval = 250 * time.Millisecond
)

// dialer returns the DialFunc of every connection: keepalives, TCP_USER_
// TIMEOUT and, when responseTimeout > 0, a bound on every read.
func dialer(connectTimeout, userTimeout, responseTimeout time.Duration) pgconn.DialFunc {
	// Keepalives probe an idle connection after a third of the user
	// timeout and give up within it; TCP_USER_TIMEOUT then also bounds
	// the unanswered probes (tcp(7)).
	d := &net.Dialer{
		Timeout: connectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: max(userTimeout/3, time.Second),
			Interval: max(userTimeout/6, time.Second), Count: 3},
		Control: func(network, _ string, c syscall.RawConn) error {
			if !strings.HasPrefix(network, "tcp") {
				return nil
			}
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout.Milliseconds()))
			})
			return errors.Join(err, serr)
		},
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || responseTimeout <= 0 {
			return c, err
		}
		return &deadlineConn{Conn: c, timeout: responseTimeout}, nil
	}
}

// deadlineConn fails a read that waits longer than timeout for a byte.
// Every statement ends within statement_timeout on the server, so a longer
// silence means the server or the path to it is gone, even when the
// peer's kernel still acknowledges our packets. Deadlines set by the
// driver (its context watcher) still apply: the earlier one wins.
type deadlineConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex // guards the field below; held while setting the socket's deadline
	deadline time.Time  // the read deadline the driver set; zero for none
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	d := time.Now().Add(c.timeout)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	err := c.Conn.SetReadDeadline(d)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetReadDeadline(t)
}

// health watches the queries of one pool and resets the pool when one
// finds its server gone or (for the primary) demoted, so that no pooled
// connection keeps pointing at it.
type health struct {
	primary bool
	pool    atomic.Pointer[pgxpool.Pool] // set once the pool exists

	mu        sync.Mutex // guards the field below
	lastReset time.Time
}

// observe looks at the outcome of a statement run under ctx.
func (h *health) observe(ctx context.Context, err error) {
	if err == nil || ctx.Err() != nil {
		// A caller that gave up says nothing about the server.
		return
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code == "25006" && !h.primary || !serverGone(pe.Code) {
			return
		}
	} else if !unavailable(err) {
		return
	}
	h.mu.Lock()
	if time.Since(h.lastReset) < resetInterval {
		h.mu.Unlock()
		return
	}
	h.lastReset = time.Now()
	h.mu.Unlock()
	// Idle connections close now; those in use close when released.
	// New ones are checked against target_session_attrs as they connect.
	if p := h.pool.Load(); p != nil {
		p.Reset()
	}
}

// tracer is the pgx tracer of a pool: it feeds health and, on the
// primary, notes the writes of requests that track them (TrackWrites).
type tracer struct {
	health *health
}

var (
	_ pgx.QueryTracer = (*tracer)(nil)
	_ pgx.BatchTracer = (*tracer)(nil)
)

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if t.health.primary {
		noteWrite(ctx, d.SQL)
	}
	return ctx
}

func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	t.health.observe(ctx, d.Err)
}

func (t *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	if t.health.primary && d.Batch != nil {
		for _, q := range d.Batch.QueuedQueries {
			noteWrite(ctx, q.SQL)
		}
	}
	return ctx
}

func (t *tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	t.health.observe(ctx, d.Err)
}

func (t *tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	t.health.observe(ctx, d.Err)
}

// newPool opens a pool on cfg whose health resets it.
func newPool(ctx context.Context, cfg *pgxpool.Config, h *health) (*pgxpool.Pool, error) {
	cfg.ConnConfig.Tracer = &tracer{health: h}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	h.pool.Store(pool)
	return pool, nil
}
