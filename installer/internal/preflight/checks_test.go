package preflight

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/remote"
)

const haYAML = `
site: test-site
site_url: https://chat.example.test
admin: {username: admin, email: admin@example.test}
ssh: {key: id_ed25519}
nodes:
  - {name: app1, address: 10.0.0.11, roles: [app, db, storage], drives: [/srv/d1, /srv/d2]}
  - {name: app2, address: 10.0.0.12, roles: [app, db, storage], drives: [/srv/d1, /srv/d2]}
  - {name: app3, address: app3.example.test, roles: [app, db, storage], drives: [/srv/d1, /srv/d2]}
  - {name: edge1, address: 10.0.0.21, ssh: {user: deploy}, roles: [proxy]}
`

const aioYAML = `
site: lab
site_url: https://chat.lab.test
admin: {username: admin, email: admin@lab.test}
ssh: {key: id_ed25519}
nodes:
  - {name: box, address: 192.0.2.10, roles: [app, db, storage, proxy]}
`

func parseInv(t *testing.T, yaml string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse([]byte(yaml))
	require.NoError(t, err)
	return inv
}

func node(t *testing.T, inv *inventory.Inventory, name string) inventory.Node {
	t.Helper()
	n, ok := inv.Node(name)
	require.True(t, ok, name)
	return n
}

func TestChecks(t *testing.T) {
	t.Parallel()
	ha := parseInv(t, haYAML)
	haAllow := parseInv(t, haYAML+"options: {allow_drives_on_root_disk: true}\n")
	app1, edge1 := node(t, ha, "app1"), node(t, ha, "edge1")
	need1, roles1 := nodeNeed(ha, app1)
	const bundle = 500 * MiB

	osc := osCheck
	cpu := func(f *facts) verdict { return cpuCheck(f, need1, roles1) }
	mem := func(f *facts) verdict { return memoryCheck(f, need1, roles1) }
	disk := func(f *facts) verdict { return diskCheck(f, need1, roles1, bundle) }
	diskUnknownBundle := func(f *facts) verdict { return diskCheck(f, need1, roles1, 0) }
	drives := func(f *facts) verdict { return drivesCheck(f, app1.Drives, ha.Options.AllowDrivesOnRootDisk) }
	drivesAllowed := func(f *facts) verdict { return drivesCheck(f, app1.Drives, haAllow.Options.AllowDrivesOnRootDisk) }
	ports := func(f *facts) verdict { return portsCheck(f, NodePorts(ha, app1), f.Installed) }
	edgePorts := func(f *facts) verdict { return portsCheck(f, NodePorts(ha, edge1), f.Installed) }
	names := func(f *facts) verdict { return namesCheck(f, app1, ha.Nodes) }
	fsyncDB := func(f *facts) verdict { return fsyncCheck(f, true) }
	fsyncProxy := func(f *facts) verdict { return fsyncCheck(f, false) }

	const (
		root    = "fs=root 2049 1048576 102400 20480" // 100 GiB, 20 GiB free; sizes in MiB blocks
		varlib  = "fs=varlib 2049 1048576 102400 20480"
		drive0  = "drive=0 dir 2051 1048576 102400 51200 1"
		drive1  = "drive=1 dir 2052 1048576 102400 51200 1"
		allGood = "resolve=app2 10.0.0.12"
	)
	resolvedOK := []string{"resolve=app2 10.0.0.12", "resolve=app3 10.0.0.13", "resolve=app3.example.test 10.0.0.13", "resolve=edge1 10.0.0.21"}
	with := func(base []string, extra ...string) []string { return append(append([]string(nil), base...), extra...) }

	tests := []struct {
		name   string
		check  func(*facts) verdict
		lines  []string
		status string
		detail string
	}{
		{"os debian 12 amd64", osc, []string{"os_id=debian", "os_version_id=12", "os_pretty=Debian GNU/Linux 12 (bookworm)", "arch=amd64"}, Pass, "Debian GNU/Linux 12 (bookworm) amd64"},
		{"os ubuntu", osc, []string{"os_id=ubuntu", "os_version_id=22.04", "os_pretty=Ubuntu 22.04.3 LTS", "arch=amd64"}, Fail, "Ubuntu 22.04.3 LTS amd64: Garrison's bundle installs on Debian 12"},
		{"os debian 11", osc, []string{"os_id=debian", "os_version_id=11", "os_pretty=Debian GNU/Linux 11 (bullseye)", "arch=amd64"}, Fail, "bullseye"},
		{"os arm64", osc, []string{"os_id=debian", "os_version_id=12", "arch=arm64"}, Fail, "debian 12 arm64:"},
		{"os no os-release", osc, []string{"err=os /etc/os-release is missing", "arch=amd64"}, Fail, "not a Debian system (/etc/os-release is missing)"},
		{"os no answer", osc, nil, Fail, "no answer from /etc/os-release or dpkg"},

		{"cpu enough", cpu, []string{"nproc=8"}, Pass, "8 CPUs; the node's roles want 5 (db 2 + storage 1 + app 2)"},
		{"cpu short", cpu, []string{"nproc=2"}, Warn, "2 CPUs; the node's roles want 5"},
		{"cpu unknown", cpu, []string{"err=cpu nproc is missing"}, Warn, "could not count the CPUs: nproc is missing"},
		{"memory enough", mem, []string{"mem_kb=8388608"}, Pass, "8 GiB; the node's roles want 5 GiB (db 2 GiB + storage 1 GiB + app 2 GiB)"},
		{"memory a little under", mem, []string{"mem_kb=4823450"}, Pass, "4.6 GiB"},
		{"memory short", mem, []string{"mem_kb=4194304"}, Warn, "4 GiB; the node's roles want 5 GiB"},
		{"memory unknown", mem, []string{"err=memory /proc/meminfo is not readable"}, Warn, "could not read the memory size: /proc/meminfo is not readable"},

		{"disk enough", disk, []string{root, varlib}, Pass, "/var/lib has 20 GiB free (the bundle's repository (500 MiB) and 1 GiB of headroom and the db data want 11.5 GiB)"},
		{"disk below the bundle", disk, []string{root, "fs=varlib 2049 1048576 102400 1024"}, Fail, "/var/lib has 1 GiB free; the bundle's repository (500 MiB) and 1 GiB of headroom need 1.5 GiB"},
		{"disk below the data", disk, []string{root, "fs=varlib 2049 1048576 102400 5120"}, Warn, "the db data wants 10 GiB more"},
		{"disk bundle size unknown", diskUnknownBundle, []string{root, varlib}, Pass, "size not known here"},
		{"disk separate root full", disk, []string{"fs=root 2049 1048576 102400 512", "fs=varlib 2050 1048576 102400 20480"}, Fail, "/ has 512 MiB free; the packages need 1 GiB"},
		{"disk separate root fine", disk, []string{"fs=root 2049 1048576 102400 4096", "fs=varlib 2050 1048576 102400 20480"}, Pass, "/ has 4 GiB free"},
		{"disk unknown", disk, []string{"err=disk /var/lib: stat: cannot read file system information"}, Warn, "could not measure the free space on /var/lib: /var/lib: stat"},
		{"disk root unknown", disk, []string{varlib}, Warn, "could not measure /"},

		{"drives own disks", drives, []string{root, drive0, drive1}, Pass, "/srv/d1: own disk, 50 GiB free; /srv/d2: own disk, 50 GiB free"},
		{"drive on root disk", drives, []string{root, "drive=0 dir 2049 1048576 102400 51200 1", drive1}, Fail, "/srv/d1 is on the root filesystem; each drive must be its own disk (options.allow_drives_on_root_disk allows this on test sites)"},
		{"drive on root disk allowed", drivesAllowed, []string{root, "drive=0 dir 2049 1048576 102400 51200 1", drive1}, Warn, "/srv/d1 is on the root filesystem (allowed by options.allow_drives_on_root_disk)"},
		{"drives share a disk", drives, []string{root, drive0, "drive=1 dir 2051 1048576 102400 51200 1"}, Fail, "/srv/d2 is on the same filesystem as /srv/d1"},
		{"drives share a disk allowed", drivesAllowed, []string{root, drive0, "drive=1 dir 2051 1048576 102400 51200 1"}, Warn, "/srv/d2 is on the same filesystem as /srv/d1 (allowed"},
		{"drive missing", drives, []string{root, "drive=0 missing 2049 /srv", drive1}, Fail, "/srv/d1 does not exist; mount the drive's disk there"},
		{"drive missing allowed", drivesAllowed, []string{root, "drive=0 missing 2049 /", drive1}, Warn, "/srv/d1 does not exist; the install creates it on the root filesystem (allowed"},
		{"drive missing allowed other fs", drivesAllowed, []string{root, "drive=0 missing 2055 /srv", drive1}, Warn, "creates it on the filesystem of /srv"},
		{"drive not a directory", drives, []string{root, "drive=0 notdir", drive1}, Fail, "/srv/d1 exists but is not a directory"},
		{"drive read-only", drives, []string{root, "drive=0 dir 2051 1048576 102400 51200 0", drive1}, Fail, "/srv/d1 is not writable"},
		{"drive nearly full", drives, []string{root, drive0, "drive=1 dir 2052 1048576 102400 100 1"}, Warn, "/srv/d2 has only 100 MiB free"},
		{"drive not reported", drives, []string{root, drive0}, Warn, "/srv/d2: not looked at (no answer)"},
		{"drive unreadable", drives, []string{root, drive0, "drive=1 error stat: Permission denied"}, Warn, "/srv/d2: could not look at it: stat: Permission denied"},
		{"drives without root", drives, []string{drive0, drive1}, Warn, "the root filesystem could not be measured"},

		{"ports free", ports, []string{"ports_source=ss", `ss=tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))`}, Pass,
			"free: 2379/tcp 2380/tcp 5432/tcp 8008/tcp 8065/tcp 8066/tcp 8067/tcp 8069/tcp 8074/tcp 8074/udp 9000/tcp 9001/tcp 9100/tcp"},
		{"ports ours", ports, []string{"installed=install ok installed", "ports_source=ss",
			`ss=tcp LISTEN 0 128 *:8065 *:* users:(("garrison",pid=40,fd=7))`,
			`ss=udp UNCONN 0 0 *:8074 *:* users:(("garrison",pid=40,fd=9))`,
			`ss=tcp LISTEN 0 128 *:8066 *:* users:(("garrison-pushpr",pid=41,fd=7))`,
			`ss=tcp LISTEN 0 128 10.0.0.11:5432 *:* users:(("postgres",pid=50,fd=6))`,
			`ss=tcp LISTEN 0 128 127.0.0.1:5432 *:* users:(("postgres",pid=50,fd=7))`,
		}, Pass, "5432/tcp postgres (ours), 8065/tcp garrison (ours), 8066/tcp garrison-pushproxy (ours), 8074/udp garrison (ours); free: 2379/tcp"},
		{"ports ours before install", ports, []string{"ports_source=ss", `ss=tcp LISTEN 0 128 *:5432 *:* users:(("postgres",pid=50,fd=6))`}, Fail,
			"5432/tcp is in use by postgres (pid 50), but Garrison is not installed here: another postgres; stop and disable it"},
		{"ports foreign", ports, []string{"installed=install ok installed", "ports_source=ss", `ss=tcp LISTEN 0 128 0.0.0.0:8065 0.0.0.0:* users:(("java",pid=777,fd=5))`}, Fail,
			"8065/tcp is in use by java (pid 777), not garrison"},
		{"ports ours on the wrong port", edgePorts, []string{"installed=install ok installed", "ports_source=ss", `ss=tcp LISTEN 0 128 0.0.0.0:443 0.0.0.0:* users:(("garrison",pid=7,fd=5))`}, Fail,
			"443/tcp is in use by garrison (pid 7), not nginx"},
		{"ports foreign udp", ports, []string{"ports_source=ss", `ss=udp UNCONN 0 0 0.0.0.0:8074 0.0.0.0:* users:(("dnsmasq",pid=9,fd=4))`}, Fail,
			"8074/udp is in use by dnsmasq (pid 9), not garrison"},
		{"ports unseen owner", ports, []string{"ports_source=ss", `ss=tcp LISTEN 0 128 0.0.0.0:9100 0.0.0.0:*`}, Fail, "9100/tcp is in use by a process preflight cannot see"},
		{"ports mixed owners", ports, []string{"installed=install ok installed", "ports_source=ss", `ss=tcp LISTEN 0 128 0.0.0.0:9000 0.0.0.0:* users:(("minio",pid=3,fd=5),("sh",pid=4,fd=5))`}, Fail,
			"9000/tcp is in use by sh (pid 4), not minio"},
		{"ports from proc", ports, []string{"installed=install ok installed", "ports_source=proc", "sock=tcp 00000000:238C 99", "owner=99 5 garrisonctl"}, Pass,
			"9100/tcp garrisonctl (ours); free: 2379/tcp"},
		{"ports from proc foreign", ports, []string{"ports_source=proc", "sock=tcp 00000000:238C 99", "owner=99 5 node_exporter"}, Fail,
			"9100/tcp is in use by node_exporter (pid 5), not garrisonctl"},
		{"ports ss failed", ports, []string{"err=ports ss -Hltnup failed: Cannot open netlink socket; read /proc instead", "ports_source=proc"}, Pass,
			"note: ss -Hltnup failed"},
		{"ports not looked at", ports, []string{"err=ports something broke"}, Warn, "could not see which ports are in use: something broke"},
		{"ports in the ephemeral range", edgePorts, []string{"ports_source=ss", "port_range=1024 65000"}, Warn,
			"the ephemeral port range 1024-65000 holds 9100: an outgoing connection can take one"},
		{"ports in the ephemeral range reserved", edgePorts, []string{"ports_source=ss", "port_range=80 65000", "port_reserved=80,443,9000-9100"}, Pass, "free: 80/tcp 443/tcp 9100/tcp"},
		{"ports in the ephemeral range partly reserved", edgePorts, []string{"ports_source=ss", "port_range=80 65000", "port_reserved=443"}, Warn, "holds 80 9100:"},

		{"names resolve", names, resolvedOK, Pass, "app2, app3, edge1 resolve to their inventory addresses"},
		{"names unresolved", names, []string{allGood, "resolve=app3 10.0.0.13", "resolve=app3.example.test 10.0.0.13", "resolve=edge1 "}, Warn,
			"edge1 does not resolve (Garrison uses addresses, but admins and logs use names); app2, app3 resolve"},
		{"names wrong address", names, []string{"resolve=app2 10.0.0.99 10.0.0.98", "resolve=app3 10.0.0.13", "resolve=app3.example.test 10.0.0.13", "resolve=edge1 "}, Fail,
			"app2 resolves to 10.0.0.99, 10.0.0.98, not to its inventory address 10.0.0.12; fix /etc/hosts or DNS"},
		{"names several addresses", names, with(resolvedOK[1:], "resolve=app2 fd00::12 10.0.0.12"), Pass, "app2, app3, edge1 resolve"},
		{"names address unresolvable", names, []string{allGood, "resolve=app3 10.0.0.13", "resolve=app3.example.test ", "resolve=edge1 10.0.0.21"}, Fail,
			"app3's address app3.example.test does not resolve here, so this node cannot reach it"},
		{"names name differs from address", names, []string{allGood, "resolve=app3 10.0.0.99", "resolve=app3.example.test 10.0.0.13", "resolve=edge1 10.0.0.21"}, Fail,
			"app3 resolves to 10.0.0.99, not to its inventory address app3.example.test"},
		{"names no getent", names, []string{"err=names getent is missing"}, Warn, "could not resolve names: getent is missing"},
		{"names not looked up", names, []string{allGood}, Warn, "app3's address app3.example.test was not looked up"},

		{"fsync fast", fsyncDB, []string{"fsync=100000000 50"}, Pass, "2.0 ms per synchronous 8 KiB write on /var/lib (50 writes)"},
		{"fsync slow", fsyncDB, []string{"fsync=1000000000 50"}, Warn, "20.0 ms per synchronous 8 KiB write on /var/lib (50 writes); Patroni and etcd stall"},
		{"fsync too slow on db", fsyncDB, []string{"fsync=10000000000 50"}, Fail, "200.0 ms per"},
		{"fsync too slow on proxy", fsyncProxy, []string{"fsync=10000000000 50"}, Warn, "too slow for a db node"},
		{"fsync hung on db", fsyncDB, []string{"fsync_timeout=60 50"}, Fail, "50 synchronous 8 KiB writes on /var/lib did not end within 1m0s (over 1200.0 ms each)"},
		{"fsync hung on proxy", fsyncProxy, []string{"fsync_timeout=60 50"}, Warn, "did not end within 1m0s"},
		{"fsync unknown", fsyncDB, []string{"err=fsync dd on /var/lib failed: dd: No space left on device"}, Warn, "could not time fsync on /var/lib: dd on /var/lib failed: dd: No space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := tt.check(factsFrom(t, tt.lines...))
			require.Equal(t, tt.status, v.Status, v.Detail)
			require.Contains(t, v.Detail, tt.detail)
		})
	}
}

func TestClockCheck(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name    string
		offset  time.Duration
		offsets map[string]time.Duration
		status  string
		detail  string
	}{
		{"in step", 100 * ms, map[string]time.Duration{"app2": 50 * ms}, Pass, "0.100 s ahead of the admin machine, 0.050 s from app2"},
		{"behind", -300 * ms, nil, Pass, "0.300 s behind the admin machine"},
		{"off by a second", time.Second, nil, Warn, "1.000 s ahead of the admin machine; keep clocks within 0.500 s"},
		{"off by minutes", -3 * time.Minute, nil, Fail, "180.000 s behind the admin machine; certificates, etcd and Patroni need clocks within 0.500 s"},
		{"off from another node", 0, map[string]time.Duration{"app2": 100 * ms, "app3": -700 * ms}, Warn, "0.700 s from app3"},
		{"far from another node", 0, map[string]time.Duration{"app2": 6 * time.Second}, Fail, "6.000 s from app2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			offsets := map[string]time.Duration{"app1": tt.offset}
			for k, v := range tt.offsets {
				offsets[k] = v
			}
			g := gathered{connected: true, facts: &facts{}, clock: true, offset: tt.offset}
			v := clockCheck("app1", g, offsets)
			require.Equal(t, tt.status, v.Status, v.Detail)
			require.Contains(t, v.Detail, tt.detail)
		})
	}
	v := clockCheck("app1", gathered{connected: true, facts: factsFrom(t, `err=clock date printed "%s.%N"`)}, nil)
	require.Equal(t, Warn, v.Status)
	require.Contains(t, v.Detail, `could not read the node's clock: date printed "%s.%N"`)
}

// pinnedKeys is a host key file with a key pinned for each name.
func pinnedKeys(t *testing.T, names ...string) (*remote.HostKeys, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	key, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(path, []byte(knownhosts.Line(names, key)+"\n"), 0o600))
	hk, err := remote.OpenHostKeys(path)
	require.NoError(t, err)
	return hk, ssh.FingerprintSHA256(key)
}

func TestSSHCheck(t *testing.T) {
	t.Parallel()
	inv := parseInv(t, haYAML)
	hk, fp := pinnedKeys(t, "app1", "edge1")
	app1, edge1, app2 := node(t, inv, "app1"), node(t, inv, "edge1"), node(t, inv, "app2")
	withKey := app1
	withKey.SSH.HostKey = fp
	ok := gathered{connected: true}
	tests := []struct {
		name   string
		n      inventory.Node
		g      gathered
		o      Options
		status string
		detail string
	}{
		{"pinned", app1, ok, Options{HostKeys: hk}, Pass, "connected as root; host key " + fp + " pinned; confirm it on the node's console"},
		{"from the inventory", withKey, ok, Options{HostKeys: hk}, Pass, "host key " + fp + ", as the inventory's ssh.host_key says"},
		{"sudo user", edge1, ok, Options{HostKeys: hk}, Pass, "connected as deploy with sudo; host key " + fp},
		{"no pin", app2, ok, Options{HostKeys: hk}, Warn, "no pinned host key"},
		{"no host key file", app1, ok, Options{}, Warn, "no pinned host key"},
		{"unreachable", app1, gathered{}, Options{DialErrors: map[string]error{"app1": errors.New("remote: app1: connect root@10.0.0.11:22: no route to host")}}, Fail,
			"cannot connect: remote: app1: connect root@10.0.0.11:22: no route to host"},
		{"not connected", app1, gathered{}, Options{}, Fail, "not connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sshCheck(tt.n, tt.g, tt.o)
			require.Equal(t, tt.n.Name, c.Node)
			require.Equal(t, "ssh", c.Name)
			require.Equal(t, tt.status, c.Status, c.Detail)
			require.Contains(t, c.Detail, tt.detail)
		})
	}
}

func rowNames(checks []Check) []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.Node+"/"+c.Name)
	}
	return out
}

func TestCheckNode(t *testing.T) {
	t.Parallel()
	ha := parseInv(t, haYAML)
	aio := parseInv(t, aioYAML)
	f := factsFrom(t, "ports_source=ss", `ss=tcp LISTEN 0 128 *:8065 *:* users:(("garrison",pid=40,fd=7))`)
	g := gathered{connected: true, facts: f}

	got := checkNode(ha, node(t, ha, "app1"), g, nil, Options{})
	require.Equal(t, []string{"app1/ssh", "app1/os", "app1/cpu", "app1/memory", "app1/disk", "app1/drives", "app1/ports", "app1/names", "app1/clock", "app1/fsync"}, rowNames(got))
	for _, c := range got[1:] {
		if c.Name == "os" || c.Name == "ports" {
			require.Equal(t, Fail, c.Status, c.Detail)
			continue
		}
		// Nothing was measured: every other check warns, none passes.
		require.Equal(t, Warn, c.Status, "%s: %s", c.Name, c.Detail)
	}

	// The caller knows Garrison is installed: its own port passes.
	got = checkNode(ha, node(t, ha, "app1"), g, nil, Options{Installed: func(n string) bool { return n == "app1" }})
	require.Equal(t, Pass, got[6].Status, got[6].Detail)
	require.Contains(t, got[6].Detail, "8065/tcp garrison (ours)")

	// A proxy has no drives; a single node has no names to resolve and
	// keeps its files on its disk, so no drives either.
	require.Equal(t, []string{"edge1/ssh", "edge1/os", "edge1/cpu", "edge1/memory", "edge1/disk", "edge1/ports", "edge1/names", "edge1/clock", "edge1/fsync"},
		rowNames(checkNode(ha, node(t, ha, "edge1"), g, nil, Options{})))
	require.Equal(t, []string{"box/ssh", "box/os", "box/cpu", "box/memory", "box/disk", "box/ports", "box/clock", "box/fsync"},
		rowNames(checkNode(aio, node(t, aio, "box"), g, nil, Options{})))

	// A node whose script did not run gets one failing row after ssh.
	got = checkNode(ha, node(t, ha, "app2"), gathered{connected: true, err: errors.New("remote: app2: sudo: a password is required")}, nil, Options{})
	require.Equal(t, []string{"app2/ssh", "app2/facts"}, rowNames(got))
	require.Equal(t, Fail, got[1].Status)
	require.Contains(t, got[1].Detail, "could not run the checks on the node: remote: app2: sudo: a password is required")
}

func TestNodeNeed(t *testing.T) {
	t.Parallel()
	ha := parseInv(t, haYAML)
	aio := parseInv(t, aioYAML)
	nd, roles := nodeNeed(ha, node(t, ha, "app1"))
	require.Equal(t, need{CPUs: 5, Memory: 5 * GiB, Data: 10 * GiB}, nd)
	require.Equal(t, []string{"db", "storage", "app"}, roles)
	nd, roles = nodeNeed(ha, node(t, ha, "edge1"))
	require.Equal(t, need{CPUs: 1, Memory: 512 * MiB}, nd)
	require.Equal(t, []string{"proxy"}, roles)
	// All-in-one without drives: no MinIO, so storage needs nothing.
	nd, roles = nodeNeed(aio, node(t, aio, "box"))
	require.Equal(t, need{CPUs: 5, Memory: 4*GiB + 512*MiB, Data: 10 * GiB}, nd)
	require.Equal(t, []string{"db", "app", "proxy"}, roles)
}

func TestNodePorts(t *testing.T) {
	t.Parallel()
	ha := parseInv(t, haYAML+"  - {name: app4, address: 10.0.0.14, roles: [app, db]}\n")
	noPush := parseInv(t, aioYAML+"options: {push: false}\n")
	str := func(ps []Port) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.String()+"="+p.Service)
		}
		return strings.Join(s, " ")
	}
	require.Equal(t, "2379/tcp=etcd 2380/tcp=etcd 5432/tcp=postgres 8008/tcp=patroni 8065/tcp=garrison 8066/tcp=garrison-pushproxy "+
		"8067/tcp=garrison 8069/tcp=garrison-pushproxy 8074/tcp=garrison 8074/udp=garrison 9000/tcp=minio 9001/tcp=minio 9100/tcp=garrisonctl",
		str(NodePorts(ha, node(t, ha, "app1"))))
	// The fourth db node runs no etcd.
	require.Equal(t, "5432/tcp=postgres 8008/tcp=patroni 8065/tcp=garrison 8066/tcp=garrison-pushproxy 8067/tcp=garrison "+
		"8069/tcp=garrison-pushproxy 8074/tcp=garrison 8074/udp=garrison 9100/tcp=garrisonctl",
		str(NodePorts(ha, node(t, ha, "app4"))))
	require.Equal(t, "80/tcp=nginx 443/tcp=nginx 9100/tcp=garrisonctl", str(NodePorts(ha, node(t, ha, "edge1"))))
	// All-in-one without push and without drives: no push proxy, no MinIO.
	require.Equal(t, "80/tcp=nginx 443/tcp=nginx 2379/tcp=etcd 2380/tcp=etcd 5432/tcp=postgres 8008/tcp=patroni 8065/tcp=garrison "+
		"8067/tcp=garrison 8074/tcp=garrison 8074/udp=garrison 9100/tcp=garrisonctl",
		str(NodePorts(noPush, node(t, noPush, "box"))))
}

func TestProbeFor(t *testing.T) {
	t.Parallel()
	ha := parseInv(t, haYAML)
	p := probeFor(ha, node(t, ha, "app1"))
	require.Equal(t, []string{"app2", "app3", "app3.example.test", "edge1"}, p.Names)
	require.Equal(t, []string{"/srv/d1", "/srv/d2"}, p.Drives)
	require.Equal(t, []int{2379, 2380, 5432, 8008, 8065, 8066, 8067, 8069, 8074, 9000, 9001, 9100}, p.Ports)
	p = probeFor(ha, node(t, ha, "edge1"))
	require.Equal(t, []string{"app1", "app2", "app3", "app3.example.test"}, p.Names)
	require.Empty(t, p.Drives)
	require.Equal(t, []int{80, 443, 9100}, p.Ports)
}
