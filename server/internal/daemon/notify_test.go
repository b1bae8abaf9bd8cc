package daemon_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/internal/sdnotify/sdnotifytest"
	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/daemon"
)

// TestSystemdNotify runs the daemon as systemd would see it through a fake
// notify socket: READY=1 once the API answers, WATCHDOG=1 while the
// database takes writes and never while it does not, STOPPING=1 when it
// stops. Not parallel: NOTIFY_SOCKET is set with t.Setenv.
func TestSystemdNotify(t *testing.T) {
	sock := sdnotifytest.Listen(t)
	t.Setenv("WATCHDOG_USEC", "1000000") // a check every 500ms
	dsn := pgtest.New(t)
	cfg := config.Default()
	cfg.SqlSettings.DataSource = dsn
	cfg.ServiceSettings.ListenAddress = "127.0.0.1:0"
	cfg.FileSettings.Directory = t.TempDir()
	require.NoError(t, cfg.Validate())
	d := daemon.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { _ = d.Stop(context.Background()) }) // a no-op once stopped

	// Start-up: progress lines, then READY=1 naming the bound address.
	msgs := sock.Until(t, 10*time.Second, sdnotifytest.Holds("READY=1"))
	require.Equal(t, []string{
		"STATUS=connecting to the database",
		"STATUS=applying database migrations",
		"READY=1\nSTATUS=serving on " + d.Addr().String(),
	}, msgs)
	resp, err := http.Get("http://" + d.Addr().String() + "/api/v4/system/ping?get_server_status=true")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "READY=1 came before the API answered")
	require.Equal(t, "WATCHDOG=1", sock.Next(t, 10*time.Second))

	// The database refuses the daemon: the watchdog goes quiet while
	// STATUS= says why, check after check; back, it pings again.
	sock.ExpectWatchdogOutage(t,
		func() { pgtest.AllowConnections(t, dsn, false) },
		func() { pgtest.AllowConnections(t, dsn, true) },
		"serving on "+d.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(ctx))
	msgs = sock.Drain(t)
	require.NotEmpty(t, msgs)
	require.Equal(t, "STOPPING=1\nSTATUS=stopping: draining requests", msgs[len(msgs)-1], "STOPPING=1 is the last word")
}
