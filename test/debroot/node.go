package debroot

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dirPrefix names the nodes' scratch directories, so that sweep finds
// those of dead test processes.
const dirPrefix = "garrison-debroot-"

// Node is a writable copy of the base root in a scratch directory, that
// commands can be chrooted into (Chroot) and that can be booted with
// systemd-nspawn (Boot). It is safe for concurrent use, but Chroot and
// Boot exclude each other: a booted node runs commands with Exec.
type Node struct {
	name string
	dir  string // scratch directory: owner.pid, root/, nspawn.log, boot.json
	root string
	logf func(string, ...any)

	mu      sync.Mutex // guards the fields below
	boot    *bootState // nil unless booted
	booted  bool       // Boot was called at least once
	removed bool
}

// NodeOptions configures CreateNode.
type NodeOptions struct {
	// Name is the node's hostname: lower-case letters, digits and '-',
	// starting with a letter, at most 40 characters. Required.
	Name string
	// Dir is where the node's scratch directory is created; empty means
	// os.TempDir(). It needs room for a copy of the base (about 215 MB).
	Dir string
	// Logf receives a line for each step; nil discards them.
	Logf func(format string, args ...any)
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// NewNode creates a node called name from base for t, and removes it when
// t ends: a booted node is powered off (killed if it does not go down),
// and when t failed its journal and console log are logged first.
func NewNode(t testing.TB, base *Base, name string) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := CreateNode(ctx, base, NodeOptions{Name: name, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			t.Log(n.Diagnostics(ctx))
		}
		if err := n.Remove(ctx); err != nil {
			t.Error(err)
		}
	})
	return n
}

// CreateNode copies base into a new scratch directory under o.Dir (cp -a:
// a plain directory works with chroot, nspawn and the host alike) and
// gives the copy its hostname. First it removes the nodes that dead test
// processes left under o.Dir (see the package documentation). The caller
// must Remove the node.
func CreateNode(ctx context.Context, base *Base, o NodeOptions) (_ *Node, err error) {
	if !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("debroot: node name %q: want lower-case letters, digits and '-', starting with a letter, at most 40 characters", o.Name)
	}
	if base == nil || base.Root == "" {
		return nil, fmt.Errorf("debroot: node %s: no base root (call Ensure)", o.Name)
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	parent := o.Dir
	if parent == "" {
		parent = os.TempDir()
	}
	Sweep(parent, logf)

	dir, err := os.MkdirTemp(parent, dirPrefix+o.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("debroot: node %s: %w", o.Name, err)
	}
	n := &Node{name: o.Name, dir: dir, root: filepath.Join(dir, "root"), logf: logf}
	defer func() {
		if err != nil {
			_ = removeTree(dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, n.errorf("%w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, n.errorf("%w", err)
	}
	start := time.Now()
	// --reflink=auto: instant on btrfs/xfs, a plain copy on ext4.
	if _, err := output(command(ctx, "cp", "-a", "--reflink=auto", base.Root, n.root), "copy the base root"); err != nil {
		return nil, n.errorf("%w", err)
	}
	if err := n.WriteFile("/etc/hostname", []byte(o.Name+"\n"), 0o644); err != nil {
		return nil, n.errorf("%w", err)
	}
	if err := n.WriteFile("/etc/hosts", []byte(hostsFile(o.Name)), 0o644); err != nil {
		return nil, n.errorf("%w", err)
	}
	logf("debroot: node %s: copied the base root in %s to %s", o.Name, time.Since(start).Round(10*time.Millisecond), n.root)
	return n, nil
}

// Name returns the node's name (its hostname).
func (n *Node) Name() string { return n.name }

// Root returns the node's root directory on the host. Do not write into
// it with host paths: an absolute symlink inside would be followed out of
// it (use WriteFile).
func (n *Node) Root() string { return n.root }

// Dir returns the node's scratch directory, which holds Root and the
// console log of its boots (nspawn.log).
func (n *Node) Dir() string { return n.dir }

func (n *Node) errorf(format string, args ...any) error {
	return fmt.Errorf("debroot: node %s: "+format, append([]any{n.name}, args...)...)
}

// Remove stops the node if it is booted and deletes its scratch
// directory. Calling it again does nothing.
func (n *Node) Remove(ctx context.Context) error {
	n.mu.Lock()
	if n.removed {
		n.mu.Unlock()
		return nil
	}
	n.mu.Unlock()
	stopErr := n.Stop(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.boot != nil { // Stop could not end it: keep the tree it runs on
		return n.errorf("not removed, still running: %w", stopErr)
	}
	if err := removeTree(n.dir); err != nil {
		return errors.Join(stopErr, n.errorf("remove: %w", err))
	}
	n.removed = true
	return stopErr
}

// ChrootOptions configures ChrootWith.
type ChrootOptions struct {
	// Binds are read-only bind mounts, set up for this command only.
	Binds []Bind
	// Env is added to the command's minimal environment (PATH, HOME=/root,
	// LANG=C.UTF-8, TERM=dumb, DEBIAN_FRONTEND=noninteractive).
	Env []string
	// Stdin is the command's standard input; nil means none.
	Stdin io.Reader
}

// Chroot runs args chrooted into the node and returns the combined
// output; see ChrootWith.
func (n *Node) Chroot(ctx context.Context, args ...string) (string, error) {
	return n.ChrootWith(ctx, ChrootOptions{}, args...)
}

// ChrootWith runs args chrooted into the node, as PID 1 of new mount,
// PID, UTS, IPC and network namespaces with /proc and /dev/pts mounted:
// the network namespace has only lo (up), so nothing the command does can
// reach the network; and every mount, o.Binds included, exists only in
// the private mount namespace, which vanishes with the command. When the
// command ends, everything it started is killed. It returns the combined
// output; on a non-zero exit the error (wrapping *exec.ExitError) also
// carries the output's tail. Not while the node is booted.
func (n *Node) ChrootWith(ctx context.Context, o ChrootOptions, args ...string) (string, error) {
	n.mu.Lock()
	booted := n.boot != nil
	n.mu.Unlock()
	if booted {
		return "", n.errorf("chroot %q: the node is booted; use Exec", args)
	}
	out, err := runChroot(ctx, chrootSpec{root: n.root, hostname: n.name, binds: o.Binds, env: o.Env, stdin: o.Stdin}, args...)
	if err != nil {
		return out, n.errorf("%w", err)
	}
	return out, nil
}

// WriteFile writes data to path in the node, creating missing parent
// directories (0755); the file gets mode perm. Symlinks are followed as
// inside the node (an absolute link to /etc/x writes the node's /etc/x),
// never out of it. In a booted node it writes what the node sees, its
// tmpfs mounts (/run, /tmp) included; while the node is starting (its
// systemd not yet PID 1) or has gone down by itself, the tree on disk,
// which is what it will see (or saw) outside those mounts.
func (n *Node) WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir, err := n.view()
	if err != nil {
		return err
	}
	if err := writeFileIn(dir, path, data, perm); err != nil {
		return n.errorf("write %s: %w", path, err)
	}
	return nil
}

// MkdirAll creates directory path in the node with mode perm, and its
// missing parents with mode 0755, resolving symlinks as WriteFile does;
// an existing directory gets mode perm too.
func (n *Node) MkdirAll(path string, perm fs.FileMode) error {
	dir, err := n.view()
	if err != nil {
		return err
	}
	if err := mkdirIn(dir, path, perm); err != nil {
		return n.errorf("mkdir %s: %w", path, err)
	}
	return nil
}

// ReadFile reads the regular file path in the node, resolving symlinks as
// WriteFile does.
func (n *Node) ReadFile(path string) ([]byte, error) {
	dir, err := n.view()
	if err != nil {
		return nil, err
	}
	b, err := readFileIn(dir, path)
	if err != nil {
		return nil, n.errorf("read %s: %w", path, err)
	}
	return b, nil
}

// view returns the directory that is the node's "/": its root directory,
// or, when its systemd runs, its PID 1's root, where its own mounts are
// visible. systemd-nspawn runs the node on the root directory itself, so
// while there is no systemd (starting, or down before Stop) the root
// directory is what the node sees but for its tmpfs mounts: a harness
// writing a config file at that moment (the testbed's /etc/hosts, while
// another node boots) must not fail.
func (n *Node) view() (string, error) {
	n.mu.Lock()
	b := n.boot
	n.mu.Unlock()
	if b == nil {
		return n.root, nil
	}
	pid, err := b.leader()
	if err != nil {
		return n.root, nil
	}
	return fmt.Sprintf("/proc/%d/root", pid), nil
}

// Diagnostics returns, for a failed test's output, the last 200 lines of
// the journal (when booted) and the last 60 lines of the console log of
// its boots; "" for a node that was never booted.
func (n *Node) Diagnostics(ctx context.Context) string {
	n.mu.Lock()
	b, booted := n.boot, n.booted
	n.mu.Unlock()
	if !booted {
		return ""
	}
	var s strings.Builder
	if b != nil {
		j, err := n.Journal(ctx, 200)
		if err != nil {
			j += fmt.Sprintf("(%v)", err)
		}
		fmt.Fprintf(&s, "--- node %s: journalctl -b -n 200\n%s\n", n.name, j)
	}
	fmt.Fprintf(&s, "--- node %s: console (%s), last 60 lines%s\n", n.name, n.consoleLog(), n.consoleTail(60))
	return s.String()
}

func (n *Node) consoleLog() string { return filepath.Join(n.dir, "nspawn.log") }

// consoleTail returns the last lines of the console log as "\n<lines>".
func (n *Node) consoleTail(lines int) string {
	b, _ := os.ReadFile(n.consoleLog())
	return tailNote(strings.ReplaceAll(string(b), "\r", ""), lines) // the console is a pty
}

// removeTree deletes dir, refusing when something is mounted inside it:
// RemoveAll would descend into the mount and delete what it shows.
func removeTree(dir string) error {
	ms, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		return fmt.Errorf("refusing to remove %s: mounted inside it: %s", dir, strings.Join(ms, ", "))
	}
	return os.RemoveAll(dir)
}

// mountsUnder returns the mount points at or below dir in this process's
// mount namespace.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

// unescapeMountinfo decodes the \ooo octal escapes of /proc/*/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// bootRecord is boot.json in a node's scratch directory while it is
// booted, for sweep.
type bootRecord struct {
	UnsharePID int      `json:"unshare_pid"`
	Machine    string   `json:"machine"`
	Root       string   `json:"root"`
	Cgroups    []string `json:"cgroups"`
}

// Sweep removes the nodes under parent whose owner process is gone (a
// test killed by -timeout or SIGKILL runs no cleanup): it kills a node
// still booted — only after checking /proc that the recorded PID is still
// that node's unshare running systemd-nspawn on its root, so a recycled
// PID is never hit —, removes its cgroups and what systemd-nspawn leaves
// under /run, and deletes the scratch directory. CreateNode sweeps its
// parent directory; a harness that makes nodes in directories of its own
// (the testbed) calls Sweep on them when it cleans up after a dead run.
// Nodes of live processes are never touched. logf may be nil.
func Sweep(parent string, logf func(string, ...any)) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dirs, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := readPID(filepath.Join(dir, "owner.pid"))
		if err != nil || alive(owner) {
			continue // not ours, still in use, or being created
		}
		if b, err := os.ReadFile(filepath.Join(dir, "boot.json")); err == nil {
			var rec bootRecord
			if json.Unmarshal(b, &rec) == nil && rec.UnsharePID > 0 && isNodeProcess(rec.UnsharePID, "unshare", rec.Root) {
				logf("debroot: killing the node left running in %s (unshare PID %d)", dir, rec.UnsharePID)
				// As in bootState.kill: nspawn first, the PID 1 of the
				// node's outer PID namespace, which exits only once
				// everything in it is gone.
				if kids := children(rec.UnsharePID); len(kids) == 1 && isNodeProcess(kids[0], "systemd-nspawn", rec.Root) {
					_ = syscall.Kill(kids[0], syscall.SIGKILL)
					waitGone(kids[0], 30*time.Second)
				}
				_ = syscall.Kill(rec.UnsharePID, syscall.SIGKILL)
				waitGone(rec.UnsharePID, 10*time.Second)
			}
			if rec.Root != "" {
				removeNspawnLeftovers(rec.Machine, rec.Root)
			}
			var cgroups []string
			for _, cg := range rec.Cgroups {
				if strings.HasPrefix(cg, "/sys/fs/cgroup/") && strings.HasPrefix(filepath.Base(cg), "debroot-") {
					cgroups = append(cgroups, cg)
				}
			}
			if err := removeCgroups(cgroups); err != nil {
				logf("debroot: %v", err)
			}
		}
		logf("debroot: removing %s, left by process %d", dir, owner)
		if err := removeTree(dir); err != nil {
			logf("debroot: %v", err)
		}
	}
}

// isNodeProcess reports whether pid runs prog (unshare, or
// systemd-nspawn under it) for the node on root.
func isNodeProcess(pid int, prog, root string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	if filepath.Base(args[0]) != prog || !slices.Contains(args, "--directory="+root) {
		return false
	}
	return prog != "unshare" || slices.Contains(args, "systemd-nspawn")
}

// waitGone polls until pid no longer exists (or is a zombie), at most d.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if !alive(pid) || zombie(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
