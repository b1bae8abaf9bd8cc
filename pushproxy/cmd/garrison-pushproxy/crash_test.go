package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/pushproxy/internal/ece"
	"github.com/garrison-chat/garrison/pushproxy/internal/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m, schema.MigrateDSN) }

const crashSecret = "crash-test-secret"

// proxyBinary returns GARRISON_PUSHPROXY_BIN or builds this command.
func proxyBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("GARRISON_PUSHPROXY_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "garrison-pushproxy")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// proxyProcess is one run of the binary.
type proxyProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func startProxy(t *testing.T, bin, cfgPath, logPath string) *proxyProcess {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	p := &proxyProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// poll retries cond until it holds or within passes.
func poll(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

func ready(base string) bool {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func callAPI(t *testing.T, base, path string, body any) (int, map[string]string) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+crashSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// TestKilledProxyLosesNothing holds a delivery (the subscription's push
// service is down), checks the notification is pending in the outbox,
// kills the proxy with SIGKILL, brings the push service back and restarts
// the proxy: the notification arrives, once.
func TestKilledProxyLosesNothing(t *testing.T) {
	t.Parallel()
	bin := proxyBinary(t)
	dsn := pgtest.New(t)
	dir := t.TempDir()
	addr := loopbackAddr(t)
	base := "http://" + addr
	// The subscription's push service: its address is reserved, nothing
	// listens there yet, so every attempt is refused.
	pushAddr := loopbackAddr(t)
	cfg, err := json.Marshal(map[string]any{
		"ListenAddress": addr, "MetricsListenAddress": "", "DataSource": dsn, "PublicURL": base,
		"VAPIDKeyFile": filepath.Join(dir, "vapid.json"), "SenderSecret": crashSecret,
		"AllowedPushHosts": []string{pushAddr}, "SendTimeoutSec": 5,
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "pushproxy.json")
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o600))
	logPath := filepath.Join(dir, "pushproxy.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("---- garrison-pushproxy output ----\n%s", b)
		}
	})

	p := startProxy(t, bin, cfgPath, logPath)
	poll(t, time.Minute, "the proxy is ready", func() bool { return ready(base) })

	sub, err := ece.NewSubscriber()
	require.NoError(t, err)
	var subJSON map[string]any
	require.NoError(t, json.Unmarshal(sub.Subscription("http://"+pushAddr+"/push/device-1"), &subJSON))
	code, reg := callAPI(t, base, "/api/v1/webpush/registrations", subJSON)
	require.Equal(t, http.StatusCreated, code, reg)

	code, res := callAPI(t, base, "/api/v1/send_push", map[string]any{
		"ack_id": "ack-crash-1", "platform": "webpush", "server_id": "srv", "device_id": reg["id"],
		"type": "message", "post_id": "post1", "channel_id": "chan1", "is_id_loaded": true,
	})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]string{"status": "OK"}, res, "a refused attempt is transient: queued")

	db, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	pending := func() (n, attempts int) {
		require.NoError(t, db.QueryRow(context.Background(),
			`SELECT count(*), coalesce(max(attempts), 0) FROM pushproxy_outbox WHERE ack_id = 'ack-crash-1'`).Scan(&n, &attempts))
		return n, attempts
	}
	poll(t, time.Minute, "a failed attempt is recorded", func() bool { n, a := pending(); return n == 1 && a >= 1 })

	require.NoError(t, p.cmd.Process.Kill())
	<-p.exited
	var ee *exec.ExitError
	require.True(t, errors.As(p.err, &ee), "killed: %v", p.err)
	n, _ := pending()
	require.Equal(t, 1, n, "the notification survives SIGKILL")

	// The push service comes back.
	var mu sync.Mutex
	var got [][]byte
	l, err := net.Listen("tcp", pushAddr)
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, body)
		mu.Unlock()
		w.Header().Set("Location", "/m/"+strconv.Itoa(len(got)))
		w.WriteHeader(http.StatusCreated)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	startProxy(t, bin, cfgPath, logPath)
	poll(t, 2*time.Minute, "the outbox empties after the restart", func() bool { n, _ := pending(); return n == 0 })
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1, "delivered exactly once")
	plain, err := sub.Decrypt(got[0])
	require.NoError(t, err)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(plain, &payload))
	require.Equal(t, "ack-crash-1", payload["ack_id"], fmt.Sprint(payload))
}
