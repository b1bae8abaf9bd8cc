package preflight

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// facts is what the script found on one node.
type facts struct {
	OSID, OSVersion, OSPretty string
	Arch                      string
	// Installed: dpkg says the garrisonctl package is installed, so an
	// install has run on the node.
	Installed bool
	CPUs      int      // 0: unknown
	MemBytes  int64    // MemTotal; 0: unknown
	Root      *fsInfo  // nil: unknown
	VarLib    *fsInfo  // nil: unknown
	Drives    []*drive // by index of the probe's drives; nil: not reported
	// Resolved holds each looked-up name's addresses (none: it did not
	// resolve).
	Resolved map[string][]netip.Addr
	// PortsSource is "ss" or "proc", empty when the ports were not
	// looked at.
	PortsSource string
	Listeners   []listener
	// PortRange is the kernel's ephemeral port range, zero if unknown;
	// Reserved are the ports it keeps out of that range.
	PortRange [2]int
	Reserved  [][2]int
	// FsyncTotal is how long FsyncCount synchronous writes took.
	FsyncTotal time.Duration
	FsyncCount int
	// FsyncTimeout is set when the writes did not end within it.
	FsyncTimeout time.Duration
	// Time is the node's clock as the script ended.
	Time time.Time
	// Errs are the reasons parts of the script could not run, by section
	// (os, cpu, memory, disk, names, ports, fsync).
	Errs map[string][]string
}

// fsInfo is one filesystem as seen from a path.
type fsInfo struct {
	Dev          uint64 // st_dev of the path
	Total, Avail int64  // bytes; Avail is what an unprivileged user may use
}

// drive is one MinIO drive.
type drive struct {
	State    string // dir, notdir, missing, error
	FS       fsInfo // dir: the drive's filesystem; missing: Dev of Parent
	Writable bool
	Parent   string // missing: the nearest existing ancestor
	Err      string // error: why it could not be looked at
}

// listener is a socket listening on one of the probed ports.
type listener struct {
	Proto  string // tcp, udp
	Addr   string // local address, as ss prints it
	Port   int
	Owners []owner // none: not visible to the script
	inode  string  // /proc fallback: joins the socket to its owners
}

// owner is a process holding a socket.
type owner struct {
	Name string // comm
	PID  int
}

func (o owner) String() string { return fmt.Sprintf("%s (pid %d)", o.Name, o.PID) }

func (f *facts) err(section, format string, args ...any) {
	if f.Errs == nil {
		f.Errs = map[string][]string{}
	}
	f.Errs[section] = append(f.Errs[section], fmt.Sprintf(format, args...))
}

// errFor is the reasons a section could not run, joined, or "".
func (f *facts) errFor(section string) string { return strings.Join(f.Errs[section], "; ") }

// errNoFacts is parseFacts' error when the output is not the script's.
var errNoFacts = errors.New("the node's output is not preflight facts")

// parseFacts reads the script's output. It fails only when the output is
// not the script's; a line it cannot read becomes an error of its
// section, so the check it feeds warns instead of passing.
func parseFacts(out []byte) (*facts, error) {
	f := &facts{Resolved: map[string][]netip.Addr{}}
	owners := map[string][]owner{}
	version := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue // a tool's stray output
		}
		switch key {
		case "version":
			version = val
		case "err":
			section, reason, _ := strings.Cut(val, " ")
			f.err(section, "%s", reason)
		case "os_id":
			f.OSID = val
		case "os_version_id":
			f.OSVersion = val
		case "os_pretty":
			f.OSPretty = val
		case "arch":
			f.Arch = val
		case "installed":
			f.Installed = val == "install ok installed"
		case "nproc":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				f.err("cpu", "nproc printed %q", val)
				continue
			}
			f.CPUs = n
		case "mem_kb":
			kb, err := strconv.ParseInt(val, 10, 64)
			if err != nil || kb < 1 {
				f.err("memory", "MemTotal is %q", val)
				continue
			}
			f.MemBytes = kb * 1024
		case "fs":
			f.parseFS(val)
		case "drive":
			f.parseDrive(val)
		case "resolve":
			fields := strings.Fields(val)
			if len(fields) == 0 {
				continue
			}
			var addrs []netip.Addr
			for _, a := range fields[1:] {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					f.err("names", "getent printed %q for %s", a, fields[0])
					continue
				}
				if ip = ip.Unmap(); !slices.Contains(addrs, ip) {
					addrs = append(addrs, ip)
				}
			}
			f.Resolved[fields[0]] = addrs
		case "port_range":
			var lo, hi int
			if n, err := fmt.Sscanf(val, "%d %d", &lo, &hi); err != nil || n != 2 {
				f.err("ports", "ip_local_port_range is %q", val)
				continue
			}
			f.PortRange = [2]int{lo, hi}
		case "port_reserved":
			r, err := parseRanges(val)
			if err != nil {
				f.err("ports", "ip_local_reserved_ports: %v", err)
				continue
			}
			f.Reserved = r
		case "ports_source":
			f.PortsSource = val
		case "ss":
			l, err := parseSS(val)
			if err != nil {
				f.err("ports", "%v", err)
				continue
			}
			f.Listeners = append(f.Listeners, l)
		case "sock":
			l, err := parseProcSock(val)
			if err != nil {
				f.err("ports", "%v", err)
				continue
			}
			f.Listeners = append(f.Listeners, l)
		case "owner":
			fields := strings.SplitN(val, " ", 3)
			if len(fields) < 2 {
				f.err("ports", "bad owner line %q", val)
				continue
			}
			pid, err := strconv.Atoi(fields[1])
			if err != nil {
				f.err("ports", "bad owner line %q", val)
				continue
			}
			name := ""
			if len(fields) == 3 {
				name = fields[2]
			}
			owners[fields[0]] = addOwner(owners[fields[0]], owner{Name: name, PID: pid})
		case "fsync":
			var ns int64
			var n int
			if c, err := fmt.Sscanf(val, "%d %d", &ns, &n); err != nil || c != 2 || ns < 0 || n < 1 {
				f.err("fsync", "bad timing %q", val)
				continue
			}
			f.FsyncTotal, f.FsyncCount = time.Duration(ns), n
		case "fsync_timeout":
			var secs, n int
			if c, err := fmt.Sscanf(val, "%d %d", &secs, &n); err != nil || c != 2 || secs < 1 || n < 1 {
				f.err("fsync", "bad timeout %q", val)
				continue
			}
			f.FsyncTimeout, f.FsyncCount = time.Duration(secs)*time.Second, n
		case "time":
			t, err := parseEpoch(val)
			if err != nil {
				f.err("clock", "%v", err)
				continue
			}
			f.Time = t
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoFacts, err)
	}
	if version != scriptVersion {
		return nil, fmt.Errorf("%w (version %q, want %q)", errNoFacts, version, scriptVersion)
	}
	for i := range f.Listeners {
		if l := &f.Listeners[i]; l.inode != "" {
			l.Owners = owners[l.inode]
		}
	}
	return f, nil
}

func addOwner(list []owner, o owner) []owner {
	if slices.Contains(list, o) {
		return list
	}
	return append(list, o)
}

// parseFS reads "fs=<name> <dev> <block size> <blocks> <available blocks>".
func (f *facts) parseFS(val string) {
	var name string
	var dev uint64
	var bsize, blocks, avail int64
	if n, err := fmt.Sscanf(val, "%s %d %d %d %d", &name, &dev, &bsize, &blocks, &avail); err != nil || n != 5 {
		f.err("disk", "bad filesystem line %q", val)
		return
	}
	fi := &fsInfo{Dev: dev, Total: bsize * blocks, Avail: bsize * avail}
	switch name {
	case "root":
		f.Root = fi
	case "varlib":
		f.VarLib = fi
	}
}

// parseDrive reads "drive=<index> <state> ...".
func (f *facts) parseDrive(val string) {
	fields := strings.Fields(val)
	bad := func() { f.err("drives", "bad drive line %q", val) }
	if len(fields) < 2 {
		bad()
		return
	}
	i, err := strconv.Atoi(fields[0])
	if err != nil || i < 0 || i > 1024 {
		bad()
		return
	}
	d := &drive{State: fields[1]}
	switch d.State {
	case "dir":
		var bsize, blocks, avail int64
		var w int
		if n, err := fmt.Sscanf(strings.Join(fields[2:], " "), "%d %d %d %d %d", &d.FS.Dev, &bsize, &blocks, &avail, &w); err != nil || n != 5 {
			bad()
			return
		}
		d.FS.Total, d.FS.Avail, d.Writable = bsize*blocks, bsize*avail, w == 1
	case "missing":
		if len(fields) != 4 {
			bad()
			return
		}
		dev, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			bad()
			return
		}
		d.FS.Dev, d.Parent = dev, fields[3]
	case "error":
		d.Err = strings.Join(fields[2:], " ")
	case "notdir":
	default:
		bad()
		return
	}
	for len(f.Drives) <= i {
		f.Drives = append(f.Drives, nil)
	}
	f.Drives[i] = d
}

// ssUsersRE matches one process in ss's users:(...) column.
var ssUsersRE = regexp.MustCompile(`\("((?:[^"\\]|\\.)*)",pid=(\d+),`)

// parseSS reads one line of `ss -Hltnup`:
// Netid State Recv-Q Send-Q Local:Port Peer:Port [users:(("name",pid=N,fd=M),...)]
func parseSS(line string) (listener, error) {
	fields := strings.Fields(line)
	if len(fields) < 6 {
		return listener{}, fmt.Errorf("bad ss line %q", line)
	}
	addr, port, err := splitAddrPort(fields[4])
	if err != nil {
		return listener{}, fmt.Errorf("ss line %q: %v", line, err)
	}
	l := listener{Proto: fields[0], Addr: addr, Port: port}
	for _, m := range ssUsersRE.FindAllStringSubmatch(strings.Join(fields[6:], " "), -1) {
		pid, _ := strconv.Atoi(m[2])
		l.Owners = addOwner(l.Owners, owner{Name: m[1], PID: pid})
	}
	return l, nil
}

// splitAddrPort splits ss's local address column: 0.0.0.0:80, [::]:443,
// *:8074, 127.0.0.53%lo:53.
func splitAddrPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("no port in %q", s)
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", s)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	if j := strings.IndexByte(addr, '%'); j >= 0 {
		addr = addr[:j]
	}
	return addr, port, nil
}

// parseProcSock reads "sock=<tcp|udp> <hex address>:<hex port> <inode>"
// from /proc/net/{tcp,udp}{,6}.
func parseProcSock(val string) (listener, error) {
	fields := strings.Fields(val)
	if len(fields) != 3 || (fields[0] != "tcp" && fields[0] != "udp") {
		return listener{}, fmt.Errorf("bad socket line %q", val)
	}
	hexAddr, hexPort, ok := strings.Cut(fields[1], ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if !ok || err != nil {
		return listener{}, fmt.Errorf("bad socket address %q", fields[1])
	}
	addr, err := procAddr(hexAddr)
	if err != nil {
		return listener{}, err
	}
	return listener{Proto: fields[0], Addr: addr.String(), Port: int(port), inode: fields[2]}, nil
}

// procAddr decodes an address of /proc/net/tcp: 32-bit words in host
// (little-endian) byte order.
func procAddr(h string) (netip.Addr, error) {
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, fmt.Errorf("bad socket address %q", h)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap(), nil
}

// parseRanges reads a sysctl port list: "8065,8066-8069" (or empty).
func parseRanges(s string) ([][2]int, error) {
	var out [][2]int
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a > b {
			return nil, fmt.Errorf("bad port range %q", part)
		}
		out = append(out, [2]int{a, b})
	}
	return out, nil
}

// parseEpoch reads `date +%s.%N`.
func parseEpoch(s string) (time.Time, error) {
	sec, frac, ok := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if !ok || err != nil || len(frac) != 9 {
		return time.Time{}, fmt.Errorf("date printed %q", s)
	}
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || ns < 0 {
		return time.Time{}, fmt.Errorf("date printed %q", s)
	}
	return time.Unix(secs, ns), nil
}
