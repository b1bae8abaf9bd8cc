package nginx_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/nginx"
)

// seen is a request an upstream received.
type seen struct {
	method, path, host string
	header             http.Header
}

// recorder records the requests an upstream receives.
type recorder struct {
	mu   sync.Mutex // guards reqs
	reqs []seen
}

func (r *recorder) add(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, seen{req.Method, req.URL.Path, req.Host, req.Header.Clone()})
}

// find returns the last request for path, if any.
func (r *recorder) find(path string) (seen, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		if r.reqs[i].path == path {
			return r.reqs[i], true
		}
	}
	return seen{}, false
}

// paths returns the paths of every request received.
func (r *recorder) paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.reqs {
		out = append(out, s.path)
	}
	return out
}

var requestID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestNginxServes runs nginx on a production-like configuration (TLS,
// push, login limit) in front of an app and a push proxy played by
// httptest servers, and checks what reaches whom.
//
// The subtests run one after another: they share one nginx and its
// limits.
func TestNginxServes(t *testing.T) {
	t.Parallel()
	needNginx(t)

	var app recorder
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.add(r)
		// The app's own copies, which nginx replaces.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		switch r.URL.Path {
		case "/static/main.0123abcd.js":
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = io.WriteString(w, "console.log(1)")
		case "/static/missing.js":
			http.NotFound(w, r)
		case "/api/v4/big":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":"`+strings.Repeat("garrison ", 1000)+`"}`)
		default:
			_, _ = io.WriteString(w, "app")
		}
	}))
	t.Cleanup(appSrv.Close)

	var push recorder
	upgrader := websocket.Upgrader{}
	pushSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		push.add(r)
		if r.URL.Path == "/ws" {
			ws, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer func() { _ = ws.Close() }()
			for {
				typ, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if err := ws.WriteMessage(typ, msg); err != nil {
					return
				}
			}
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "push")
	}))
	t.Cleanup(pushSrv.Close)

	prefix := t.TempDir() + "/"
	for _, d := range []string{"logs", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(prefix, d), 0o755))
	}
	certFile, keyFile, cert := selfSigned(t, prefix)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	// httptest's certificate is its own CA, for example.com and 127.0.0.1.
	pushCA := filepath.Join(prefix, "push-ca.pem")
	require.NoError(t, os.WriteFile(pushCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pushSrv.Certificate().Raw}), 0o644))

	plainAddr, tlsAddr := freeAddr(t), freeAddr(t)
	conf, err := nginx.Render(nginx.Config{
		ErrorLog:        "stderr",
		WorkerProcesses: 1,
		Listen:          []string{plainAddr},
		TLS:             &nginx.TLS{Listen: []string{tlsAddr}, CertFile: certFile, KeyFile: keyFile},
		App:             nginx.Upstream{Servers: []nginx.Server{{Addr: appSrv.Listener.Addr().String()}}},
		Push: &nginx.Upstream{
			Servers: []nginx.Server{{Addr: pushSrv.Listener.Addr().String()}},
			TLS:     &nginx.UpstreamTLS{CAFile: pushCA, ServerName: "example.com"},
		},
		ClientMaxBodySize: 1 << 20,
		Limits: nginx.Limits{
			Login:          &nginx.RateLimit{Rate: 1, Per: time.Minute, Burst: 2},
			PushWebSockets: 2,
		},
	})
	require.NoError(t, err)
	runNginx(t, prefix, conf, plainAddr, tlsAddr)

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "https://" + tlsAddr
	do := func(t *testing.T, method, url string, body string, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	secure := func(t *testing.T, resp *http.Response) {
		t.Helper()
		require.Equal(t, []string{"nosniff"}, resp.Header.Values("X-Content-Type-Options"))
		require.Equal(t, []string{"no-referrer"}, resp.Header.Values("Referrer-Policy"))
		require.Equal(t, []string{"max-age=63072000"}, resp.Header.Values("Strict-Transport-Security"))
		require.Equal(t, "nginx", resp.Header.Get("Server"), "server_tokens off")
	}

	t.Run("app", func(t *testing.T) {
		resp, body := do(t, "GET", base+"/api/v4/users/ping", "",
			"X-Request-ID", "chosen-by-the-client", "X-Forwarded-For", "192.0.2.1")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "app", body)
		require.Equal(t, 2, resp.ProtoMajor, "HTTP/2 over TLS")
		secure(t, resp)
		got, ok := app.find("/api/v4/users/ping")
		require.True(t, ok)
		id := got.header.Get("X-Request-ID")
		require.Regexp(t, requestID, id, "nginx's own $request_id, not the client's")
		require.Equal(t, "127.0.0.1", got.header.Get("X-Forwarded-For"), "the client's X-Forwarded-For is replaced")
		require.Equal(t, "127.0.0.1", got.header.Get("X-Real-IP"))
		require.Equal(t, "https", got.header.Get("X-Forwarded-Proto"))
		require.Equal(t, tlsAddr, got.host, "the Host the client sent (HTTP/2 :authority), port included")
		waitFor(t, func() bool {
			b, err := os.ReadFile(filepath.Join(prefix, "logs", "access.log"))
			return err == nil && strings.Contains(string(b), "request_id="+id)
		}, "the access log records the request id")
	})

	t.Run("redirect", func(t *testing.T) {
		resp, _ := do(t, "GET", "http://"+plainAddr+"/api/v4/users/me?x=1", "")
		require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
		_, port, err := net.SplitHostPort(tlsAddr)
		require.NoError(t, err)
		require.Equal(t, "https://127.0.0.1:"+port+"/api/v4/users/me?x=1", resp.Header.Get("Location"))
		require.Empty(t, resp.Header.Values("Strict-Transport-Security"), "not over plain HTTP")
		_, reached := app.find("/api/v4/users/me")
		require.False(t, reached, "plain HTTP never reaches the app")

		// nginx's health answer, for the node agent on loopback.
		resp, body := do(t, "GET", "http://"+plainAddr+"/nginx-health", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "ok\n", body)
	})

	t.Run("static", func(t *testing.T) {
		resp, body := do(t, "GET", base+"/static/main.0123abcd.js", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "console.log(1)", body)
		require.Equal(t, []string{"public, max-age=31536000, immutable"}, resp.Header.Values("Cache-Control"))
		secure(t, resp)
		resp, _ = do(t, "GET", base+"/static/missing.js", "")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Equal(t, []string{"no-store"}, resp.Header.Values("Cache-Control"), "a miss is not cached")
	})

	t.Run("gzip", func(t *testing.T) {
		resp, body := do(t, "GET", base+"/api/v4/big", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.True(t, resp.Uncompressed, "nginx gzipped the JSON (the client unzipped it)")
		require.Contains(t, body, "garrison garrison")
	})

	t.Run("never exposed", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/vars"} {
			resp, _ := do(t, "GET", base+path, "")
			require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
			secure(t, resp)
		}
		for _, p := range app.paths() {
			require.False(t, p == "/metrics" || strings.HasPrefix(p, "/debug"), "the app got %s", p)
		}
	})

	t.Run("push sender API", func(t *testing.T) {
		for _, r := range []struct{ method, uri string }{
			{"POST", "/api/v1/send_push"},
			{"POST", "/api/v1/ack"},
			{"GET", "/api/v1/webpush/vapid_public_key"},
			{"POST", "/api/v1"},
			{"POST", "//api/v1/send_push"},
			{"POST", "/push/../api/v1/send_push"},
			{"POST", "/push/..%2Fapi%2Fv1%2Fsend_push"},
			{"POST", "/push/%2e%2e/api/v1/send_push"},
			{"DELETE", "/m/%2E%2E/api/v1/ack"},
		} {
			resp, _ := do(t, r.method, base+r.uri, `{"platform":"webpush"}`)
			require.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, resp.StatusCode, "%s %s", r.method, r.uri)
		}
		for _, p := range append(push.paths(), app.paths()...) {
			require.NotContains(t, p, "/api/v1", "an upstream got %s", p)
			require.NotContains(t, p, "..", "an upstream got %s", p)
		}
	})

	t.Run("push", func(t *testing.T) {
		resp, body := do(t, "POST", base+"/push/cap123", "ciphertext", "TTL", "60")
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, "push", body)
		secure(t, resp)
		got, ok := push.find("/push/cap123")
		require.True(t, ok)
		require.Equal(t, "POST", got.method)
		require.Equal(t, "60", got.header.Get("TTL"))
		require.Equal(t, "127.0.0.1", got.header.Get("X-Forwarded-For"))
		require.Equal(t, "https", got.header.Get("X-Forwarded-Proto"))
		require.Regexp(t, requestID, got.header.Get("X-Request-ID"))

		resp, _ = do(t, "DELETE", base+"/m/msg456", "")
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		got, ok = push.find("/m/msg456")
		require.True(t, ok)
		require.Equal(t, "DELETE", got.method)

		resp, _ = do(t, "POST", base+"/push/big", strings.Repeat("x", 32<<10))
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		_, reached := push.find("/push/big")
		require.False(t, reached, "nginx refuses a body far past a push message's 4096 bytes")
		_, reached = app.find("/push/cap123")
		require.False(t, reached)
	})

	t.Run("push websocket", func(t *testing.T) {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
		url := "wss://" + tlsAddr + "/ws"
		for i := range 2 {
			ws, resp, err := d.Dial(url, nil)
			require.NoError(t, err, "socket %d", i)
			_ = resp.Body.Close()
			t.Cleanup(func() { _ = ws.Close() })
			msg := fmt.Sprintf(`{"messageType":"hello","n":%d}`, i)
			require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(msg)))
			_, got, err := ws.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, msg, string(got), "the push proxy echoed through nginx")
		}
		_, resp, err := d.Dial(url, nil)
		require.ErrorIs(t, err, websocket.ErrBadHandshake, "a third socket from one address is over the limit")
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		_ = resp.Body.Close()
		got, ok := push.find("/ws")
		require.True(t, ok)
		require.Equal(t, "127.0.0.1", got.header.Get("X-Forwarded-For"))
	})

	t.Run("login limit", func(t *testing.T) {
		// Rate 1 per minute, burst 2: the fourth login within a minute is
		// refused (a fifth if a minute passed in between).
		var resp *http.Response
		var body string
		served := 0
		for range 10 {
			resp, body = do(t, "POST", base+"/api/v4/users/login", `{"login_id":"u","password":"p"}`)
			if resp.StatusCode != http.StatusOK {
				break
			}
			served++
		}
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		require.GreaterOrEqual(t, served, 3, "the burst is served")
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		secure(t, resp)
		var appErr struct {
			ID            string `json:"id"`
			Message       string `json:"message"`
			DetailedError string `json:"detailed_error"`
			RequestID     string `json:"request_id"`
			StatusCode    int    `json:"status_code"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &appErr), body)
		require.Equal(t, "api.context.rate_limit.app_error", appErr.ID)
		require.Equal(t, "Too many requests", appErr.Message)
		require.Empty(t, appErr.DetailedError)
		require.Regexp(t, requestID, appErr.RequestID)
		require.Equal(t, http.StatusTooManyRequests, appErr.StatusCode)

		resp, _ = do(t, "POST", base+"/api/v4/users/login/switch", `{}`)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "login/switch shares the login limit")
		resp, _ = do(t, "GET", base+"/api/v4/users/ping", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "other routes are not limited")
	})
}

// runNginx runs nginx in the foreground from prefix with conf until the
// test ends, and waits until it accepts connections on addrs.
func runNginx(t *testing.T, prefix string, conf []byte, addrs ...string) {
	t.Helper()
	file := filepath.Join(prefix, "nginx.conf")
	require.NoError(t, os.WriteFile(file, conf, 0o644))
	logFile := filepath.Join(prefix, "nginx.log")
	log, err := os.Create(logFile)
	require.NoError(t, err)
	cmd := exec.Command(nginxBin, "-c", file, "-p", prefix, "-e", "stderr", "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// SIGTERM: the master stops its workers, then exits.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = log.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-exited:
				out, _ := os.ReadFile(logFile)
				t.Fatalf("nginx exited:\n%s", out)
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				out, _ := os.ReadFile(logFile)
				t.Fatalf("nginx does not accept connections on %s: %v\n%s", addr, err, out)
			}
		}
	}
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("after 10s: not true: %s", what)
		case <-tick.C:
		}
	}
}
