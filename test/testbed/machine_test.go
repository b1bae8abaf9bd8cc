package testbed_test

import (
	"bufio"
	"context"
	"encoding/json"
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
	"golang.org/x/crypto/ssh"

	"github.com/garrison-chat/garrison/test/debroot"
	"github.com/garrison-chat/garrison/test/testbed"
)

// TestMachines boots two machines and uses them from a plain admin node,
// as the installer's end-to-end test will: SSH with pinned host keys,
// names, no way out of the subnet, faults, a killed machine, and a
// teardown that leaves nothing. The subtests share the machines (booting
// is the expensive part), so they run in order.
func TestMachines(t *testing.T) {
	t.Parallel()
	stateDir := t.TempDir()
	tb := testbed.New(t, testbed.Options{StateDir: stateDir, Machines: 2})
	base := debroot.Prepare(t)
	ctx := t.Context()
	// Names no other package's testbed uses: the teardown check below
	// looks for leftovers by node name in host-wide places (/run, the
	// cgroup tree), which test/install's machines (app1, app2…) share.
	nodes, err := tb.AddNodes(ctx, "admin", "m1", "m2")
	require.NoError(t, err)
	admin := nodes[0]

	// Both at once, as a test booting a cluster would.
	machines := make([]*testbed.Machine, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, n := range nodes[1:] {
		wg.Go(func() { machines[i], errs[i] = n.Boot(ctx, base, testbed.BootOptions{}) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	m1, m2 := machines[0], machines[1]
	for _, m := range machines {
		bt := m.BootTimes()
		t.Logf("figures: machine %s: copy %s + boot %s + sshd %s = %s", m.Name(),
			bt.Copy.Round(time.Millisecond), bt.Boot.Round(time.Millisecond), bt.SSH.Round(time.Millisecond), bt.Total().Round(time.Millisecond))
	}
	require.Same(t, m1, nodes[1].Machine())
	require.Nil(t, admin.Machine(), "a plain node")
	require.ElementsMatch(t, machines, tb.Machines())
	_, err = nodes[1].Boot(ctx, base, testbed.BootOptions{})
	require.ErrorContains(t, err, "a machine already")
	_, err = admin.Boot(ctx, nil, testbed.BootOptions{})
	require.ErrorContains(t, err, "no base root")

	t.Run("ssh from the admin node", func(t *testing.T) {
		fi, err := os.Stat(tb.SSHKeyFile())
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the private key")
		pub, err := os.ReadFile(tb.SSHKeyFile() + ".pub")
		require.NoError(t, err)

		fingerprints := map[string]bool{}
		for i, m := range machines {
			other := machines[1-i]
			// Written into the machine as sshd wants it.
			out, err := m.Exec(ctx, "stat", "-c", "%a %U", "/root/.ssh", "/root/.ssh/authorized_keys")
			require.NoError(t, err, out)
			require.Equal(t, "700 root\n600 root\n", out)
			keys, err := m.Debroot().ReadFile("/root/.ssh/authorized_keys")
			require.NoError(t, err)
			require.Equal(t, string(pub), string(keys))

			fp, err := m.HostKeyFingerprint(ctx)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(fp, "SHA256:"), fp)
			out, err = m.Exec(ctx, "ssh-keygen", "-l", "-f", "/etc/ssh/ssh_host_ed25519_key.pub")
			require.NoError(t, err, out)
			require.Contains(t, out, " "+fp+" ", "what ssh-keygen says inside the machine")
			require.False(t, fingerprints[fp], "every machine has its own host key")
			fingerprints[fp] = true

			c, err := admin.DialSSH(ctx, m)
			require.NoError(t, err)
			require.Equal(t, m.Name()+"\n", sshRun(t, c, "hostname"))
			require.Equal(t, fmt.Sprintf("%-15s %s\n", other.Node().Addr(), other.Name()), sshRun(t, c, "getent hosts "+other.Name()))
			require.Equal(t, fmt.Sprintf("%-15s %s\n", admin.Addr(), admin.Name()), sshRun(t, c, "getent hosts admin"))
			require.Equal(t, fmt.Sprintf("%-15s %s\n", m.Node().Addr(), m.Name()), sshRun(t, c, "getent hosts "+m.Name()),
				"its own name is its address, not 127.0.1.1")
			require.NoError(t, c.Close())
		}

		// The host key check is not vacuous: m2's key for m1 fails.
		fp2, err := m2.HostKeyFingerprint(ctx)
		require.NoError(t, err)
		_, err = sshDial(ctx, admin, m1, tb.SSHKeyFile(), fp2)
		require.ErrorContains(t, err, "want "+fp2)
		c, err := sshDial(ctx, admin, m1, tb.SSHKeyFile(), "")
		require.NoError(t, err)
		require.NoError(t, c.Close())

		// A program run on the admin node (as garrisonctl will be), here
		// OpenSSH's client with the key file and a pinned known_hosts.
		hostKey, err := m2.Debroot().ReadFile("/etc/ssh/ssh_host_ed25519_key.pub")
		require.NoError(t, err)
		knownHosts := filepath.Join(t.TempDir(), "known_hosts")
		require.NoError(t, os.WriteFile(knownHosts, []byte(m2.Node().Addr().String()+" "+string(hostKey)), 0o600))
		cmd := admin.Command(ctx, "ssh", "-F", "/dev/null", "-i", tb.SSHKeyFile(), "-o", "IdentitiesOnly=yes",
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+knownHosts,
			"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
			"root@"+m2.Node().Addr().String(), "hostname")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, "m2\n", string(out))
	})

	t.Run("no route out of the subnet", func(t *testing.T) {
		out, err := m1.Exec(ctx, "cat", "/proc/net/route", "/proc/net/ipv6_route")
		require.NoError(t, err, out)
		var v4 []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 11 && f[0] != "Iface": // IPv4: Iface Destination Gateway ...
				v4 = append(v4, f[0]+" "+f[1]+" "+f[2])
				require.NotEqual(t, "00000000", f[1], "an IPv4 default route: %s", line)
			case len(f) == 10 && f[9] != "lo": // IPv6: destination, prefix length, ..., device
				// (The kernel lists a ::/0 reject route on lo: not a way out.)
				require.False(t, f[0] == strings.Repeat("0", 32) && f[1] == "00", "an IPv6 default route: %s", line)
			}
		}
		require.Len(t, v4, 1, "only the subnet's route: %v", v4)
		require.True(t, strings.HasPrefix(v4[0], "eth0 "), v4[0])
		require.True(t, strings.HasSuffix(v4[0], " 00000000"), "no gateway: %s", v4[0])

		// Outside the subnet (192.0.2.1 is this machine's own gateway):
		// refused at once inside the machine, not a timeout.
		out, err = m1.Exec(ctx, "curl", "-sS", "-v", "--max-time", "20", "http://192.0.2.1/")
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, out)
		require.Equal(t, 7, exit.ExitCode(), "curl: failed to connect (28 would be a timeout): %s", out)
		require.Contains(t, out, "Network is unreachable")

		// Another machine, by name, works.
		require.NoError(t, m2.Debroot().WriteFile("/srv/hello/index.html", []byte("hello from m2\n"), 0o644))
		out, err = m2.Exec(ctx, "systemd-run", "--unit=hello", "--", "python3", "-m", "http.server", "8080",
			"--bind", m2.Node().Addr().String(), "--directory", "/srv/hello")
		require.NoError(t, err, out)
		require.NoError(t, m1.Node().WaitListening(ctx, m2.Node().HostPort(8080)))
		out, err = m1.Exec(ctx, "curl", "-fsS", "--max-time", "20", "http://m2:8080/")
		require.NoError(t, err, out)
		require.Equal(t, "hello from m2\n", out)
	})

	t.Run("partition and heal", func(t *testing.T) {
		ssh1, ssh2 := m1.Node().HostPort(22), m2.Node().HostPort(22)
		require.True(t, eventuallyReachable(m1.Node(), ssh2))
		require.NoError(t, tb.Partition(ctx, m1.Node(), m2.Node()))
		require.False(t, reachable(m1.Node(), ssh2), "m1 -> m2")
		require.False(t, reachable(m2.Node(), ssh1), "m2 -> m1")
		require.True(t, eventuallyReachable(admin, ssh1), "admin -> m1 still works")
		require.True(t, eventuallyReachable(admin, ssh2), "admin -> m2 still works")
		// From inside the machine too: silence, so a timeout.
		out, err := m1.Exec(ctx, "curl", "-sS", "--max-time", "1", "http://m2:8080/")
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, out)
		require.Equal(t, 28, exit.ExitCode(), "a timeout: %s", out)

		require.NoError(t, tb.Heal(ctx))
		require.True(t, eventuallyReachable(m1.Node(), ssh2), "healed: m1 -> m2")
		require.True(t, eventuallyReachable(m2.Node(), ssh1), "healed: m2 -> m1")
	})

	t.Run("a node added later is in every machine's hosts", func(t *testing.T) {
		late, err := tb.AddNode(ctx, "late")
		require.NoError(t, err)
		for _, m := range machines {
			out, err := m.Exec(ctx, "getent", "hosts", "late")
			require.NoError(t, err, out)
			require.Equal(t, fmt.Sprintf("%-15s late\n", late.Addr()), out)
		}
	})

	t.Run("idle memory", func(t *testing.T) {
		for _, m := range machines {
			pss, rss, procs := machineMemory(t, m)
			t.Logf("figures: idle machine %s: %d processes, PSS %.1f MiB, RSS %.1f MiB", m.Name(), procs, float64(pss)/(1<<20), float64(rss)/(1<<20))
			require.Positive(t, pss)
		}
	})

	t.Run("killed and started again", func(t *testing.T) {
		fp, err := m2.HostKeyFingerprint(ctx)
		require.NoError(t, err)
		leader, err := m2.Debroot().Leader()
		require.NoError(t, err)
		require.NoError(t, m2.Kill())
		require.False(t, alive(leader), "its systemd is gone")
		require.False(t, reachable(admin, m2.Node().HostPort(22)))
		_, err = m2.Exec(ctx, "true")
		require.ErrorContains(t, err, "not booted")

		require.NoError(t, m2.Start(ctx))
		bt := m2.BootTimes()
		t.Logf("figures: machine m2 started again: boot %s + sshd %s", bt.Boot.Round(time.Millisecond), bt.SSH.Round(time.Millisecond))
		require.Zero(t, bt.Copy)
		again, err := m2.HostKeyFingerprint(ctx)
		require.NoError(t, err)
		require.Equal(t, fp, again, "the same host key")
		c, err := admin.DialSSH(ctx, m2)
		require.NoError(t, err)
		require.Equal(t, "m2\n", sshRun(t, c, "hostname"))
		require.NoError(t, c.Close())
	})

	t.Run("teardown leaves nothing", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(stateDir, tb.Prefix()+".json"))
		require.NoError(t, err)
		var rec struct {
			Machines []struct {
				Node string `json:"node"`
				Dir  string `json:"dir"`
				PID  int    `json:"pid"`
			} `json:"machines"`
		}
		require.NoError(t, json.Unmarshal(b, &rec))
		require.Len(t, rec.Machines, 2, "%s", b)
		for _, m := range rec.Machines {
			require.DirExists(t, m.Dir)
			require.True(t, alive(m.PID), "machine %s runs as recorded (pid %d)", m.Node, m.PID)
		}
		subnet := tb.Subnet().String()

		require.NoError(t, tb.Close(ctx))
		require.Empty(t, namespaces(t, tb.Prefix()))
		require.False(t, blackholed(t, subnet), "the route is removed")
		require.NoDirExists(t, tb.Dir())
		require.NoFileExists(t, filepath.Join(stateDir, tb.Prefix()+".json"))
		for _, m := range rec.Machines {
			require.False(t, alive(m.PID), "machine %s's systemd (pid %d) is gone", m.Node, m.PID)
			require.NoDirExists(t, m.Dir)
			requireNoProcessMentions(t, m.Dir)
			props, _ := filepath.Glob("/run/systemd/nspawn/propagate/" + m.Node + "-*")
			require.Empty(t, props, "systemd-nspawn's propagation directory")
			var cgroups []string
			for _, pattern := range []string{"/sys/fs/cgroup/debroot-%s-*", "/sys/fs/cgroup/*/debroot-%s-*"} {
				found, _ := filepath.Glob(fmt.Sprintf(pattern, m.Node))
				cgroups = append(cgroups, found...)
			}
			require.Empty(t, cgroups, "the machine's cgroups")
		}
		requireNoProcessMentions(t, tb.Dir())
		_, err = admin.Boot(ctx, base, testbed.BootOptions{})
		require.ErrorContains(t, err, "closed")
	})
}

// helperOrphanMachine builds a testbed with a booted machine, prints what
// it made and exits without cleaning up: a test run killed mid-way.
func helperOrphanMachine() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := orphanMachine(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func orphanMachine(ctx context.Context) error {
	base, err := debroot.Ensure(ctx, nil)
	if err != nil {
		return err
	}
	tb, err := testbed.Create(ctx, testbed.Options{StateDir: os.Getenv("STATE_DIR"), Machines: 1})
	if err != nil {
		return err
	}
	n, err := tb.AddNode(ctx, "orphan")
	if err != nil {
		return err
	}
	m, err := n.Boot(ctx, base, testbed.BootOptions{})
	if err != nil {
		return err
	}
	leader, err := m.Debroot().Leader()
	if err != nil {
		return err
	}
	fmt.Println(tb.Prefix(), tb.Subnet(), tb.Dir(), m.Debroot().Dir(), leader)
	return nil
}

// TestSweepsDeadRunsMachines: a run that dies leaves a machine's cgroups,
// systemd-nspawn's leftovers under /run and its copy (the machine itself
// dies with its owner: Pdeathsig); the next run's sweep removes them.
func TestSweepsDeadRunsMachines(t *testing.T) {
	t.Parallel()
	skipUnlessSupported(t)
	debroot.Prepare(t) // skips where machines cannot boot; builds the base once
	ctx := t.Context()
	stateDir := t.TempDir()

	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), helperEnv+"=orphan-machine", "STATE_DIR="+stateDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s%s", out, stderr.String())
	var prefix, subnet, dir, machineDir string
	var leader int
	_, err = fmt.Sscan(string(out), &prefix, &subnet, &dir, &machineDir, &leader)
	require.NoError(t, err, "%q", out)
	require.DirExists(t, machineDir)
	cgroups := func() []string {
		var found []string
		for _, pattern := range []string{"/sys/fs/cgroup/debroot-orphan-*", "/sys/fs/cgroup/*/debroot-orphan-*"} {
			m, _ := filepath.Glob(pattern)
			found = append(found, m...)
		}
		return found
	}
	require.NotEmpty(t, cgroups(), "the dead run's machine left its cgroups")

	next, err := testbed.Create(ctx, testbed.Options{StateDir: stateDir, Logf: t.Logf})
	require.NoError(t, err)
	require.NoError(t, next.Close(ctx))
	require.False(t, alive(leader))
	require.Empty(t, cgroups(), "the machine's cgroups are removed")
	props, _ := filepath.Glob("/run/systemd/nspawn/propagate/orphan-*")
	require.Empty(t, props, "systemd-nspawn's propagation directory")
	require.NoDirExists(t, machineDir)
	require.NoDirExists(t, dir)
	require.Empty(t, namespaces(t, prefix))
	require.False(t, blackholed(t, subnet))
	require.NoFileExists(t, filepath.Join(stateDir, prefix+".json"))
	requireNoProcessMentions(t, dir)
}

// sshRun runs cmd over c and returns its output.
func sshRun(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	require.NoError(t, err)
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	require.NoError(t, err, "%s: %s", cmd, out)
	return string(out)
}

// sshDial connects from node from to m as root with the private key in
// keyFile, accepting only the ed25519 host key with fingerprint want (m's
// own when want is ""): an admin's client, written out.
func sshDial(ctx context.Context, from *testbed.Node, m *testbed.Machine, keyFile, want string) (*ssh.Client, error) {
	if want == "" {
		var err error
		if want, err = m.HostKeyFingerprint(ctx); err != nil {
			return nil, err
		}
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, err
	}
	conn, err := from.DialContext(ctx, "tcp", m.Node().HostPort(22))
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, m.Node().HostPort(22), &ssh.ClientConfig{
		User:              "root",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != want {
				return fmt.Errorf("host key %s, want %s", got, want)
			}
			return nil
		},
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// eventuallyReachable polls reachable for up to 10 s: a link that should
// work may be slow to answer on a busy machine.
func eventuallyReachable(from *testbed.Node, hostport string) bool {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !reachable(from, hostport) {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// machineMemory sums the memory of the processes in m's network
// namespace: all of the machine's (systemd-nspawn itself, a few MiB,
// runs outside it).
func machineMemory(t *testing.T, m *testbed.Machine) (pss, rss uint64, procs int) {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat("/run/netns/"+m.Node().Namespace(), &st))
	want := fmt.Sprintf("net:[%d]", st.Ino)
	dirs, err := filepath.Glob("/proc/[0-9]*")
	require.NoError(t, err)
	for _, d := range dirs {
		if pid, _ := strconv.Atoi(filepath.Base(d)); pid == os.Getpid() {
			continue
		}
		if link, err := os.Readlink(d + "/ns/net"); err != nil || link != want {
			continue
		}
		f, err := os.Open(d + "/smaps_rollup")
		if err != nil {
			continue // gone meanwhile, or a kernel thread
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			kb, _ := strconv.ParseUint(fields[1], 10, 64)
			switch fields[0] {
			case "Pss:":
				pss += kb << 10
			case "Rss:":
				rss += kb << 10
			}
		}
		f.Close()
		procs++
	}
	return pss, rss, procs
}

// requireNoProcessMentions fails if any process's command line mentions
// dir (systemd-nspawn and unshare name the machine's root).
func requireNoProcessMentions(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if cmd, err := os.ReadFile(p + "/cmdline"); err == nil && strings.Contains(string(cmd), dir) {
			t.Errorf("process %s still runs on %s: %q", filepath.Base(p), dir, strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
}
