package debroot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// baseEnv returns the whole environment of a command run in a root:
// nothing of the test process's environment (proxies, GOFLAGS, ...)
// leaks in. extra is appended (a later NAME= wins).
func baseEnv(extra ...string) []string {
	return append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LANG=C.UTF-8",
		"TERM=dumb",
		"DEBIAN_FRONTEND=noninteractive",
	}, extra...)
}

// command returns a command that dies with this process (Pdeathsig) and
// sits in its own process group, so that a ^C to the test reaches it only
// through us; cancelling ctx kills the whole group.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A daemon started by the command may keep its output pipe open.
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = baseEnv()
	return cmd
}

// output runs cmd and returns its combined output; the error names the
// command and carries the output's tail.
func output(cmd *exec.Cmd, what string) (string, error) {
	var buf bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &buf
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &buf
	}
	err := cmd.Run()
	out := buf.String()
	if err != nil {
		return out, fmt.Errorf("%s: %w%s", what, err, tailNote(out, 30))
	}
	return out, nil
}

// tailNote returns the last n lines of out as "\n<lines>", or "".
func tailNote(out string, n int) string {
	out = strings.TrimRight(out, "\n")
	if out == "" {
		return ""
	}
	lines := strings.Split(out, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n" + strings.Join(lines, "\n")
}

// chrootScript runs as PID 1 of fresh mount, PID, UTS and IPC namespaces
// (and a network namespace unless the build needs the network). The
// mounts it makes exist only in that mount namespace, which util-linux's
// unshare makes private: they vanish with it and never show on the host.
//
//	$1 root, $2 hostname, $3 "net" to bring lo up, $4 number of binds,
//	then pairs of host path and mount point (a host path below the
//	root, checked by createMountpoint), then the command.
const chrootScript = `set -e
root=$1 name=$2 lo=$3 n=$4
shift 4
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
while [ "$n" -gt 0 ]; do
	mount -o bind,ro -- "$1" "$2"
	shift 2
	n=$((n-1))
done
printf '%s' "$name" > "$root/proc/sys/kernel/hostname"
if [ "$lo" = net ]; then ip link set lo up; fi
exec chroot "$root" "$@"
`

// chrootSpec says how runChroot sets up the root.
type chrootSpec struct {
	root     string
	hostname string
	network  bool // share the host's network (the build only)
	binds    []Bind
	env      []string
	stdin    io.Reader
	stdout   io.Writer // nil: returned by runChroot
}

// runChroot runs args chrooted into s.root inside new namespaces (see
// chrootScript). Without s.network the command has a network namespace
// of its own with only lo (up): it cannot reach anything off the node.
func runChroot(ctx context.Context, s chrootSpec, args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("no command")
	}
	for _, mp := range []string{"proc", "dev/pts"} {
		if _, err := createMountpoint(s.root, "/"+mp, false); err != nil {
			return "", err
		}
	}
	uargs := []string{"--mount", "--propagation", "private", "--pid", "--uts", "--ipc", "--fork", "--kill-child"}
	lo := "-"
	if !s.network {
		uargs = append(uargs, "--net")
		lo = "net"
	}
	uargs = append(uargs, "--", "sh", "-c", chrootScript, "sh", s.root, s.hostname, lo, strconv.Itoa(len(s.binds)))
	for _, b := range s.binds {
		if err := b.check(); err != nil {
			return "", err
		}
		fi, err := os.Stat(b.Host)
		if err != nil {
			return "", fmt.Errorf("bind %s: %w", b.Host, err)
		}
		mp, err := createMountpoint(s.root, b.Node, !fi.IsDir())
		if err != nil {
			return "", fmt.Errorf("bind %s onto %s: %w", b.Host, b.Node, err)
		}
		uargs = append(uargs, b.Host, mp)
	}
	uargs = append(uargs, args...)
	cmd := command(ctx, "unshare", uargs...)
	cmd.Env = baseEnv(s.env...)
	cmd.Stdin = s.stdin
	if s.stdout != nil {
		cmd.Stdout, cmd.Stderr = s.stdout, s.stdout
	}
	return output(cmd, fmt.Sprintf("chroot %s %q", s.root, args))
}

// Bind is a read-only bind mount of a host file or directory into a node.
type Bind struct {
	// Host is the absolute path on the host; it must exist.
	Host string
	// Node is the absolute path inside the node; it is created if missing
	// and must not pass through a symlink.
	Node string
}

func (b Bind) check() error {
	for _, p := range []string{b.Host, b.Node} {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("bind %q onto %q: paths must be absolute", b.Host, b.Node)
		}
		if strings.ContainsAny(p, ":\n") {
			return fmt.Errorf("bind %q onto %q: paths must not contain ':' or a newline", b.Host, b.Node)
		}
	}
	return nil
}
