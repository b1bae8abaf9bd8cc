package push_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/push"
	"github.com/garrison-chat/garrison/server/internal/push/pushtest"
)

// proxyBinEnv names the garrison-pushproxy binary the HTTP sender's
// conformance run talks to; without it that run is skipped (and no
// Postgres is started for this package).
const proxyBinEnv = "GARRISON_PUSHPROXY_BIN"

func TestMain(m *testing.M) {
	if os.Getenv(proxyBinEnv) == "" {
		os.Exit(m.Run())
	}
	pgtest.Main(m, nil) // the proxy migrates its own schema
}

func TestHTTPConformanceWithPushProxy(t *testing.T) {
	t.Parallel()
	bin := os.Getenv(proxyBinEnv)
	if bin == "" {
		t.Skip(proxyBinEnv + " is not set: build garrison-pushproxy and point it there to run the suite against it")
	}
	pushtest.Run(t, func(t *testing.T) pushtest.Env {
		// Where registered subscriptions point: a push service that
		// accepts everything, so deliveries the proxy attempts succeed.
		endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/m/1")
			w.WriteHeader(http.StatusCreated)
		}))
		t.Cleanup(endpoint.Close)
		const secret = "conformance-secret-0123456789"
		base := startProxy(t, bin, map[string]string{
			"SENDERSECRET":     secret,
			"ALLOWEDPUSHHOSTS": endpoint.Listener.Addr().String(),
		})
		return pushtest.Env{
			Sender:          newHTTP(t, proxyURL(base, secret)),
			WithSecret:      func(s string) push.Sender { return newHTTP(t, proxyURL(base, s)) },
			Endpoint:        endpoints(endpoint.URL),
			ForeignEndpoint: "https://push.example.invalid/push/abc",
		}
	})
}

// lockedBuffer collects a child's stderr for the test log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startProxy runs the binary on a fresh database with env (keys without
// the GARRISON_PUSHPROXY_ prefix) and returns its base URL once
// /readyz answers 200. The process is stopped (SIGTERM, then SIGKILL) at
// cleanup.
func startProxy(t *testing.T, bin string, env map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pushproxy.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte("{}\n"), 0o600)) // nothing from the host's /etc
	listen := freeAddr(t)
	base := "http://" + listen
	vars := map[string]string{
		"LISTENADDRESS":        listen,
		"METRICSLISTENADDRESS": freeAddr(t),
		"DATASOURCE":           pgtest.New(t),
		"VAPIDKEYFILE":         filepath.Join(dir, "vapid.json"),
		"PUBLICURL":            base,
	}
	for k, v := range env {
		vars[k] = v
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, "GARRISON_PUSHPROXY_"+k+"="+v)
	}
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("garrison-pushproxy output:\n%s", stderr.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), pushtest.Deadline)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx, base) {
			return base
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			require.FailNow(t, fmt.Sprintf("garrison-pushproxy exited before it was ready: %v\n%s", err, stderr.String()))
		case <-ctx.Done():
			require.FailNow(t, "garrison-pushproxy was not ready within "+pushtest.Deadline.String()+"\n"+stderr.String())
		case <-tick.C:
		}
	}
}

// ready reports whether the proxy at base answers GET /readyz with 200.
func ready(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
