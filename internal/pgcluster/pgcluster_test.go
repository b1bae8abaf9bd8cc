package pgcluster_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgcluster"
)

// requirePostgres skips the test when Postgres is not installed, or fails
// it under CI=true, where a missing Postgres is a broken CI image.
func requirePostgres(t *testing.T) {
	t.Helper()
	if _, err := pgcluster.Find(""); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// tempDir returns a new directory under /tmp that the postgres user can
// traverse (t.TempDir's parent is mode 0700, which Postgres running as the
// postgres user cannot enter when the test runs as root).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pgcluster-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	return dir
}

func start(t *testing.T, o pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	c, err := pgcluster.Start(t.Context(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	return c
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestFindMissing(t *testing.T) {
	t.Parallel()
	_, err := pgcluster.Find("/nonexistent/bin")
	require.ErrorIs(t, err, pgcluster.ErrNotFound)
	require.ErrorContains(t, err, "apt-get install postgresql-15")
}

func TestFind(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	dir, err := pgcluster.Find("")
	require.NoError(t, err)
	again, err := pgcluster.Find(dir)
	require.NoError(t, err)
	require.Equal(t, dir, again)
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), "data")

	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	require.NoError(t, err)
	require.Equal(t, dir, c.Dir())
	require.NotZero(t, c.Port())
	require.Equal(t, dir, c.SocketDir())
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, c.Stop(ctx))
	require.NoError(t, c.Stop(ctx), "a second Stop is a no-op")
	require.NoFileExists(t, filepath.Join(dir, "postmaster.pid"))

	c = start(t, pgcluster.Options{Dir: dir})
	var v string
	require.NoError(t, connect(t, c.DSN("postgres")).QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "before restart", v)
}

func TestStartReusesRunningCluster(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), "data")

	// The first Cluster stands for an earlier run that crashed without
	// calling Stop.
	first, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	require.NoError(t, err)
	_, err = connect(t, first.DSN("postgres")).Exec(ctx, "CREATE TABLE t (v int)")
	require.NoError(t, err)

	second := start(t, pgcluster.Options{Dir: dir})
	require.Equal(t, first.Port(), second.Port())
	_, err = connect(t, second.DSN("postgres")).Exec(ctx, "INSERT INTO t VALUES (1)")
	require.NoError(t, err)
}

func TestStartRestartsOnRequestedPort(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), "data")

	first, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	require.NoError(t, err)
	port := freePort(t)
	second := start(t, pgcluster.Options{Dir: dir, Port: port})
	require.Equal(t, port, second.Port())
	require.NotEqual(t, first.Port(), second.Port())
	require.NoError(t, connect(t, second.DSN("postgres")).Ping(ctx))
}

func TestStartRemovesStalePidFile(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), "data")

	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, c.Stop(ctx))

	// After a crash the pid in postmaster.pid may belong to an unrelated
	// live process: here, the test binary.
	stale := strconv.Itoa(os.Getpid()) + "\n" + dir + "\n1700000000\n5432\n/tmp\n127.0.0.1\n0 0\nready   \n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600))

	c = start(t, pgcluster.Options{Dir: dir})
	require.NoError(t, connect(t, c.DSN("postgres")).Ping(ctx))
}

func TestLongDirUsesShortSocketDir(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), strings.Repeat("d", 100))

	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	require.NoError(t, err)
	sock := c.SocketDir()
	require.True(t, strings.HasPrefix(sock, "/tmp/"), sock)
	require.NotEqual(t, dir, sock)

	// Connect through the unix socket too.
	cfg, err := pgx.ParseConfig(c.DSN("postgres"))
	require.NoError(t, err)
	cfg.Host = sock
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	require.NoError(t, c.Stop(ctx))
	require.NoDirExists(t, sock)
}

func TestCreateDropDatabase(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	c := start(t, pgcluster.Options{Dir: filepath.Join(tempDir(t), "data")})

	// A session on the template holds the copy back until it ends.
	admin := connect(t, c.DSN("postgres"))
	tmpl, err := pgx.Connect(ctx, c.DSN("template1"))
	require.NoError(t, err)
	created := make(chan error, 1)
	go func() { created <- c.CreateDatabase(ctx, "copy", "template1") }()
	require.Eventually(t, func() bool {
		var waiting bool
		err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE "copy"%')`).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 10*time.Millisecond)
	select {
	case err := <-created:
		t.Fatalf("create returned while the template was in use: %v", err)
	default:
	}
	require.NoError(t, tmpl.Close(ctx))
	require.NoError(t, <-created)

	require.NoError(t, c.CreateDatabase(ctx, "Mixed Case", ""))
	conn := connect(t, c.DSN("Mixed Case"))
	var name string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&name))
	require.Equal(t, "Mixed Case", name)

	require.NoError(t, c.DropDatabase(ctx, "Mixed Case"), "drops despite the open session")
	require.NoError(t, c.DropDatabase(ctx, "Mixed Case"), "dropping a missing database is not an error")
	_, err = pgx.Connect(ctx, c.DSN("Mixed Case"))
	require.Error(t, err)
}

func TestStopOrphan(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), "data")

	require.NoError(t, pgcluster.StopOrphan(ctx, "", dir), "no cluster: nothing to do")
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, pgcluster.StopOrphan(ctx, "", dir))
	require.NoFileExists(t, filepath.Join(dir, "postmaster.pid"))
	_, err = pgx.Connect(ctx, c.DSN("postgres"))
	require.Error(t, err)
}

func TestRootUnreachableDir(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	if os.Geteuid() != 0 {
		t.Skip("only root runs Postgres as another user")
	}
	ctx := t.Context()
	base := tempDir(t)
	private := filepath.Join(base, "home")
	require.NoError(t, os.Mkdir(private, 0o700))
	dir := filepath.Join(private, "pg", "data")

	_, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	require.ErrorContains(t, err, private+" is not searchable")
	require.NoDirExists(t, filepath.Join(private, "pg"))
	fi, err := os.Stat(private)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "Start must not loosen the parent")

	fallback := filepath.Join(base, "fallback", "data")
	c := start(t, pgcluster.Options{Dir: dir, FallbackDir: fallback})
	require.Equal(t, fallback, c.Dir())
	require.FileExists(t, filepath.Join(fallback, "PG_VERSION"))
}

func TestStartError(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	dir := tempDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk"), nil, 0o644))
	_, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: dir})
	require.Error(t, err)
	require.False(t, errors.Is(err, pgcluster.ErrNotFound))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, uint32(os.Geteuid()), fi.Sys().(*syscall.Stat_t).Uid, "a directory with files is not handed to postgres")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	return l.Addr().(*net.TCPAddr).Port
}

func TestParseLSN(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := pgcluster.ParseLSN(s)
		require.NoError(t, err)
		require.Equal(t, s, l.String())
	}
	l, err := pgcluster.ParseLSN("1/0")
	require.NoError(t, err)
	require.Equal(t, pgcluster.LSN(1<<32), l)
	for _, s := range []string{"", "16", "G/0", "1/100000000", "/"} {
		_, err := pgcluster.ParseLSN(s)
		require.Error(t, err, s)
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	_, err := pgcluster.Start(t.Context(), pgcluster.Options{
		Dir:           filepath.Join(t.TempDir(), "data"),
		ListenAddr:    "localhost",
		TrustNetworks: []string{"10.0.0.0"},
		Settings:      map[string]string{"x; DROP": "1"},
	})
	require.ErrorContains(t, err, `ListenAddr "localhost"`)
	require.ErrorContains(t, err, `"10.0.0.0" is not a CIDR`)
	require.ErrorContains(t, err, `"x; DROP" is not a setting name`)
}

func TestListenAddrTrustNetworksSettings(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), "data")
	o := pgcluster.Options{
		Dir:           dir,
		ListenAddr:    "127.0.0.2", // any 127/8 address is on lo
		TrustNetworks: []string{"127.0.0.0/8"},
		Settings:      map[string]string{"application_name": "it's set"},
	}
	c := start(t, o)
	require.Equal(t, "127.0.0.2", c.ListenAddr())
	require.Contains(t, c.DSN("postgres"), "@127.0.0.2:")
	var addr, app string
	require.NoError(t, connect(t, c.DSN("postgres")).QueryRow(ctx,
		"SELECT host(inet_server_addr()), current_setting('application_name')").Scan(&addr, &app))
	require.Equal(t, "127.0.0.2", addr)
	require.Equal(t, "it's set", app)
	// The socket works whatever the address.
	require.NoError(t, connect(t, c.SocketDSN("postgres")).Ping(ctx))

	// A restart does not add the pg_hba.conf lines again.
	require.NoError(t, c.Stop(ctx))
	c, err := pgcluster.Start(ctx, o) // stopped by the restart below
	require.NoError(t, err)
	hba, err := os.ReadFile(filepath.Join(dir, "pg_hba.conf"))
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(hba), "host all all 127.0.0.0/8 trust"))
	require.Equal(t, 1, strings.Count(string(hba), "host replication all 127.0.0.0/8 trust"))

	// Asking for another address restarts a running server on it.
	o.ListenAddr = "127.0.0.3"
	again := start(t, o)
	require.NoError(t, connect(t, again.DSN("postgres")).Ping(ctx))
	_, err = pgx.Connect(ctx, c.DSN("postgres"))
	require.Error(t, err, "the server no longer listens on the old address")
}

func TestReplica(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	ctx := t.Context()
	base := tempDir(t)
	// Both on one port, on two addresses, as on two machines: the copy of
	// the primary's socket lock file must not stop the replica.
	port := freePort(t)
	po := pgcluster.Options{Dir: filepath.Join(base, "primary"), ListenAddr: "127.0.0.2", Port: port,
		TrustNetworks: []string{"127.0.0.0/8"}}
	primary := start(t, po)
	replica, err := pgcluster.StartReplica(ctx, primary, "replica_1", pgcluster.Options{
		Dir: filepath.Join(base, "replica"), ListenAddr: "127.0.0.3", Port: port})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, replica.Stop(context.Background())) })

	in, err := replica.InRecovery(ctx)
	require.NoError(t, err)
	require.True(t, in)
	in, err = primary.InRecovery(ctx)
	require.NoError(t, err)
	require.False(t, in)

	pconn := connect(t, primary.DSN("postgres"))
	rconn := connect(t, replica.DSN("postgres"))
	write := func(v int) pgcluster.LSN {
		t.Helper()
		_, err := pconn.Exec(ctx, "INSERT INTO t VALUES ($1)", v)
		require.NoError(t, err)
		lsn, err := primary.CurrentLSN(ctx)
		require.NoError(t, err)
		return lsn
	}
	count := func() int {
		t.Helper()
		var n int
		require.NoError(t, rconn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
		return n
	}
	_, err = pconn.Exec(ctx, "CREATE TABLE t (v int)")
	require.NoError(t, err)
	require.NoError(t, replica.WaitReplayed(ctx, write(1)))
	require.Equal(t, 1, count())

	standbys, err := primary.Standbys(ctx)
	require.NoError(t, err)
	require.Len(t, standbys, 1)
	require.Equal(t, "replica_1", standbys[0].Name)
	require.Equal(t, "streaming", standbys[0].State)
	require.NotEmpty(t, standbys[0].Addr)

	// Paused, the replica receives the WAL but does not apply it.
	require.NoError(t, replica.PauseReplay(ctx))
	lsn := write(2)
	require.Eventually(t, func() bool {
		r, err := replica.ReplayStatus(ctx)
		return err == nil && r.Received >= lsn
	}, 10*time.Second, 10*time.Millisecond)
	r, err := replica.ReplayStatus(ctx)
	require.NoError(t, err)
	require.Less(t, r.Replayed, lsn)
	require.Contains(t, []string{"pause requested", "paused"}, r.PauseState)
	require.Equal(t, 1, count())
	require.NoError(t, replica.ResumeReplay(ctx))
	require.NoError(t, replica.WaitReplayed(ctx, lsn))
	require.Equal(t, 2, count())

	_, err = rconn.Exec(ctx, "INSERT INTO t VALUES (3)")
	require.ErrorContains(t, err, "read-only transaction")
	_, err = primary.ReplayStatus(ctx)
	require.ErrorIs(t, err, pgcluster.ErrNotReplica)
	require.ErrorIs(t, primary.PauseReplay(ctx), pgcluster.ErrNotReplica)

	// The primary crashes; the replica takes over.
	pid, err := primary.PID()
	require.NoError(t, err)
	require.NoError(t, primary.Kill(ctx))
	require.True(t, gone(pid), "the postmaster has exited")
	require.NoError(t, primary.Stop(ctx), "Stop after Kill is a no-op")
	require.NoError(t, replica.Promote(ctx))
	in, err = replica.InRecovery(ctx)
	require.NoError(t, err)
	require.False(t, in)
	_, err = connect(t, replica.DSN("postgres")).Exec(ctx, "INSERT INTO t VALUES (3)")
	require.NoError(t, err)

	// The killed primary recovers on the next Start, on the same port:
	// its leftover lock files do not stop it.
	again := start(t, po)
	var n int
	require.NoError(t, connect(t, again.DSN("postgres")).QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
	require.Equal(t, 2, n)
}

// gone reports whether process pid has exited: it no longer exists, or is
// a zombie its new parent has not reaped yet.
func gone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := strings.LastIndex(string(b), ") ")
	return i < 0 || strings.HasPrefix(string(b[i+2:]), "Z")
}
