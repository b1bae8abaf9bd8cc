package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgcluster"
)

// senderSecret is the secret garrison presents to the proxy in the tests.
const senderSecret = "test-sender-secret-0123456789"

// site is garrison and garrison-pushproxy on 127.0.0.1 sharing one
// Postgres cluster (a database each), plus the fixture origin: the test
// page, its service worker and /report, with everything else proxied to
// garrison as nginx would.
type site struct {
	dir       string
	pg        *pgcluster.Cluster
	proxy     *process
	garrison  *process
	proxyURL  string // http://127.0.0.1:<port>
	serverURL string
	origin    *httptest.Server
	reports   chan report
}

// report is one message the page or service worker POSTed to /report.
type report struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

func startSite(t *testing.T) *site {
	t.Helper()
	garrisonBin, proxyBin := buildBinaries(t)
	s := &site{dir: runDir(t), reports: make(chan report, 256)}
	s.pg = startPostgres(t, s.dir)
	ctx := context.Background()
	require.NoError(t, s.pg.CreateDatabase(ctx, "garrison", ""))
	require.NoError(t, s.pg.CreateDatabase(ctx, "pushproxy", ""))

	proxyAddr := freeAddr(t)
	s.proxyURL = "http://" + proxyAddr
	cfgPath := filepath.Join(s.dir, "pushproxy.json")
	cfg, err := json.Marshal(map[string]any{
		"ListenAddress":        proxyAddr,
		"MetricsListenAddress": freeAddr(t),
		"DataSource":           s.pg.DSN("pushproxy"),
		"PublicURL":            s.proxyURL,
		"VAPIDKeyFile":         filepath.Join(s.dir, "vapid.json"),
		"SenderSecret":         senderSecret,
		"LogLevel":             "DEBUG",
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o600))
	s.proxy = newProcess(t, s.dir, "garrison-pushproxy", proxyBin, nil, "--config", cfgPath)
	s.proxy.start(t)
	s.proxy.waitHTTP(t, s.proxyURL+"/readyz")

	serverAddr := freeAddr(t)
	s.serverURL = "http://" + serverAddr
	require.NoError(t, os.MkdirAll(filepath.Join(s.dir, "data"), 0o750))
	s.origin = httptest.NewServer(s.originHandler(t))
	t.Cleanup(s.origin.Close)
	s.garrison = newProcess(t, s.dir, "garrison", garrisonBin, []string{
		"MM_SQLSETTINGS_DATASOURCE=" + s.pg.DSN("garrison"),
		"MM_SERVICESETTINGS_LISTENADDRESS=" + serverAddr,
		"MM_SERVICESETTINGS_SITEURL=" + s.origin.URL,
		"MM_FILESETTINGS_DIRECTORY=" + filepath.Join(s.dir, "data"),
		"MM_TEAMSETTINGS_ENABLEOPENSERVER=true",
		"MM_EMAILSETTINGS_SENDPUSHNOTIFICATIONS=true",
		"MM_EMAILSETTINGS_PUSHNOTIFICATIONSERVER=http://garrison:" + senderSecret + "@" + proxyAddr,
		"MM_EMAILSETTINGS_PUSHNOTIFICATIONCONTENTS=id_loaded",
		"MM_LOGSETTINGS_CONSOLELEVEL=DEBUG",
	})
	s.garrison.start(t)
	s.garrison.waitHTTP(t, s.serverURL+"/api/v4/system/ping")
	return s
}

// originHandler serves the fixture page and service worker, collects
// reports, and proxies the API to garrison.
func (s *site) originHandler(t *testing.T) http.Handler {
	api := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		u, _ := url.Parse(s.serverURL)
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}}
	mux := http.NewServeMux()
	serveFile := func(name, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(b)
		}
	}
	mux.Handle("GET /{$}", serveFile("index.html", "text/html; charset=utf-8"))
	mux.Handle("GET /sw.js", serveFile("sw.js", "text/javascript"))
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var rep report
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		t.Logf("report %s: %s", rep.Kind, rep.Data)
		select {
		case s.reports <- rep:
		default:
			t.Errorf("report dropped, channel full: %s", rep.Kind)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/api/", api)
	return mux
}

// next waits for a report of the given kind; an "error" report fails the
// test at once.
func (s *site) next(t *testing.T, kind string, within time.Duration) json.RawMessage {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case rep := <-s.reports:
			if rep.Kind == "error" {
				t.Fatalf("the page reported an error: %s", rep.Data)
			}
			if rep.Kind == kind {
				return rep.Data
			}
		case <-timer.C:
			t.Fatalf("no %q report within %s", kind, within)
		}
	}
}

// client is a minimal Mattermost API client for the test's own users.
type client struct {
	base  string
	token string
}

func (c *client) do(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(t, err)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
	if tok := resp.Header.Get("Token"); tok != "" {
		c.token = tok
	}
}

type user struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	password string
}

// createUser creates and logs in a user; the first one is the admin.
func (s *site) createUser(t *testing.T, name string) (*client, user) {
	t.Helper()
	c := &client{base: s.serverURL}
	u := user{password: "Pass-" + name + "-12345"}
	c.do(t, http.MethodPost, "/api/v4/users", map[string]string{
		"username": name, "email": name + "@site.example", "password": u.password,
	}, &u)
	c.do(t, http.MethodPost, "/api/v4/users/login", map[string]string{"login_id": name, "password": u.password}, nil)
	u.Username = name
	return c, u
}

type post struct {
	ID        string `json:"id"`
	ChannelID string `json:"channel_id"`
	Message   string `json:"message"`
}

// dm sends a direct message from c to the user with id to.
func (c *client) dm(t *testing.T, fromID, toID, message string) post {
	t.Helper()
	var ch struct {
		ID string `json:"id"`
	}
	c.do(t, http.MethodPost, "/api/v4/channels/direct", []string{fromID, toID}, &ch)
	var p post
	c.do(t, http.MethodPost, "/api/v4/posts", map[string]string{"channel_id": ch.ID, "message": message}, &p)
	return p
}

// proxyDB queries the proxy's database.
func (s *site) proxyDB(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.pg.DSN("pushproxy"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// countRows counts the rows of a table in the proxy's database.
func countRows(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count(*) FROM %s", pgx.Identifier{table}.Sanitize())).Scan(&n))
	return n
}
