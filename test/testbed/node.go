package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Node is one machine of the testbed: a network namespace with an
// address in the run's subnet on eth0, whose peer is plugged into the
// bridge, and lo up; no other route, so nothing on the node reaches
// anything outside the subnet. Processes started on it run inside the
// namespace (through `ip netns exec`); its scratch directory holds their
// logs.
//
// A plain node runs host programs in its namespace (Start, Command). Boot
// makes it a Machine: a Debian root booted with systemd-nspawn in the same
// namespace, so its address, faults and dialing stay as they are.
type Node struct {
	tb   *Testbed
	name string
	ns   string
	addr netip.Addr
	dir  string
	veth string // the switch-side end of the node's link

	mu      sync.Mutex // guards the fields below
	procs   map[string]*Process
	machine *Machine // set once Boot has succeeded
	booting bool     // a Boot is under way
	// The faults in place, for Heal.
	rules, linkDown, unplugged bool
}

var nodeNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,12}$`)

// AddNode creates node name: its namespace (the run's prefix, "-",
// name), a veth pair between it and the bridge, the next free address in
// the subnet (from .10 up, in the order nodes are added) and a scratch
// directory. Names are short lower-case words (app1, db1, client): they
// also name the switch-side interface, which must fit in 15 characters.
//
// When the testbed has machines, their /etc/hosts gain the new node
// (WriteHosts).
func (tb *Testbed) AddNode(ctx context.Context, name string) (*Node, error) {
	n, machines, err := tb.addNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if machines {
		if err := tb.WriteHosts(ctx); err != nil {
			return nil, fmt.Errorf("testbed: add node %s: %w", name, err)
		}
	}
	return n, nil
}

// addNode is AddNode but for the machines' /etc/hosts; it reports
// whether there are machines.
func (tb *Testbed) addNode(ctx context.Context, name string) (_ *Node, machines bool, err error) {
	if !nodeNameRE.MatchString(name) {
		return nil, false, fmt.Errorf("testbed: node name %q: use 1 to 13 lower-case letters and digits, starting with a letter", name)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.closed {
		return nil, false, errors.New("testbed: add node: the testbed is closed")
	}
	for _, n := range tb.nodes {
		if n.name == name {
			return nil, false, fmt.Errorf("testbed: node %s exists", name)
		}
	}
	host := 10 + len(tb.nodes)
	if host > 250 {
		return nil, false, errors.New("testbed: add node: the subnet is full")
	}
	base := tb.subnet.Addr().As4()
	base[3] = byte(host)
	n := &Node{
		tb:    tb,
		name:  name,
		ns:    tb.prefix + "-" + name,
		addr:  netip.AddrFrom4(base),
		dir:   filepath.Join(tb.dir, name),
		veth:  "v-" + name,
		procs: map[string]*Process{},
	}
	// Holding tb.mu for the few ip commands keeps addresses and the record
	// consistent; adding nodes is not a hot path.
	if err := tb.recordLocked(func(r *record) { r.Namespaces = append(r.Namespaces, n.ns) }); err != nil {
		return nil, false, err
	}
	if err := mkdirAll(n.dir); err != nil {
		return nil, false, fmt.Errorf("testbed: add node %s: %w", name, err)
	}
	if err := ipBatch(ctx, "", "netns add "+n.ns); err != nil {
		return nil, false, fmt.Errorf("testbed: add node %s: %w", name, err)
	}
	// The veth is created in the switch namespace, with its other end
	// moved straight into the node's: neither end ever appears in the root
	// namespace.
	if err := ipBatch(ctx, tb.sw,
		"link add "+n.veth+" type veth peer name eth0 netns "+n.ns,
		"link set "+n.veth+" master "+bridge+" up",
	); err != nil {
		return nil, false, fmt.Errorf("testbed: add node %s: %w", name, err)
	}
	if err := ipBatch(ctx, n.ns,
		"addr add "+netip.PrefixFrom(n.addr, tb.subnet.Bits()).String()+" dev eth0",
		"link set eth0 up",
		"link set lo up",
	); err != nil {
		return nil, false, fmt.Errorf("testbed: add node %s: %w", name, err)
	}
	tb.nodes = append(tb.nodes, n)
	tb.logf("testbed: node %s at %s (namespace %s)", name, n.addr, n.ns)
	return n, len(tb.machines) > 0, nil
}

// AddNodes adds several nodes in order; see AddNode.
func (tb *Testbed) AddNodes(ctx context.Context, names ...string) ([]*Node, error) {
	nodes := make([]*Node, 0, len(names))
	for _, name := range names {
		n, err := tb.AddNode(ctx, name)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// Name returns the node's name (app1).
func (n *Node) Name() string { return n.name }

// Namespace returns the name of the node's network namespace, for
// `ip netns exec`.
func (n *Node) Namespace() string { return n.ns }

// Addr returns the node's address.
func (n *Node) Addr() netip.Addr { return n.addr }

// HostPort returns the node's address with port, for a URL or a dial.
func (n *Node) HostPort(port int) string {
	return net.JoinHostPort(n.addr.String(), strconv.Itoa(port))
}

// Dir returns the node's scratch directory.
func (n *Node) Dir() string { return n.dir }

// String returns the node's name.
func (n *Node) String() string { return n.name }

// Command returns a command that runs path with args inside the node's
// network namespace (`ip netns exec <namespace> path args...`, which
// execs path, so the process is the program's own), such as the admin's
// garrisonctl run from a plain node: every client aimed at a node address
// must run in a namespace. It has the test's environment and working
// directory, like exec.Command; set Env, Dir, Stdin or Stdout as needed.
// ctx kills it (SIGKILL) if it ends first. For a server that outlives
// the call, use Start.
func (n *Node) Command(ctx context.Context, path string, args ...string) *exec.Cmd {
	return command(ctx, "ip", append([]string{"netns", "exec", n.ns, path}, args...)...)
}

// Run runs a short command inside the node's namespace (see Command) and
// returns its combined output; the error includes the output.
func (n *Node) Run(ctx context.Context, path string, args ...string) ([]byte, error) {
	out, err := n.Command(ctx, path, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("testbed: %s: %s %q: %w: %s", n.name, path, args, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// WaitListening polls, from inside the node, until something accepts TCP
// connections at hostport (typically a server just started on this or
// another node), or ctx ends.
func (n *Node) WaitListening(ctx context.Context, hostport string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := n.DialContext(dctx, "tcp", hostport)
		cancel()
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: %s: nothing listens at %s: %w (last error: %v)", n.name, hostport, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
