package pushservice

import (
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestService builds a Service (not started) on a fresh database.
func newTestService(t *testing.T, clk *testClock) (*Service, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	u, err := url.Parse("https://push.example.org")
	require.NoError(t, err)
	s, err := New(Options{Pool: pool, PublicURL: u, Clock: clk.now})
	require.NoError(t, err)
	return s, pool
}

func TestSweep(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	s, pool := newTestService(t, clk)
	ctx := t.Context()
	rows := func(q string, args ...any) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, q, args...).Scan(&n))
		return n
	}

	// A device with two subscriptions and three messages, gone offline.
	uaid, gen, _, err := s.helloDevice(ctx, "", clk.now())
	require.NoError(t, err)
	c1, err := s.registerChannel(ctx, uaid, "c1", nil, clk.now())
	require.NoError(t, err)
	c2, err := s.registerChannel(ctx, uaid, "c2", nil, clk.now())
	require.NoError(t, err)
	sub1, err := s.lookupSubscription(ctx, c1)
	require.NoError(t, err)
	for _, ttl := range []time.Duration{time.Minute, time.Hour, 20 * 24 * time.Hour} {
		_, _, err := s.acceptMessage(ctx, inbound{sub: sub1, id: newMsgID(), urgency: "normal", ttl: ttl,
			received: clk.now(), body: []byte("x")}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, s.disconnectDevice(ctx, uaid, gen, clk.now()))
	require.NoError(t, s.unregisterChannel(ctx, uaid, "c2", clk.now()))

	// Expiry.
	clk.advance(2 * time.Minute)
	res, err := s.sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, sweepResult{expired: 1}, res)
	require.Equal(t, 2, rows(`SELECT count(*) FROM ps_messages`))
	require.EqualValues(t, 2, gaugeValue(t, s.metrics.depth))

	// Idle devices are forgotten; their subscriptions become tombstones.
	clk.advance(s.opts.DeviceIdleTimeout)
	res, err = s.sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), res.devices)
	require.Equal(t, 0, rows(`SELECT count(*) FROM ps_devices`))
	require.Equal(t, 0, rows(`SELECT count(*) FROM ps_messages`))
	sub1, err = s.lookupSubscription(ctx, c1)
	require.NoError(t, err)
	require.True(t, sub1.removed, "an endpoint of a forgotten device answers 410")

	// Old tombstones go: c2's (removed at the start) first, then c1's.
	clk.advance(s.opts.TombstoneRetention - s.opts.DeviceIdleTimeout + time.Hour)
	res, err = s.sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, sweepResult{tombstones: 1}, res)
	_, err = s.lookupSubscription(ctx, c2)
	require.ErrorIs(t, err, errNotFound)
	clk.advance(s.opts.DeviceIdleTimeout)
	res, err = s.sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, sweepResult{tombstones: 1}, res)
	require.Equal(t, 0, rows(`SELECT count(*) FROM ps_subscriptions`))
}

// TestConnectedDeviceNotIdle checks that the re-scan keeps a long-lived
// socket's device from looking idle.
func TestConnectedDeviceNotIdle(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	s, pool := newTestService(t, clk)
	ctx := t.Context()
	uaid, gen, _, err := s.helloDevice(ctx, "", clk.now())
	require.NoError(t, err)
	_, err = s.registerChannel(ctx, uaid, "c1", nil, clk.now())
	require.NoError(t, err)
	s.hub.byUAID[uaid] = &conn{uaid: uaid, gen: gen, wake: make(chan struct{}, 1), kill: make(chan struct{})}

	for range 4 {
		clk.advance(s.opts.DeviceIdleTimeout / 3)
		require.NoError(t, s.rescanOnce(ctx))
		res, err := s.sweep(ctx)
		require.NoError(t, err)
		require.Zero(t, res.devices)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM ps_devices`).Scan(&n))
	require.Equal(t, 1, n)
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}

// TestDisconnectOldGeneration checks that the end of a superseded socket
// leaves the device as its newer socket recorded it.
func TestDisconnectOldGeneration(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	s, pool := newTestService(t, clk)
	ctx := t.Context()
	online := func(uaid string) (n int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM ps_devices WHERE uaid = $1 AND node IS NOT NULL`, uaid).Scan(&n))
		return n
	}

	// A device with a subscription stays known when it goes offline.
	uaid, gen1, _, err := s.helloDevice(ctx, "", clk.now())
	require.NoError(t, err)
	_, err = s.registerChannel(ctx, uaid, "c1", nil, clk.now())
	require.NoError(t, err)
	_, gen2, resumed, err := s.helloDevice(ctx, uaid, clk.now())
	require.NoError(t, err)
	require.True(t, resumed)
	require.Greater(t, gen2, gen1)
	require.NoError(t, s.disconnectDevice(ctx, uaid, gen1, clk.now()))
	require.Equal(t, 1, online(uaid), "the old socket's end changes nothing")
	require.NoError(t, s.disconnectDevice(ctx, uaid, gen2, clk.now()))
	require.Equal(t, 0, online(uaid))
	_, gen3, resumed, err := s.helloDevice(ctx, uaid, clk.now())
	require.NoError(t, err)
	require.True(t, resumed, "a device with subscriptions is kept offline")
	require.Greater(t, gen3, gen2)

	// A device without subscriptions is forgotten when its socket ends,
	// but not by the end of an older socket.
	bare, g1, _, err := s.helloDevice(ctx, "", clk.now())
	require.NoError(t, err)
	_, g2, _, err := s.helloDevice(ctx, bare, clk.now())
	require.NoError(t, err)
	require.NoError(t, s.disconnectDevice(ctx, bare, g1, clk.now()))
	require.Equal(t, 1, online(bare))
	require.NoError(t, s.disconnectDevice(ctx, bare, g2, clk.now()))
	got, _, resumed, err := s.helloDevice(ctx, bare, clk.now())
	require.NoError(t, err)
	require.False(t, resumed)
	require.NotEqual(t, bare, got)
}
