package sdnotify

// No test here is parallel: each points NOTIFY_SOCKET (and WATCHDOG_USEC)
// at its own fake socket with t.Setenv, which go-systemd reads from the
// process environment.

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/sdnotify/sdnotifytest"
)

func newNotifier() *Notifier { return New(slog.New(slog.DiscardHandler)) }

func TestWithoutSocketEverythingIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "1000000")
	n := newNotifier()
	require.False(t, n.Enabled())
	require.NoError(t, n.Ready("serving"))
	require.NoError(t, n.Status("still serving"))
	require.NoError(t, n.Stopping("bye"))
	d, err := n.WatchdogInterval()
	require.NoError(t, err)
	require.Zero(t, d)

	w := n.Watchdog(WatchdogOptions{Check: func(context.Context) error {
		t.Error("the health check ran without a notify socket")
		return nil
	}})
	require.NoError(t, w.Start(context.Background()))
	require.Nil(t, w.done, "no loop may run without a notify socket")
	require.NoError(t, w.Stop(context.Background()))
}

func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(n *Notifier) error
		want string
	}{
		{"ready", func(n *Notifier) error { return n.Ready("serving on 127.0.0.1:8065") }, "READY=1\nSTATUS=serving on 127.0.0.1:8065"},
		{"ready without status", func(n *Notifier) error { return n.Ready("") }, "READY=1"},
		{"status", func(n *Notifier) error { return n.Status("migrating") }, "STATUS=migrating"},
		{"stopping", func(n *Notifier) error { return n.Stopping("draining") }, "STOPPING=1\nSTATUS=draining"},
		{"status cannot inject assignments", func(n *Notifier) error { return n.Status("bad\nREADY=1\r\x00x") },
			"STATUS=bad READY=1  x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := sdnotifytest.Listen(t)
			n := newNotifier()
			require.True(t, n.Enabled())
			require.NoError(t, tc.send(n))
			require.Equal(t, tc.want, sock.Next(t, 10*time.Second))
		})
	}
}

func TestSendToAMissingSocketFails(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/nonexistent/garrison-notify")
	err := newNotifier().Ready("serving")
	require.ErrorContains(t, err, "sdnotify: send READY=1")
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
		wantErr         string
	}{
		{name: "not requested"},
		{name: "half the timeout", usec: "30000000", want: 15 * time.Second},
		{name: "for this process", usec: "30000000", pid: self, want: 15 * time.Second},
		{name: "for another process", usec: "30000000", pid: "1"},
		{name: "not a number", usec: "thirty", wantErr: "WATCHDOG_USEC"},
		{name: "not positive", usec: "0", wantErr: "WATCHDOG_USEC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sdnotifytest.Listen(t)
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			got, err := newNotifier().WatchdogInterval()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestWatchdogFollowsHealth drives the loop tick by tick: WATCHDOG=1
// after each passing check and never after a failing one, whose cause
// goes to STATUS=; the first pass after a failure restores the status.
func TestWatchdogFollowsHealth(t *testing.T) {
	down := errors.New("database: connection refused")
	for _, tc := range []struct {
		name   string
		checks []error
		want   []string
	}{
		{"healthy", []error{nil, nil, nil}, []string{"WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"}},
		{"unhealthy from the start", []error{down, down, nil}, []string{
			"STATUS=unhealthy: database: connection refused",
			"STATUS=unhealthy: database: connection refused",
			"WATCHDOG=1\nSTATUS=serving",
		}},
		{"outage and recovery", []error{nil, down, down, down, nil, nil}, []string{
			"WATCHDOG=1",
			"STATUS=unhealthy: database: connection refused",
			"STATUS=unhealthy: database: connection refused",
			"STATUS=unhealthy: database: connection refused",
			"WATCHDOG=1\nSTATUS=serving",
			"WATCHDOG=1",
		}},
		{"never healthy", []error{down, down}, []string{
			"STATUS=unhealthy: database: connection refused",
			"STATUS=unhealthy: database: connection refused",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := sdnotifytest.Listen(t)
			ticks := make(chan time.Time) // unbuffered: a send returns once the loop waits again
			calls := 0
			w := newNotifier().Watchdog(WatchdogOptions{
				Status: "serving", Ticks: ticks, Timeout: time.Minute,
				Check: func(ctx context.Context) error {
					if _, ok := ctx.Deadline(); !ok {
						t.Error("a check must be bounded")
					}
					calls++
					if calls <= len(tc.checks) {
						return tc.checks[calls-1]
					}
					// One check too many: the previous one is fully
					// reported. Block until Stop, whose cancellation
					// voids this result.
					<-ctx.Done()
					return ctx.Err()
				},
			})
			require.NoError(t, w.Start(context.Background())) // runs the first check
			for range tc.checks {                             // the other checks, then the blocking one
				ticks <- time.Now()
			}
			require.NoError(t, w.Stop(context.Background()))
			require.Equal(t, tc.want, sock.Drain(t))
			require.Equal(t, len(tc.checks)+1, calls)
		})
	}
}

// TestWatchdogPingsFromWatchdogUSECAndStopsOnce runs the real ticker that
// WATCHDOG_USEC asks for (its period, half the timeout, is
// TestWatchdogInterval's), and checks Stop and Start after Stop.
func TestWatchdogPingsFromWatchdogUSECAndStopsOnce(t *testing.T) {
	sock := sdnotifytest.Listen(t)
	t.Setenv("WATCHDOG_USEC", "20000") // pings every 10ms
	w := newNotifier().Watchdog(WatchdogOptions{Check: func(context.Context) error { return nil }})
	require.NoError(t, w.Start(context.Background()))
	for range 3 {
		require.Equal(t, "WATCHDOG=1", sock.Next(t, 10*time.Second))
	}
	require.NoError(t, w.Stop(context.Background()))
	require.NoError(t, w.Stop(context.Background()), "Stop twice")
	require.ErrorContains(t, w.Start(context.Background()), "Start after")
}

func TestWatchdogStartErrors(t *testing.T) {
	sdnotifytest.Listen(t)
	t.Setenv("WATCHDOG_USEC", "bogus")
	n := newNotifier()
	require.ErrorContains(t, n.Watchdog(WatchdogOptions{}).Start(context.Background()), "no health check")
	ok := func(context.Context) error { return nil }
	require.ErrorContains(t, n.Watchdog(WatchdogOptions{Check: ok}).Start(context.Background()), "WATCHDOG_USEC")
	require.NoError(t, n.Watchdog(WatchdogOptions{Check: ok}).Stop(context.Background()), "Stop without Start")
}

func TestWatchdogStopGivesUpWithItsContext(t *testing.T) {
	sdnotifytest.Listen(t)
	release := make(chan struct{})
	started := make(chan struct{})
	w := newNotifier().Watchdog(WatchdogOptions{Interval: time.Hour, Check: func(context.Context) error {
		close(started)
		<-release // a check that ignores its context
		return nil
	}})
	require.NoError(t, w.Start(context.Background()))
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, w.Stop(ctx), context.Canceled)
	close(release)
	require.NoError(t, w.Stop(context.Background()))
}
