package remote

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file is the test harness: a real OpenSSH server (the host's
// /usr/sbin/sshd) run as a child process on 127.0.0.1 with its own
// configuration, host keys and authorized_keys in a temporary directory.

const sshdPath = "/usr/sbin/sshd"

// sshdStartMu makes the tests of this process pick a free port and start
// sshd on it one at a time, so that two of them never pick the same port.
var sshdStartMu sync.Mutex

// runDirOnce creates sshd's privilege-separation directory once per
// process (and never removes it: it may have existed before).
var runDirOnce = sync.OnceValue(func() error {
	return os.MkdirAll("/run/sshd", 0o755)
})

// requireSSHD skips the test when sshd cannot run here (not root, no
// OpenSSH server), or fails it under CI=true.
func requireSSHD(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (sshd must run as root to log root in)")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		missing = append(missing, sshdPath+" (Debian package openssh-server)")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		missing = append(missing, "ssh-keygen (Debian package openssh-client)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "remote: the SSH tests need " + strings.Join(missing, " and ")
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// sshd is one OpenSSH server for a test.
type sshd struct {
	dir       string
	port      int
	keyTypes  []string // host key types, ssh-keygen -t names
	clientKey string   // a private key whose public half is authorized for root

	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	logPath string        // sshd's stderr
}

// log is what sshd has logged so far.
func (s *sshd) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// startSSHD starts an sshd for the test with host keys of the given types
// (ed25519 when none are given) and stops it when the test ends.
func startSSHD(t *testing.T, keyTypes ...string) *sshd {
	t.Helper()
	requireSSHD(t)
	require.NoError(t, runDirOnce(), "create /run/sshd")
	if len(keyTypes) == 0 {
		keyTypes = []string{"ed25519"}
	}
	s := &sshd{dir: t.TempDir(), keyTypes: keyTypes}
	s.genHostKeys(t)
	s.clientKey = genKey(t, s.dir, "client", "")
	pub, err := os.ReadFile(s.clientKey + ".pub")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "authorized_keys"), pub, 0o600))
	s.start(t, 0)
	t.Cleanup(func() { s.stop(t) })
	return s
}

// genKey makes a key pair with ssh-keygen in dir and returns the private
// key's path; a non-empty passphrase encrypts it.
func genKey(t *testing.T, dir, name, passphrase string, keyType ...string) string {
	t.Helper()
	typ := "ed25519"
	if len(keyType) > 0 {
		typ = keyType[0]
	}
	path := filepath.Join(dir, name)
	_ = os.Remove(path)
	_ = os.Remove(path + ".pub")
	out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", passphrase, "-C", name, "-f", path).CombinedOutput()
	require.NoError(t, err, "ssh-keygen: %s", out)
	return path
}

// genHostKeys makes (or replaces) the server's host keys.
func (s *sshd) genHostKeys(t *testing.T) {
	t.Helper()
	for _, typ := range s.keyTypes {
		genKey(t, s.dir, "ssh_host_"+typ+"_key", "", typ)
	}
}

// fingerprint is the SHA256 fingerprint of the server's host key of a
// type, as `ssh-keygen -lf` prints it.
func (s *sshd) fingerprint(t *testing.T, keyType string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-lf", filepath.Join(s.dir, "ssh_host_"+keyType+"_key.pub")).Output()
	require.NoError(t, err)
	f := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(f), 2, "ssh-keygen -lf: %s", out)
	require.True(t, strings.HasPrefix(f[1], "SHA256:"), "ssh-keygen -lf: %s", out)
	return f[1]
}

// target is a Target for this server, logging in as root with the
// authorized client key.
func (s *sshd) target(name string) Target {
	return Target{Name: name, Address: "127.0.0.1", Port: s.port, User: "root", KeyFile: s.clientKey}
}

func (s *sshd) writeConfig(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "ListenAddress 127.0.0.1:%d\n", s.port)
	for _, typ := range s.keyTypes {
		fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(s.dir, "ssh_host_"+typ+"_key"))
	}
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.dir, "sshd.pid"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.dir, "authorized_keys"))
	b.WriteString(`UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
PrintMotd no
MaxSessions 64
MaxStartups 64
LogLevel INFO
`)
	path := filepath.Join(s.dir, "sshd_config")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

// start starts sshd on port, or on a free port when port is 0, and waits
// until it accepts connections.
func (s *sshd) start(t *testing.T, port int) {
	t.Helper()
	sshdStartMu.Lock()
	defer sshdStartMu.Unlock()
	for attempt := 0; ; attempt++ {
		s.port = port
		if port == 0 {
			s.port = freePort(t)
		}
		config := s.writeConfig(t)
		// A file, not a pipe: sshd's children inherit it, and a pipe would
		// keep cmd.Wait waiting for them after sshd itself has exited.
		s.logPath = filepath.Join(s.dir, "sshd.log")
		logFile, err := os.Create(s.logPath)
		require.NoError(t, err)
		s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", config)
		s.cmd.Stderr = logFile
		// Should the test binary die without cleaning up (a timeout), its
		// sshd goes with it.
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		err = s.cmd.Start()
		logFile.Close()
		require.NoError(t, err, "start sshd")
		s.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) {
			_ = cmd.Wait()
			close(exited)
		}(s.cmd, s.exited)
		err = s.waitListening()
		if err == nil {
			return
		}
		inUse := strings.Contains(s.log(), "Address already in use")
		if port == 0 && inUse && attempt < 5 {
			continue // someone else took the port meanwhile
		}
		s.kill()
		t.Fatalf("sshd: %v\nsshd's log:\n%s", err, s.log())
	}
}

// waitListening polls until sshd has said it listens and a TCP dial to it
// succeeds; the message tells our sshd apart from whatever else might
// answer on the port.
func (s *sshd) waitListening() error {
	want := fmt.Sprintf("Server listening on 127.0.0.1 port %d", s.port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("exited while starting: %v", s.cmd.ProcessState)
		default:
		}
		if strings.Contains(s.log(), want) {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), time.Second)
			if err == nil {
				conn.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on 127.0.0.1:%d after 20s", s.port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restart stops the server and starts it again on the same port, with new
// host keys if newKeys.
func (s *sshd) restart(t *testing.T, newKeys bool) {
	t.Helper()
	s.stop(t)
	if newKeys {
		s.genHostKeys(t)
	}
	s.start(t, s.port)
}

// stop ends the server by its PID: SIGTERM, then SIGKILL if it lingers.
// Connections already open are served by sshd's children, which end when
// the clients close them.
func (s *sshd) stop(t *testing.T) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
		t.Errorf("sshd did not stop on SIGTERM; killed it")
	}
}

func (s *sshd) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testLog collects Options.Logf lines.
type testLog struct {
	mu    sync.Mutex // guards lines
	lines []string
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// dial connects to the server as the test's target name with the host keys
// in hk, closing the client when the test ends.
func (s *sshd) dial(t *testing.T, name string, hk *HostKeys, o Options) *Client {
	t.Helper()
	o.HostKeys = hk
	c, err := Dial(context.Background(), s.target(name), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// openHostKeys opens a fresh host key file for the test.
func openHostKeys(t *testing.T) *HostKeys {
	t.Helper()
	hk, err := OpenHostKeys(filepath.Join(t.TempDir(), "known_hosts"))
	require.NoError(t, err)
	return hk
}

// countingConn counts the bytes the client sends, to tell a resumed upload
// from a full one.
type countingConn struct {
	net.Conn
	mu      sync.Mutex // guards written
	written int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.written += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) Written() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

// dialCounting returns an Options.Dial whose connection counts bytes sent,
// and the connection once dialled.
func dialCounting() (func(ctx context.Context, network, addr string) (net.Conn, error), func() *countingConn) {
	var mu sync.Mutex
	var last *countingConn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		last = &countingConn{Conn: conn}
		return last, nil
	}
	return dial, func() *countingConn {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
