// Package sdnotifytest is a fake systemd notify socket for tests of
// daemons that use sdnotify: it receives what they would tell systemd.
package sdnotifytest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Socket is a datagram socket standing in for systemd's.
type Socket struct {
	conn *net.UnixConn
	path string
}

// marker is what Drain sends itself to find the end of the queue.
const marker = "SDNOTIFYTEST_MARKER=1"

// Listen binds a socket in a new temporary directory (short, so the path
// fits a socket address) and points NOTIFY_SOCKET at it. It uses
// t.Setenv, so the test may not be parallel. WATCHDOG_USEC and
// WATCHDOG_PID are cleared; set WATCHDOG_USEC to ask for a watchdog.
func Listen(t testing.TB) *Socket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatalf("sdnotifytest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("sdnotifytest: listen: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("WATCHDOG_PID", "")
	return &Socket{conn: conn, path: path}
}

// Path is the socket's file name (what NOTIFY_SOCKET holds).
func (s *Socket) Path() string { return s.path }

// Next returns the next message, failing the test if none arrives within
// timeout.
func (s *Socket) Next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	msg, err := s.read(time.Now().Add(timeout))
	if err != nil {
		t.Fatalf("sdnotifytest: no message within %s: %v", timeout, err)
	}
	return msg
}

// Until reads messages until one satisfies match and returns all it read,
// the match last. It fails the test if none matches within timeout.
func (s *Socket) Until(t testing.TB, timeout time.Duration, match func(msg string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for {
		msg, err := s.read(deadline)
		if err != nil {
			t.Fatalf("sdnotifytest: no matching message within %s (%v); got %q", timeout, err, seen)
		}
		seen = append(seen, msg)
		if match(msg) {
			return seen
		}
	}
}

// Drain returns every message already received and not yet read. It
// waits for nothing: a datagram is queued when its sender's write
// returns, so Drain sends itself a marker and reads up to it.
func (s *Socket) Drain(t testing.TB) []string {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("sdnotifytest: drain: %v", err)
	}
	_, err = c.Write([]byte(marker))
	_ = c.Close()
	if err != nil {
		t.Fatalf("sdnotifytest: drain: %v", err)
	}
	var seen []string
	deadline := time.Now().Add(10 * time.Second) // the marker is queued already
	for {
		msg, err := s.read(deadline)
		if err != nil {
			t.Fatalf("sdnotifytest: drain: %v", err)
		}
		if msg == marker {
			return seen
		}
		seen = append(seen, msg)
	}
}

func (s *Socket) read(deadline time.Time) (string, error) {
	if err := s.conn.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	buf := make([]byte, 64<<10)
	n, _, err := s.conn.ReadFromUnix(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", errors.New("timed out")
		}
		return "", err
	}
	return string(buf[:n]), nil
}

// Has reports whether msg holds the assignment a ("READY=1"); a message
// is one assignment per line.
func Has(msg, a string) bool {
	return slices.Contains(strings.Split(msg, "\n"), a)
}

// Status returns msg's STATUS= value and whether it has one.
func Status(msg string) (string, bool) {
	for _, line := range strings.Split(msg, "\n") {
		if v, ok := strings.CutPrefix(line, "STATUS="); ok {
			return v, true
		}
	}
	return "", false
}

// Holds returns a matcher for messages holding the assignment a.
func Holds(a string) func(string) bool {
	return func(msg string) bool { return Has(msg, a) }
}

// Unhealthy reports whether msg is a failed watchdog check: a STATUS=
// starting "unhealthy: " and no WATCHDOG=1.
func Unhealthy(msg string) bool {
	s, ok := Status(msg)
	return ok && strings.HasPrefix(s, "unhealthy: ") && !Has(msg, "WATCHDOG=1")
}

// ExpectWatchdogOutage checks a daemon's watchdog through an outage:
// after down(), checks fail with an "unhealthy: " status and no ping
// (three in a row, to be sure no ping slips between them); after up(),
// nothing but failures comes before the first ping, which restores
// STATUS=serving.
func (s *Socket) ExpectWatchdogOutage(t testing.TB, down, up func(), serving string) {
	t.Helper()
	down()
	s.Until(t, 30*time.Second, Unhealthy)
	for range 2 {
		msg := s.Next(t, 10*time.Second)
		if !Unhealthy(msg) {
			t.Fatalf("got %q while the daemon was unhealthy", msg)
		}
	}
	up()
	msgs := s.Until(t, 30*time.Second, Holds("WATCHDOG=1"))
	for _, m := range msgs[:len(msgs)-1] {
		if !Unhealthy(m) {
			t.Fatalf("got %q before the first ping after the outage", m)
		}
	}
	if want := "WATCHDOG=1\nSTATUS=" + serving; msgs[len(msgs)-1] != want {
		t.Fatalf("first ping after the outage: got %q, want %q", msgs[len(msgs)-1], want)
	}
}
