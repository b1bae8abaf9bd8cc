package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, postgres.MigrateDSN)
}

// testServer is an in-process Garrison API on a fresh database.
type testServer struct {
	URL   string
	App   *app.App
	Hub   *ws.Hub
	Store *postgres.Store
	t     testing.TB
	// skew moves the App's clock forward (nanoseconds); see advance.
	skew atomic.Int64
}

// advance moves the App's clock forward by d, so time-driven rules
// (session activity, expiry) can be exercised without sleeping.
func (ts *testServer) advance(d time.Duration) { ts.skew.Add(int64(d)) }

var userSeq atomic.Int64

// newTestServer starts the API, the WebSocket hub and the rules on a new
// database from the migrated template.
func newTestServer(t testing.TB, mutate ...func(*app.Settings, *api.Options)) *testServer {
	t.Helper()
	return newTestNode(t, pgtest.New(t), nil, mutate...)
}

// newTestNode starts one server on the database dsn; with clu set it is
// a node of that cluster, started here.
func newTestNode(t testing.TB, dsn string, clu cluster.Cluster, mutate ...func(*app.Settings, *api.Options)) *testServer {
	t.Helper()
	store, err := postgres.Open(context.Background(), postgres.PoolOptions{DataSource: dsn, MaxOpenConns: 10, QueryTimeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	return newTestNodeOn(t, store, clu, mutate...)
}

// newTestNodeOn is newTestNode on an open store.
func newTestNodeOn(t testing.TB, store *postgres.Store, clu cluster.Cluster, mutate ...func(*app.Settings, *api.Options)) *testServer {
	t.Helper()
	return newTestNodeWith(t, store, clu, nil, mutate...)
}

// newTestNodeWith is newTestNodeOn with appOptions (if not nil) changing
// the App's options, e.g. to give it a push sender; a push queue is
// started and stopped with the server.
func newTestNodeWith(t testing.TB, store *postgres.Store, clu cluster.Cluster, appOptions func(*app.Options),
	mutate ...func(*app.Settings, *api.Options)) *testServer {
	t.Helper()
	ts := &testServer{t: t}
	ctx := context.Background()
	// GARRISON_TEST_LOG=1 shows the server's log, to see what a 500 hid.
	var out io.Writer = io.Discard
	if os.Getenv("GARRISON_TEST_LOG") != "" {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, nil))
	set := app.Settings{
		EnableUserCreation: true, EnableOpenServer: true, EnableSignInWithEmail: true, EnableSignInWithUsername: true,
		MaxUsersPerTeam: 1000, MaxChannelsPerTeam: 1000, SessionLengthWeb: 24 * time.Hour, SessionLengthMobile: 24 * time.Hour,
		SessionCacheTTL: time.Minute, MaxLoginAttempts: 10, Password: app.PasswordRules{MinimumLength: 8},
		ShowEmailAddress: true, ShowFullName: true, PostEditTimeLimit: -1, EnableUserTypingMessages: true,
		EnableChannelViewed: true, FileDirectory: t.TempDir(),
	}
	opts := api.Options{Logger: logger, MaxPayload: 300000, Version: "0.1.0", MattermostVersion: "10.11.0",
		ClientConfig: map[string]string{"Version": "10.11.0"}, LoginFailuresPerMinute: 100}
	for _, f := range mutate {
		f(&set, &opts)
	}
	now := func() time.Time { return time.Now().Add(time.Duration(ts.skew.Load())) }
	nodeID := "test"
	if clu != nil {
		nodeID = clu.Self().ID
	}
	ao := app.Options{Store: store, Logger: logger, Settings: set, NodeID: nodeID, BcryptCost: bcrypt.MinCost, Now: now,
		Cluster: clu}
	if appOptions != nil {
		appOptions(&ao)
	}
	a := app.New(ao)
	// Wired as the daemon wires them; the App makes no automatic status
	// changes unless Settings.EnableUserStatuses (newStatusServer) is set.
	hub := ws.New(ws.Options{Auth: a, Audience: a, Actions: a, TokenFromRequest: api.WSToken, Logger: logger,
		ServerVersion: "10.11.0", Hostname: "test", OnConnections: a.UserConnections, OnActivity: a.UserActivity})
	a.SetPublisher(hub)
	require.NoError(t, hub.Start(ctx))
	if clu != nil {
		require.NoError(t, clu.Start(ctx))
		t.Cleanup(func() { _ = clu.Stop(context.Background()) })
	}
	require.NoError(t, a.PushQueue().Start(ctx)) // nil when push is off
	opts.App, opts.WebSocket = a, hub
	srv := httptest.NewServer(api.New(opts))
	t.Cleanup(func() {
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.PushQueue().Stop(sctx)
		_ = hub.Stop(sctx)
	})
	ts.URL, ts.App, ts.Hub, ts.Store = srv.URL, a, hub, store
	return ts
}

// client is a logged-in (or anonymous) HTTP client of the test server.
type client struct {
	ts    *testServer
	Token string
	User  *model.User
}

func (ts *testServer) anon() *client { return &client{ts: ts} }

// newUser signs up a new user (the first becomes system admin) and logs
// them in.
func (ts *testServer) newUser() *client {
	ts.t.Helper()
	n := userSeq.Add(1)
	name := fmt.Sprintf("user%d", n)
	c := ts.anon()
	var u model.User
	c.mustDo("POST", "/users", map[string]any{"username": name, "email": name + "@example.com", "password": "password1"}, http.StatusCreated, &u)
	return ts.login(name, "password1")
}

func (ts *testServer) login(loginID, password string) *client {
	ts.t.Helper()
	c := ts.anon()
	resp, body := c.do("POST", "/users/login", map[string]any{"login_id": loginID, "password": password})
	require.Equal(ts.t, http.StatusOK, resp.StatusCode, string(body))
	c.Token = resp.Header.Get("Token")
	require.NotEmpty(ts.t, c.Token)
	c.User = &model.User{}
	require.NoError(ts.t, json.Unmarshal(body, c.User))
	return c
}

// do sends a request with a JSON body (nil for none, a []byte or string is
// sent raw) and returns the response and body.
func (c *client) do(method, path string, body any, hdr ...string) (*http.Response, []byte) {
	c.ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(c.ts.t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.ts.URL+"/api/v4"+path, rd)
	require.NoError(c.ts.t, err)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.ts.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(c.ts.t, err)
	return resp, out
}

// mustDo sends a request, requires the status, and decodes the body into
// out (if not nil).
func (c *client) mustDo(method, path string, body any, status int, out any) {
	c.ts.t.Helper()
	resp, b := c.do(method, path, body)
	require.Equal(c.ts.t, status, resp.StatusCode, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(c.ts.t, json.Unmarshal(b, out), string(b))
	}
}

// requireAppError sends a request and requires an AppError with status
// and id.
func (c *client) requireAppError(method, path string, body any, status int, id string) {
	c.ts.t.Helper()
	resp, b := c.do(method, path, body)
	require.Equal(c.ts.t, status, resp.StatusCode, "%s %s: %s", method, path, b)
	var ae model.AppError
	require.NoError(c.ts.t, json.Unmarshal(b, &ae), string(b))
	require.Equal(c.ts.t, id, ae.ID, string(b))
	require.Equal(c.ts.t, status, ae.StatusCode)
	require.NotEmpty(c.ts.t, ae.RequestID)
}
