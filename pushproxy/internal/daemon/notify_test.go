package daemon

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/sdnotify/sdnotifytest"
)

// TestSystemdNotify runs the proxy as systemd would see it through a fake
// notify socket: READY=1 once /readyz answers, WATCHDOG=1 while the
// proxy is ready and never while its database is gone, STOPPING=1 when
// it stops. Not parallel: NOTIFY_SOCKET is set with t.Setenv.
func TestSystemdNotify(t *testing.T) {
	sock := sdnotifytest.Listen(t)
	t.Setenv("WATCHDOG_USEC", "1000000") // a check every 500ms
	d := startDaemon(t)
	serving := "serving on " + d.Addr()

	msgs := sock.Until(t, 10*time.Second, has("READY=1"))
	require.Equal(t, []string{
		"STATUS=connecting to the database",
		"STATUS=applying the database schema",
		"READY=1\nSTATUS=" + serving,
	}, msgs)
	code, body := get(t, "http://"+d.Addr()+"/readyz")
	require.Equal(t, http.StatusOK, code, "READY=1 came before /readyz answered: %s", body)
	require.Equal(t, "WATCHDOG=1", sock.Next(t, 10*time.Second))

	// The database refuses the proxy: the watchdog goes quiet while
	// STATUS= says why, check after check.
	allowConnections(t, d.cfg.DataSource, false)
	sock.Until(t, 30*time.Second, unhealthy)
	for range 2 {
		msg := sock.Next(t, 10*time.Second)
		require.True(t, unhealthy(msg), "got %q while the database was down", msg)
	}

	allowConnections(t, d.cfg.DataSource, true)
	msgs = sock.Until(t, 30*time.Second, has("WATCHDOG=1"))
	for _, m := range msgs[:len(msgs)-1] {
		require.True(t, unhealthy(m), "got %q before the first ping after the outage", m)
	}
	require.Equal(t, "WATCHDOG=1\nSTATUS="+serving, msgs[len(msgs)-1])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(ctx))
	msgs = sock.Drain(t)
	require.NotEmpty(t, msgs)
	require.Equal(t, "STOPPING=1\nSTATUS=stopping: closing connections", msgs[len(msgs)-1], "STOPPING=1 is the last word")
}

func has(assignment string) func(string) bool {
	return func(msg string) bool { return sdnotifytest.Has(msg, assignment) }
}

func unhealthy(msg string) bool {
	s, ok := sdnotifytest.Status(msg)
	return ok && strings.HasPrefix(s, "unhealthy: ") && !sdnotifytest.Has(msg, "WATCHDOG=1")
}

// allowConnections opens or closes the test's database to new sessions;
// closing also ends the open ones, so to the proxy the database is gone.
func allowConnections(t *testing.T, dsn string, allow bool) {
	t.Helper()
	ctx := context.Background()
	cc, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	name := cc.Database
	cc.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cc)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" ALLOW_CONNECTIONS "+strconv.FormatBool(allow))
	require.NoError(t, err)
	if allow {
		return
	}
	t.Cleanup(func() { allowConnections(t, dsn, true) })
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
	require.NoError(t, err)
}
