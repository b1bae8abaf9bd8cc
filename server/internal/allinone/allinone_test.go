package allinone_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgcluster"
	"github.com/garrison-chat/garrison/server/internal/allinone"
)

// syncBuffer is a bytes.Buffer safe for the writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runOnce starts the all-in-one server in dir, logs in with the printed
// credentials, stops it, and returns what it printed.
func runOnce(t *testing.T, dir string) string {
	t.Helper()
	env := map[string]string{"MM_SERVICESETTINGS_LISTENADDRESS": "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- allinone.Run(ctx, allinone.Options{
			Dir: dir, Getenv: func(k string) string { return env[k] }, Stdout: &out,
			Ready: func(url string) { ready <- url },
		})
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		if errors.Is(err, pgcluster.ErrNotFound) && os.Getenv("CI") != "true" {
			t.Skip("PostgreSQL is not installed:", err)
		}
		t.Fatalf("allinone stopped before it was ready: %v", err)
	}
	printed := out.String()
	lines := strings.Split(strings.TrimSpace(printed), "\n")
	require.Len(t, lines, 3, printed)
	require.Equal(t, "URL: "+url, lines[0])
	require.True(t, strings.HasPrefix(lines[1], "Username: "))
	require.True(t, strings.HasPrefix(lines[2], "Password: "))
	user, pw := strings.TrimPrefix(lines[1], "Username: "), strings.TrimPrefix(lines[2], "Password: ")

	resp, err := http.Post(url+"/api/v4/users/login", "application/json",
		strings.NewReader(`{"login_id":"`+user+`","password":"`+pw+`"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the printed credentials log in")
	require.NotEmpty(t, resp.Header.Get("Token"))

	cancel()
	require.NoError(t, <-done, "Ctrl-C stops everything cleanly")
	return printed
}

func TestRunPrintsWorkingCredentialsAndReusesThem(t *testing.T) {
	// The test starts a real Postgres and server twice; it runs alone.
	dir, err := os.MkdirTemp("", "garrison-allinone-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) // the postgres user must reach it

	first := runOnce(t, dir)
	fi, err := os.Stat(dir + "/credentials")
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	second := runOnce(t, dir)
	// Same credentials (the port may differ: the test listens on :0).
	require.Equal(t, strings.SplitN(first, "\n", 2)[1], strings.SplitN(second, "\n", 2)[1])
}
