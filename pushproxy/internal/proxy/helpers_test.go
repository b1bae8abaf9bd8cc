package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/pushproxy/internal/ece"
	"github.com/garrison-chat/garrison/pushproxy/internal/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m, schema.MigrateDSN) }

// waitFor bounds every wait on something asynchronous.
const waitFor = 15 * time.Second

// clock is the injected clock: due times, leases and expiry move only
// when a test says so.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)} }

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

// received is one request the fake push service got.
type received struct {
	Path      string
	Header    http.Header
	Body      []byte
	Plaintext []byte
	DecErr    error
}

// Payload decodes the decrypted device payload.
func (r received) Payload(t *testing.T) map[string]string {
	t.Helper()
	require.NoError(t, r.DecErr)
	var m map[string]string
	require.NoError(t, json.Unmarshal(r.Plaintext, &m), "payload %s", r.Plaintext)
	return m
}

// pushService is a fake RFC 8030 push service on 127.0.0.1 that decrypts
// what it receives with the subscriber's keys, as a device would.
type pushService struct {
	srv *httptest.Server

	mu      sync.Mutex // guards the fields below
	respond func(call int, r *http.Request) (int, http.Header)
	got     []received
	subs    map[string]*ece.Subscriber // by path
	hook    func(r *http.Request)      // runs before answering, outside mu
}

func newPushService(t *testing.T) *pushService {
	t.Helper()
	ps := &pushService{subs: map[string]*ece.Subscriber{}}
	ps.srv = httptest.NewServer(http.HandlerFunc(ps.serve))
	t.Cleanup(ps.srv.Close)
	return ps
}

func (ps *pushService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ps.mu.Lock()
	hook := ps.hook
	ps.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	ps.mu.Lock()
	rec := received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	if sub := ps.subs[r.URL.Path]; sub != nil {
		rec.Plaintext, rec.DecErr = sub.Decrypt(body)
	}
	ps.got = append(ps.got, rec)
	status, hdr := http.StatusCreated, http.Header(nil)
	if ps.respond != nil {
		status, hdr = ps.respond(len(ps.got), r)
	}
	ps.mu.Unlock()
	for k, v := range hdr {
		w.Header()[k] = v
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", "/m/"+strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte("push service says hello\n"))
}

// answer makes the service answer every request with status (and hdr).
func (ps *pushService) answer(status int, hdr http.Header) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.respond = func(int, *http.Request) (int, http.Header) { return status, hdr }
}

func (ps *pushService) requests() []received {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]received(nil), ps.got...)
}

func (ps *pushService) count() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.got)
}

func (ps *pushService) host() string { return ps.srv.Listener.Addr().String() }

// subscribe makes a fake browser subscription on this service.
func (ps *pushService) subscribe(t *testing.T) (*ece.Subscriber, string) {
	t.Helper()
	sub, err := ece.NewSubscriber()
	require.NoError(t, err)
	ps.mu.Lock()
	path := "/push/cap" + strconv.Itoa(len(ps.subs)+1)
	ps.subs[path] = sub
	ps.mu.Unlock()
	return sub, ps.srv.URL + path
}

// env is one proxy under test with its database and push service.
type env struct {
	pool  *pgxpool.Pool
	clock *clock
	ps    *pushService
	keys  Keys
	reg   *prometheus.Registry
	p     *Proxy
	h     http.Handler
}

// newEnv starts a proxy on a fresh database. The options are the test
// defaults, changed by opts.
func newEnv(t *testing.T, opts ...func(*Options)) *env {
	t.Helper()
	e := &env{pool: pgtest.NewPool(t), clock: newClock(), ps: newPushService(t)}
	keys, err := GenerateKeys()
	require.NoError(t, err)
	e.keys = keys
	e.p, e.reg = e.newProxy(t, opts...)
	e.h = e.p.Handler()
	return e
}

// newProxy starts another proxy on the same database, push service, keys
// and clock (another node, or the same one restarted).
func (e *env) newProxy(t *testing.T, opts ...func(*Options)) (*Proxy, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{
		Pool:             e.pool,
		Logger:           slog.New(slog.DiscardHandler),
		Registerer:       reg,
		VAPID:            e.keys,
		VAPIDSubject:     "mailto:ops@example.org",
		SendTimeout:      5 * time.Second,
		AllowedPushHosts: []string{e.ps.host()},
		HTTPClient:       e.ps.srv.Client(),
		Version:          "1.2.3",
		Hash:             "abc1234",
		Now:              e.clock.Now,
		Workers:          4,
		PollInterval:     10 * time.Millisecond,
	}
	for _, f := range opts {
		f(&o)
	}
	p, err := New(o)
	require.NoError(t, err)
	require.NoError(t, p.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, p.Stop(ctx))
	})
	return p, reg
}

// do sends one request to h from remote.
func do(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// register registers a new subscription on the push service and returns
// its subscriber, endpoint and registration id.
func (e *env) register(t *testing.T) (*ece.Subscriber, string, string) {
	t.Helper()
	sub, endpoint := e.ps.subscribe(t)
	w := do(e.h, http.MethodPost, "/api/v1/webpush/registrations", string(sub.Subscription(endpoint)))
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var out struct{ ID string }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
	return sub, endpoint, out.ID
}

// message is a notification as a Mattermost server sends it, to rid.
func message(rid, ackID string) PushNotification {
	return PushNotification{
		AckID: ackID, Platform: "webpush", ServerID: "srv6qc4xbjdmdyyqdq4ks1wkqe", DeviceID: rid,
		PostID: "post8pxs3ffz7kxkc9ryqt3xqe", Category: "CAN_REPLY", Message: "the launch code is 0000",
		Badge: 3, TeamID: "team4fyg5tgnir7mqkzdqjuoqa", ChannelID: "chan7k8sx3ynxcgm5qdamrs9yh",
		ChannelName: "Secret Plans", Type: TypeMessage, SenderID: "user1nwz4ejwbbgk7nw6ncb4cc",
		SenderName: "Alice Example", OverrideUsername: "bot-alias", OverrideIconURL: "https://example.org/i.png",
		FromWebhook: "true", Version: "v2", IsCRTEnabled: true, Signature: "c2lnbmF0dXJl",
	}
}

// send posts n to send_push and returns the status and body.
func (e *env) send(t *testing.T, h http.Handler, n PushNotification) (int, string) {
	t.Helper()
	w := do(h, http.MethodPost, "/api/v1/send_push", mustJSON(t, n))
	return w.Code, w.Body.String()
}

func (e *env) outboxCount(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(t.Context(), "SELECT count(*) FROM pushproxy_outbox").Scan(&n))
	return n
}

func (e *env) registrationExists(t *testing.T, id string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, e.pool.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pushproxy_registrations WHERE id = $1)", id).Scan(&ok))
	return ok
}

// outboxRow is what a test inspects of a pending row.
type outboxRow struct {
	NextAttempt time.Time
	Attempts    int
	Claims      int64
	LeaseOwner  string
	LastStatus  int
}

func (e *env) onlyRow(t *testing.T) outboxRow {
	t.Helper()
	var r outboxRow
	require.NoError(t, e.pool.QueryRow(t.Context(),
		"SELECT next_attempt_at, attempts, claims, lease_owner, last_status FROM pushproxy_outbox").
		Scan(&r.NextAttempt, &r.Attempts, &r.Claims, &r.LeaseOwner, &r.LastStatus))
	return r
}

// waitEmpty waits for the outbox to drain.
func (e *env) waitEmpty(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return e.outboxCount(t) == 0 }, waitFor, 5*time.Millisecond, "outbox never drained")
}

const (
	okBody     = `{"status":"OK"}` + "\n"
	removeBody = `{"status":"REMOVE"}` + "\n"
)

func failBody(msg string) string {
	b, _ := json.Marshal(map[string]string{"status": "FAIL", "error": msg})
	return string(b) + "\n"
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// errClient fails every request, as an unreachable push service does.
type errClient struct{}

func (errClient) Do(r *http.Request) (*http.Response, error) {
	return nil, &url.Error{Op: "Post", URL: r.URL.String(), Err: errRefused}
}

var errRefused = &refusedError{}

type refusedError struct{}

func (*refusedError) Error() string { return "connect: connection refused" }

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func basic(user, pass string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// metric reads the value of the counter or gauge name with exactly the
// given label values (name=value pairs) from reg; 0 when absent.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// families lists the metric names reg exports.
func families(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return names
}
