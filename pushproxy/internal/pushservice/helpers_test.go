package pushservice_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/pushproxy/internal/pushservice"
	"github.com/garrison-chat/garrison/pushproxy/internal/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m, schema.MigrateDSN) }

// waitFor bounds every wait of these tests; a wait that times out fails
// the test, it never passes one.
const waitFor = 15 * time.Second

// clock is a settable time source.
type clock struct {
	mu sync.Mutex // guards now
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one Service behind an httptest server.
type env struct {
	t    *testing.T
	svc  *pushservice.Service
	srv  *httptest.Server
	pool *pgxpool.Pool
	reg  *prometheus.Registry
	base string // the server's URL, which is also PublicURL
	logs *logBuffer
}

// logBuffer collects a Service's logs.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv starts a Service on a fresh database.
func newEnv(t *testing.T, mod func(*pushservice.Options)) *env {
	t.Helper()
	return newEnvDSN(t, pgtest.New(t), mod)
}

// newEnvDSN starts a Service on the database at dsn, with a pool of its
// own, as a separate proxy process would have.
func newEnvDSN(t *testing.T, dsn string, mod func(*pushservice.Options)) *env {
	t.Helper()
	return newEnvWrapped(t, dsn, mod, nil)
}

// newEnvWrapped is newEnvDSN with the server's handler built by wrap
// around the Service's (nil: the Service's itself).
func newEnvWrapped(t *testing.T, dsn string, mod func(*pushservice.Options), wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	public, err := url.Parse(base)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service logs:\n%s", logs.String())
		}
	})
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := pushservice.Options{Pool: pool, PublicURL: public, Registerer: reg, Logger: logger}
	if mod != nil {
		mod(&opts)
	}
	svc, err := pushservice.New(opts)
	require.NoError(t, err)
	srv.Config.Handler = svc.Handler()
	if wrap != nil {
		srv.Config.Handler = wrap(svc.Handler())
	}
	srv.Start()
	require.NoError(t, svc.Start(t.Context()))
	e := &env{t: t, svc: svc, srv: srv, pool: pool, reg: reg, base: base, logs: logs}
	t.Cleanup(func() { e.stop() })
	return e
}

var stopOnce sync.Map // *env → struct{}: stop may be called by a test and by cleanup

// stop stops the Service and its server.
func (e *env) stop() {
	if _, done := stopOnce.LoadOrStore(e, struct{}{}); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(e.t, e.svc.Stop(ctx))
	e.srv.Close()
}

// push POSTs body to endpoint with the given headers (a nil map: TTL 60
// and aes128gcm).
func push(t *testing.T, endpoint string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	if hdr == nil {
		hdr = map[string]string{"TTL": "60", "Content-Encoding": "aes128gcm"}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// pushOK POSTs and requires 201; it returns the message id.
func pushOK(t *testing.T, endpoint string, body []byte, hdr map[string]string) string {
	t.Helper()
	resp := push(t, endpoint, body, hdr)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	loc := resp.Header.Get("Location")
	i := strings.LastIndex(loc, "/m/")
	require.Positive(t, i, "Location %q", loc)
	return loc[i+3:]
}

// pushHeaders are the headers of a valid push, plus extra.
func pushHeaders(extra ...string) map[string]string {
	h := map[string]string{"TTL": "60", "Content-Encoding": "aes128gcm"}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(h, extra[i])
		} else {
			h[extra[i]] = extra[i+1]
		}
	}
	return h
}

// body returns n bytes that are recognisable in a failure message.
func body(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

// vapidKey is an application server's VAPID key pair.
type vapidKey struct {
	priv *ecdsa.PrivateKey
	pub  []byte // uncompressed point
}

func newVAPIDKey(t *testing.T) vapidKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := priv.PublicKey.Bytes()
	require.NoError(t, err)
	return vapidKey{priv: priv, pub: pub}
}

// padded is the key as Firefox sends it in register.
func (k vapidKey) padded() string { return base64.URLEncoding.EncodeToString(k.pub) }

// raw is the key as RFC 8292's k.
func (k vapidKey) raw() string { return base64.RawURLEncoding.EncodeToString(k.pub) }

// token signs a JWT with the given header and claims.
func (k vapidKey) token(t *testing.T, header, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	require.NoError(t, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// auth is a valid RFC 8292 Authorization header for aud.
func (k vapidKey) auth(t *testing.T, aud string) string {
	t.Helper()
	tok := k.token(t, map[string]string{"typ": "JWT", "alg": "ES256"},
		map[string]any{"aud": aud, "exp": time.Now().Add(12 * time.Hour).Unix(), "sub": "mailto:ops@example.org"})
	return "vapid t=" + tok + ", k=" + k.raw()
}

// device is a Firefox push client over gorilla/websocket.
type device struct {
	t    *testing.T
	ws   *websocket.Conn
	uaid string
}

// dial opens a push socket to the server at base, offering Firefox's
// subprotocol.
func dial(t *testing.T, base string) *device {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"push-notification"}, HandshakeTimeout: waitFor}
	ws, resp, err := d.DialContext(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, "push-notification", resp.Header.Get("Sec-WebSocket-Protocol"))
	t.Cleanup(func() { _ = ws.Close() })
	return &device{t: t, ws: ws}
}

func (d *device) send(v any) {
	d.t.Helper()
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		b, err = json.Marshal(v)
		require.NoError(d.t, err)
	}
	require.NoError(d.t, d.ws.SetWriteDeadline(time.Now().Add(waitFor)))
	require.NoError(d.t, d.ws.WriteMessage(websocket.TextMessage, b))
}

// recv reads the next frame as a JSON object.
func (d *device) recv() map[string]any {
	d.t.Helper()
	require.NoError(d.t, d.ws.SetReadDeadline(time.Now().Add(waitFor)))
	mt, b, err := d.ws.ReadMessage()
	require.NoError(d.t, err)
	require.Equal(d.t, websocket.TextMessage, mt)
	var m map[string]any
	require.NoError(d.t, json.Unmarshal(b, &m), "frame %s", b)
	return m
}

// closed reads until the server closes the socket and returns its close
// code.
func (d *device) closed() int {
	d.t.Helper()
	require.NoError(d.t, d.ws.SetReadDeadline(time.Now().Add(waitFor)))
	for range 1000 {
		_, _, err := d.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.True(d.t, errors.As(err, &ce), "not a close: %v", err)
		return ce.Code
	}
	d.t.Fatal("the socket was never closed")
	return 0
}

// hello says hello with uaid ("" for none) and returns the uaid assigned.
func (d *device) hello(uaid string) string {
	d.t.Helper()
	m := map[string]any{"messageType": "hello", "broadcasts": map[string]any{}, "use_webpush": true}
	if uaid != "" {
		m["uaid"] = uaid
	}
	d.send(m)
	r := d.recv()
	require.Equal(d.t, "hello", r["messageType"])
	require.EqualValues(d.t, 200, r["status"])
	require.Equal(d.t, true, r["use_webpush"])
	require.Equal(d.t, map[string]any{}, r["broadcasts"])
	d.uaid = r["uaid"].(string)
	require.Regexp(d.t, `^[0-9a-f]{32}$`, d.uaid)
	return d.uaid
}

// register registers channelID (with key, if not empty) and returns the
// reply.
func (d *device) registerReply(channelID, key string) map[string]any {
	d.t.Helper()
	m := map[string]any{"messageType": "register", "channelID": channelID}
	if key != "" {
		m["key"] = key
	}
	d.send(m)
	r := d.recv()
	require.Equal(d.t, "register", r["messageType"])
	require.Equal(d.t, channelID, r["channelID"])
	return r
}

// register registers channelID and returns its push endpoint.
func (d *device) register(channelID, key string) string {
	d.t.Helper()
	r := d.registerReply(channelID, key)
	require.EqualValues(d.t, 200, r["status"], "register reply %v", r)
	return r["pushEndpoint"].(string)
}

// notification is a received notification frame.
type notification struct {
	channelID string
	version   string
	data      []byte
}

// next reads the next frame and requires a notification.
func (d *device) next() notification {
	d.t.Helper()
	r := d.recv()
	require.Equal(d.t, "notification", r["messageType"], "frame %v", r)
	require.Equal(d.t, map[string]any{"encoding": "aes128gcm"}, r["headers"])
	data, err := base64.RawURLEncoding.DecodeString(r["data"].(string))
	require.NoError(d.t, err)
	return notification{channelID: r["channelID"].(string), version: r["version"].(string), data: data}
}

func (d *device) ack(n notification, code int) {
	d.t.Helper()
	d.send(map[string]any{"messageType": "ack", "updates": []map[string]any{
		{"channelID": n.channelID, "version": n.version, "code": code}}})
}

// ping sends {} and requires {} back: everything the server sent before
// has been read once it returns.
func (d *device) ping() {
	d.t.Helper()
	d.send("{}")
	require.Equal(d.t, map[string]any{}, d.recv())
}

// eventually polls cond until it holds, failing after waitFor.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", msg)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// count runs a count query.
func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}

// offline waits until the device's socket is recorded as gone.
func offline(t *testing.T, pool *pgxpool.Pool, uaid string) {
	t.Helper()
	eventually(t, func() bool {
		return count(t, pool, `SELECT count(*) FROM ps_devices WHERE uaid = $1 AND node IS NOT NULL`, uaid) == 0
	}, "device offline")
}

// metric returns the value of a counter or gauge, or a histogram's count.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return metricValue(m)
		}
	}
	return 0
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}
