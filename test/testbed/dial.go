package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// DialContext connects to addr from inside the node's network namespace,
// as a process on the node would; use it for every client the test
// process aims at a node address. Its signature fits
// http.Transport.DialContext, websocket.Dialer.NetDialContext and
// pgconn.Config.DialFunc.
//
// The host in addr must be an IP address: resolving a name would send a
// DNS query from the test's own namespace.
//
// A socket belongs to the namespace it was created in, for its whole
// life. So the dial runs on an OS thread of its own that enters the
// namespace with setns(2), creates and connects the socket, and goes back;
// if it cannot go back, the thread is thrown away rather than returned to
// the Go scheduler.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: dial %s: %w", n.name, addr, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("testbed: %s: dial %s: the host must be an IP address, not a name", n.name, addr)
	}
	var c net.Conn
	err = n.inNamespace(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on addr inside the node's network namespace, for a fake
// server the test runs in its own process (typically on the node's
// address, or 127.0.0.1 for a node-local service).
func (n *Node) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.inNamespace(func() error {
		var lc net.ListenConfig
		var err error
		l, err = lc.Listen(ctx, network, addr)
		return err
	})
	return l, err
}

// inNamespace runs fn on a locked OS thread switched into the node's
// network namespace, and waits for it.
func (n *Node) inNamespace(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		// No deferred UnlockOSThread: a thread that may still be in the
		// node's namespace must die with this goroutine, not run other
		// goroutines.
		runtime.LockOSThread()
		nsFD, err := unix.Open(filepath.Join(netnsDir, n.ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("testbed: %s: open namespace: %w", n.name, err)
			return
		}
		defer unix.Close(nsFD)
		origFD, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("testbed: %s: open own namespace: %w", n.name, err)
			return
		}
		defer unix.Close(origFD)
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("testbed: %s: enter namespace: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(origFD, unix.CLONE_NEWNET); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("testbed: %s: leave namespace: %w", n.name, err))
			return // the thread stays locked and exits with the goroutine
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// HTTPClient returns a client whose connections are made from inside the
// node's namespace, with no proxy (the environment's would be dialed from
// here too) and its own connection pool. Set a timeout per request
// through its context.
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           n.DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// WebSocketDialer returns a gorilla/websocket dialer whose connections
// are made from inside the node's namespace.
func (n *Node) WebSocketDialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   n.DialContext,
		HandshakeTimeout: 10 * time.Second,
	}
}

// ConnectPG opens a Postgres connection from inside the node's namespace
// (dsn's host must be an IP address, such as Postgres.DSN gives).
func (n *Node) ConnectPG(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", n.name, err)
	}
	cfg.DialFunc = n.DialContext
	return pgx.ConnectConfig(ctx, cfg)
}
