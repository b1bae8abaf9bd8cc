package daemon

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
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

	msgs := sock.Until(t, 10*time.Second, sdnotifytest.Holds("READY=1"))
	require.Equal(t, []string{
		"STATUS=connecting to the database",
		"STATUS=applying the database schema",
		"READY=1\nSTATUS=" + serving,
	}, msgs)
	code, body := get(t, "http://"+d.Addr()+"/readyz")
	require.Equal(t, http.StatusOK, code, "READY=1 came before /readyz answered: %s", body)
	require.Equal(t, "WATCHDOG=1", sock.Next(t, 10*time.Second))

	// The database refuses the daemon: the watchdog goes quiet while
	// STATUS= says why, check after check; back, it pings again.
	sock.ExpectWatchdogOutage(t,
		func() { pgtest.AllowConnections(t, d.cfg.DataSource, false) },
		func() { pgtest.AllowConnections(t, d.cfg.DataSource, true) },
		serving)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(ctx))
	msgs = sock.Drain(t)
	require.NotEmpty(t, msgs)
	require.Equal(t, "STOPPING=1\nSTATUS=stopping: closing connections", msgs[len(msgs)-1], "STOPPING=1 is the last word")
}
