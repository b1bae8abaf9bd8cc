package postgres_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgcluster"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// These tests run their own primary and streaming replica (pgcluster),
// since they pause, kill and promote servers; the shared pgtest cluster
// is not theirs to break.

// pair is a primary and its streaming replica, both holding database
// "garrison" with the schema.
type pair struct {
	primary, replica *pgcluster.Cluster
}

const pairDB = "garrison"

func startPair(t *testing.T) *pair {
	t.Helper()
	if _, err := pgcluster.Find(""); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx := t.Context()
	// Under /tmp, traversable by the postgres user when we are root.
	base, err := os.MkdirTemp("/tmp", "garrison-replica-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(base) })

	primary, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(base, "primary")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	require.NoError(t, primary.CreateDatabase(ctx, pairDB, ""))
	require.NoError(t, postgres.MigrateDSN(ctx, primary.DSN(pairDB)))
	replica, err := pgcluster.StartReplica(ctx, primary, "replica_1", pgcluster.Options{Dir: filepath.Join(base, "replica")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = replica.Stop(context.Background()) })
	return &pair{primary: primary, replica: replica}
}

// openStore opens a store closed when the test ends (before the servers
// stop: cleanups run last first).
func openStore(t *testing.T, o postgres.PoolOptions) *postgres.Store {
	t.Helper()
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 30 * time.Second
	}
	s, err := postgres.Open(t.Context(), o)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}

func inRotation(s *postgres.Store) bool {
	st := s.ReplicaStatus()
	return len(st) == 1 && st[0].InRotation
}

// pause stops the replica's replay and waits until it has stopped, so
// that nothing written afterwards is replayed.
func pause(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	require.NoError(t, c.PauseReplay(t.Context()))
	eventually(t, "replay is paused", func() bool {
		r, err := c.ReplayStatus(t.Context())
		return err == nil && r.PauseState == "paused"
	})
}

func setValue(t *testing.T, ctx context.Context, s *postgres.Store, name, value string) {
	t.Helper()
	_, err := s.Pool().Exec(ctx, `INSERT INTO systems (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	require.NoError(t, err)
}

// value reads a systems row; "" when it is missing.
func value(t *testing.T, s *postgres.Store, name string) string {
	t.Helper()
	var v string
	err := s.Pool().QueryRow(t.Context(), `SELECT value FROM systems WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	require.NoError(t, err)
	return v
}

func isReplica(t *testing.T, s *postgres.Store) bool {
	t.Helper()
	var in bool
	require.NoError(t, s.Pool().QueryRow(t.Context(), `SELECT pg_is_in_recovery()`).Scan(&in))
	return in
}

func TestReplicaLeavesRotationWhenLaggingAndReturns(t *testing.T) {
	t.Parallel()
	p := startPair(t)
	ctx := t.Context()
	u, err := url.Parse(p.replica.DSN(pairDB))
	require.NoError(t, err)
	u.User = url.UserPassword("postgres", "s3cret") // trust auth: the password only has to stay hidden
	s := openStore(t, postgres.PoolOptions{DataSource: p.primary.DSN(pairDB), Replicas: []string{u.String()},
		ReplicaLagMax: 300 * time.Millisecond})
	require.True(t, s.HasReplicas())

	eventually(t, "the replica is in rotation", func() bool { return inRotation(s) })
	st := s.ReplicaStatus()
	require.Equal(t, u.Host, st[0].Name, "host:port, no credentials")
	require.False(t, st[0].Search)
	r := s.Replica(ctx, "u1")
	require.NotSame(t, s, r)
	require.True(t, isReplica(t, r))
	require.Same(t, r, s.SearchReplica(ctx, "u1"), "search falls back to the replicas")

	// A paused replica stays fresh while nothing is written; once a write
	// it has not replayed is older than the bound, it leaves.
	pause(t, p.replica)
	setValue(t, ctx, s, "lagging", "written")
	eventually(t, "the replica leaves the rotation", func() bool { return !inRotation(s) })
	st = s.ReplicaStatus()
	require.NoError(t, st[0].Err, "it left for its lag, not a failed probe")
	require.Positive(t, st[0].Lag, "-1 would mean unknown")
	r = s.Replica(ctx, "u1")
	require.Same(t, s, r, "no replica in rotation: the primary")
	require.Equal(t, "written", value(t, r, "lagging"))

	require.NoError(t, p.replica.ResumeReplay(ctx))
	eventually(t, "the replica is back in rotation", func() bool { return inRotation(s) })
	r = s.Replica(ctx, "u1")
	require.NotSame(t, s, r)
	require.Equal(t, "written", value(t, r, "lagging"))
}

func TestReplicaNotInRecoveryServesNoReads(t *testing.T) {
	t.Parallel()
	p := startPair(t)
	// The "replica" is a primary: it may hold anything.
	s := openStore(t, postgres.PoolOptions{DataSource: p.primary.DSN(pairDB), SearchReplicas: []string{p.primary.DSN(pairDB)},
		ReplicaLagMax: time.Second})
	eventually(t, "a probe has run", func() bool { return errors.Is(s.ReplicaStatus()[0].Err, postgres.ErrNotReplica) })
	require.False(t, inRotation(s))
	require.Equal(t, time.Duration(-1), s.ReplicaStatus()[0].Lag)
	require.Same(t, s, s.SearchReplica(t.Context(), "u1"))
}

func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	p := startPair(t)
	ctx := t.Context()
	// A bound long enough that the paused replica stays in rotation
	// for the whole test: only the writes keep a user off it.
	s := openStore(t, postgres.PoolOptions{DataSource: p.primary.DSN(pairDB), Replicas: []string{p.replica.DSN(pairDB)},
		ReplicaLagMax: 10 * time.Minute})
	eventually(t, "the replica is in rotation", func() bool { return inRotation(s) })
	pause(t, p.replica)

	// Alice's request writes: its own later reads go to the primary.
	req := postgres.TrackWrites(ctx)
	require.False(t, postgres.Wrote(req))
	require.Same(t, s.Replica(req, "alice"), s.Replica(ctx, "alice"), "no write yet")
	require.Equal(t, "", value(t, s, "alice"))
	require.False(t, postgres.Wrote(req), "a read is not a write")
	setValue(t, req, s, "alice", "posted")
	require.True(t, postgres.Wrote(req))
	require.Same(t, s, s.Replica(req, "alice"))

	// The API notes the write before answering; then every read of hers
	// skips the replica that has not replayed it, and Bob's do not.
	s.NoteWrite("alice")
	r := s.Replica(ctx, "alice")
	require.Same(t, s, r)
	require.Equal(t, "posted", value(t, r, "alice"))
	bob := s.Replica(ctx, "bob")
	require.NotSame(t, s, bob)
	require.Equal(t, "", value(t, bob, "alice"), "the replica has not replayed it")
	require.True(t, inRotation(s))

	require.NoError(t, p.replica.ResumeReplay(ctx))
	eventually(t, "alice may read from the replica again", func() bool { return s.Replica(ctx, "alice") != s })
	require.Equal(t, "posted", value(t, s.Replica(ctx, "alice"), "alice"))
}

// multiHost is the URL of database db on every host, primary first.
func multiHost(db string, hosts ...string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + db,
		RawQuery: "sslmode=disable&target_session_attrs=read-write"}
	for i, h := range hosts {
		if i > 0 {
			u.Host += ","
		}
		u.Host += h
	}
	return u.String()
}

func addr(c *pgcluster.Cluster) string {
	return net.JoinHostPort(c.ListenAddr(), strconv.Itoa(c.Port()))
}

// serverPort is the port of the server the store's connection reached.
func serverPort(ctx context.Context, s *postgres.Store) (int, error) {
	var port int
	err := s.Pool().QueryRow(ctx, `SELECT inet_server_port()`).Scan(&port)
	return port, err
}

// waitForQuery waits until a backend of c runs a query starting with
// prefix.
func waitForQuery(t *testing.T, c *pgcluster.Cluster, prefix string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), c.SocketDSN("postgres"))
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	eventually(t, "the query runs", func() bool {
		var n int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 || '%' AND pid <> pg_backend_pid()`,
			prefix).Scan(&n)
		return err == nil && n > 0
	})
}

// TestFailoverToPromotedReplica kills the primary: requests in flight and
// the first after get ErrUnavailable, and once the replica is promoted the
// same store writes to it.
func TestFailoverToPromotedReplica(t *testing.T) {
	t.Parallel()
	p := startPair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang fails, never blocks
	defer cancel()
	s := openStore(t, postgres.PoolOptions{DataSource: multiHost(pairDB, addr(p.primary), addr(p.replica))})
	require.NoError(t, s.Ping(ctx, "n1"))
	port, err := serverPort(ctx, s)
	require.NoError(t, err)
	require.Equal(t, p.primary.Port(), port)

	inflight := make(chan error, 1)
	go func() {
		_, err := s.Pool().Exec(ctx, `SELECT pg_sleep(600)`)
		inflight <- err
	}()
	waitForQuery(t, p.primary, "SELECT pg_sleep")
	require.NoError(t, p.primary.Kill(ctx))
	err = <-inflight
	require.True(t, postgres.IsUnavailable(err), "in flight: %v", err)
	require.NoError(t, ctx.Err())

	// Before the promotion there is no primary: a clean error.
	err = s.Ping(ctx, "n1")
	require.ErrorIs(t, err, postgres.ErrUnavailable)

	require.NoError(t, p.replica.Promote(ctx))
	eventually(t, "a retry writes", func() bool { return s.Ping(ctx, "n1") == nil })
	port, err = serverPort(ctx, s)
	require.NoError(t, err)
	require.Equal(t, p.replica.Port(), port)
	setValue(t, ctx, s, "after_failover", "yes")
}

// proxy forwards TCP connections to target until frozen; then it forwards
// nothing more and closes nothing, as a network dropping every packet
// would, while its kernel still acknowledges what it receives.
type proxy struct {
	ln     net.Listener
	target string
	frozen chan struct{}
	done   chan struct{}

	mu    sync.Mutex // guards the field below
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, frozen: make(chan struct{}), done: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		close(p.done)
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Freeze() { close(p.frozen) }

func (p *proxy) isFrozen() bool {
	select {
	case <-p.frozen:
		return true
	default:
		return false
	}
}

func (p *proxy) keep(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.keep(c)
		if p.isFrozen() {
			continue // accepted by the kernel, never answered
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.keep(up)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.isFrozen() {
			<-p.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			break
		}
	}
	if p.isFrozen() {
		<-p.done
		return
	}
	_ = dst.Close()
	_ = src.Close()
}

// TestSilentPrimaryDrop: the primary stops answering without closing
// anything. The request in flight and the next ones fail within the
// configured timeouts instead of hanging, and after the replica is
// promoted the store writes to it.
func TestSilentPrimaryDrop(t *testing.T) {
	t.Parallel()
	p := startPair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	px := newProxy(t, addr(p.primary))
	s := openStore(t, postgres.PoolOptions{DataSource: multiHost(pairDB, px.Addr(), addr(p.replica)),
		ConnectTimeout: 500 * time.Millisecond, TCPUserTimeout: time.Second, ResponseTimeout: time.Second,
		HealthTimeout: 500 * time.Millisecond, MaxOpenConns: 4})
	require.NoError(t, s.Ping(ctx, "n1"))

	inflight := make(chan error, 1)
	go func() {
		_, err := s.Pool().Exec(ctx, `SELECT pg_sleep(0.2)`)
		inflight <- err
	}()
	waitForQuery(t, p.primary, "SELECT pg_sleep")
	px.Freeze()
	err := <-inflight
	t.Logf("in flight: %v", err)
	require.True(t, postgres.IsUnavailable(err), "in flight: %v", err)
	require.NoError(t, ctx.Err(), "the store's timeouts ended it, not the test's deadline")

	err = s.Ping(ctx, "n1")
	t.Logf("next: %v", err)
	require.ErrorIs(t, err, postgres.ErrUnavailable)
	require.NoError(t, ctx.Err())

	// The old primary is gone for good (its clients never hear of it);
	// the replica takes over.
	require.NoError(t, p.primary.Kill(ctx))
	require.NoError(t, p.replica.Promote(ctx))
	eventually(t, "a retry writes", func() bool { return s.Ping(ctx, "n1") == nil })
	port, err := serverPort(ctx, s)
	require.NoError(t, err)
	require.Equal(t, p.replica.Port(), port)
	require.NoError(t, ctx.Err())
}

// TestReadOnlyServerConnectionsAreDropped: a server that stops being the
// primary keeps its connections open and answers writes with "read-only
// transaction"; the store gives ErrUnavailable and drops every
// connection to it.
func TestReadOnlyServerConnectionsAreDropped(t *testing.T) {
	t.Parallel()
	p := startPair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// One host, so no read-write check: the pool's connections reach the
	// replica, as they would a primary demoted after they opened.
	s := openStore(t, postgres.PoolOptions{DataSource: p.replica.DSN(pairDB), MaxOpenConns: 4})
	c1, err := s.Pool().Acquire(ctx)
	require.NoError(t, err)
	c2, err := s.Pool().Acquire(ctx)
	require.NoError(t, err)
	c1.Release()
	c2.Release()
	require.EqualValues(t, 2, s.Pool().Stat().TotalConns())

	require.ErrorIs(t, s.Ping(ctx, "n1"), postgres.ErrUnavailable, "read-only transaction")
	eventually(t, "the pool has dropped its connections", func() bool { return s.Pool().Stat().TotalConns() == 0 })
}
