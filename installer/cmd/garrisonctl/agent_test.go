package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/pki"
)

// agentOutput is a stdout or stderr that the agent writes to from its own
// goroutines while the test reads it.
type agentOutput struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (o *agentOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *agentOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func runAgent(ctx context.Context, args ...string) (code int, stdout, stderr *agentOutput) {
	stdout, stderr = &agentOutput{}, &agentOutput{}
	e := &env{ctx: ctx, getenv: func(string) string { return "" }, stdout: stdout, stderr: stderr}
	return e.agent(args), stdout, stderr
}

func TestAgentCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "agent.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"node": "", "listen": ":9100", "tls": {"cert": "c", "key": "k", "ca": "a"}, "checks": [{"name": "etcd", "kind": "etc", "url": "http://127.0.0.1:2379"}], "extra": true}`), 0o600))
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"help", []string{"-h"}, 0, "Usage: garrisonctl agent [--config FILE]", nil},
		{"help names the default file", []string{"--help"}, 0, "/etc/garrison/agent.json", nil},
		{"bad flag", []string{"--bogus"}, 2, "", []string{"flag provided but not defined: -bogus"}},
		{"argument", []string{"x"}, 2, "", []string{"garrisonctl agent: takes no arguments, have 1"}},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.json")}, 1, "", []string{"garrisonctl agent: agent config: ", filepath.Join(dir, "nope.json")}},
		{"bad config", []string{"--config", bad}, 1, "", []string{
			"garrisonctl agent: agent config " + bad + ": 3 problems:",
			"node: required",
			`checks[0].kind: "etc" is not http, garrison, patroni, etcd or tls`,
			"extra: unknown field",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runAgent(context.Background(), tc.args...)
			require.Equal(t, tc.code, code, "stderr: %s", stderr)
			require.Contains(t, stdout.String(), tc.stdout)
			for _, w := range tc.stderr {
				require.Contains(t, stderr.String(), w)
			}
		})
	}
}

// TestAgentRuns runs the command until its context ends, and asks it for
// its health with garrisonctl's client certificate in between.
func TestAgentRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	ca, _, err := pki.LoadOrCreate(filepath.Join(dir, "ca"), "test", now)
	require.NoError(t, err)
	_, _, err = ca.Ensure(dir, "node", pki.Request{CommonName: "app1", DNSNames: []string{"app1"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true, Client: true}, now)
	require.NoError(t, err)
	client, err := ca.Issue(pki.Request{CommonName: "garrisonctl", Client: true}, now)
	require.NoError(t, err)
	cfg := map[string]any{
		"node": "app1", "listen": "127.0.0.1:0",
		"tls": map[string]string{"cert": filepath.Join(dir, "node.crt"), "key": filepath.Join(dir, "node.key"), "ca": filepath.Join(dir, "ca", pki.CACertName)},
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(dir, "agent.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code           int
		stdout, stderr *agentOutput
	}
	done := make(chan result, 1)
	stdout, stderr := &agentOutput{}, &agentOutput{}
	go func() {
		e := &env{ctx: ctx, getenv: func(string) string { return "" }, stdout: stdout, stderr: stderr}
		done <- result{e.agent([]string{"--config", path}), stdout, stderr}
	}()

	// The address it bound, from its JSON log.
	var addr string
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var l struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
				Node   string `json:"node"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "agent started" {
				addr = l.Listen
				return l.Node == "app1"
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "no 'agent started' log line: %s", stderr)

	kp, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca.CertPEM()))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Get("https://" + addr + "/health")
	require.NoError(t, err)
	var rep struct {
		Node   string `json:"node"`
		Status string `json:"status"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "app1", rep.Node)
	require.Equal(t, "green", rep.Status)

	cancel()
	select {
	case r := <-done:
		require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
		require.Contains(t, r.stderr.String(), `"msg":"agent stopping"`)
		require.Empty(t, r.stdout.String())
	case <-time.After(time.Minute):
		t.Fatal("the agent did not stop after its context ended")
	}
	require.NotContains(t, stderr.String(), "PRIVATE KEY")
}
