package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// startCeiling runs the ceiling command on a :0 listener and returns its
// URL; the test's cleanup stops it and checks it stopped cleanly.
func startCeiling(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"ceiling", "-listen", "127.0.0.1:0"}, pw, io.Discard)
		_ = pw.Close()
		done <- err
	}()
	// The first line says where it listens: the signal that it is ready.
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "ceiling listening on ")
	require.True(t, ok, line)
	go func() { _, _ = io.Copy(io.Discard, br) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return url
}

func TestFanoutAgainstCeiling(t *testing.T) {
	t.Parallel()
	url := startCeiling(t)
	const users, posts = 20, 50

	tests := []struct {
		name string
		args []string
	}{
		{"json", []string{"-json"}},
		{"text and a reused fixture", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"fanout", "-url", url, "-admin-user", "admin", "-admin-password", "secret",
				"-users", "20", "-posters", "2", "-posts", "50", "-size", "120"}, tt.args...)
			// -wait is the default 10s: a bound, not a sleep; the run ends as
			// soon as every delivery arrived.
			err := run(context.Background(), args, &stdout, &stderr)
			require.NoError(t, err, stderr.String())
			if tt.args == nil {
				require.Contains(t, stdout.String(), "50 accepted")
				require.Contains(t, stdout.String(), "1000 of 1000 expected (0 extra), 0 sockets missing posts, 0 sockets lost")
				return
			}
			var res fanoutResult
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
			require.Equal(t, posts, res.PostsAccepted)
			require.Zero(t, res.PostErrors)
			require.Equal(t, int64(users*posts), res.DeliveriesExpected)
			require.Equal(t, int64(users*posts), res.DeliveriesReceived, "every socket received every post")
			require.Zero(t, res.DeliveriesExtra)
			require.Zero(t, res.SocketsMissingPosts)
			require.Zero(t, res.SocketsLost)
			require.Equal(t, users*posts, res.Latency.Count)
			require.LessOrEqual(t, res.Latency.P50, res.Latency.P99)
			require.LessOrEqual(t, res.Latency.P99, res.Latency.Max)
		})
	}
}

func TestFanoutFlags(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"fanout", "-users", "2", "-posters", "3", "-posts", "0"}, io.Discard, &stderr)
	require.Error(t, err)
	for _, want := range []string{"-admin-user is required", "-admin-password is required", "-posters must be", "-posts must be"} {
		require.ErrorContains(t, err, want)
	}
}

func TestReadWithoutWrk(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"read", "-url", "http://127.0.0.1:1", "-admin-user", "a", "-admin-password", "b",
		"-wrk", "/nonexistent/wrk"}, io.Discard, &stderr)
	require.ErrorContains(t, err, "wrk not found")
	require.Contains(t, stderr.String(), "apt-get install wrk")
}

func TestParseWrk(t *testing.T) {
	t.Parallel()
	const out = `Running 15s test @ http://127.0.0.1:8065/api/v4/channels/x/posts?per_page=60
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    2.01ms  40.33ms   80.00%
    Req/Sec     3.20k   200.00     3.60k    70.00%
  Latency Distribution
     50%    4.90ms
     75%    6.00ms
     90%    7.50ms
     99%   12.00ms
  95612 requests in 15.00s, 120.00MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   6374.13
Transfer/sec:      8.00MB
`
	require.Equal(t, wrkSummary{reqPerSec: "6374.13", avg: "5.12ms", max: "40.33ms", p50: "4.90ms", p90: "7.50ms", p99: "12.00ms", non2xx: "12"}, parseWrk(out))
}
