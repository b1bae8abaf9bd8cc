// Package sdnotify tells systemd how a daemon is doing, over the
// sd_notify(3) protocol: READY=1 once it serves, STATUS= lines for
// `systemctl status`, STOPPING=1 when it shuts down, and WATCHDOG=1 only
// while a health check passes, so that a hung or cut-off daemon is
// restarted (WatchdogSec= in the unit).
//
// The socket and the watchdog period come from the environment systemd
// sets (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID), read by
// github.com/coreos/go-systemd/v22/daemon at each call. Outside systemd
// none is set and every call is a no-op.
package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to systemd. The zero value is not usable;
// call New.
type Notifier struct {
	log *slog.Logger
}

// New returns a notifier that logs failed notifications to logger.
func New(logger *slog.Logger) *Notifier {
	return &Notifier{log: logger}
}

// Enabled reports whether systemd asked for notifications (NOTIFY_SOCKET
// is set).
func (n *Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// Ready tells systemd that start-up is complete (Type=notify units are
// "active" only from then on), with status as the STATUS= line.
func (n *Notifier) Ready(status string) error {
	return n.send(daemon.SdNotifyReady, status)
}

// Status replaces the free-form status `systemctl status` shows.
func (n *Notifier) Status(status string) error {
	return n.send("", status)
}

// Stopping tells systemd that shutdown has begun, with status as the
// STATUS= line.
func (n *Notifier) Stopping(status string) error {
	return n.send(daemon.SdNotifyStopping, status)
}

// send writes one datagram holding state (if not empty) and status (if not
// empty). A status may not smuggle in other assignments: line breaks in it
// become spaces.
func (n *Notifier) send(state, status string) error {
	var lines []string
	if state != "" {
		lines = append(lines, state)
	}
	if status != "" {
		lines = append(lines, "STATUS="+oneLine(status))
	}
	if len(lines) == 0 {
		return nil
	}
	msg := strings.Join(lines, "\n")
	if _, err := daemon.SdNotify(false, msg); err != nil {
		return fmt.Errorf("sdnotify: send %s: %w", lines[0], err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// WatchdogInterval is how often a healthy daemon pings the watchdog: half
// of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises. It is 0 when
// systemd wants no pings: no NOTIFY_SOCKET, no WATCHDOG_USEC, or a
// WATCHDOG_PID that is another process. A malformed value is an error.
func (n *Notifier) WatchdogInterval() (time.Duration, error) {
	if !n.Enabled() {
		return 0, nil
	}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC/WATCHDOG_PID: %w", err)
	}
	return d / 2, nil
}

// WatchdogOptions configure a Watchdog.
type WatchdogOptions struct {
	// Check is the health check; WATCHDOG=1 is sent only after it returns
	// nil. Its context ends after Timeout or when the watchdog stops.
	Check func(ctx context.Context) error
	// Status is the STATUS= line sent when Check passes again after a
	// failure (what Ready said).
	Status string
	// Interval between checks; 0 means WatchdogInterval.
	Interval time.Duration
	// Timeout bounds one check; 0 means half the interval, so that a slow
	// check still leaves time to ping before systemd's deadline.
	Timeout time.Duration
	// Ticks, for tests, replaces the ticker: each value received runs one
	// check. Nil means a time.Ticker at Interval.
	Ticks <-chan time.Time
}

// defaultCheckTimeout bounds a check when neither Timeout nor an interval
// says otherwise.
const defaultCheckTimeout = 10 * time.Second

// Watchdog pings systemd's watchdog while a health check passes. While it
// fails the watchdog stays silent, STATUS= says why, and systemd restarts
// the daemon once WatchdogSec= elapses without a ping.
type Watchdog struct {
	n *Notifier
	o WatchdogOptions

	mu      sync.Mutex // guards the fields below
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// Watchdog returns a watchdog for check; nothing runs until Start.
func (n *Notifier) Watchdog(o WatchdogOptions) *Watchdog {
	return &Watchdog{n: n, o: o}
}

// Start checks health at once (so the first ping follows READY=1) and then
// every interval, until Stop. With no watchdog requested by systemd (and
// no Ticks) it does nothing. The loop does not end with ctx: its owner
// stops it, so a start-up deadline on ctx cannot silence the watchdog.
func (w *Watchdog) Start(ctx context.Context) error {
	if w.o.Check == nil {
		return fmt.Errorf("sdnotify: watchdog: no health check")
	}
	interval := w.o.Interval
	if interval == 0 {
		var err error
		if interval, err = w.n.WatchdogInterval(); err != nil {
			return err
		}
	}
	if interval <= 0 && w.o.Ticks == nil {
		return nil
	}
	timeout := w.o.Timeout
	if timeout <= 0 {
		timeout = interval / 2
	}
	if timeout <= 0 {
		timeout = defaultCheckTimeout // Ticks without Interval
	}
	ticks, stopTicker := w.o.Ticks, func() {}
	if ticks == nil {
		t := time.NewTicker(interval)
		ticks, stopTicker = t.C, t.Stop
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil || w.stopped {
		stopTicker()
		return fmt.Errorf("sdnotify: watchdog: Start after Start or Stop")
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		defer stopTicker()
		w.loop(lctx, ticks, timeout)
	}()
	return nil
}

func (w *Watchdog) loop(ctx context.Context, ticks <-chan time.Time, timeout time.Duration) {
	healthy := true
	for {
		healthy = w.checkOnce(ctx, timeout, healthy)
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}

// checkOnce runs the check and pings or reports; it returns whether the
// check passed.
func (w *Watchdog) checkOnce(ctx context.Context, timeout time.Duration, wasHealthy bool) bool {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := w.o.Check(cctx)
	cancel()
	if ctx.Err() != nil {
		return wasHealthy // stopping: the result means nothing
	}
	if err != nil {
		if wasHealthy {
			w.n.log.Warn("health check failed: not pinging the systemd watchdog", "err", err)
		}
		// Every time, not only on the change: the cause may change.
		if serr := w.n.Status("unhealthy: " + err.Error()); serr != nil {
			w.n.log.Warn("systemd status", "err", serr)
		}
		return false
	}
	status := ""
	if !wasHealthy {
		w.n.log.Info("health check passes again: pinging the systemd watchdog")
		status = w.o.Status
	}
	if serr := w.n.send(daemon.SdNotifyWatchdog, status); serr != nil {
		w.n.log.Warn("systemd watchdog", "err", serr)
	}
	return true
}

// Stop ends the loop and waits for a check in progress (whose context it
// cancels). It may be called more than once, and without Start.
func (w *Watchdog) Stop(ctx context.Context) error {
	w.mu.Lock()
	w.stopped = true
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sdnotify: watchdog: stop: %w", ctx.Err())
	}
}
