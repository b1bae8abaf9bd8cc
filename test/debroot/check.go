package debroot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsupported is wrapped by Check's error: this machine cannot build
// or boot nodes.
var ErrUnsupported = errors.New("debroot: this machine cannot build or boot Debian nodes")

// Space the harness needs: the base root is about 215 MB, debootstrap's
// downloads come on top during the build, and every node is a full copy.
const (
	needCache = 1 << 30 // in the cache directory's file system
	needTemp  = 2 << 30 // in the nodes' (os.TempDir)
	needMem   = 1 << 30 // MemAvailable
)

// Check reports, in one error wrapping ErrUnsupported, everything this
// machine lacks: root, the programs (with the apt package to install),
// openat2 (Linux 5.6), free disk space under the cache directory and
// os.TempDir, and free memory.
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (debootstrap, chroot, mount and systemd-nspawn need it)")
	}
	// The host programs the harness runs, with their Debian package.
	tools := [][2]string{
		{"debootstrap", "debootstrap"},
		{"systemd-nspawn", "systemd-container"},
		{"unshare", "util-linux"},
		{"nsenter", "util-linux"},
		{"mount", "mount"},
		{"chroot", "coreutils"},
		{"cp", "coreutils"},
		{"sh", "dash"},
		{"ip", "iproute2"},
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t[0]); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", t[0], t[1]))
		}
	}
	if fd, err := openRoot("/"); err == nil {
		if _, err := openIn(fd, "etc", unix.O_PATH, 0); errors.Is(err, unix.ENOSYS) {
			missing = append(missing, "openat2 (Linux 5.6 or later)")
		}
		unix.Close(fd)
	}
	cache, err := CacheDir()
	if err != nil {
		missing = append(missing, err.Error())
	} else {
		missing = append(missing, checkSpace(map[string]uint64{cache: needCache, os.TempDir(): needTemp})...)
	}
	if avail, err := MemAvailable(); err == nil && avail < needMem {
		missing = append(missing, fmt.Sprintf("memory: %s available, need %s", gib(avail), gib(needMem)))
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrUnsupported, strings.Join(missing, "; "))
	}
	return nil
}

// checkSpace checks the free space for each directory's need, adding the
// needs of directories on the same file system.
func checkSpace(needs map[string]uint64) []string {
	type fsys struct {
		dirs  []string
		need  uint64
		avail uint64
	}
	byDev := map[uint64]*fsys{}
	var order []uint64
	for dir, need := range needs {
		d := existingParent(dir)
		var st syscall.Stat_t
		var sfs syscall.Statfs_t
		if err := syscall.Stat(d, &st); err != nil {
			return []string{fmt.Sprintf("disk space under %s: %v", dir, err)}
		}
		if err := syscall.Statfs(d, &sfs); err != nil {
			return []string{fmt.Sprintf("disk space under %s: %v", dir, err)}
		}
		f := byDev[st.Dev]
		if f == nil {
			f = &fsys{avail: sfs.Bavail * uint64(sfs.Bsize)}
			byDev[st.Dev] = f
			order = append(order, st.Dev)
		}
		f.dirs = append(f.dirs, dir)
		f.need += need
	}
	var out []string
	for _, dev := range order {
		f := byDev[dev]
		if f.avail < f.need {
			out = append(out, fmt.Sprintf("disk space: %s free under %s, need %s", gib(f.avail), strings.Join(f.dirs, " and "), gib(f.need)))
		}
	}
	return out
}

func existingParent(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil || dir == "/" || dir == "." {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

// DiskFree returns the bytes free for an unprivileged user (statfs
// f_bavail) on the file system that holds dir, or would hold it: a
// missing dir is measured at its nearest existing parent.
func DiskFree(dir string) (uint64, error) {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(existingParent(dir), &sfs); err != nil {
		return 0, fmt.Errorf("debroot: disk space under %s: %w", dir, err)
	}
	return sfs.Bavail * uint64(sfs.Bsize), nil
}

// MemAvailable returns the kernel's estimate of the memory available for
// new work without swapping (MemAvailable in /proc/meminfo), in bytes.
func MemAvailable() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}

func gib(n uint64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }

// Prepare returns the base root for t, building it on first use (see
// Ensure). It skips t in -short mode, and when Check fails, except under
// CI=true where a machine that cannot run the nodes is a failure.
func Prepare(t testing.TB) *Base {
	t.Helper()
	if testing.Short() {
		t.Skip("debroot: builds and boots Debian roots (root; one to three minutes the first time); not run with -short")
	}
	if err := Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true, so this is a failure", err)
		}
		t.Skipf("%v; skipping", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b, err := Ensure(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
