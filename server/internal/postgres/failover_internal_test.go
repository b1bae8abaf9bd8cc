package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/garrison-chat/garrison/internal/pgtest"
)

// TestDialerSetsSocketOptions reads the options back from a dialed socket:
// they are what turns a peer that vanished silently into an error.
func TestDialerSetsSocketOptions(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })

	c, err := dialer(time.Second, 12*time.Second, 7*time.Second)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	dc, ok := c.(*deadlineConn)
	require.True(t, ok, "reads are bounded")
	require.Equal(t, 7*time.Second, dc.timeout)
	raw, err := dc.Conn.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	opt := func(level, name int) int {
		var v int
		var gerr error
		require.NoError(t, raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, name) }))
		require.NoError(t, gerr)
		return v
	}
	require.Equal(t, 12000, opt(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT))
	require.Equal(t, 1, opt(unix.SOL_SOCKET, unix.SO_KEEPALIVE))
	require.Equal(t, 4, opt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE))
	require.Equal(t, 2, opt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL))
	require.Equal(t, 3, opt(unix.IPPROTO_TCP, unix.TCP_KEEPCNT))

	// No response timeout: the plain connection.
	c2, err := dialer(time.Second, 12*time.Second, 0)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Close() })
	require.IsType(t, &net.TCPConn{}, c2)
}

// TestDeadlineConn: a silent peer fails a read after the timeout, and a
// deadline the driver sets (its context watcher) still interrupts one.
func TestDeadlineConn(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	// Accept and say nothing, ever; the accepted connections close when
	// the listener does, at the end of the test.
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	dial := dialer(time.Second, time.Minute, 50*time.Millisecond)

	c, err := dial(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())

	// The driver cancels a read with a deadline in the past; clearing it
	// leaves the response timeout in force.
	c, err = dialer(time.Second, time.Minute, time.Hour)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		read <- err
	}()
	require.NoError(t, c.SetDeadline(time.Unix(1, 0)))
	require.ErrorIs(t, <-read, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetDeadline(time.Time{}))
	dc := c.(*deadlineConn)
	dc.mu.Lock()
	require.True(t, dc.deadline.IsZero())
	dc.mu.Unlock()
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return &pgconn.PgError{Code: code} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no rows", pgx.ErrNoRows, false},
		{"unique violation", pg("23505"), false},
		{"syntax", pg("42601"), false},
		{"statement timeout", pg("57014"), false},
		{"read-only transaction", pg("25006"), true},
		{"admin shutdown", pg("57P01"), true},
		{"starting up", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"wrapped", fmt.Errorf("posts: create: %w", pg("25006")), true},
		{"kind", fmt.Errorf("x: %w", ErrUnavailable), true},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"plain EOF", io.EOF, false},
		{"connection cut mid-message", fmt.Errorf("tx: %w", io.ErrUnexpectedEOF), true},
		{"transaction on a dead connection", fmt.Errorf("x: %w", pgx.ErrTxClosed), true},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"unrelated error", errors.New("unrelated"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, IsUnavailable(tt.err))
		})
	}

	// Real driver errors: a refused connection is an outage, a missing
	// database a configuration error.
	ctx := t.Context()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = pgx.Connect(ctx, "postgres://u@"+addr+"/db?sslmode=disable&connect_timeout=5")
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ECONNREFUSED))
	require.True(t, IsUnavailable(err), "%v", err)
	require.ErrorIs(t, mapErr(err), ErrUnavailable)

	u, err := url.Parse(pgtest.New(t))
	require.NoError(t, err)
	u.Path = "/no_such_database"
	_, err = pgx.Connect(ctx, u.String())
	var ce *pgconn.ConnectError
	require.ErrorAs(t, err, &ce)
	require.False(t, IsUnavailable(err), "%v", err)
}

func TestWrites(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]bool{
		`SELECT id FROM posts p WHERE p.delete_at = 0 AND p.update_at > $1`: false,
		`SELECT 1`:                      false,
		`INSERT INTO t (a) VALUES ($1)`: true,
		`insert into t values ($1)`:     true,
		`WITH u AS (UPDATE c SET v = 1 RETURNING id) SELECT id FROM u`: true,
		`DELETE FROM systems WHERE name = $1`:                          true,
		`SELECT id FROM t WHERE id = $1 FOR UPDATE`:                    true,
		`SELECT deleted, updated_at FROM t`:                            false,
	} {
		require.Equal(t, want, writes(sql), sql)
	}
}

func TestRecordEnd(t *testing.T) {
	t.Parallel()
	const block, segment = 8192, 16 << 20
	require.Equal(t, lsn(3*block+100), recordEnd(3*block+100, block, segment))
	require.Equal(t, lsn(3*block), recordEnd(3*block+shortPageHeader, block, segment), "past a page header")
	require.Equal(t, lsn(2*segment), recordEnd(2*segment+longPageHeader, block, segment), "past a segment's header")
	require.Equal(t, lsn(3*block+longPageHeader), recordEnd(3*block+longPageHeader, block, segment), "40 bytes into a page is a record end")
	p, err := parseLSN("16/B374D848")
	require.NoError(t, err)
	require.Equal(t, lsn(0x16B374D848), p)
	_, err = parseLSN("16B374D848")
	require.Error(t, err)
}

func TestParseConfigSeveralHostsWantThePrimary(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]bool{
		"postgres://u@db1,db2/garrison":                                 true,
		"host=db1,db2 user=u dbname=garrison":                           true,
		"postgres://u@db1/garrison":                                     false,
		"postgres://u@db1,db2/garrison?target_session_attrs=any":        false,
		"postgres://u@db1,db2/garrison?target_session_attrs=read-write": true,
		"postgres://u@db1:5432,db1:5432/garrison?sslmode=prefer":        false,
	} {
		cfg, err := ParseConfig(PoolOptions{DataSource: dsn})
		require.NoError(t, err)
		require.Equal(t, want, cfg.ConnConfig.ValidateConnect != nil, dsn)
		require.Equal(t, defaultHealthTimeout, cfg.PingTimeout)
		require.Equal(t, defaultConnectTimeout, cfg.ConnConfig.ConnectTimeout)
	}
	cfg, err := ParseConfig(PoolOptions{DataSource: "postgres://u@db1/garrison?connect_timeout=3", ConnectTimeout: time.Second})
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, cfg.ConnConfig.ConnectTimeout, "the DSN's connect_timeout wins")
}
