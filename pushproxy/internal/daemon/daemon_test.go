package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/pushproxy/internal/config"
	"github.com/garrison-chat/garrison/pushproxy/internal/ece"
	"github.com/garrison-chat/garrison/pushproxy/internal/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m, schema.MigrateDSN) }

const secret = "daemon-test-secret"

// startDaemon runs a whole proxy on 127.0.0.1 with a fresh database.
// PublicURL is the listener's own address, so the front's deliveries to
// the push service go in-process.
func startDaemon(t *testing.T) *Daemon {
	t.Helper()
	return startDaemonWith(t, nil)
}

// startDaemonWith is startDaemon with edit applied to the configuration
// (when not nil) before it is validated.
func startDaemonWith(t *testing.T, edit func(*config.Config)) *Daemon {
	t.Helper()
	dsn := pgtest.New(t)
	// The public URL must be known before listening: reserve a port.
	addr := freeLoopback(t)
	cfg := config.Defaults()
	cfg.ListenAddress = addr
	cfg.MetricsListenAddress = "127.0.0.1:0"
	cfg.DataSource = dsn
	cfg.PublicURL = "http://" + addr
	cfg.VAPIDKeyFile = filepath.Join(t.TempDir(), "vapid.json")
	cfg.SenderSecret = secret
	if edit != nil {
		edit(&cfg)
	}
	require.NoError(t, cfg.Validate())
	ctx := context.Background()
	d, err := New(ctx, Options{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Version: "1.2.3", Hash: "abcdef0"})
	require.NoError(t, err)
	require.NoError(t, d.Start(ctx))
	t.Cleanup(func() { require.NoError(t, d.Stop(context.Background())) })
	return d
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := l.Addr().String()
	require.NoError(t, l.Close())
	return a
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHealthVersionAndMetrics(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	base := "http://" + d.Addr()
	code, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"healthy":true}`, body)
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, body)
	code, body = get(t, base+"/version")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"version":"1.2.3","hash":"abcdef0"}`, body)
	code, _ = get(t, base+"/")
	require.Equal(t, http.StatusOK, code)

	// Metrics are on their own listener only.
	code, _ = get(t, base+"/metrics")
	require.Equal(t, http.StatusNotFound, code)
	code, body = get(t, "http://"+d.MetricsAddr()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, name := range []string{"service_bad_request_total", "pushproxy_outbox_depth", "pushproxy_ps_devices_connected", "go_goroutines"} {
		require.Contains(t, body, name)
	}
}

// device is a minimal Firefox on the push WebSocket.
type device struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialDevice(t *testing.T, base string) *device {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http://", "ws://", 1)+"/ws", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	return &device{t: t, conn: conn}
}

func (d *device) send(v any) { require.NoError(d.t, d.conn.WriteJSON(v)) }

func (d *device) recv() map[string]any {
	d.t.Helper()
	require.NoError(d.t, d.conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	var m map[string]any
	require.NoError(d.t, d.conn.ReadJSON(&m))
	return m
}

func api(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.SetBasicAuth("garrison", secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
	}
	return resp.StatusCode, out
}

// TestSendPushReachesDevice follows one notification through a whole
// proxy: a device subscribes on the WebSocket, garrison registers the
// subscription and sends a push, the front delivers it in-process to the
// push service, and the device decrypts an id-only payload.
func TestSendPushReachesDevice(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	base := "http://" + d.Addr()

	code, key := api(t, http.MethodGet, base+"/api/v1/webpush/vapid_public_key", nil)
	require.Equal(t, http.StatusOK, code)
	vapid := key["vapid_public_key"].(string)
	raw, err := base64.RawURLEncoding.DecodeString(vapid)
	require.NoError(t, err)

	dev := dialDevice(t, base)
	dev.send(map[string]any{"messageType": "hello", "use_webpush": true, "broadcasts": map[string]any{}})
	require.Equal(t, "hello", dev.recv()["messageType"])
	dev.send(map[string]any{"messageType": "register", "channelID": "0b3a4c4e-6d5f-4a53-9b8e-2f1d1c0a9e77",
		"key": base64.URLEncoding.EncodeToString(raw)})
	reg := dev.recv()
	require.Equal(t, float64(200), reg["status"])
	endpoint := reg["pushEndpoint"].(string)
	require.True(t, strings.HasPrefix(endpoint, base+"/push/"), endpoint)

	sub, err := ece.NewSubscriber()
	require.NoError(t, err)
	var subJSON map[string]any
	require.NoError(t, json.Unmarshal(sub.Subscription(endpoint), &subJSON))
	code, created := api(t, http.MethodPost, base+"/api/v1/webpush/registrations", subJSON)
	require.Equal(t, http.StatusCreated, code, created)
	rid := created["id"].(string)

	code, res := api(t, http.MethodPost, base+"/api/v1/send_push", map[string]any{
		"ack_id": "ack-1", "platform": "webpush", "server_id": "srv", "device_id": rid, "type": "message",
		"post_id": "p1", "channel_id": "c1", "team_id": "t1", "sender_id": "u2", "is_id_loaded": true,
		"message": "the secret plan", "sender_name": "bob", "channel_name": "war-room", "badge": 3,
	})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"status": "OK"}, res)

	n := dev.recv()
	require.Equal(t, "notification", n["messageType"])
	require.Equal(t, map[string]any{"encoding": "aes128gcm"}, n["headers"])
	body, err := base64.RawURLEncoding.DecodeString(n["data"].(string))
	require.NoError(t, err)
	plain, err := sub.Decrypt(body)
	require.NoError(t, err)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(plain, &payload))
	require.Equal(t, "ack-1", payload["ack_id"])
	require.Equal(t, "p1", payload["post_id"])
	require.NotContains(t, string(plain), "secret plan")
	require.NotContains(t, string(plain), "war-room")
	require.NotContains(t, string(plain), "bob")

	dev.send(map[string]any{"messageType": "ack", "updates": []any{map[string]any{
		"channelID": "0b3a4c4e-6d5f-4a53-9b8e-2f1d1c0a9e77", "version": n["version"], "code": 100}}})

	// A registration whose endpoint is gone answers REMOVE.
	dev.send(map[string]any{"messageType": "unregister", "channelID": "0b3a4c4e-6d5f-4a53-9b8e-2f1d1c0a9e77", "code": 200})
	require.Equal(t, "unregister", dev.recv()["messageType"])
	code, res = api(t, http.MethodPost, base+"/api/v1/send_push", map[string]any{
		"ack_id": "ack-2", "platform": "webpush", "server_id": "srv", "device_id": rid, "type": "message", "post_id": "p2",
	})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"status": "REMOVE"}, res)
}

func TestBadConfigFailsStart(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.DataSource = "postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=1"
	cfg.PublicURL = "http://127.0.0.1:1"
	cfg.VAPIDKeyFile = filepath.Join(t.TempDir(), "v.json")
	_, err := New(context.Background(), Options{Config: &cfg, Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}
