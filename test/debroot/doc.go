// Package debroot gives tests Debian bookworm machines on this one: a
// cached debootstrap'ed base root, writable per-test copies of it
// ("nodes"), commands chrooted into a node with no network, and nodes
// booted with systemd-nspawn -b running a real systemd. The offline
// install test of the bundle, the systemd unit checks and the multi-node
// testbed build on it.
//
//	func TestUnit(t *testing.T) {
//		ctx := t.Context()
//		base := debroot.Prepare(t) // skips (fails under CI=true) on a machine that cannot; builds once
//		n := debroot.NewNode(t, base, "node1")
//
//		// Offline: chrooted, in a network namespace with only lo.
//		out, err := n.ChrootWith(ctx, debroot.ChrootOptions{
//			Binds: []debroot.Bind{{Host: bundleDir, Node: "/media/garrison"}},
//		}, "apt-get", "install", "-y", "garrison")
//
//		// Booted: a real systemd.
//		require.NoError(t, n.WriteFile("/etc/systemd/system/x.service", unit, 0o644))
//		require.NoError(t, n.Boot(ctx, debroot.BootOptions{}))
//		out, err = n.Exec(ctx, "systemctl", "is-active", "dbus")
//	} // t.Cleanup powers the node off (logging its journal if t failed) and deletes it
//
// # The base root
//
// Ensure (or Prepare) builds it once into $GARRISON_CACHE, else
// ~/.cache/garrison, as debroot-bookworm-<key>/root, where the key hashes
// the recipe: suite, variant, package list, masked units and a version
// constant, so changing the recipe builds a new root instead of reusing
// the old. (Old roots are not deleted; remove them by hand.) The build,
// one to three minutes with the network:
//
//   - debootstrap --variant=minbase bookworm from the mirror of the host's
//     apt configuration (/etc/apt/sources.list{,.d/}), never a hard-coded
//     one; the root's sources.list lists the host's bookworm,
//     bookworm-updates and bookworm-security mirrors (main);
//   - in a chroot: apt-get upgrade, then install --no-install-recommends
//     systemd systemd-sysv dbus openssh-server python3 ca-certificates curl
//     sudo,
//     then apt-get clean and an empty /var/lib/apt/lists;
//   - hostname "debroot" and an /etc/hosts; an empty /etc/machine-id (and
//     no /var/lib/dbus/machine-id), so each node gets its own at first boot;
//     no SSH host keys, and a unit (debroot-ssh-keygen.service) that makes
//     a node's own ed25519 and ECDSA keys before sshd first starts (sshd is
//     told to use just those); an /etc/resolv.conf without servers;
//   - apt's, dpkg's, e2scrub's and fstrim's timers and the gettys masked,
//     and systemd-networkd-wait-online: a node boots to "running".
//
// It is built in a temporary directory next to its final place and
// renamed there when complete, under a flock, so concurrent test
// processes build it once. The result is about 215 MB.
//
// # Nodes
//
// A node is a plain copy of the base (cp -a --reflink=auto) in a scratch
// directory under os.TempDir(): 0.3 s to 12 s on this machine's ext4 (page
// cache and load make the difference). A copy, rather than an overlay on
// the base, because the node must be the same tree for Chroot, Boot and
// the host: systemd-nspawn refuses an --overlay onto "/" ("doesn't look
// like it has an OS tree"), --volatile discards what was installed before
// the boot, and an overlay mounted by the harness would need a mount
// namespace that outlives each command (and a process to hold it) while
// the host could no longer see the tree.
//
// Files go into a node with WriteFile (directories with MkdirAll), never
// with a host path below Root: Debian roots have absolute symlinks
// (nginx's sites-enabled/default) that a host write would follow out of
// the root onto the host's own files. WriteFile, MkdirAll and ReadFile
// resolve paths with openat2 RESOLVE_IN_ROOT, as a chroot would.
//
// Chroot runs a command as PID 1 of new mount, PID, UTS, IPC and network
// namespaces (unshare --kill-child), chrooted into the node with /proc and
// /dev/pts mounted and optional read-only binds; the network namespace
// has only lo, so a command cannot download anything. Every mount is in
// the private mount namespace and vanishes with it.
//
// Boot starts systemd-nspawn -b under unshare --pid --kill-child (killing
// nspawn alone leaves its container running) with --private-network or a
// given network namespace (--network-namespace-path, for the testbed), in
// a cgroup of its own (two nodes in one cgroup break each other's units),
// and waits for `systemctl is-system-running`. Exec runs a command in the
// booted node through nsenter. Stop powers it off, and kills it by PID if
// it does not go down; Kill kills it by PID at once (a pulled power
// cord). Either way the node can be booted again.
//
// # Leftovers
//
// NewNode registers the node's removal with t.Cleanup (logging
// Diagnostics, the journal and console tails, when the test failed).
// Every process the harness starts dies with the test process (Pdeathsig,
// and unshare --kill-child under it), and a later CreateNode sweeps the
// scratch directories of test processes that are gone, killing a node
// left booted only after checking /proc that the recorded PID is still
// that node's. Harnesses that make nodes in directories of their own
// (the testbed, with CreateNode's Dir) call Sweep on those.
//
// # Requirements
//
// Root; Linux 5.6 or later (openat2); the Debian packages debootstrap and
// systemd-container, plus iproute2, util-linux, mount, coreutils and dash
// (Check names what is missing, with the package); 3 GiB of free disk in
// the cache directory and os.TempDir() together, and 1 GiB of free memory
// (DiskFree and MemAvailable measure them, for harnesses with needs of
// their own).
package debroot
