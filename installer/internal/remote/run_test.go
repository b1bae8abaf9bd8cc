package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})

	for _, tc := range []struct {
		name       string
		cmd        string
		stdin      io.Reader
		wantOut    string
		wantErrOut string
		wantStatus int
	}{
		{name: "stdout", cmd: "echo hello", wantOut: "hello\n"},
		{name: "stderr and status", cmd: "echo out; echo oops >&2; exit 3", wantOut: "out\n", wantErrOut: "oops\n", wantStatus: 3},
		{name: "runs as root", cmd: "id -u", wantOut: "0\n"},
		{name: "stdin", cmd: "tr a-z A-Z", stdin: strings.NewReader("quiet\n"), wantOut: "QUIET\n"},
		{name: "no stdin reads EOF", cmd: "cat; echo end", wantOut: "end\n"},
		{name: "quotes survive", cmd: `printf '%s|' "it's" '$HOME' "a\"b"`, wantOut: `it's|$HOME|a"b|`},
		{name: "multi-line script", cmd: "set -e\nx=1\necho $((x+1))\nfalse\necho unreachable", wantOut: "2\n", wantStatus: 1},
		{name: "killed by a signal", cmd: "kill -KILL $$", wantStatus: 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := c.Run(context.Background(), tc.cmd, tc.stdin)
			require.Equal(t, tc.wantOut, string(res.Stdout))
			require.Equal(t, tc.wantErrOut, string(res.Stderr))
			require.Equal(t, tc.wantStatus, res.ExitStatus)
			if tc.wantStatus == 0 {
				require.NoError(t, err)
				return
			}
			var exit *ExitError
			require.ErrorAs(t, err, &exit)
			require.Equal(t, "app1", exit.Node)
			require.Equal(t, tc.wantStatus, exit.Status)
			require.Equal(t, strings.TrimSpace(tc.wantErrOut), exit.Stderr)
			require.Equal(t, firstLine(tc.cmd), exit.Command)
			require.Contains(t, err.Error(), "app1")
			require.Contains(t, err.Error(), strings.SplitN(tc.cmd, "\n", 2)[0])
		})
	}
}

func TestExitErrorMessage(t *testing.T) {
	t.Parallel()
	e := &ExitError{Node: "db1", Command: "systemctl start patroni", Status: 1, Stderr: "Job failed"}
	require.Equal(t, `remote: db1: "systemctl start patroni": exit status 1: Job failed`, e.Error())
	e = &ExitError{Node: "db1", Command: "sleep 9", Status: 143, Signal: "TERM"}
	require.Equal(t, `remote: db1: "sleep 9": killed by SIGTERM`, e.Error())

	long := strings.Repeat("x", 3*stderrTail)
	require.Len(t, tail([]byte(long+"\n")), stderrTail+len("…"))
	require.Equal(t, "first line …", firstLine("\n first line \nsecond"))
	require.Equal(t, 80, len([]rune(firstLine(strings.Repeat("y", 200)))))
}

// TestRunCancel checks that cancelling a command ends it on the node, not
// only the session.
func TestRunCancel(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})
	pidFile := filepath.Join(t.TempDir(), "pid")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		waitFor(t, "the command to start", func() bool { return readPID(pidFile) > 0 })
		cancel()
	}()
	// A child of the shell, not the shell itself, does the waiting.
	res, err := c.Run(ctx, "sleep 600 & echo $! > "+Quote(pidFile)+"; wait", nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "app1")
	require.Equal(t, -1, res.ExitStatus)

	pid := readPID(pidFile)
	waitFor(t, "the remote sleep to end", func() bool { return !processRunning(pid) })

	// The connection is still good.
	res, err = c.Run(context.Background(), "echo still here", nil)
	require.NoError(t, err)
	require.Equal(t, "still here\n", string(res.Stdout))

	// A cancelled context stops Run before it starts anything.
	_, err = c.Run(ctx, "echo never", nil)
	require.ErrorIs(t, err, context.Canceled)
}

// TestRunStdinFails checks that a command whose input cannot be read is
// stopped, not handed a truncated input.
func TestRunStdinFails(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})
	dir := t.TempDir()
	marker := filepath.Join(dir, "applied")
	stdin := io.MultiReader(strings.NewReader("BEGIN;\n"), iotest.ErrReader(errors.New("disk on fire")))
	_, err := c.Run(context.Background(), "cat > "+Quote(filepath.Join(dir, "in"))+"; touch "+Quote(marker), stdin)
	require.Error(t, err)
	require.Contains(t, err.Error(), "app1")
	require.Contains(t, err.Error(), "disk on fire")
	require.NoFileExists(t, marker, "the command did not go on with a truncated input")
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// processRunning reports whether pid is a live process (not a zombie).
func processRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestKeepalive checks that a node that stops answering ends the commands
// waiting on it instead of hanging them.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	var conn *freezableConn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn = &freezableConn{Conn: nc}
		return conn, nil
	}
	c := s.dial(t, "app1", openHostKeys(t), Options{Dial: dial, keepalive: 20 * time.Millisecond})
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Cleanup(func() {
		if pid := readPID(pidFile); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the sleep this test started
		}
	})

	errc := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), "echo $$ > "+Quote(pidFile)+"; exec sleep 600", nil)
		errc <- err
	}()
	waitFor(t, "the command to start", func() bool { return readPID(pidFile) > 0 })
	conn.freeze()
	err := <-errc
	require.Error(t, err)
	require.Contains(t, err.Error(), "app1")
	require.Contains(t, err.Error(), "did not answer SSH keepalives")
}

// freezableConn drops everything the client sends once frozen, as if the
// node had lost power.
type freezableConn struct {
	net.Conn
	frozen atomic.Bool
}

func (c *freezableConn) freeze() { c.frozen.Store(true) }

func (c *freezableConn) Write(p []byte) (int, error) {
	if c.frozen.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	dir := t.TempDir()
	wrongKey := genKey(t, dir, "wrong", "")
	encrypted := genKey(t, dir, "encrypted", "correct horse")
	closedPort := freePort(t)
	pubOnly := filepath.Join(dir, "pub-only")
	require.NoError(t, os.Rename(genKey(t, dir, "x", "")+".pub", pubOnly))

	for _, tc := range []struct {
		name    string
		edit    func(*Target)
		wantErr []string
	}{
		{name: "wrong key", edit: func(t *Target) { t.KeyFile = wrongKey },
			wantErr: []string{"app1", "refused the key in " + wrongKey, "root", "authorized_keys"}},
		{name: "encrypted key", edit: func(t *Target) { t.KeyFile = encrypted },
			wantErr: []string{"app1", encrypted, "encrypted with a passphrase", "ssh-keygen -p"}},
		{name: "missing key file", edit: func(t *Target) { t.KeyFile = filepath.Join(dir, "nope") },
			wantErr: []string{"app1", filepath.Join(dir, "nope"), "no such file"}},
		{name: "public key given", edit: func(t *Target) { t.KeyFile = pubOnly },
			wantErr: []string{"app1", pubOnly}},
		{name: "nothing listening", edit: func(t *Target) { t.Port = closedPort },
			wantErr: []string{"app1", "connect root@127.0.0.1", "refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := s.target("app1")
			tc.edit(&target)
			hk := openHostKeys(t)
			_, err := Dial(context.Background(), target, Options{HostKeys: hk})
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestDialContext(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DialContext: c.DialContext}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get(srv.URL + "/patroni")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "hello from /patroni", string(body))

	_, err = c.DialContext(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))))
	require.Error(t, err)
	require.Contains(t, err.Error(), "app1")
}

func TestShellCommand(t *testing.T) {
	t.Parallel()
	cmd := `echo "it's" > /tmp/x`
	wrapped := "sh -c " + Quote(wrapper) + ` sh 'echo "it'\''s" > /tmp/x'`
	require.Equal(t, wrapped, shellCommand("root", cmd))
	require.Equal(t, "sudo -n "+wrapped, shellCommand("deploy", cmd))

	// Run the sudo form through a local shell, with a stand-in sudo that
	// checks its -n and runs the rest, as a login shell on the node would.
	bin := t.TempDir()
	fake := "#!/bin/sh\n[ \"$1\" = -n ] || { echo 'sudo without -n' >&2; exit 99; }\nshift\nexec \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "sudo"), []byte(fake), 0o755))
	for _, script := range []string{
		`printf '%s|' "it's" '$HOME' "a\"b" 'back\slash'; echo err >&2`,
		"set -- a 'b c'\nprintf '%s|' \"$@\"",
	} {
		var wantOut, wantErr strings.Builder
		sh := exec.Command("sh", "-c", script)
		sh.Stdout, sh.Stderr = &wantOut, &wantErr
		require.NoError(t, sh.Run())

		var gotOut, gotErr strings.Builder
		errw := &pgidWriter{w: &gotErr, pgid: make(chan string, 1)}
		sh = exec.Command("sh", "-c", shellCommand("deploy", script))
		sh.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		sh.Stdout, sh.Stderr = &gotOut, errw
		require.NoError(t, sh.Run())
		errw.flush()
		require.Equal(t, wantOut.String(), gotOut.String())
		require.Equal(t, wantErr.String(), gotErr.String())
		pgid, err := strconv.Atoi(<-errw.pgid)
		require.NoError(t, err)
		require.Greater(t, pgid, 1)
	}
}

func TestPgidWriter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		writes   []string
		wantOut  string
		wantPgid string // "" when none is sent
	}{
		{name: "marker then output", writes: []string{pgidMarker + "123\nerr\n"}, wantOut: "err\n", wantPgid: "123"},
		{name: "marker in pieces", writes: []string{"garrison-rem", "ote-pgid=4", "56\n", "a", "b\n"}, wantOut: "ab\n", wantPgid: "456"},
		{name: "empty group", writes: []string{pgidMarker + "\n"}, wantPgid: ""},
		{name: "no marker", writes: []string{"sudo: a password is required\n"}, wantOut: "sudo: a password is required\n"},
		{name: "unfinished line", writes: []string{"oops"}, wantOut: "oops"},
		{name: "marker only once", writes: []string{pgidMarker + "1\n" + pgidMarker + "2\n"}, wantOut: pgidMarker + "2\n", wantPgid: "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			p := &pgidWriter{w: &out, pgid: make(chan string, 1)}
			for _, w := range tc.writes {
				n, err := p.Write([]byte(w))
				require.NoError(t, err)
				require.Equal(t, len(w), n)
			}
			p.flush()
			require.Equal(t, tc.wantOut, out.String())
			select {
			case got := <-p.pgid:
				require.Equal(t, tc.wantPgid, got)
			default:
				require.Empty(t, tc.wantPgid)
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c, err := Dial(context.Background(), s.target("app1"), Options{HostKeys: openHostKeys(t)})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	_, err = c.Run(context.Background(), "true", nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "app1")
}

// TestConcurrentUse runs commands from several goroutines on one client.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	c := s.dial(t, "app1", openHostKeys(t), Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			res, err := c.Run(context.Background(), "echo "+strconv.Itoa(i), nil)
			if err == nil && string(res.Stdout) != strconv.Itoa(i)+"\n" {
				err = errors.New("wrong output " + string(res.Stdout))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
