// Package preflight checks, over SSH and before anything changes, that
// every node of a site can take the roles the inventory gives it. Each
// node answers one shell round trip: a POSIX sh script that needs nothing
// but coreutils and /proc (iproute2's ss and getent when present) prints
// key=value facts, and the checks judge them here, so the judging is
// tested without a node.
//
// Every check of every node ends as pass, warn or fail with the node and
// the reason. A check that could not run (a tool missing, an unreadable
// file) warns and says why; none passes for lack of evidence. An install
// refuses to start while any check fails, unless forced.
//
// The checks, per node:
//
//	ssh     connected; the host key pinned (remote.HostKeys) and its fingerprint
//	os      Debian 12 (bookworm) on amd64, else fail
//	cpu     CPUs against the sum of the node's roles' needs; below is a warning
//	memory  MemTotal against the same sum (90% counts: the kernel keeps some); below warns
//	disk    free space on /var/lib: the bundle's repository + 1 GiB, else fail;
//	        plus the roles' data (db, backup), else warn; / needs 1 GiB when it is
//	        another filesystem
//	drives  storage nodes: each MinIO drive exists, is a directory, is writable,
//	        is not on the root filesystem and shares no filesystem with another
//	        drive (options.allow_drives_on_root_disk turns the last two, and a
//	        missing drive, into warnings)
//	ports   DESIGN.md's ports of the node's services are free; a port held by the
//	        Garrison service meant for it passes as ours once Garrison is installed
//	        on the node; anything else holding it fails, named with its pid
//	names   every other node's name resolves to its inventory address or not at
//	        all (warn: Garrison uses addresses); to another address fails; an
//	        inventory address that is a host name must resolve
//	clock   offset from the admin machine and from the other nodes: the node reads
//	        its clock last, and the reading is compared with the answer's arrival
//	        (sshd's session start-up before the script is slower and more variable
//	        than the way back); over 0.5 s warns, over 5 s fails
//	fsync   50 synchronous 8 KiB writes on /var/lib: over 10 ms each warns, over
//	        100 ms fails on db nodes (Patroni and etcd stall on slow fsync)
//
// What each role needs (a node with several roles needs the sum; the
// disk column is free space on /var/lib beyond the bundle's repository and
// 1 GiB of headroom):
//
//	role     CPUs  memory   disk    ports
//	app      2     2 GiB    -       8065 8067 8074/tcp+udp, push proxy 8066 8069
//	db       2     2 GiB    10 GiB  5432 8008; 2379 2380 on the etcd members
//	storage  1     1 GiB    -       9000 9001 (only when the site uses MinIO)
//	proxy    1     512 MiB  -       80 443
//	backup   1     512 MiB  10 GiB  -
//	(every)  -     -        -       9100 (garrison-agent)
package preflight

import (
	"context"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/remote"
)

// Statuses of a check.
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
)

// Check is the outcome of one check on one node.
type Check struct {
	Node   string `json:"node"`
	Name   string `json:"check"`
	Status string `json:"status"` // Pass, Warn or Fail
	Detail string `json:"detail"`
}

// Report is every check of a preflight run, node by node in inventory
// order.
type Report struct {
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed (a status other than pass or
// warn counts as a failure).
func (r *Report) Failed() bool {
	_, _, fail := r.Counts()
	return fail > 0
}

// Runner runs a shell command on a node as root; *remote.Client is one.
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader) (remote.Result, error)
}

// Options are the parts of a preflight run that do not come from the
// inventory.
type Options struct {
	// BundleSize is the space, in bytes, the copy of the bundle's
	// repository takes on each node; 0 means unknown.
	BundleSize int64
	// Now is the admin machine's clock (time.Now if nil).
	Now func() time.Time
	// Installed reports whether Garrison has been installed on a node,
	// so that its own services may hold their ports. A node also counts
	// as installed when dpkg there says the garrisonctl package is. Nil
	// leaves it to the node.
	Installed func(node string) bool
	// HostKeys is the pinned host key file the connections were checked
	// against; the ssh check shows each node's fingerprint from it.
	HostKeys *remote.HostKeys
	// DialErrors are the nodes that could not be reached and why; each
	// gets a failing ssh check.
	DialErrors map[string]error
	// Timeout bounds the checks on one node (2 minutes if 0).
	Timeout time.Duration
}

// gathered is what came back from one node.
type gathered struct {
	connected bool
	facts     *facts
	err       error
	// offset is the node's clock minus the admin machine's; clock is
	// false when the node did not tell its time.
	offset time.Duration
	clock  bool
}

// Run checks every node of inv. nodes holds the connection to each node
// (a *remote.Client, or any Runner); a node without one, or with a nil
// one, is not connected: its ssh check fails with the reason in
// o.DialErrors. The nodes are checked at the same time; Run returns when
// all are done or ctx ends.
func Run[R interface {
	Runner
	comparable
}](ctx context.Context, inv *inventory.Inventory, nodes map[string]R, o Options) *Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	results := make([]gathered, len(inv.Nodes))
	var wg sync.WaitGroup
	var none R
	for i, n := range inv.Nodes {
		r, ok := nodes[n.Name]
		if !ok || r == none {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = gather(ctx, r, probeFor(inv, n), o)
		}()
	}
	wg.Wait()
	return evaluate(inv, results, o)
}

// probeFor is what node n's script looks at besides the fixed facts.
func probeFor(inv *inventory.Inventory, n inventory.Node) probe {
	var p probe
	for _, m := range inv.Nodes {
		if m.Name == n.Name {
			continue
		}
		p.Names = appendNew(p.Names, m.Name)
		if _, err := netip.ParseAddr(m.Address); err != nil {
			p.Names = appendNew(p.Names, m.Address)
		}
	}
	if n.Has(inventory.RoleStorage) && inv.UsesMinIO() {
		p.Drives = n.Drives
	}
	for _, port := range NodePorts(inv, n) {
		if !slices.Contains(p.Ports, port.Number) {
			p.Ports = append(p.Ports, port.Number)
		}
	}
	return p
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// gather runs the script on one node and reads its answer and clock.
func gather(ctx context.Context, r Runner, p probe, o Options) gathered {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	g := gathered{connected: true}
	res, err := r.Run(ctx, script(p), nil)
	received := o.Now()
	if err != nil {
		g.err = err
		return g
	}
	f, err := parseFacts(res.Stdout)
	if err != nil {
		g.err = err
		return g
	}
	g.facts = f
	if !f.Time.IsZero() {
		// The node reads its clock last, just before it answers. The time
		// before the script starts (sshd forks a session, 0.1 s or more)
		// is far longer and more variable than the answer's way back (one
		// network trip, under a millisecond on a LAN), so the reading is
		// compared with the moment the answer arrived, not with the
		// middle of the round trip.
		g.offset = f.Time.Sub(received)
		g.clock = true
	}
	return g
}
