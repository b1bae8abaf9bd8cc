package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// StopGrace is how long Process.Stop waits after SIGTERM before it sends
// SIGKILL, unless its context ends first.
const StopGrace = 10 * time.Second

// Process is a program started on a node by Node.Start.
type Process struct {
	node    *Node
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	err     error         // its exit status; read after done is closed
}

var processNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Start runs path with args inside the node's network namespace, with
// the test's environment plus env ("KEY=value"), in the node's scratch
// directory, and returns at once. Its stdout and stderr are appended to
// <node dir>/<name>.log, which a failed test prints the tail of.
//
// `ip netns exec` enters the namespace and then execs path, so the
// process's PID is the program's own: Stop, Kill and the teardown signal
// it by that PID (SIGKILL goes to its process group, which Start makes
// for it, so that its children die with it), never by name.
//
// name identifies the process on the node; once it has exited, Start may
// run a process under the same name again (a restart), appending to the
// same log.
func (n *Node) Start(name, path string, args []string, env []string) (*Process, error) {
	if !processNameRE.MatchString(name) {
		return nil, fmt.Errorf("testbed: %s: process name %q: use letters, digits, '.', '-' and '_'", n.name, name)
	}
	ip, err := lookTool("ip")
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	n.tb.mu.Lock()
	closed := n.tb.closed
	n.tb.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("testbed: %s: start %s: the testbed is closed", n.name, name)
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.procs[name]; old != nil && !old.Exited() {
		return nil, fmt.Errorf("testbed: %s: process %s is running (pid %d)", n.name, name, old.PID())
	}
	p := &Process{node: n, name: name, logPath: filepath.Join(n.dir, name+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", n.name, err)
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "=== testbed: %s: %s %s\n", time.Now().Format(time.RFC3339Nano), path, strings.Join(args, " "))

	// Not exec.CommandContext: the process outlives any context here.
	p.cmd = exec.Command(ip, append([]string{"netns", "exec", n.ns, path}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Dir = n.dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Its own process group: a ^C to the test does not reach it before the
	// teardown does, and SIGKILL to the group takes its children along.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testbed: %s: start %s: %w", n.name, path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	pid := p.cmd.Process.Pid
	start, _ := procStart(pid)
	if err := n.tb.record(func(r *record) { r.Procs = append(r.Procs, procRecord{PID: pid, Start: start}) }); err != nil {
		_ = p.Kill(context.Background())
		return nil, err
	}
	n.tb.mu.Lock()
	n.tb.procs = append(n.tb.procs, p)
	n.tb.mu.Unlock()
	n.procs[name] = p
	n.tb.logf("testbed: %s: started %s (pid %d): %s %s", n.name, name, pid, path, strings.Join(args, " "))
	return p, nil
}

// Process returns the process last started under name on the node, or
// nil.
func (n *Node) Process(name string) *Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.procs[name]
}

// Name returns the name the process was started under.
func (p *Process) Name() string { return p.name }

// Node returns the node the process runs on.
func (p *Process) Node() *Node { return p.node }

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath returns the file its stdout and stderr go to.
func (p *Process) LogPath() string { return p.logPath }

// Log returns the last n lines of its log.
func (p *Process) Log(n int) string { return tailFile(p.logPath, n) }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns its exit status (nil
// for 0, an *exec.ExitError otherwise), or ctx's error if ctx ends first.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("testbed: %s: wait for %s (pid %d): %w", p.node.name, p.name, p.PID(), ctx.Err())
	}
}

// WaitListening waits until something accepts TCP connections at
// hostport, as seen from node from (typically the process's own server,
// just started), and fails at once if the process exits first. The error
// carries the tail of its log.
func (p *Process) WaitListening(ctx context.Context, from *Node, hostport string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done: // it failed: stop waiting for it
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := from.WaitListening(ctx, hostport); err != nil {
		return fmt.Errorf("testbed: %s/%s is not serving at %s: %w\n%s", p.node.name, p.name, hostport, err, p.Log(30))
	}
	return nil
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// Stop asks the process to end with SIGTERM and waits; after StopGrace,
// or when ctx ends, it sends SIGKILL to its process group and waits for it
// to be reaped. Stopping an exited process does nothing. The error is
// only about failing to stop it, not about its exit status (see Wait).
func (p *Process) Stop(ctx context.Context) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testbed: %s: stop %s: %w", p.node.name, p.name, err)
	}
	grace := time.NewTimer(StopGrace)
	defer grace.Stop()
	select {
	case <-p.done:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	return p.Kill(context.WithoutCancel(ctx))
}

// Kill sends SIGKILL to the process's group (the process and the
// children it has not moved out of the group), and waits
// until the process has been reaped or ctx ends.
func (p *Process) Kill(ctx context.Context) error {
	pid := p.PID()
	if !p.Exited() {
		// Until the leader is reaped its pid is the group's id and
		// cannot name anything else. Children that outlive an exited
		// leader are left to the teardown, which kills every process in
		// the testbed's namespaces.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testbed: %s: kill %s (pid %d): %w", p.node.name, p.name, pid, ctx.Err())
	}
}
