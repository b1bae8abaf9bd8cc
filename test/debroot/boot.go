package debroot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrKilled is wrapped by Stop's error when the node did not power off in
// time and was killed.
var ErrKilled = errors.New("debroot: the node did not power off in time and was killed")

// BootOptions configures Boot.
type BootOptions struct {
	// NetNS is a network namespace to boot the node in, such as
	// /run/netns/<name> (systemd-nspawn --network-namespace-path). Empty
	// means a private one with only lo (--private-network).
	NetNS string
	// Binds are read-only bind mounts for as long as the node runs.
	Binds []Bind
	// AllowDegraded accepts a boot that ends "degraded" (some unit
	// failed); the failed units are logged. Otherwise that is an error
	// naming them.
	AllowDegraded bool
}

// bootState is a booted node's process tree, as seen from the host:
//
//	unshare (cmd) ── systemd-nspawn (PID 1 of a new PID namespace) ── systemd (the node's PID 1)
//
// nspawn runs under unshare --pid --kill-child because killing nspawn
// does not stop its container: the container's systemd would be
// reparented and live on. As PID 1 of its own PID namespace, nspawn takes
// everything below it along when it dies, and it dies when unshare does
// (--kill-child), which dies with this process (Pdeathsig).
type bootState struct {
	cmd     *exec.Cmd
	machine string
	cgroups []string      // the node's own cgroup, in each hierarchy (see cgroup.go)
	done    chan struct{} // closed when unshare has exited
	werr    error         // its exit status, once done is closed
}

// nspawnPID returns the PID of systemd-nspawn, unshare's only child.
func (b *bootState) nspawnPID() (int, error) {
	kids := children(b.cmd.Process.Pid)
	if len(kids) != 1 {
		return 0, fmt.Errorf("systemd-nspawn is not running (unshare %d has children %v)", b.cmd.Process.Pid, kids)
	}
	return kids[0], nil
}

// leader returns the host PID of the node's PID 1 (systemd), once
// systemd-nspawn's child has become it. It is looked up each time: a
// reboot of the node gives it a new PID 1.
func (b *bootState) leader() (int, error) {
	select {
	case <-b.done:
		return 0, fmt.Errorf("not running (systemd-nspawn exited: %v)", b.werr)
	default:
	}
	n, err := b.nspawnPID()
	if err != nil {
		return 0, err
	}
	for _, pid := range children(n) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "systemd" {
			return pid, nil
		}
	}
	return 0, errors.New("the node's systemd is not running (yet)")
}

// children lists pid's child processes (of all its threads).
func children(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(s); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// Boot boots the node with systemd-nspawn -b and waits until
// `systemctl is-system-running` inside says running (or degraded, with
// o.AllowDegraded). The node runs until Stop; it outlives ctx, which
// bounds only the wait. systemd-nspawn runs with --register=no
// --keep-unit (no machined, no systemd on the host needed),
// --console=read-only (the console goes to Dir()/nspawn.log),
// --link-journal=no, --resolv-conf=off and --timezone=off (nothing of the
// host is copied in or linked out), in a cgroup of its own (see
// cgroup.go: nodes sharing one break each other's units). On error the
// node may still be running: Stop or Remove ends it.
func (n *Node) Boot(ctx context.Context, o BootOptions) error {
	machine := n.name + "-" + randomHex(4)
	args := []string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
		"systemd-nspawn", "--boot", "--directory=" + n.root, "--machine=" + machine,
		"--register=no", "--keep-unit", "--console=read-only",
		"--link-journal=no", "--resolv-conf=off", "--timezone=off",
		"--setenv=SYSTEMD_COLORS=0"} // a console log without escape codes
	if o.NetNS != "" {
		if fi, err := os.Stat(o.NetNS); err != nil || fi.IsDir() {
			return n.errorf("boot: network namespace %q: not a namespace file", o.NetNS)
		}
		args = append(args, "--network-namespace-path="+o.NetNS)
	} else {
		args = append(args, "--private-network")
	}
	for _, bd := range o.Binds {
		if err := bd.check(); err != nil {
			return n.errorf("boot: %w", err)
		}
		if _, err := os.Stat(bd.Host); err != nil {
			return n.errorf("boot: bind: %w", err)
		}
		args = append(args, "--bind-ro="+bd.Host+":"+bd.Node)
	}

	n.mu.Lock()
	if n.boot != nil || n.removed {
		n.mu.Unlock()
		return n.errorf("boot: already booted or removed")
	}
	b := &bootState{machine: machine, done: make(chan struct{})}
	cgroups, err := nodeCgroups("debroot-" + machine)
	if err != nil {
		n.mu.Unlock()
		return n.errorf("boot: the node's cgroup: %w", err)
	}
	wrapper := []string{"-c", enterCgroupsScript, "sh", strconv.Itoa(len(cgroups))}
	for _, dir := range cgroups {
		if err := os.Mkdir(dir, 0o755); err != nil {
			n.mu.Unlock()
			return errors.Join(n.errorf("boot: the node's cgroup: %w", err), removeCgroups(b.cgroups))
		}
		b.cgroups = append(b.cgroups, dir)
		wrapper = append(wrapper, filepath.Join(dir, "cgroup.procs"))
	}
	log, err := os.OpenFile(n.consoleLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		return errors.Join(n.errorf("boot: %w", err), removeCgroups(b.cgroups))
	}
	defer log.Close() // the child has its own copy
	fmt.Fprintf(log, "=== debroot: boot of %s as machine %s at %s\n", n.name, b.machine, time.Now().Format(time.RFC3339))
	// Not CommandContext: the node outlives ctx. sh moves itself into the
	// node's cgroup, then becomes unshare.
	b.cmd = exec.Command("sh", append(append(wrapper, "unshare"), args...)...)
	b.cmd.Env = baseEnv()
	b.cmd.Stdout, b.cmd.Stderr = log, log
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := b.cmd.Start(); err != nil {
		n.mu.Unlock()
		return errors.Join(n.errorf("boot: %w", err), removeCgroups(b.cgroups))
	}
	go func() {
		b.werr = b.cmd.Wait()
		close(b.done)
	}()
	n.boot, n.booted = b, true
	rec, _ := json.Marshal(bootRecord{UnsharePID: b.cmd.Process.Pid, Machine: b.machine, Root: n.root, Cgroups: b.cgroups})
	err = os.WriteFile(filepath.Join(n.dir, "boot.json"), rec, 0o644)
	n.mu.Unlock()
	if err != nil {
		return n.errorf("boot: %w", err)
	}

	state, err := n.waitBooted(ctx, b)
	if err != nil {
		return n.errorf("boot: %w\nconsole:%s", err, n.consoleTail(30))
	}
	took := time.Since(start).Round(10 * time.Millisecond)
	if state == "degraded" {
		failed, _ := n.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
		if !o.AllowDegraded {
			return n.errorf("boot: degraded after %s; failed units:\n%s", took, failed)
		}
		n.logf("debroot: node %s: degraded after %s; failed units:\n%s", n.name, took, failed)
		return nil
	}
	n.logf("debroot: node %s: running after %s (machine %s)", n.name, took, b.machine)
	return nil
}

// waitBooted polls `systemctl is-system-running` in the node until it
// says running or degraded (returned), the node dies, or ctx ends.
func (n *Node) waitBooted(ctx context.Context, b *bootState) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no systemd yet"
	for {
		if pid, err := b.leader(); err == nil {
			// A non-zero exit for every state but running: read the output.
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			out, err := output(command(qctx, "nsenter", "--target", strconv.Itoa(pid), "--all", "--", "systemctl", "is-system-running"), "systemctl is-system-running")
			cancel()
			state := strings.TrimSpace(out)
			switch {
			case state == "running" || state == "degraded":
				return state, nil
			case state == "maintenance" || state == "stopping":
				return "", fmt.Errorf("the node is %s", state)
			case state != "":
				last = state
			default:
				last = err.Error()
			}
		} else {
			last = err.Error()
		}
		select {
		case <-b.done:
			return "", fmt.Errorf("systemd-nspawn exited before the node was up: %v", b.werr)
		case <-ctx.Done():
			return "", fmt.Errorf("not running: %w (last state: %s)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Leader returns the host PID of the booted node's PID 1 (its systemd),
// for tools that take a PID (nsenter -t, /proc/PID/root).
func (n *Node) Leader() (int, error) {
	n.mu.Lock()
	b := n.boot
	n.mu.Unlock()
	if b == nil {
		return 0, n.errorf("not booted")
	}
	pid, err := b.leader()
	if err != nil {
		return 0, n.errorf("%w", err)
	}
	return pid, nil
}

// Exec runs args in the booted node (nsenter into all the namespaces of
// its PID 1) with a minimal environment, and returns the combined output;
// on a non-zero exit the error (wrapping *exec.ExitError) also carries
// the output's tail.
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	pid, err := n.Leader()
	if err != nil {
		return "", err
	}
	cmd := command(ctx, "nsenter", append([]string{"--target", strconv.Itoa(pid), "--all", "--"}, args...)...)
	out, err := output(cmd, fmt.Sprintf("exec %q", args))
	if err != nil {
		return out, n.errorf("%w", err)
	}
	return out, nil
}

// Journal returns the last lines of the booted node's journal of this
// boot.
func (n *Node) Journal(ctx context.Context, lines int) (string, error) {
	return n.Exec(ctx, "journalctl", "-b", "--no-pager", "-n", strconv.Itoa(lines))
}

// Stop powers the booted node off (systemctl poweroff) and waits until
// systemd-nspawn has exited, until ctx ends or for 2 minutes when ctx has
// no deadline (systemd gives a hanging unit 90 s). A node still up then
// is killed (systemd-nspawn, and everything in its PID namespace, by PID),
// and the error wraps ErrKilled. Stop does nothing when the node is not
// booted.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	b := n.boot
	n.mu.Unlock()
	if b == nil {
		return nil
	}
	start := time.Now()
	select {
	case <-b.done:
		n.logf("debroot: node %s: was not running (systemd-nspawn exited: %v)", n.name, b.werr)
		return n.forget(b)
	default:
	}
	if pid, err := b.leader(); err == nil {
		// The call often fails with "Connection reset by peer": systemd
		// goes down before it answers. The exit of nspawn is what counts.
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = command(pctx, "nsenter", "--target", strconv.Itoa(pid), "--all", "--", "systemctl", "poweroff", "--no-block").Run()
		cancel()
	}
	wait := 2 * time.Minute
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var stopErr error
	select {
	case <-b.done:
	case <-timer.C:
	case <-ctx.Done():
	}
	select {
	case <-b.done:
		n.logf("debroot: node %s: powered off in %s", n.name, time.Since(start).Round(10*time.Millisecond))
	default:
		if err := b.kill(); err != nil {
			return n.errorf("stop: %w", err)
		}
		stopErr = n.errorf("stop after %s: %w", time.Since(start).Round(10*time.Millisecond), ErrKilled)
	}
	return errors.Join(stopErr, n.forget(b))
}

// Kill ends the booted node at once, like pulling its power cord: no
// unit is stopped, nothing is flushed. systemd-nspawn is killed by PID,
// and every process of the node with it (see bootState.kill); Kill
// returns once they are all gone and the node's cgroups are removed. The
// node's tree stays as the kill left it, and Boot may boot it again. Kill
// does nothing when the node is not booted.
func (n *Node) Kill() error {
	n.mu.Lock()
	b := n.boot
	n.mu.Unlock()
	if b == nil {
		return nil
	}
	if err := b.kill(); err != nil {
		return n.errorf("kill: %w", err)
	}
	n.logf("debroot: node %s: killed", n.name)
	return n.forget(b)
}

// forget cleans up after the boot b, which has ended: what a killed
// systemd-nspawn leaves behind, the node's cgroups, and boot.json.
func (n *Node) forget(b *bootState) error {
	removeNspawnLeftovers(b.machine, n.root)
	err := removeCgroups(b.cgroups)
	if err != nil {
		err = n.errorf("stop: %w", err)
	}
	n.mu.Lock()
	n.boot = nil
	n.mu.Unlock()
	if rerr := os.Remove(filepath.Join(n.dir, "boot.json")); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, n.errorf("stop: %w", rerr))
	}
	return err
}

// kill ends the node: SIGKILL to systemd-nspawn, the PID 1 of its PID
// namespace, takes every process in the namespace along, and the kernel
// lets nspawn finish exiting only once they are all gone; unshare then
// reaps it and exits. So when done is closed, nothing of the node runs.
// unshare itself is killed only if that does not happen.
func (b *bootState) kill() error {
	select {
	case <-b.done:
		return nil
	default:
	}
	if pid, err := b.nspawnPID(); err == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case <-b.done:
			return nil
		case <-t.C:
		}
	}
	_ = syscall.Kill(b.cmd.Process.Pid, syscall.SIGKILL)
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-b.done:
		return nil
	case <-t.C:
		return fmt.Errorf("unshare %d still running 30 s after SIGKILL", b.cmd.Process.Pid)
	}
}

// removeNspawnLeftovers deletes what a killed systemd-nspawn leaves on
// the host for a machine running on root: its propagation directory and
// its image lock (the lock file next to root goes with the node's scratch
// directory). Both names are derived from this node only, and after a
// clean exit neither exists.
func removeNspawnLeftovers(machine, root string) {
	if machine != "" && !strings.ContainsAny(machine, "/.") {
		_ = os.Remove(filepath.Join("/run/systemd/nspawn/propagate", machine))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err == nil {
		_ = os.Remove(fmt.Sprintf("/run/systemd/nspawn/locks/inode-%d:%d", st.Dev, st.Ino))
	}
}
