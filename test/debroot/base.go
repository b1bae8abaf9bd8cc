package debroot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Suite is the Debian release of the base root.
const Suite = "bookworm"

// recipeVersion is part of the cache key: bump it whenever the way the
// base root is built changes (steps, masks, files), so every cache holding
// the old recipe is rebuilt rather than reused.
const recipeVersion = 2

// recipe is what the base root is made of. Its JSON is hashed into the
// cache key.
type recipe struct {
	Version  int      `json:"version"`
	Suite    string   `json:"suite"`
	Variant  string   `json:"variant"`
	Packages []string `json:"packages"`
	// Masked units are pointless or harmful in a container node: timers
	// that would reach for the network or take the apt lock in the middle
	// of a test, file system maintenance, and gettys (nobody logs in on
	// the console). systemd-networkd-wait-online: node networks are
	// configured from outside, so network-online.target must not wait.
	Masked []string `json:"masked"`
}

// defaultRecipe: debootstrap's minbase plus what a node needs to boot
// with systemd-nspawn -b (systemd, systemd-sysv, dbus) and what the
// multi-node testbed's nodes need (sshd and python3 for Ansible,
// ca-certificates and curl for health checks).
func defaultRecipe() recipe {
	return recipe{
		Version: recipeVersion,
		Suite:   Suite,
		Variant: "minbase",
		Packages: []string{
			"systemd", "systemd-sysv", "dbus",
			"openssh-server", "python3", "ca-certificates", "curl",
			// Sites often forbid root logins: the installer's scenarios
			// also install as a user with passwordless sudo.
			"sudo",
		},
		Masked: []string{
			"apt-daily.timer", "apt-daily.service",
			"apt-daily-upgrade.timer", "apt-daily-upgrade.service",
			"dpkg-db-backup.timer", "dpkg-db-backup.service",
			"e2scrub_all.timer", "e2scrub_all.service", "e2scrub_reap.service",
			"fstrim.timer", "fstrim.service",
			"console-getty.service", "getty@.service",
			"systemd-networkd-wait-online.service",
		},
	}
}

// key returns the cache key: 12 hex digits of the recipe's hash.
func (r recipe) key() string {
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func (r recipe) dirName() string { return "debroot-" + r.Suite + "-" + r.key() }

// sshKeygenUnit gives every node its own SSH host keys, made at its
// first boot: the keys openssh-server's postinst made are removed from the
// base, or all nodes would share them. ed25519 and ECDSA only (sshdConfig
// names them): an RSA key takes seconds of CPU on a loaded machine, and
// would delay every first boot.
const sshKeygenUnit = `[Unit]
Description=Generate this node's SSH host keys (debroot)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key

[Install]
WantedBy=ssh.service
`

// sshdConfig limits sshd to the host keys sshKeygenUnit makes.
const sshdConfig = `# debroot: every node makes its own host keys at its first boot
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
`

// BaseHostname is the hostname of the base root; a node gets its own name.
const BaseHostname = "debroot"

// Base is the cached base root, shared by all nodes. Never change it:
// nodes are copies (NewNode).
type Base struct {
	// Root is the root file system.
	Root string
	// Dir holds Root and the marker recipe.json.
	Dir string
	// Key is the cache key (a hash of the recipe).
	Key string
	// BuildID is a random id given at build time: a cache hit returns the
	// one the building call returned.
	BuildID string
	// Built is true when this call built the root, false on a cache hit.
	Built bool
	// BuildTime is how long the build took (whichever call built it).
	BuildTime time.Duration
	// Size is the disk usage of Root in bytes, measured after the build.
	Size int64
}

// marker is recipe.json, written last into the build directory: a cache
// directory without a valid marker was never completed.
type marker struct {
	Key          string    `json:"key"`
	Recipe       recipe    `json:"recipe"`
	Mirror       string    `json:"mirror"`
	BuildID      string    `json:"build_id"`
	BuiltAt      time.Time `json:"built_at"`
	BuildSeconds float64   `json:"build_seconds"`
	SizeBytes    int64     `json:"size_bytes"`
}

const markerName = "recipe.json"

// CacheDir returns where the base root is cached: $GARRISON_CACHE, else
// $HOME/.cache/garrison (where `make minio` caches MinIO).
func CacheDir() (string, error) {
	if d := os.Getenv("GARRISON_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("debroot: cache directory: %w (set GARRISON_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "garrison"), nil
}

// Ensure returns the base root, building it first when the cache has no
// root for the current recipe: debootstrap --variant=minbase from the
// host's apt mirror, then the packages of the recipe installed in a
// chroot, then configured for booting as a container (see the package
// documentation). A build takes one to three minutes and needs the network; it
// happens in a temporary directory that is renamed into place only when
// complete, under a file lock, so concurrent callers (other test
// processes too) wait for one build. logf receives progress lines (nil
// discards them); ctx bounds the wait and the build.
func Ensure(ctx context.Context, logf func(format string, args ...any)) (*Base, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	r := defaultRecipe()
	return ensure(ctx, dir, r, func(ctx context.Context, tmp string) (string, error) {
		srcs, err := hostSources("/etc/apt")
		if err != nil {
			return "", fmt.Errorf("read the host's apt sources: %w", err)
		}
		mirror, err := pickMirror(srcs, r.Suite)
		if err != nil {
			return "", err
		}
		return mirror.URI, build(ctx, tmp, r, mirror, rootSourcesList(srcs, r.Suite), logf)
	}, logf)
}

// buildFunc builds a root into tmp/root and returns the mirror it used.
type buildFunc func(ctx context.Context, tmp string) (mirror string, err error)

// ensure is Ensure with the cache directory, recipe and build step given.
func ensure(ctx context.Context, cacheDir string, r recipe, build buildFunc, logf func(string, ...any)) (*Base, error) {
	final := filepath.Join(cacheDir, r.dirName())
	if b, err := loadBase(final, r); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	unlock, err := lockFile(ctx, final+".lock", logf)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if b, err := loadBase(final, r); err == nil {
		return b, nil // another process built it while we waited
	}
	// Under the lock nobody else builds, so whatever is left is from a
	// build that died: a temporary directory, or a final directory with no
	// valid marker (removed by hand, or from an older layout).
	stale, _ := filepath.Glob(filepath.Join(cacheDir, "."+r.dirName()+".build-*"))
	if _, err := os.Lstat(final); err == nil {
		stale = append(stale, final)
	}
	for _, d := range stale {
		logf("debroot: removing the unfinished build %s", d)
		if err := removeTree(d); err != nil {
			return nil, fmt.Errorf("debroot: remove %s: %w", d, err)
		}
	}

	tmp, err := os.MkdirTemp(cacheDir, "."+r.dirName()+".build-")
	if err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	start := time.Now()
	logf("debroot: building the %s base root %s in %s (one to three minutes; cached for the next runs)", r.Suite, r.key(), tmp)
	mirror, err := build(ctx, tmp)
	if err != nil {
		if rerr := removeTree(tmp); rerr != nil {
			logf("debroot: remove the failed build %s: %v", tmp, rerr)
		}
		return nil, fmt.Errorf("debroot: build the base root: %w", err)
	}
	size, err := diskUsage(filepath.Join(tmp, "root"))
	if err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	m := marker{
		Key:          r.key(),
		Recipe:       r,
		Mirror:       mirror,
		BuildID:      randomHex(8),
		BuiltAt:      time.Now().UTC(),
		BuildSeconds: time.Since(start).Seconds(),
		SizeBytes:    size,
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, markerName), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	syscall.Sync() // the rename below must not land before the tree does
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	logf("debroot: base root built in %s: %s, %d MB", time.Since(start).Round(100*time.Millisecond), final, size>>20)
	base, err := loadBase(final, r)
	if err != nil {
		return nil, err
	}
	base.Built = true
	return base, nil
}

// loadBase returns the completed base root in dir, or an error when dir
// has none for r.
func loadBase(dir string, r recipe) (*Base, error) {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return nil, err
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", markerName, err)
	}
	if m.Key != r.key() || m.BuildID == "" {
		return nil, fmt.Errorf("%s: key %q, want %q", markerName, m.Key, r.key())
	}
	root := filepath.Join(dir, "root")
	if fi, err := os.Stat(filepath.Join(root, "usr")); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s has no usr directory", root)
	}
	return &Base{
		Root:      root,
		Dir:       dir,
		Key:       m.Key,
		BuildID:   m.BuildID,
		BuildTime: time.Duration(m.BuildSeconds * float64(time.Second)),
		Size:      m.SizeBytes,
	}, nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can end
// the wait. The lock is per open file, so it also excludes other
// goroutines of this process.
func lockFile(ctx context.Context, path string, logf func(string, ...any)) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("debroot: lock: %w", err)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("debroot: lock %s: %w", path, err)
		}
		if !logged {
			logf("debroot: waiting for another process building the base root (%s)", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("debroot: lock %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}

// build makes tmp/root: debootstrap, then the recipe's packages and the
// node configuration in a chroot. Its commands' output goes to
// tmp/build.log; a failing step's error carries the tail.
func build(ctx context.Context, tmp string, r recipe, mirror aptSource, sourcesList string, logf func(string, ...any)) error {
	root := filepath.Join(tmp, "root")
	logPath := filepath.Join(tmp, "build.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	step := func(name string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s: %w (build log %s)%s", name, err, logPath, tailNote(string(b), 40))
		}
		logf("debroot: %s: %s", name, time.Since(start).Round(100*time.Millisecond))
		return nil
	}

	// debootstrap mounts /proc and /sys inside the target while it works:
	// in a private mount namespace, so a killed debootstrap cannot leave
	// them mounted on the host.
	err = step("debootstrap --variant="+r.Variant+" "+r.Suite+" from "+mirror.URI, func() error {
		args := []string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
			"debootstrap", "--variant=" + r.Variant}
		if mirror.SignedBy != "" {
			args = append(args, "--keyring="+mirror.SignedBy)
		}
		args = append(args, r.Suite, root, mirror.URI)
		cmd := command(ctx, "unshare", args...)
		cmd.Stdout, cmd.Stderr = log, log
		_, err := output(cmd, "debootstrap")
		return err
	})
	if err != nil {
		return err
	}

	files := []struct {
		path string
		data string
		perm fs.FileMode
	}{
		{"/etc/apt/sources.list", sourcesList, 0o644},
		// Daemons must not start in the build chroot (it shares the host's
		// network); removed again below.
		{"/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755},
		{"/etc/hostname", BaseHostname + "\n", 0o644},
		{"/etc/hosts", hostsFile(BaseHostname), 0o644},
		{"/etc/systemd/system/debroot-ssh-keygen.service", sshKeygenUnit, 0o644},
		{"/etc/ssh/sshd_config.d/debroot.conf", sshdConfig, 0o644},
	}
	for _, f := range files {
		if err := writeFileIn(root, f.path, []byte(f.data), f.perm); err != nil {
			return err
		}
	}

	spec := chrootSpec{root: root, hostname: BaseHostname, network: true, stdout: log}
	err = step("apt-get install "+strings.Join(r.Packages, " "), func() error {
		script := `set -e
apt-get update -q
apt-get -y -q -o Dpkg::Options::=--force-confold upgrade
apt-get -y -q -o Dpkg::Options::=--force-confold install --no-install-recommends "$@"
apt-get clean
`
		_, err := runChroot(ctx, spec, append([]string{"sh", "-c", script, "sh"}, r.Packages...)...)
		return err
	})
	if err != nil {
		return err
	}

	err = step("configure for containers", func() error {
		// Disable before masking: a mask leaves the old .wants links behind.
		script := `set -e
systemctl disable --quiet "$@" 2>/dev/null || true
systemctl mask --quiet "$@"
systemctl enable --quiet debroot-ssh-keygen.service
rm -f /etc/ssh/ssh_host_*
rm -rf /var/lib/apt/lists/*
mkdir -p /var/lib/apt/lists/partial
rm -f /var/cache/debconf/*-old /var/lib/dpkg/*-old /usr/sbin/policy-rc.d
rm -f /var/lib/dbus/machine-id
: > /etc/machine-id
printf '# debroot nodes have no DNS\n' > /etc/resolv.conf
rm -rf /tmp/* /var/tmp/*
`
		_, err := runChroot(ctx, spec, append([]string{"sh", "-c", script, "sh"}, r.Masked...)...)
		return err
	})
	return err
}

// hostsFile is /etc/hosts for a node called name.
func hostsFile(name string) string {
	return "127.0.0.1\tlocalhost\n127.0.1.1\t" + name + "\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
}

// diskUsage sums the blocks of the files under dir, each inode once.
func diskUsage(dir string) (int64, error) {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
