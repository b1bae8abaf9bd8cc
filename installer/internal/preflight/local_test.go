package preflight

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/remote"
)

// These tests run the real script with this machine's sh, as a node would
// over SSH, to prove that it runs on Debian 12 and that its output parses.
// They do not run in parallel with each other: each one's fsync probe
// writes a file in /var/lib, and TestRunLocally checks that none is left.

// localRunner runs commands here, the way remote.Client runs them on a node.
type localRunner struct{}

func (localRunner) Run(ctx context.Context, cmd string, stdin io.Reader) (remote.Result, error) {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	var stdout, stderr bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &stdout, &stderr
	err := c.Run()
	res := remote.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitStatus: c.ProcessState.ExitCode()}
	if err != nil {
		return res, fmt.Errorf("sh: %w: %s", err, stderr.String())
	}
	return res, nil
}

// requireNode skips (or under CI=true fails) unless this machine is what a
// node is: Debian 12, and root to write in /var/lib.
func requireNode(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the fsync probe writes in /var/lib)")
	}
	if data, err := os.ReadFile("/etc/os-release"); err != nil || !strings.Contains(string(data), `VERSION_ID="12"`) {
		missing = append(missing, "Debian 12 (the script's target)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "preflight: the local script tests need " + strings.Join(missing, " and ")
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func runLocally(t *testing.T, p probe) *facts {
	t.Helper()
	res, err := localRunner{}.Run(context.Background(), script(p), nil)
	require.NoError(t, err)
	require.Empty(t, string(res.Stderr), "the script writes nothing to stderr")
	f, err := parseFacts(res.Stdout)
	require.NoError(t, err, "%s", res.Stdout)
	return f
}

func TestRunLocally(t *testing.T) {
	requireNode(t)
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d1"), 0o755))
	// peer resolves nowhere; its address, localhost, resolves here.
	inv := parseInv(t, fmt.Sprintf(`
site: local
site_url: https://chat.local.test
admin: {username: admin, email: admin@local.test}
ssh: {key: id_ed25519}
options: {allow_drives_on_root_disk: true}
nodes:
  - {name: box, address: 192.0.2.10, roles: [app, db, storage], drives: [%s/d1, %s/d2]}
  - {name: garrison-preflight-peer, address: localhost, roles: [proxy]}
`, dir, dir))
	r := Run(context.Background(), inv, map[string]Runner{"box": localRunner{}}, Options{BundleSize: 100 * MiB})
	var b bytes.Buffer
	require.NoError(t, r.WriteTable(&b))
	t.Logf("\n%s", b.String())

	require.Equal(t, []string{"box/ssh", "box/os", "box/cpu", "box/memory", "box/disk", "box/drives", "box/ports", "box/names", "box/clock", "box/fsync",
		"garrison-preflight-peer/ssh"}, rowNames(r.Checks))
	byName := map[string]Check{}
	for _, c := range r.Checks[1:10] {
		byName[c.Name] = c
		require.NotContains(t, c.Detail, "could not", "every part of the script ran: %s", c.Name)
		require.NotContains(t, c.Detail, "missing", "every tool is there: %s", c.Name)
	}
	if out, _ := exec.Command("dpkg", "--print-architecture").Output(); strings.TrimSpace(string(out)) == "amd64" {
		require.Equal(t, Pass, byName["os"].Status, byName["os"].Detail)
		require.Contains(t, byName["os"].Detail, "Debian GNU/Linux 12 (bookworm) amd64")
	}
	require.Regexp(t, `^\d+ CPUs; the node's roles want 5 `, byName["cpu"].Detail)
	require.Regexp(t, `^[\d.]+ [GM]iB; the node's roles want 5 GiB `, byName["memory"].Detail)
	require.Regexp(t, `^/var/lib has [\d.]+ [GMK]iB free`, byName["disk"].Detail)
	require.Contains(t, byName["drives"].Detail, dir+"/d2 does not exist; the install creates it on ")
	require.NotEqual(t, Fail, byName["drives"].Status, byName["drives"].Detail)
	require.Contains(t, byName["ports"].Detail, "9100/tcp")
	require.Equal(t, Warn, byName["names"].Status, byName["names"].Detail)
	require.Equal(t, "garrison-preflight-peer does not resolve (Garrison uses addresses, but admins and logs use names)", byName["names"].Detail)
	require.Equal(t, Pass, byName["clock"].Status, byName["clock"].Detail)
	require.Regexp(t, `^0\.\d{3} s (ahead of|behind) the admin machine`, byName["clock"].Detail)
	require.Regexp(t, `^[\d.]+ ms per synchronous 8 KiB write on /var/lib \(50 writes\)`, byName["fsync"].Detail)

	matches, err := filepath.Glob("/var/lib/.garrison-fsync.*")
	require.NoError(t, err)
	require.Empty(t, matches, "the fsync probe removes its file")
	entries, err := os.ReadDir(filepath.Join(dir, "d1"))
	require.NoError(t, err)
	require.Empty(t, entries, "the writability probe removes its file")
}

func TestScriptDrivesLocally(t *testing.T) {
	requireNode(t)
	dir := t.TempDir()
	d1, file := filepath.Join(dir, "d1"), filepath.Join(dir, "file")
	require.NoError(t, os.Mkdir(d1, 0o755))
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(dir, &st))

	f := runLocally(t, probe{Drives: []string{d1, file, filepath.Join(dir, "gone", "d3")}, Names: []string{"localhost", "garrison-preflight-nowhere"}, Ports: []int{9}})
	require.Len(t, f.Drives, 3)
	require.Equal(t, "dir", f.Drives[0].State)
	require.True(t, f.Drives[0].Writable)
	require.Equal(t, uint64(st.Dev), f.Drives[0].FS.Dev)
	require.Positive(t, f.Drives[0].FS.Total)
	require.Equal(t, &drive{State: "notdir"}, f.Drives[1])
	require.Equal(t, &drive{State: "missing", FS: fsInfo{Dev: uint64(st.Dev)}, Parent: dir}, f.Drives[2])
	require.NotEmpty(t, f.Resolved["localhost"])
	require.True(t, f.Resolved["localhost"][0].IsLoopback(), "%v", f.Resolved["localhost"])
	require.Contains(t, f.Resolved, "garrison-preflight-nowhere")
	require.Empty(t, f.Resolved["garrison-preflight-nowhere"])
	require.Empty(t, f.Errs)
}

// TestScriptPortsLocally holds a TCP and a UDP port and checks that both
// ways of looking (ss, and /proc where ss is missing) find them and this
// test process as their owner.
func TestScriptPortsLocally(t *testing.T) {
	requireNode(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	tcpPort, udpPort := ln.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port
	me := owner{Name: commName(filepath.Base(os.Args[0])), PID: os.Getpid()}

	for _, source := range []string{"ss", "proc"} {
		t.Run(source, func(t *testing.T) {
			if _, err := exec.LookPath("ss"); err != nil && source == "ss" {
				if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
					t.Fatal("ss is missing (Debian package iproute2)")
				}
				t.Skip("ss is missing (Debian package iproute2)")
			}
			f := runLocally(t, probe{Ports: []int{tcpPort, udpPort}, noSS: source == "proc"})
			require.Equal(t, source, f.PortsSource)
			require.Empty(t, f.Errs)
			find := func(proto string, port int) listener {
				for _, l := range f.Listeners {
					if l.Proto == proto && l.Port == port {
						return l
					}
				}
				t.Fatalf("no %s listener on %d in %+v", proto, port, f.Listeners)
				return listener{}
			}
			for _, l := range []listener{find("tcp", tcpPort), find("udp", udpPort)} {
				require.Equal(t, "127.0.0.1", l.Addr)
				require.Contains(t, l.Owners, me)
			}

			// The test's ports come from the ephemeral range; that
			// warning is not what is tested here.
			f.PortRange = [2]int{}
			ports := []Port{{Number: tcpPort, Proto: "tcp", Service: me.Name}, {Number: udpPort, Proto: "udp", Service: me.Name}}
			v := portsCheck(f, ports, true)
			require.Equal(t, Pass, v.Status, v.Detail)
			require.Contains(t, v.Detail, fmt.Sprintf("%d/tcp %s (ours), %d/udp %s (ours)", tcpPort, me.Name, udpPort, me.Name))
			v = portsCheck(f, []Port{{Number: tcpPort, Proto: "tcp", Service: "garrison"}}, true)
			require.Equal(t, Fail, v.Status, v.Detail)
			require.Contains(t, v.Detail, fmt.Sprintf("%d/tcp is in use by %s, not garrison", tcpPort, me))
		})
	}
}
