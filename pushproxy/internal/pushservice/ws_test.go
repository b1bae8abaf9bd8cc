package pushservice_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/pushproxy/internal/pushservice"
)

// TestProtocol walks Firefox's protocol: hello, register, notification,
// ack, ping, broadcast_subscribe, unknown types, unregister.
func TestProtocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	d := dial(t, e.base)
	uaid := d.hello("")

	const ch = "98ce5371-3e9e-455a-9573-4a990687a1f7"
	ep := d.register(ch, "")
	require.True(t, strings.HasPrefix(ep, e.base+"/push/"), ep)
	capability := strings.TrimPrefix(ep, e.base+"/push/")
	require.Regexp(t, `^[A-Za-z0-9_-]{27}$`, capability) // 160 random bits
	require.NotContains(t, ep, ch)
	_, err := url.Parse(ep)
	require.NoError(t, err)
	require.Equal(t, ep, d.register(ch, ""), "re-registering keeps the endpoint")

	// Register refusals.
	k := newVAPIDKey(t)
	require.EqualValues(t, 409, d.registerReply(ch, k.padded())["status"], "same channel, another key")
	require.EqualValues(t, 400, d.registerReply("bad channel id", "")["status"])
	require.EqualValues(t, 400, d.registerReply("c2", "BAAA")["status"], "key not a P-256 point")
	notOnCurve := base64.URLEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...))
	require.EqualValues(t, 400, d.registerReply("c2", notOnCurve)["status"])
	bound := d.register("c2", k.padded())
	require.NotEqual(t, ep, bound)
	require.Equal(t, bound, d.register("c2", k.raw()), "the key compares decoded")

	// Ping, and frames that get no answer: the next ping's reply is the
	// next frame.
	d.ping()
	d.send(map[string]any{"messageType": "broadcast_subscribe", "broadcasts": map[string]any{"remote-settings/monitor_changes": `"0"`}})
	d.send(map[string]any{"messageType": "something_new", "x": 1})
	d.ping()

	// A push arrives as a notification frame carrying the exact body.
	payload := []byte{0, 1, 2, 0xfe, 0xff, 'x'}
	id := pushOK(t, ep, payload, pushHeaders("Urgency", "high"))
	n := d.next()
	require.Equal(t, ch, n.channelID)
	require.Equal(t, id, n.version)
	require.Equal(t, payload, n.data)

	// The ack deletes it and is counted; latency is observed.
	d.ack(n, 100)
	eventually(t, func() bool { return count(t, e.pool, `SELECT count(*) FROM ps_messages`) == 0 }, "ack deletes the message")
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_acks_total", map[string]string{"code": "100"}))
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_delivery_latency_seconds", nil))
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_messages_received_total", nil))
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_devices_connected", nil))

	// A nack drops the message too: the client will not retry it.
	id = pushOK(t, ep, []byte("refused"), nil)
	require.Equal(t, id, d.next().version)
	d.send(map[string]any{"messageType": "nack", "version": id, "code": 302})
	eventually(t, func() bool { return count(t, e.pool, `SELECT count(*) FROM ps_messages`) == 0 }, "nack deletes the message")
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_nacks_total", map[string]string{"code": "302"}))

	// Unregister: 200, then the endpoint is a tombstone.
	d.send(map[string]any{"messageType": "unregister", "channelID": ch, "code": 200})
	r := d.recv()
	require.Equal(t, map[string]any{"messageType": "unregister", "channelID": ch, "status": float64(200)}, r)
	require.Equal(t, http.StatusGone, push(t, ep, body(10, 'a'), nil).StatusCode)
	d.send(map[string]any{"messageType": "unregister", "channelID": ch})
	require.EqualValues(t, 200, d.recv()["status"], "unregistering twice is fine")
	// Registering the channel again makes a new endpoint.
	again := d.register(ch, "")
	require.NotEqual(t, ep, again)

	// A hello with an unknown uaid starts a new device.
	d2 := dial(t, e.base)
	require.NotEqual(t, uaid, d2.hello("0123456789abcdef0123456789abcdef"))
	d3 := dial(t, e.base)
	require.NotEqual(t, uaid, d3.hello("not-our-format"))
}

// TestProtocolViolations checks that a socket speaking something else is
// closed with the right code.
func TestProtocolViolations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tests := []struct {
		name  string
		hello bool
		send  func(*websocket.Conn) error
		code  int
	}{
		{"register before hello", false, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`{"messageType":"register","channelID":"x"}`))
		}, websocket.ClosePolicyViolation},
		{"not JSON", true, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`hello`))
		}, websocket.CloseInvalidFramePayloadData},
		{"not an object", true, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`[1,2]`))
		}, websocket.CloseInvalidFramePayloadData},
		{"binary frame", true, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.BinaryMessage, []byte(`{}`))
		}, websocket.CloseUnsupportedData},
		{"hello twice", true, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`{"messageType":"hello"}`))
		}, websocket.ClosePolicyViolation},
		{"frame too large", true, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`{"messageType":"x","pad":"`+strings.Repeat("a", 64<<10)+`"}`))
		}, websocket.CloseMessageTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := dial(t, e.base)
			if tc.hello {
				d.hello("")
			}
			require.NoError(t, tc.send(d.ws))
			require.Equal(t, tc.code, d.closed())
		})
	}
}

// TestReplay checks that every unacknowledged, unexpired message is
// replayed in receive order at each reconnect, until acked.
func TestReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	d := dial(t, e.base)
	uaid := d.hello("")
	ep1 := d.register("ch1", "")
	ep2 := d.register("ch2", "")
	require.NoError(t, d.ws.Close())
	offline(t, e.pool, uaid)

	var ids []string
	for i, ep := range []string{ep1, ep2, ep1, ep2, ep1} {
		ids = append(ids, pushOK(t, ep, []byte{byte('a' + i)}, nil))
	}

	// reconnect replays want messages, acks the second and fourth.
	reconnect := func(want int) []notification {
		d := dial(t, e.base)
		d.hello(uaid)
		var got []notification
		for range want {
			got = append(got, d.next())
		}
		d.ping() // nothing more
		for _, n := range got {
			if n.version == ids[1] || n.version == ids[3] {
				d.ack(n, 100)
			}
		}
		d.ping() // the acks are read before the socket closes
		require.NoError(t, d.ws.Close())
		offline(t, e.pool, uaid)
		return got
	}
	versions := func(ns []notification) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.version)
		}
		return out
	}

	first := reconnect(5)
	require.Equal(t, ids, versions(first))
	for i, n := range first {
		require.Equal(t, []byte{byte('a' + i)}, n.data)
		require.Equal(t, map[bool]string{true: "ch1", false: "ch2"}[i%2 == 0], n.channelID)
	}
	require.Equal(t, []string{ids[0], ids[2], ids[4]}, versions(reconnect(3)))
	require.Equal(t, []string{ids[0], ids[2], ids[4]}, versions(reconnect(3)), "unacked messages keep coming back")
}

// TestExpiredNotReplayed checks that a message past its TTL is neither
// replayed nor kept.
func TestExpiredNotReplayed(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := newEnv(t, func(o *pushservice.Options) { noLimits(o); o.Clock = clk.Now })
	d := dial(t, e.base)
	uaid := d.hello("")
	ep := d.register("e1", "")
	require.NoError(t, d.ws.Close())
	offline(t, e.pool, uaid)

	pushOK(t, ep, []byte("short"), pushHeaders("TTL", "30"))
	long := pushOK(t, ep, []byte("long"), pushHeaders("TTL", "3600"))
	clk.Advance(time.Minute)

	d = dial(t, e.base)
	d.hello(uaid)
	require.Equal(t, long, d.next().version)
	d.ping()
}

// TestSupersede checks that a second hello with the same uaid closes the
// first socket with 4774 and takes its deliveries.
func TestSupersede(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	d1 := dial(t, e.base)
	uaid := d1.hello("")
	ep := d1.register("s1", "")

	d2 := dial(t, e.base)
	d2.hello(uaid)
	require.Equal(t, 4774, d1.closed())

	id := pushOK(t, ep, []byte("to the new socket"), nil)
	n := d2.next()
	require.Equal(t, id, n.version)
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_devices_connected", nil))
}

// TestStopClosesSockets checks that Stop closes device sockets with 1001
// and refuses new ones.
func TestStopClosesSockets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	d := dial(t, e.base)
	d.hello("")
	done := make(chan int, 1)
	go func() {
		_ = d.ws.SetReadDeadline(time.Now().Add(waitFor))
		_, _, err := d.ws.ReadMessage()
		_ = d.ws.Close()
		ce, _ := err.(*websocket.CloseError)
		if ce == nil {
			done <- -1
			return
		}
		done <- ce.Code
	}()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, e.svc.Stop(ctx))
	require.Equal(t, websocket.CloseGoingAway, <-done)

	dialer := websocket.Dialer{HandshakeTimeout: waitFor}
	_, resp, err := dialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(e.base, "http")+"/ws", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

// TestMaxConnections checks that past MaxConnections an upgrade gets 503.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *pushservice.Options) { o.MaxConnections = 1 })
	d := dial(t, e.base)
	d.hello("")
	dialer := websocket.Dialer{HandshakeTimeout: waitFor}
	_, resp, err := dialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(e.base, "http")+"/ws", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// The slot frees when the socket ends.
	require.NoError(t, d.ws.Close())
	eventually(t, func() bool {
		c, resp, err := dialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(e.base, "http")+"/ws", nil)
		if err != nil {
			if resp != nil {
				_ = resp.Body.Close()
			}
			return false
		}
		_ = resp.Body.Close()
		_ = c.Close()
		return true
	}, "a socket slot frees")
}

// TestPingTimeout checks the server's keepalive: a client that answers
// pings stays connected past the idle limit, one that does not is closed.
func TestPingTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *pushservice.Options) {
		o.PingInterval, o.PongTimeout = 50*time.Millisecond, 50*time.Millisecond
	})

	// gorilla answers pings while reading: this client reads until it has
	// seen several pings, well past PingInterval+PongTimeout.
	alive := dial(t, e.base)
	alive.hello("")
	pings := make(chan struct{}, 16)
	alive.ws.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return alive.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		_ = alive.ws.SetReadDeadline(time.Now().Add(waitFor))
		for {
			if _, _, err := alive.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for range 6 {
		select {
		case <-pings:
		case <-time.After(waitFor):
			t.Fatal("no ping")
		}
	}

	// A client that stops reading never answers a ping, and is dropped.
	silent := dial(t, e.base)
	offline(t, e.pool, silent.hello(""))
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_devices_connected", nil), "the live client stays")
}
