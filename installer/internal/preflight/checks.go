package preflight

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// Thresholds.
const (
	clockWarn = 500 * time.Millisecond
	clockFail = 5 * time.Second
	fsyncWarn = 10 * time.Millisecond
	fsyncFail = 100 * time.Millisecond
	// driveLow is the free space under which a drive warns.
	driveLow = 1 * GiB
)

// evaluate judges what came back from every node.
func evaluate(inv *inventory.Inventory, results []gathered, o Options) *Report {
	offsets := map[string]time.Duration{}
	for i, n := range inv.Nodes {
		if results[i].clock {
			offsets[n.Name] = results[i].offset
		}
	}
	r := &Report{}
	for i, n := range inv.Nodes {
		r.Checks = append(r.Checks, checkNode(inv, n, results[i], offsets, o)...)
	}
	return r
}

// checkNode is every check of node n from what it answered; offsets are
// the clock offsets of every node that told its time.
func checkNode(inv *inventory.Inventory, n inventory.Node, g gathered, offsets map[string]time.Duration, o Options) []Check {
	out := []Check{sshCheck(n, g, o)}
	if !g.connected {
		return out
	}
	if g.err != nil {
		return append(out, Check{Node: n.Name, Name: "facts", Status: Fail,
			Detail: "could not run the checks on the node: " + g.err.Error()})
	}
	f := g.facts
	installed := f.Installed || (o.Installed != nil && o.Installed(n.Name))
	nd, roles := nodeNeed(inv, n)
	add := func(name string, v verdict) {
		out = append(out, Check{Node: n.Name, Name: name, Status: v.Status, Detail: v.Detail})
	}
	add("os", osCheck(f))
	add("cpu", cpuCheck(f, nd, roles))
	add("memory", memoryCheck(f, nd, roles))
	add("disk", diskCheck(f, nd, roles, o.BundleSize))
	if n.Has(inventory.RoleStorage) && inv.UsesMinIO() && len(n.Drives) > 0 {
		add("drives", drivesCheck(f, n.Drives, inv.Options.AllowDrivesOnRootDisk))
	}
	add("ports", portsCheck(f, NodePorts(inv, n), installed))
	if len(inv.Nodes) > 1 {
		add("names", namesCheck(f, n, inv.Nodes))
	}
	add("clock", clockCheck(n.Name, g, offsets))
	add("fsync", fsyncCheck(f, n.Has(inventory.RoleDB)))
	return out
}

// verdict is how one check ended.
type verdict struct{ Status, Detail string }

func sshCheck(n inventory.Node, g gathered, o Options) Check {
	c := Check{Node: n.Name, Name: "ssh"}
	if !g.connected {
		c.Status = Fail
		if err := o.DialErrors[n.Name]; err != nil {
			c.Detail = "cannot connect: " + err.Error()
		} else {
			c.Detail = "not connected"
		}
		return c
	}
	as := "as root"
	if n.SSH.User != "root" {
		as = "as " + n.SSH.User + " with sudo"
	}
	fp, ok := "", false
	if o.HostKeys != nil {
		fp, ok = o.HostKeys.Fingerprint(n.Name)
	}
	switch {
	case !ok:
		c.Status, c.Detail = Warn, "connected "+as+", but no pinned host key for the node could be read"
	case n.SSH.HostKey != "":
		c.Status, c.Detail = Pass, "connected "+as+"; host key "+fp+", as the inventory's ssh.host_key says"
	default:
		c.Status, c.Detail = Pass, "connected "+as+"; host key "+fp+" pinned; confirm it on the node's console "+
			"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) or put it in the inventory's ssh.host_key"
	}
	return c
}

func osCheck(f *facts) verdict {
	if f.OSID == "" || f.Arch == "" {
		why := f.errFor("os")
		if why == "" {
			why = "no answer from /etc/os-release or dpkg"
		}
		return verdict{Fail, "not a Debian system (" + why + "); Garrison's bundle installs on Debian 12 (bookworm) amd64"}
	}
	name := f.OSPretty
	if name == "" {
		name = f.OSID + " " + f.OSVersion
	}
	got := name + " " + f.Arch
	if f.OSID != "debian" || f.OSVersion != "12" || f.Arch != "amd64" {
		return verdict{Fail, got + ": Garrison's bundle installs on Debian 12 (bookworm) amd64"}
	}
	return verdict{Pass, got}
}

// needOf writes the part of each role in a need: "app 2 + db 2".
func needOf(roles []string, part func(need) string) string {
	if len(roles) == 0 {
		return "no role"
	}
	var parts []string
	for _, r := range roles {
		parts = append(parts, r+" "+part(roleNeeds[r]))
	}
	return strings.Join(parts, " + ")
}

func cpuCheck(f *facts, nd need, roles []string) verdict {
	if f.CPUs == 0 {
		return verdict{Warn, "could not count the CPUs: " + orUnknown(f.errFor("cpu"))}
	}
	detail := fmt.Sprintf("%d CPUs; the node's roles want %d (%s)", f.CPUs, nd.CPUs,
		needOf(roles, func(n need) string { return strconv.Itoa(n.CPUs) }))
	if f.CPUs < nd.CPUs {
		return verdict{Warn, detail + "; it may be slow under load"}
	}
	return verdict{Pass, detail}
}

func memoryCheck(f *facts, nd need, roles []string) verdict {
	if f.MemBytes == 0 {
		return verdict{Warn, "could not read the memory size: " + orUnknown(f.errFor("memory"))}
	}
	detail := fmt.Sprintf("%s; the node's roles want %s (%s)", size(f.MemBytes), size(nd.Memory),
		needOf(roles, func(n need) string { return size(n.Memory) }))
	if float64(f.MemBytes) < memSlack*float64(nd.Memory) {
		return verdict{Warn, detail + "; it may swap or run out of memory under load"}
	}
	return verdict{Pass, detail}
}

func diskCheck(f *facts, nd need, roles []string, bundle int64) verdict {
	if f.VarLib == nil {
		return verdict{Warn, "could not measure the free space on /var/lib: " + orUnknown(f.errFor("disk"))}
	}
	hard := max(bundle, 0) + headroom
	what := "the bundle's repository (" + size(bundle) + ") and 1 GiB of headroom"
	if bundle <= 0 {
		what = "the bundle's repository (size not known here) and 1 GiB of headroom"
	}
	status := Pass
	var notes []string
	free := f.VarLib.Avail
	switch {
	case free < hard:
		status = Fail
		notes = append(notes, fmt.Sprintf("/var/lib has %s free; %s need %s", size(free), what, size(hard)))
	case free < hard+nd.Data:
		status = Warn
		notes = append(notes, fmt.Sprintf("/var/lib has %s free; %s need %s, and the %s data wants %s more",
			size(free), what, size(hard), dataRoles(roles), size(nd.Data)))
	case nd.Data > 0:
		notes = append(notes, fmt.Sprintf("/var/lib has %s free (%s and the %s data want %s)",
			size(free), what, dataRoles(roles), size(hard+nd.Data)))
	default:
		notes = append(notes, fmt.Sprintf("/var/lib has %s free (%s need %s)", size(free), what, size(hard)))
	}
	switch {
	case f.Root == nil:
		status = worst(status, Warn)
		notes = append(notes, "could not measure /: "+orUnknown(f.errFor("disk")))
	case f.Root.Dev != f.VarLib.Dev && f.Root.Avail < rootNeed:
		status = Fail
		notes = append(notes, fmt.Sprintf("/ has %s free; the packages need %s", size(f.Root.Avail), size(rootNeed)))
	case f.Root.Dev != f.VarLib.Dev:
		notes = append(notes, fmt.Sprintf("/ has %s free", size(f.Root.Avail)))
	}
	return verdict{status, strings.Join(notes, "; ")}
}

// dataRoles names the roles that keep data on /var/lib.
func dataRoles(roles []string) string {
	var out []string
	for _, r := range roles {
		if roleNeeds[r].Data > 0 {
			out = append(out, r)
		}
	}
	return strings.Join(out, " and ")
}

func drivesCheck(f *facts, drives []string, allowRoot bool) verdict {
	status := Pass
	var notes []string
	note := func(s, format string, args ...any) {
		status = worst(status, s)
		notes = append(notes, fmt.Sprintf(format, args...))
	}
	// onRoot is what a drive on the root filesystem (or sharing one) is.
	onRoot := Fail
	allowed := "; each drive must be its own disk (options.allow_drives_on_root_disk allows this on test sites)"
	if allowRoot {
		onRoot, allowed = Warn, " (allowed by options.allow_drives_on_root_disk)"
	}
	seen := map[uint64]string{}
	for i, path := range drives {
		var d *drive
		if i < len(f.Drives) {
			d = f.Drives[i]
		}
		switch {
		case d == nil:
			note(Warn, "%s: not looked at (%s)", path, orUnknown(f.errFor("drives")))
		case d.State == "error":
			note(Warn, "%s: could not look at it: %s", path, d.Err)
		case d.State == "notdir":
			note(Fail, "%s exists but is not a directory", path)
		case d.State == "missing" && !allowRoot:
			note(Fail, "%s does not exist; mount the drive's disk there", path)
		case d.State == "missing":
			where := "the filesystem of " + d.Parent
			if f.Root != nil && d.FS.Dev == f.Root.Dev {
				where = "the root filesystem"
			}
			note(Warn, "%s does not exist; the install creates it on %s%s", path, where, allowed)
		case !d.Writable:
			note(Fail, "%s is not writable (a read-only filesystem?)", path)
		case f.Root == nil:
			note(Warn, "%s: %s free, but the root filesystem could not be measured to compare", path, size(d.FS.Avail))
		case d.FS.Dev == f.Root.Dev:
			note(onRoot, "%s is on the root filesystem%s", path, allowed)
		case seen[d.FS.Dev] != "":
			note(onRoot, "%s is on the same filesystem as %s%s", path, seen[d.FS.Dev], allowed)
		case d.FS.Avail < driveLow:
			note(Warn, "%s has only %s free", path, size(d.FS.Avail))
		default:
			note(Pass, "%s: own disk, %s free", path, size(d.FS.Avail))
		}
		if d != nil && d.State == "dir" && seen[d.FS.Dev] == "" {
			seen[d.FS.Dev] = path
		}
	}
	return verdict{status, strings.Join(notes, "; ")}
}

func portsCheck(f *facts, ports []Port, installed bool) verdict {
	if f.PortsSource == "" {
		return verdict{Warn, "could not see which ports are in use: " + orUnknown(f.errFor("ports"))}
	}
	status := Pass
	var bad, ours, free []string
	for _, p := range ports {
		var owners []owner
		held := false
		for _, l := range f.Listeners {
			if l.Proto == p.Proto && l.Port == p.Number {
				held = true
				for _, o := range l.Owners {
					owners = addOwner(owners, o)
				}
			}
		}
		if !held {
			free = append(free, p.String())
			continue
		}
		var foreign []string
		for _, o := range owners {
			if o.Name != commName(p.Service) {
				foreign = append(foreign, o.String())
			}
		}
		switch {
		case len(owners) == 0:
			status = Fail
			bad = append(bad, p.String()+" is in use by a process preflight cannot see")
		case len(foreign) > 0:
			status = Fail
			bad = append(bad, fmt.Sprintf("%s is in use by %s, not %s", p, strings.Join(foreign, ", "), p.Service))
		case !installed:
			status = Fail
			bad = append(bad, fmt.Sprintf("%s is in use by %s, but Garrison is not installed here: "+
				"another %s; stop and disable it", p, owners[0], p.Service))
		default:
			ours = append(ours, p.String()+" "+p.Service+" (ours)")
		}
	}
	var parts []string
	if len(bad) > 0 {
		parts = append(parts, strings.Join(bad, "; "))
	}
	if len(ours) > 0 {
		parts = append(parts, strings.Join(ours, ", "))
	}
	if len(free) > 0 {
		parts = append(parts, "free: "+strings.Join(free, " "))
	}
	if lo, hi := f.PortRange[0], f.PortRange[1]; lo > 0 {
		var clash []string
		for _, p := range ports {
			if p.Number >= lo && p.Number <= hi && !reserved(f.Reserved, p.Number) && !slices.Contains(clash, strconv.Itoa(p.Number)) {
				clash = append(clash, strconv.Itoa(p.Number))
			}
		}
		if len(clash) > 0 {
			status = worst(status, Warn)
			parts = append(parts, fmt.Sprintf("the ephemeral port range %d-%d holds %s: an outgoing connection can take one "+
				"(narrow net.ipv4.ip_local_port_range or list them in net.ipv4.ip_local_reserved_ports)", lo, hi, strings.Join(clash, " ")))
		}
	}
	if e := f.errFor("ports"); e != "" {
		parts = append(parts, "note: "+e)
	}
	if f.PortsSource == "proc" {
		parts = append(parts, "(read from /proc: ss is not installed)")
	}
	return verdict{status, strings.Join(parts, "; ")}
}

func reserved(ranges [][2]int, port int) bool {
	return slices.ContainsFunc(ranges, func(r [2]int) bool { return port >= r[0] && port <= r[1] })
}

func namesCheck(f *facts, self inventory.Node, nodes []inventory.Node) verdict {
	if e := f.errFor("names"); e != "" && len(f.Resolved) == 0 {
		return verdict{Warn, "could not resolve names: " + e}
	}
	status := Pass
	var good, notes []string
	for _, m := range nodes {
		if m.Name == self.Name {
			continue
		}
		want, wantOK := []netip.Addr(nil), false
		if ip, err := netip.ParseAddr(m.Address); err == nil {
			want, wantOK = []netip.Addr{ip.Unmap()}, true
		} else if addrs, looked := f.Resolved[m.Address]; !looked {
			status = worst(status, Warn)
			notes = append(notes, fmt.Sprintf("%s's address %s was not looked up", m.Name, m.Address))
		} else if len(addrs) == 0 {
			status = Fail
			notes = append(notes, fmt.Sprintf("%s's address %s does not resolve here, so this node cannot reach it", m.Name, m.Address))
		} else {
			want, wantOK = addrs, true
		}
		if m.Name == m.Address {
			if wantOK {
				good = append(good, m.Name)
			}
			continue
		}
		got, looked := f.Resolved[m.Name]
		switch {
		case !looked:
			status = worst(status, Warn)
			notes = append(notes, m.Name+" was not looked up")
		case len(got) == 0:
			status = worst(status, Warn)
			notes = append(notes, m.Name+" does not resolve (Garrison uses addresses, but admins and logs use names)")
		case !wantOK:
		case slices.ContainsFunc(got, func(a netip.Addr) bool { return slices.Contains(want, a) }):
			good = append(good, m.Name)
		default:
			status = Fail
			notes = append(notes, fmt.Sprintf("%s resolves to %s, not to its inventory address %s; fix /etc/hosts or DNS",
				m.Name, addrList(got), m.Address))
		}
	}
	if len(good) > 0 {
		notes = append(notes, strings.Join(good, ", ")+" resolve to their inventory addresses")
	}
	return verdict{status, strings.Join(notes, "; ")}
}

func addrList(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func clockCheck(self string, g gathered, offsets map[string]time.Duration) verdict {
	if !g.clock {
		return verdict{Warn, "could not read the node's clock: " + orUnknown(g.facts.errFor("clock"))}
	}
	dir := "ahead of"
	if g.offset < 0 {
		dir = "behind"
	}
	detail := fmt.Sprintf("%s %s the admin machine", seconds(g.offset.Abs()), dir)
	worstSkew := g.offset.Abs()
	var far string
	var farSkew time.Duration
	for name, off := range offsets {
		if name == self {
			continue
		}
		if d := (g.offset - off).Abs(); d > farSkew || (d == farSkew && name < far) {
			far, farSkew = name, d
		}
	}
	if far != "" {
		detail += fmt.Sprintf(", %s from %s", seconds(farSkew), far)
		worstSkew = max(worstSkew, farSkew)
	}
	switch {
	case worstSkew > clockFail:
		return verdict{Fail, detail + "; certificates, etcd and Patroni need clocks within " + seconds(clockWarn) + ": run NTP (systemd-timesyncd or chrony) on every node"}
	case worstSkew > clockWarn:
		return verdict{Warn, detail + "; keep clocks within " + seconds(clockWarn) + ": run NTP (systemd-timesyncd or chrony) on every node"}
	}
	return verdict{Pass, detail}
}

func fsyncCheck(f *facts, db bool) verdict {
	if f.FsyncCount == 0 {
		return verdict{Warn, "could not time fsync on /var/lib: " + orUnknown(f.errFor("fsync"))}
	}
	per := f.FsyncTotal / time.Duration(f.FsyncCount)
	detail := fmt.Sprintf("%s per synchronous 8 KiB write on /var/lib (%d writes)", millis(per), f.FsyncCount)
	if f.FsyncTimeout > 0 {
		per = f.FsyncTimeout / time.Duration(f.FsyncCount)
		detail = fmt.Sprintf("%d synchronous 8 KiB writes on /var/lib did not end within %s (over %s each)",
			f.FsyncCount, f.FsyncTimeout, millis(per))
	}
	why := "; Patroni and etcd stall on slow fsync: put /var/lib on an SSD or a controller with a write cache"
	if !db {
		why = "; slow for MinIO and logs, and too slow for a db node"
	}
	switch {
	case per > fsyncFail && db:
		return verdict{Fail, detail + why}
	case per > fsyncWarn:
		return verdict{Warn, detail + why}
	}
	return verdict{Pass, detail}
}

// worst is the worse of two statuses.
func worst(a, b string) string {
	rank := map[string]int{Pass: 0, Warn: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func orUnknown(s string) string {
	if s == "" {
		return "no answer"
	}
	return s
}

// size writes a byte count for people: 512 MiB, 1.5 GiB.
func size(b int64) string {
	switch {
	case b >= GiB && b%GiB == 0:
		return strconv.FormatInt(b/GiB, 10) + " GiB"
	case b >= GiB:
		return strconv.FormatFloat(float64(b)/float64(GiB), 'f', 1, 64) + " GiB"
	case b >= MiB:
		return strconv.FormatInt(b/MiB, 10) + " MiB"
	case b >= 1024:
		return strconv.FormatInt(b/1024, 10) + " KiB"
	}
	return strconv.FormatInt(b, 10) + " bytes"
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + " s" }

func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}
