package pushservice_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/pushproxy/internal/pushservice"
)

// notifyOnly leaves cross-process delivery to NOTIFY alone: the re-scan
// that would otherwise cover for it runs too rarely to matter in a test.
func notifyOnly(o *pushservice.Options) {
	noLimits(o)
	o.RescanInterval = time.Hour
}

// TestTwoProcesses runs two Services on one database: the device holds its
// socket on one, application servers POST to the other.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	a := newEnvDSN(t, dsn, notifyOnly)
	b := newEnvDSN(t, dsn, notifyOnly)

	d := dial(t, a.base)
	uaid := d.hello("")
	ep := d.register("x1", "")
	viaB := b.base + strings.TrimPrefix(ep, a.base)

	// A stored message, woken by NOTIFY.
	id := pushOK(t, viaB, []byte("through b"), nil)
	n := d.next()
	require.Equal(t, id, n.version)
	require.Equal(t, []byte("through b"), n.data)
	d.ack(n, 100)
	d.ping() // the ack is done

	// A TTL 0 message travels in the notification itself.
	id = pushOK(t, viaB, []byte("now or never"), pushHeaders("TTL", "0"))
	n = d.next()
	require.Equal(t, id, n.version)
	require.Equal(t, []byte("now or never"), n.data)

	// The device comes back on b: its socket on a is superseded, and
	// messages POSTed to a reach it on b.
	d2 := dial(t, b.base)
	d2.hello(uaid)
	require.Equal(t, 4774, d.closed())
	id = pushOK(t, ep, []byte("through a"), nil)
	n = d2.next()
	require.Equal(t, id, n.version)
	eventually(t, func() bool {
		return metric(t, a.reg, "pushproxy_ps_devices_connected", nil) == 0
	}, "a lets the device go")
	require.EqualValues(t, 1, metric(t, b.reg, "pushproxy_ps_devices_connected", nil))
}

// TestListenReconnect cuts the LISTEN connections: the Services reopen
// them, and the re-scan that follows delivers what was notified meanwhile.
func TestListenReconnect(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	a := newEnvDSN(t, dsn, notifyOnly)
	b := newEnvDSN(t, dsn, notifyOnly)
	d := dial(t, a.base)
	d.hello("")
	ep := d.register("l1", "")
	viaB := b.base + strings.TrimPrefix(ep, a.base)

	require.Equal(t, 2, count(t, a.pool, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'garrison-pushproxy-listen'`))
	id := pushOK(t, viaB, []byte("while cut off"), nil)
	require.Equal(t, id, d.next().version)
	eventually(t, func() bool {
		return metric(t, a.reg, "pushproxy_ps_listen_reconnects_total", nil) >= 1
	}, "a counts the reconnect")
	eventually(t, func() bool {
		return count(t, a.pool, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'garrison-pushproxy-listen'`) == 2
	}, "both listen again")
	id = pushOK(t, viaB, []byte("after"), nil)
	require.Equal(t, id, d.next().version)
}

// TestRescan delivers a message whose notification never came (written
// behind the Service's back) through the periodic re-scan.
func TestRescan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *pushservice.Options) { o.RescanInterval = 20 * time.Millisecond })
	d := dial(t, e.base)
	uaid := d.hello("")
	ep := d.register("r1", "")
	capability := ep[strings.LastIndex(ep, "/")+1:]
	const id = "AAAAAAAAAAAAAAAAAAAAAA"
	_, err := e.pool.Exec(t.Context(), `INSERT INTO ps_messages (id, cap, uaid, urgency, received_at, expires_at, body)
		VALUES ($1, $2, $3, 'normal', now(), now() + interval '1 hour', $4)`, id, capability, uaid, []byte("stranded"))
	require.NoError(t, err)
	n := d.next()
	require.Equal(t, id, n.version)
	require.Equal(t, []byte("stranded"), n.data)
}

// TestPersistence stores a message while the device is offline, restarts
// the service (Stop, New, Start) and replays it.
func TestPersistence(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	first := newEnvDSN(t, dsn, nil)
	d := dial(t, first.base)
	uaid := d.hello("")
	ep := d.register("p1", "")
	require.NoError(t, d.ws.Close())
	offline(t, first.pool, uaid)
	id := pushOK(t, ep, []byte("kept across a restart"), nil)
	first.stop()

	second := newEnvDSN(t, dsn, nil)
	d = dial(t, second.base)
	require.Equal(t, uaid, d.hello(uaid), "the device resumes")
	n := d.next()
	require.Equal(t, id, n.version)
	require.Equal(t, []byte("kept across a restart"), n.data)
	// The subscription survived too.
	capPath := ep[len(first.base):]
	pushOK(t, second.base+capPath, []byte("again"), nil)
	require.Equal(t, []byte("again"), d.next().data)
}

// TestReady checks the readiness probe.
func TestReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	require.NoError(t, e.svc.Ready(t.Context()))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.Error(t, e.svc.Ready(ctx))
}

// TestLogsRedact runs a whole exchange with debug logs on and checks that
// no capability, uaid, message id or body appears in full.
func TestLogsRedact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	d := dial(t, e.base)
	uaid := d.hello("")
	k := newVAPIDKey(t)
	ep := d.register("r1", k.padded())
	capability := ep[strings.LastIndex(ep, "/")+1:]
	payload := []byte("a secret only the device can read")
	id := pushOK(t, ep, payload, pushHeaders("Authorization", k.auth(t, e.base)))
	n := d.next()
	d.ack(n, 101)
	require.Equal(t, 401, push(t, ep, payload, nil).StatusCode)
	d.send(map[string]any{"messageType": "nack", "version": id, "code": 303})
	d.send(map[string]any{"messageType": "unregister", "channelID": "r1"})
	require.EqualValues(t, 200, d.recv()["status"])
	require.NoError(t, d.ws.Close())
	offline(t, e.pool, uaid)

	logs := e.logs.String()
	require.Contains(t, logs, uaid[:8], "the logs do mention the device")
	for name, secret := range map[string]string{
		"uaid": uaid, "capability": capability, "message id": id,
		"body": string(payload), "body as data": base64.RawURLEncoding.EncodeToString(payload),
	} {
		require.NotContains(t, logs, secret, "the %s is logged in full", name)
	}
}

// TestMountedBesideOtherRoutes serves the Handler from a parent chi router
// next to routes of its own, as the proxy's listener does.
func TestMountedBesideOtherRoutes(t *testing.T) {
	t.Parallel()
	e := newEnvWrapped(t, pgtest.New(t), noLimits, func(h http.Handler) http.Handler {
		parent := chi.NewRouter()
		parent.Get("/version", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"version":"x"}`)) })
		parent.Handle("/push/*", h)
		parent.Handle("/m/*", h)
		parent.Handle("/ws", h)
		return parent
	})

	d := dial(t, e.base)
	d.hello("")
	ep := d.register("m1", "")
	id := pushOK(t, ep, []byte("through the parent"), nil)
	n := d.next()
	require.Equal(t, id, n.version)
	require.Equal(t, http.StatusGone, func() int {
		d.send(map[string]any{"messageType": "unregister", "channelID": "m1"})
		require.EqualValues(t, 200, d.recv()["status"])
		return push(t, ep, body(1, 'a'), nil).StatusCode
	}())
	resp, err := e.srv.Client().Get(e.base + "/version")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
