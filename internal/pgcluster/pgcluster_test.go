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
