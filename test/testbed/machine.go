package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/garrison-chat/garrison/test/debroot"
)

// What one machine needs, unless Options says otherwise.
const (
	// DefaultMachineDisk is the free disk a machine needs where its copy
	// of the base root goes (under Options.BaseDir): the copy is about
	// 215 MB, and grows to about 1.2 GiB once the bundle's packages
	// (PostgreSQL, etcd, Patroni, nginx, MinIO, Garrison) are installed.
	DefaultMachineDisk uint64 = 1229 << 20
	// DefaultMachineMemory is the memory a machine needs (MemAvailable):
	// an idle machine takes far less, the cluster's services about this.
	DefaultMachineMemory uint64 = 700 << 20
	// DefaultBootTimeout bounds Node.Boot and Machine.Start (copy, boot
	// and sshd) when BootOptions.Timeout is 0.
	DefaultBootTimeout = 3 * time.Minute
	// machineStopTimeout bounds a machine's poweroff at Close; a machine
	// still up then is killed by PID.
	machineStopTimeout = 30 * time.Second
)

// ErrResources is wrapped by the error of Create (and so New) and of
// Node.Boot when this machine has less free disk or memory than the
// testbed's machines need. The error names the need and what is
// available.
var ErrResources = errors.New("testbed: not enough resources for the machines")

// BootOptions configures Node.Boot.
type BootOptions struct {
	// Binds are read-only bind mounts into the machine for as long as it
	// runs (debroot.Bind: Host path, Node path).
	Binds []debroot.Bind
	// AllowDegraded accepts a boot that ends "degraded" (some unit
	// failed); otherwise that is an error naming the failed units.
	AllowDegraded bool
	// Timeout bounds the boot (the copy, systemd reaching "running" and
	// sshd answering), also for later Machine.Start calls; 0 means
	// DefaultBootTimeout. ctx may end it sooner.
	Timeout time.Duration
}

// BootTimes is how long the steps of a machine's last boot took.
type BootTimes struct {
	// Copy is the copy of the base root (the first boot only; 0 after).
	Copy time.Duration
	// Boot is from starting systemd-nspawn until systemd is running.
	Boot time.Duration
	// SSH is from then until sshd answered on the node's address, port 22.
	SSH time.Duration
}

// Total returns the sum of the steps.
func (b BootTimes) Total() time.Duration { return b.Copy + b.Boot + b.SSH }

// Machine is a testbed node booted as a real Debian machine: a
// debroot node (a copy of the cached base root) booted with
// systemd-nspawn -b in the node's network namespace, so it has the node's
// name, address and faults. It runs systemd and sshd, trusts the
// testbed's SSH key (Testbed.SSHKeyFile) for root, and its /etc/hosts
// lists every node of the testbed. It has no route but the testbed's
// subnet: nothing it does can leave the machine.
//
// The node's namespace is shared: Node.Start, Node.Command and
// Node.DialContext on a machine's node run host programs (or the test's
// own sockets) in the machine's network namespace, not inside the
// machine; Exec runs a command inside it.
type Machine struct {
	node *Node
	dn   *debroot.Node
	opts BootOptions

	mu    sync.Mutex // guards the field below
	times BootTimes
}

// Boot makes node n a machine: it copies base into the node's
// directory as a debroot node named after n (so its hostname is n's
// name), writes the testbed's public key to /root/.ssh/authorized_keys
// and the testbed's nodes to /etc/hosts, boots it with
// systemd-nspawn -b --network-namespace-path on n's namespace, and
// returns once systemd is running and sshd answers on n's address, port
// 22 (polled from inside the namespace). base comes from
// debroot.Prepare(t) (or debroot.Ensure).
//
// Before anything else it checks that this machine has the disk and
// memory one more machine needs (Options.MachineDisk, MachineMemory).
// The first Boot of a testbed makes its SSH key pair. The machine runs
// until Poweroff, Kill or the testbed's Close, which powers it off
// (killing it by PID if it does not go down) and removes its copy; when
// the test failed, New's cleanup first logs its journal and console. A
// failed Boot leaves nothing behind, and may be retried.
func (n *Node) Boot(ctx context.Context, base *debroot.Base, o BootOptions) (_ *Machine, err error) {
	tb := n.tb
	if base == nil || base.Root == "" {
		return nil, fmt.Errorf("testbed: %s: boot: no base root (get one from debroot.Prepare or debroot.Ensure)", n.name)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("testbed: %s: boot: BootOptions.Timeout %s is negative", n.name, o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultBootTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := tb.checkResources(n.dir, 1); err != nil {
		return nil, fmt.Errorf("testbed: %s: boot: %w", n.name, err)
	}
	pub, err := tb.sshPublicKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: boot: %w", n.name, err)
	}

	m := &Machine{node: n, opts: o}
	n.mu.Lock()
	if n.machine != nil || n.booting {
		n.mu.Unlock()
		return nil, fmt.Errorf("testbed: %s: boot: the node is a machine already (use Machine.Start to boot it again)", n.name)
	}
	n.booting = true
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.booting = false
		if err == nil {
			n.machine = m
		}
		n.mu.Unlock()
	}()
	// Recorded before the copy exists, so that a sweep after this process
	// dies finds it (debroot.Sweep on the parent directory).
	tb.mu.Lock()
	if tb.closed {
		tb.mu.Unlock()
		return nil, fmt.Errorf("testbed: %s: boot: the testbed is closed", n.name)
	}
	err = tb.recordLocked(func(r *record) {
		r.Machines = append(r.Machines, machineRecord{Node: n.name, Parent: n.dir})
	})
	tb.mu.Unlock()
	if err != nil {
		return nil, err
	}

	start := time.Now()
	m.dn, err = debroot.CreateNode(ctx, base, debroot.NodeOptions{Name: n.name, Dir: n.dir, Logf: tb.logf})
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: boot: %w", n.name, err)
	}
	m.times.Copy = time.Since(start)
	defer func() {
		if err != nil {
			m.discard(ctx)
		}
	}()
	if err := tb.record(func(r *record) { r.machine(n.name).Dir = m.dn.Dir() }); err != nil { // appended above
		return nil, err
	}
	if err := m.dn.MkdirAll("/root/.ssh", 0o700); err != nil {
		return nil, fmt.Errorf("testbed: %s: boot: %w", n.name, err)
	}
	if err := m.dn.WriteFile("/root/.ssh/authorized_keys", pub, 0o600); err != nil {
		return nil, fmt.Errorf("testbed: %s: boot: %w", n.name, err)
	}
	tb.mu.Lock()
	if tb.closed {
		tb.mu.Unlock()
		return nil, fmt.Errorf("testbed: %s: boot: the testbed is closed", n.name)
	}
	tb.machines = append(tb.machines, m)
	tb.mu.Unlock()
	// Registered first, so that a node added meanwhile is written here by
	// AddNode's WriteHosts if not by this one.
	if err := tb.WriteHosts(ctx); err != nil {
		return nil, fmt.Errorf("testbed: %s: boot: %w", n.name, err)
	}
	if err := m.boot(ctx); err != nil {
		return nil, err
	}
	t := m.BootTimes()
	tb.logf("testbed: machine %s up at %s in %s (copy %s, boot %s, sshd %s)", n.name, n.addr,
		t.Total().Round(10*time.Millisecond), t.Copy.Round(10*time.Millisecond),
		t.Boot.Round(10*time.Millisecond), t.SSH.Round(10*time.Millisecond))
	return m, nil
}

// discard removes the copy of a machine whose Boot failed, and forgets it.
func (m *Machine) discard(ctx context.Context) {
	tb := m.node.tb
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), machineStopTimeout)
	defer cancel()
	if err := m.dn.Remove(ctx); err != nil && !errors.Is(err, debroot.ErrKilled) {
		tb.logf("testbed: %s: remove the machine that failed to boot: %v", m.node.name, err)
	}
	tb.mu.Lock()
	tb.machines = slices.DeleteFunc(tb.machines, func(x *Machine) bool { return x == m })
	tb.mu.Unlock()
	m.forgetPID()
}

// boot boots the machine's copy in the node's namespace and waits for
// sshd.
func (m *Machine) boot(ctx context.Context) error {
	n := m.node
	start := time.Now()
	err := m.dn.Boot(ctx, debroot.BootOptions{
		NetNS:         filepath.Join(netnsDir, n.ns),
		Binds:         m.opts.Binds,
		AllowDegraded: m.opts.AllowDegraded,
	})
	if err != nil {
		return fmt.Errorf("testbed: %s: boot: %w", n.name, err)
	}
	running := time.Now()
	if pid, err := m.dn.Leader(); err == nil {
		if st, err := procStart(pid); err == nil {
			err := n.tb.record(func(r *record) {
				if mr := r.machine(n.name); mr != nil {
					mr.PID, mr.Start = pid, st
				}
			})
			if err != nil {
				return err
			}
		}
	}
	if err := n.waitSSH(ctx, n.HostPort(22)); err != nil {
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		j, jerr := m.Journal(jctx, "ssh.service", 30)
		if jerr != nil {
			j += jerr.Error()
		}
		return fmt.Errorf("testbed: %s: boot: %w\njournalctl -u ssh.service:\n%s", n.name, err, j)
	}
	m.mu.Lock()
	m.times.Boot, m.times.SSH = running.Sub(start), time.Since(running)
	m.mu.Unlock()
	return nil
}

// waitSSH polls, from inside the node's namespace, until an SSH server
// at hostport sends its banner, or ctx ends.
func (n *Node) waitSSH(ctx context.Context, hostport string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		banner, err := n.sshBanner(ctx, hostport)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd does not answer at %s: %w (last: %v)", hostport, ctx.Err(), errors.Join(err, bannerNote(banner)))
		case <-tick.C:
		}
	}
}

func bannerNote(banner string) error {
	if banner == "" {
		return nil
	}
	return fmt.Errorf("banner %q", banner)
}

// sshBanner connects to hostport from inside the node and returns the
// first line the server sends, which must be an SSH-2.0 banner.
func (n *Node) sshBanner(ctx context.Context, hostport string) (string, error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := n.DialContext(dctx, "tcp", hostport)
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline, _ := dctx.Deadline()
	if err := c.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	line, err := bufio.NewReaderSize(c, 256).ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil {
		return line, err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return line, errors.New("not an SSH server")
	}
	return line, nil
}

// Node returns the testbed node the machine runs on: its name, address,
// namespace and faults are the machine's.
func (m *Machine) Node() *Node { return m.node }

// Name returns the machine's name, its node's (and its hostname).
func (m *Machine) Name() string { return m.node.name }

// Debroot returns the machine's debroot node: ReadFile, WriteFile and
// MkdirAll reach its files safely (never write below its Root with host
// paths), Leader its systemd's host PID.
func (m *Machine) Debroot() *debroot.Node { return m.dn }

// BootTimes returns how long the steps of the machine's last boot took.
func (m *Machine) BootTimes() BootTimes {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.times
}

// Exec runs args inside the booted machine (nsenter into its PID 1's
// namespaces, as root) and returns the combined output; on a non-zero
// exit the error (wrapping *exec.ExitError) carries the output's tail.
func (m *Machine) Exec(ctx context.Context, args ...string) (string, error) {
	return m.dn.Exec(ctx, args...)
}

// Journal returns the last lines (all of them when lines <= 0) of the
// booted machine's journal of this boot, of unit alone unless unit is "".
func (m *Machine) Journal(ctx context.Context, unit string, lines int) (string, error) {
	args := []string{"journalctl", "-b", "--no-pager"}
	if lines > 0 {
		args = append(args, "-n", strconv.Itoa(lines))
	}
	if unit != "" {
		args = append(args, "-u", unit)
	}
	return m.Exec(ctx, args...)
}

// HostKeyFingerprint returns the SHA256 fingerprint ("SHA256:...", as
// ssh-keygen -l and ssh.FingerprintSHA256 write it) of the machine's
// ed25519 host key, which its first boot generated: the key an admin
// confirms, or an inventory pins.
func (m *Machine) HostKeyFingerprint(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	const path = "/etc/ssh/ssh_host_ed25519_key.pub"
	b, err := m.dn.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("testbed: %s: host key: %w", m.node.name, err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return "", fmt.Errorf("testbed: %s: host key %s: %w", m.node.name, path, err)
	}
	if key.Type() != ssh.KeyAlgoED25519 {
		return "", fmt.Errorf("testbed: %s: host key %s is %s, not ed25519", m.node.name, path, key.Type())
	}
	return ssh.FingerprintSHA256(key), nil
}

// Poweroff shuts the machine down (systemctl poweroff) and waits until
// it is down, killing it by PID if it is still up when ctx ends (or after
// 2 minutes); the error then wraps debroot.ErrKilled. Its disk stays:
// Start boots it again. Nothing happens when it is not running.
func (m *Machine) Poweroff(ctx context.Context) error {
	err := m.dn.Stop(ctx)
	m.forgetPID()
	return err
}

// Kill ends the machine at once, like a pulled power cord: SIGKILL, by
// PID, to its systemd-nspawn and with it to every process of the machine.
// Its disk stays as the kill left it: Start boots it again. Nothing
// happens when it is not running.
func (m *Machine) Kill() error {
	err := m.dn.Kill()
	m.forgetPID()
	return err
}

// Start boots the machine again after Poweroff or Kill, with the options
// it was first booted with, and waits as Boot does for systemd and sshd.
// It keeps its identity: machine-id, SSH host keys, whatever was
// installed.
func (m *Machine) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	if err := m.boot(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	m.times.Copy = 0
	t := m.times
	m.mu.Unlock()
	m.node.tb.logf("testbed: machine %s up again in %s (boot %s, sshd %s)", m.node.name,
		t.Total().Round(10*time.Millisecond), t.Boot.Round(10*time.Millisecond), t.SSH.Round(10*time.Millisecond))
	return nil
}

// forgetPID clears the machine's recorded PID once it is down.
func (m *Machine) forgetPID() {
	if _, err := m.dn.Leader(); err == nil {
		return // still (or again) running
	}
	_ = m.node.tb.record(func(r *record) {
		if mr := r.machine(m.node.name); mr != nil {
			mr.PID, mr.Start = 0, 0
		}
	})
}

// remove powers the machine off (bounded by machineStopTimeout, then
// killed by PID) and deletes its copy, for Close.
func (m *Machine) remove(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, machineStopTimeout)
	defer cancel()
	err := m.dn.Remove(ctx)
	m.forgetPID()
	if errors.Is(err, debroot.ErrKilled) {
		m.node.tb.logf("testbed: machine %s: %v", m.node.name, err)
		return nil
	}
	return err
}

// Machine returns the machine booted on the node by Boot, or nil.
func (n *Node) Machine() *Machine {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.machine
}

// Machines returns the testbed's machines, in the order their Boot
// calls made their copies (a machine whose Boot is still under way
// included).
func (tb *Testbed) Machines() []*Machine {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]*Machine(nil), tb.machines...)
}

// WriteHosts writes every machine's /etc/hosts: localhost, and every node
// of the testbed by name (the machine's own name on its address, not on
// 127.0.1.1, so that a service advertising its hostname is reachable).
// Boot and AddNode call it, so a test needs it only after changing a
// machine's /etc/hosts itself. A machine whose file is already right is
// not written.
func (tb *Testbed) WriteHosts(ctx context.Context) error {
	tb.hostsMu.Lock()
	defer tb.hostsMu.Unlock()
	nodes := tb.Nodes()
	var errs []error
	for _, m := range tb.Machines() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("testbed: write /etc/hosts: %w", err)
		}
		want := hostsFile(tb.prefix, m.node.name, nodes)
		if have, err := m.dn.ReadFile("/etc/hosts"); err == nil && bytes.Equal(have, want) {
			continue
		}
		if err := m.dn.WriteFile("/etc/hosts", want, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("testbed: %s: write /etc/hosts: %w", m.node.name, err))
		}
	}
	return errors.Join(errs...)
}

// hostsFile is /etc/hosts for the machine self among nodes.
func hostsFile(prefix, self string, nodes []*Node) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# /etc/hosts of %s, written by the testbed (run %s): every node of the run\n", self, prefix)
	b.WriteString("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "%s\t%s\n", n.addr, n.name)
	}
	return b.Bytes()
}

// SSHKeyFile returns the path of the testbed's SSH private key (ed25519,
// OpenSSH format, mode 0600; the public key is beside it with .pub), which
// every machine trusts for root: the key the admin's garrisonctl (or
// inventory) uses. The first Boot creates it.
func (tb *Testbed) SSHKeyFile() string {
	// "ssh-key" cannot be a node's directory: node names have no '-'.
	return filepath.Join(tb.dir, "ssh-key", "id_ed25519")
}

// sshPublicKey returns the testbed's public key in authorized_keys
// format, making the key pair with ssh-keygen first if needed.
func (tb *Testbed) sshPublicKey(ctx context.Context) ([]byte, error) {
	tb.keyMu.Lock()
	defer tb.keyMu.Unlock()
	if tb.pubKey != nil {
		return tb.pubKey, nil
	}
	path := tb.SSHKeyFile()
	keygen, err := lookTool("ssh-keygen")
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w (apt-get install openssh-client)", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	// Left by an attempt that failed half-way: ssh-keygen would ask
	// whether to overwrite.
	for _, f := range []string{path, path + ".pub"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ssh key: %w", err)
		}
	}
	out, err := command(ctx, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "garrison-testbed-"+tb.prefix, "-f", path).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ssh key: ssh-keygen: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey(pub); err != nil {
		return nil, fmt.Errorf("ssh key: %s: %w", path+".pub", err)
	}
	tb.pubKey = pub
	tb.logf("testbed: SSH key for the machines: %s", path)
	return pub, nil
}

// DialSSH opens an SSH connection from inside node n to machine m, as
// root with the testbed's key (SSHKeyFile), accepting nothing but m's
// ed25519 host key (HostKeyFingerprint): the checks the admin's
// garrisonctl makes, for a test's own commands on a machine. ctx bounds
// the dial and the handshake; the caller closes the client.
func (n *Node) DialSSH(ctx context.Context, m *Machine) (*ssh.Client, error) {
	fail := func(err error) (*ssh.Client, error) {
		return nil, fmt.Errorf("testbed: %s: ssh to %s: %w", n.name, m.node.name, err)
	}
	want, err := m.HostKeyFingerprint(ctx)
	if err != nil {
		return fail(err)
	}
	pem, err := os.ReadFile(n.tb.SSHKeyFile())
	if err != nil {
		return fail(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", n.tb.SSHKeyFile(), err))
	}
	hostport := m.node.HostPort(22)
	conn, err := n.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return fail(err)
	}
	// The handshake has no context: closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, hostport, &ssh.ClientConfig{
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
	if !stop() {
		if err == nil {
			c.Close()
		}
		return fail(ctx.Err())
	}
	if err != nil {
		conn.Close()
		return fail(err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// resourceNeeds says what the testbed's machines need each.
type resourceNeeds struct {
	disk, memory uint64
}

// checkResources checks that this machine has the disk under dir and the
// memory for count more machines.
func (tb *Testbed) checkResources(dir string, count int) error {
	return checkResources(dir, count, tb.needs)
}

func checkResources(dir string, count int, needs resourceNeeds) error {
	disk, err := debroot.DiskFree(dir)
	if err != nil {
		return err
	}
	mem, err := debroot.MemAvailable()
	if err != nil {
		return err
	}
	return resourceShortfall(dir, count, needs, disk, mem)
}

// resourceShortfall returns an error wrapping ErrResources naming each
// resource of which less is free than count machines need.
func resourceShortfall(dir string, count int, needs resourceNeeds, disk, mem uint64) error {
	var short []string
	machines := "a machine needs"
	if count != 1 {
		machines = fmt.Sprintf("%d machines need", count)
	}
	if need := uint64(count) * needs.disk; disk < need {
		short = append(short, fmt.Sprintf("disk: %s free under %s, %s %s (Options.MachineDisk: %s each)",
			bytesize(disk), dir, machines, bytesize(need), bytesize(needs.disk)))
	}
	if need := uint64(count) * needs.memory; mem < need {
		short = append(short, fmt.Sprintf("memory: %s available, %s %s (Options.MachineMemory: %s each)",
			bytesize(mem), machines, bytesize(need), bytesize(needs.memory)))
	}
	if len(short) > 0 {
		return fmt.Errorf("%w: %s", ErrResources, strings.Join(short, "; "))
	}
	return nil
}

// bytesize formats n as GiB with one decimal from 1 GiB up, else as MiB.
func bytesize(n uint64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
