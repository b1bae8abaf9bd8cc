package debroot_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/test/debroot"
)

func TestEnsureReusesTheCache(t *testing.T) {
	t.Parallel()
	base := debroot.Prepare(t)
	if base.Built {
		t.Logf("figures: cold base build %s, root %d MB", base.BuildTime.Round(time.Second), base.Size>>20)
	} else {
		t.Logf("figures: base from the cache (built in %s), root %d MB", base.BuildTime.Round(time.Second), base.Size>>20)
	}
	require.FileExists(t, filepath.Join(base.Root, "lib", "systemd", "systemd"))
	require.FileExists(t, filepath.Join(base.Root, "usr", "sbin", "sshd"))

	again, err := debroot.Ensure(t.Context(), t.Logf)
	require.NoError(t, err)
	require.False(t, again.Built, "the second call is a cache hit")
	require.Equal(t, base.BuildID, again.BuildID, "the same build")
	require.Equal(t, base.Root, again.Root)
}

func TestChrootHasNoNetwork(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := debroot.NewNode(t, debroot.Prepare(t), "offline")
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "hello.txt"), []byte("hello from the host\n"), 0o644))

	out, err := n.ChrootWith(ctx, debroot.ChrootOptions{
		Binds: []debroot.Bind{{Host: host, Node: "/media/garrison"}},
		Env:   []string{"GREETING=hi"},
	}, "sh", "-c", `
echo "links: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "routes: $(tail -n +2 /proc/net/route | wc -l) $(tail -n +2 /proc/net/ipv6_route | grep -vc ' lo$')"
echo "hostname: $(cat /proc/sys/kernel/hostname)"
echo "pid: $$"
echo "env: $GREETING"
cat /media/garrison/hello.txt
if touch /media/garrison/x 2>/dev/null; then echo writable; else echo read-only; fi
python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
socket.create_connection(s.getsockname(), timeout=5).close()
print("loopback:", [name for _, name in socket.if_nameindex()])
'`)
	require.NoError(t, err, out)
	require.Contains(t, out, "links: lo \n", "only lo in the network namespace")
	require.Contains(t, out, "routes: 0 0\n", "no route but lo's")
	require.Contains(t, out, "hostname: offline\n")
	require.Contains(t, out, "pid: 1\n")
	require.Contains(t, out, "env: hi\n")
	require.Contains(t, out, "hello from the host\n")
	require.Contains(t, out, "read-only\n")
	require.Contains(t, out, "loopback: ['lo']\n")
	require.NoFileExists(t, filepath.Join(host, "x"))

	// The exit status comes through.
	_, err = n.Chroot(ctx, "sh", "-c", "echo failing; exit 3")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 3, exit.ExitCode())
	require.ErrorContains(t, err, "failing")

	requireNothingLeft(t, n)
}

func TestWriteFileDoesNotEscape(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := debroot.NewNode(t, debroot.Prepare(t), "writer")
	// The "host file" an absolute link in the node points at: a harmless
	// temporary file, standing in for the host's /etc/nginx/... .
	hostDir := t.TempDir()
	victim := filepath.Join(hostDir, "default")
	require.NoError(t, os.WriteFile(victim, []byte("host\n"), 0o644))
	out, err := n.Chroot(ctx, "ln", "-s", victim, "/etc/evil")
	require.NoError(t, err, out)

	// The link's target does not exist in the node: an error, and the
	// host file untouched.
	require.ErrorContains(t, n.WriteFile("/etc/evil", []byte("node\n"), 0o644), "no such file or directory")
	requireContent(t, victim, "host\n")

	// Once it does, the write lands there, inside the node.
	out, err = n.Chroot(ctx, "mkdir", "-p", hostDir)
	require.NoError(t, err, out)
	require.NoError(t, n.WriteFile("/etc/evil", []byte("node\n"), 0o644))
	requireContent(t, victim, "host\n")
	out, err = n.Chroot(ctx, "cat", victim)
	require.NoError(t, err, out)
	require.Equal(t, "node\n", out)
	b, err := n.ReadFile("/etc/evil")
	require.NoError(t, err)
	require.Equal(t, "node\n", string(b))
}

const helloUnit = `[Unit]
Description=debroot test web server

[Service]
ExecStart=/usr/bin/python3 -m http.server 8080 --bind 127.0.0.1 --directory /srv/hello

[Install]
WantedBy=multi-user.target
`

const onceUnit = `[Unit]
Description=debroot test oneshot

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo done > /run/once'
`

func TestBoot(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	base := debroot.Prepare(t)
	nodes := []*debroot.Node{debroot.NewNode(t, base, "boot1"), debroot.NewNode(t, base, "boot2")}
	for _, n := range nodes {
		require.NoError(t, n.WriteFile("/etc/systemd/system/hello.service", []byte(helloUnit), 0o644))
		require.NoError(t, n.WriteFile("/srv/hello/index.html", []byte("hello from "+n.Name()+"\n"), 0o644))
		out, err := n.Chroot(ctx, "systemctl", "enable", "hello.service")
		require.NoError(t, err, out)
	}

	// Both at once: they must not collide.
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			start := time.Now()
			errs[i] = n.Boot(ctx, debroot.BootOptions{})
			t.Logf("figures: %s boot to running %s", n.Name(), time.Since(start).Round(time.Millisecond))
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	ids := map[string]bool{}
	for _, n := range nodes {
		// Each in a cgroup of its own: sharing one, two nodes' systemds
		// trip over each other's units.
		leader, err := n.Leader()
		require.NoError(t, err)
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", leader))
		require.NoError(t, err)
		require.Contains(t, string(cg), "/debroot-"+n.Name()+"-")

		out, err := n.Exec(ctx, "systemctl", "is-active", "dbus", "ssh", "hello")
		require.NoError(t, err, out)
		require.Equal(t, "active\nactive\nactive\n", out)
		out, err = n.Exec(ctx, "hostname")
		require.NoError(t, err)
		require.Equal(t, n.Name()+"\n", out)
		out, err = n.Exec(ctx, "python3", "-c", "import socket; print(socket.create_connection(('127.0.0.1', 22), 5).recv(64).decode().strip())")
		require.NoError(t, err, out)
		require.Contains(t, out, "SSH-2.0-OpenSSH_", "sshd answers")

		// The server answers curl run inside the node (it may not have
		// bound its port yet when the unit is active).
		require.Eventually(t, func() bool {
			out, err = n.Exec(ctx, "curl", "-fsS", "http://127.0.0.1:8080/")
			return err == nil
		}, 30*time.Second, 50*time.Millisecond, "curl in %s: %s", n.Name(), out)
		require.Equal(t, "hello from "+n.Name()+"\n", out)

		// A unit dropped into the running node.
		require.NoError(t, n.WriteFile("/etc/systemd/system/once.service", []byte(onceUnit), 0o644))
		out, err = n.Exec(ctx, "sh", "-c", "systemctl daemon-reload && systemctl start once && systemctl is-active once")
		require.NoError(t, err, out)
		require.Equal(t, "active\n", out)
		// /run is the node's tmpfs: WriteFile and ReadFile see what it sees.
		b, err := n.ReadFile("/run/once")
		require.NoError(t, err)
		require.Equal(t, "done\n", string(b))

		// Each node has its own identity.
		id, err := n.ReadFile("/etc/machine-id")
		require.NoError(t, err)
		key, err := n.ReadFile("/etc/ssh/ssh_host_ed25519_key.pub")
		require.NoError(t, err)
		require.False(t, ids[string(id)], "machine-id %s repeats", id)
		require.False(t, ids[string(key)], "ssh host key repeats")
		ids[string(id)], ids[string(key)] = true, true

		j, err := n.Journal(ctx, 20)
		require.NoError(t, err)
		require.NotEmpty(t, j)
	}

	for _, n := range nodes {
		start := time.Now()
		require.NoError(t, n.Stop(ctx))
		t.Logf("figures: %s poweroff %s", n.Name(), time.Since(start).Round(time.Millisecond))
		requireNothingLeft(t, n)
		require.NoError(t, n.Stop(ctx), "Stop again does nothing")
		_, err := n.Exec(ctx, "true")
		require.ErrorContains(t, err, "not booted")
	}
}

// TestBootInNetworkNamespace boots a node into a given network namespace,
// as the testbed will, and boots it a second time: it keeps its identity.
func TestBootInNetworkNamespace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := debroot.NewNode(t, debroot.Prepare(t), "netns")

	require.NoError(t, n.Boot(ctx, debroot.BootOptions{}))
	id1, err := n.ReadFile("/etc/machine-id")
	require.NoError(t, err)
	key1, err := n.ReadFile("/etc/ssh/ssh_host_ed25519_key.pub")
	require.NoError(t, err)
	require.NoError(t, n.Stop(ctx))

	// A namespace of our own with a veth pair inside: the root namespace
	// gets no link.
	ns := fmt.Sprintf("debroot-test-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { run(t, "ip", "netns", "delete", ns) })
	run(t, "ip", "-n", ns, "link", "add", "dbt0", "type", "veth", "peer", "name", "dbt1")

	require.NoError(t, n.Boot(ctx, debroot.BootOptions{NetNS: "/run/netns/" + ns}))
	out, err := n.Exec(ctx, "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '")
	require.NoError(t, err, out)
	require.Equal(t, "dbt0 dbt1 lo ", out)
	id2, err := n.ReadFile("/etc/machine-id")
	require.NoError(t, err)
	key2, err := n.ReadFile("/etc/ssh/ssh_host_ed25519_key.pub")
	require.NoError(t, err)
	require.Equal(t, string(id1), string(id2), "the machine-id survives a reboot")
	require.Equal(t, string(key1), string(key2), "the ssh host key survives a reboot")
	require.NoError(t, n.Stop(ctx))
	requireNothingLeft(t, n)
}

func TestStopKillsANodeThatDoesNotPowerOff(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := debroot.NewNode(t, debroot.Prepare(t), "hung")
	out, err := n.Chroot(ctx, "systemctl", "mask", "poweroff.target")
	require.NoError(t, err, out)
	require.NoError(t, n.Boot(ctx, debroot.BootOptions{}))
	leader, err := n.Leader()
	require.NoError(t, err)

	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	require.ErrorIs(t, n.Stop(sctx), debroot.ErrKilled)
	_, err = os.Stat(fmt.Sprintf("/proc/%d", leader))
	require.True(t, os.IsNotExist(err), "the node's systemd is gone")
	requireNothingLeft(t, n)
}

// TestKill: a node killed like a pulled power cord is gone at once, and
// boots again from what its disk held.
func TestKill(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := debroot.NewNode(t, debroot.Prepare(t), "killed")
	require.NoError(t, n.Kill(), "not booted: nothing to do")
	require.NoError(t, n.Boot(ctx, debroot.BootOptions{}))
	leader, err := n.Leader()
	require.NoError(t, err)
	id, err := n.ReadFile("/etc/machine-id")
	require.NoError(t, err)

	require.NoError(t, n.Kill())
	_, err = os.Stat(fmt.Sprintf("/proc/%d", leader))
	require.True(t, os.IsNotExist(err), "the node's systemd is gone")
	requireNothingLeft(t, n)
	_, err = n.Exec(ctx, "true")
	require.ErrorContains(t, err, "not booted")
	require.NoError(t, n.Kill(), "killing it again does nothing")

	require.NoError(t, n.Boot(ctx, debroot.BootOptions{}))
	again, err := n.ReadFile("/etc/machine-id")
	require.NoError(t, err)
	require.Equal(t, string(id), string(again))

	// Down by itself, before Stop: files are still written, on disk.
	_, _ = n.Exec(ctx, "systemctl", "poweroff", "--no-block") // may lose its connection
	require.Eventually(t, func() bool { _, err := n.Leader(); return err != nil }, time.Minute, 20*time.Millisecond)
	require.NoError(t, n.WriteFile("/etc/motd", []byte("written while down\n"), 0o644))
	b, err := n.ReadFile("/etc/motd")
	require.NoError(t, err)
	require.Equal(t, "written while down\n", string(b))
	require.NoError(t, n.Stop(ctx))
	requireNothingLeft(t, n)
	b, err = os.ReadFile(filepath.Join(n.Root(), "etc", "motd"))
	require.NoError(t, err)
	require.Equal(t, "written while down\n", string(b), "in the tree on disk")
}

func TestBootOptions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := debroot.NewNode(t, debroot.Prepare(t), "options")
	tests := []struct {
		name    string
		o       debroot.BootOptions
		wantErr string
	}{
		{"missing namespace", debroot.BootOptions{NetNS: "/run/netns/debroot-does-not-exist"}, "not a namespace file"},
		{"relative bind", debroot.BootOptions{Binds: []debroot.Bind{{Host: "tmp", Node: "/x"}}}, "must be absolute"},
		{"colon in bind", debroot.BootOptions{Binds: []debroot.Bind{{Host: "/tmp", Node: "/x:y"}}}, "must not contain ':'"},
		{"missing bind source", debroot.BootOptions{Binds: []debroot.Bind{{Host: "/debroot-does-not-exist", Node: "/x"}}}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, n.Boot(ctx, tt.o), tt.wantErr)
		})
	}
	_, err := n.Exec(ctx, "true")
	require.ErrorContains(t, err, "not booted")

	// A failing unit: Boot names it, unless degraded is allowed.
	require.NoError(t, n.WriteFile("/etc/systemd/system/broken.service",
		[]byte("[Service]\nType=oneshot\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target\n"), 0o644))
	out, err := n.Chroot(ctx, "systemctl", "enable", "broken.service")
	require.NoError(t, err, out)
	err = n.Boot(ctx, debroot.BootOptions{})
	require.ErrorContains(t, err, "degraded")
	require.ErrorContains(t, err, "broken.service")
	require.NoError(t, n.Stop(ctx))

	// And a read-only bind for the node's lifetime.
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "Release"), []byte("Origin: garrison\n"), 0o644))
	require.NoError(t, n.Boot(ctx, debroot.BootOptions{
		AllowDegraded: true,
		Binds:         []debroot.Bind{{Host: host, Node: "/media/garrison"}},
	}))
	out, err = n.Exec(ctx, "sh", "-c", "cat /media/garrison/Release; touch /media/garrison/x 2>/dev/null || echo read-only")
	require.NoError(t, err, out)
	require.Equal(t, "Origin: garrison\nread-only\n", out)
	require.NoError(t, n.Stop(ctx))
	requireNothingLeft(t, n)
}

func TestNodeNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Node1", "1node", "node_1", "node.1", strings.Repeat("a", 41)} {
		_, err := debroot.CreateNode(t.Context(), &debroot.Base{Root: "/nonexistent"}, debroot.NodeOptions{Name: name})
		require.ErrorContains(t, err, "node name")
	}
}

// requireNothingLeft checks that no process on the machine runs on the
// node's root or has anything mounted under its directory.
func requireNothingLeft(t *testing.T, n *debroot.Node) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if cmd, err := os.ReadFile(p + "/cmdline"); err == nil && strings.Contains(string(cmd), n.Dir()) {
			t.Errorf("process %s still runs on %s: %q", filepath.Base(p), n.Dir(), strings.ReplaceAll(string(cmd), "\x00", " "))
		}
		if mi, err := os.ReadFile(p + "/mountinfo"); err == nil && strings.Contains(string(mi), n.Dir()) {
			t.Errorf("process %s has a mount under %s", filepath.Base(p), n.Dir())
		}
	}
	ms, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	require.NotContains(t, string(ms), n.Dir())
	locks, _ := filepath.Glob("/run/systemd/nspawn/propagate/" + n.Name() + "-*")
	require.Empty(t, locks, "systemd-nspawn's propagation directory is gone")
	// The node's own cgroups (below this process's, which is the root of
	// each hierarchy on the dev machine).
	var cgroups []string
	for _, pattern := range []string{"/sys/fs/cgroup/debroot-%s-*", "/sys/fs/cgroup/*/debroot-%s-*"} {
		m, _ := filepath.Glob(fmt.Sprintf(pattern, n.Name()))
		cgroups = append(cgroups, m...)
	}
	require.Empty(t, cgroups, "the node's cgroups are gone")
}

func requireContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, string(b))
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
}
