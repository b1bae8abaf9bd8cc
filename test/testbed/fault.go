package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Network faults. Every rule goes into the filter table of a node's own
// namespace (nf_tables tables are per namespace): the root namespace's
// firewall is never touched. Drops are silent: no RST, no ICMP.
//
// Where a fault must be silent for every party, the packets are dropped
// by the receiver (INPUT) rather than the sender: a datagram dropped in
// the sender's OUTPUT chain fails its send(2) with EPERM, which a process
// notices at once, unlike a network that swallows its packets (TCP hides
// it and retransmits).

// Partition cuts node off from each of others in both directions:
// packets between them are dropped silently on arrival, so connections
// between them hang until their timeouts while both sides can still reach
// everyone else. Heal undoes it.
func (tb *Testbed) Partition(ctx context.Context, node *Node, others ...*Node) error {
	if len(others) == 0 {
		return fmt.Errorf("testbed: partition %s: from no node", node)
	}
	rules := map[*Node][]string{}
	for _, o := range others {
		if o == node {
			return fmt.Errorf("testbed: partition %s from itself", node)
		}
		rules[node] = append(rules[node], "-A INPUT -s "+o.addr.String()+" -j DROP")
		rules[o] = append(rules[o], "-A INPUT -s "+node.addr.String()+" -j DROP")
	}
	if err := tb.addRules(ctx, rules); err != nil {
		return fmt.Errorf("testbed: partition %s from %v: %w", node, others, err)
	}
	return nil
}

// Isolate drops every packet into or out of node except on lo, inside
// node itself: the rest of the testbed sees silence; on the node, TCP
// connections hang too, while a UDP send fails with EPERM. Heal undoes
// it.
func (tb *Testbed) Isolate(ctx context.Context, node *Node) error {
	err := tb.addRules(ctx, map[*Node][]string{node: {
		"-A INPUT ! -i lo -j DROP",
		"-A OUTPUT ! -o lo -j DROP",
	}})
	if err != nil {
		return fmt.Errorf("testbed: isolate %s: %w", node, err)
	}
	return nil
}

// Blackhole makes node vanish silently, like a frozen machine: every
// packet to or from its address is dropped on arrival, by node itself and
// by every other node, so nobody gets an error (not even node, whose
// sends succeed and whose ARP still answers); connections just hang.
// Nodes added later are not covered. Heal undoes it.
func (tb *Testbed) Blackhole(ctx context.Context, node *Node) error {
	rules := map[*Node][]string{node: {"-A INPUT ! -i lo -j DROP"}}
	for _, o := range tb.Nodes() {
		if o != node {
			rules[o] = append(rules[o], "-A INPUT -s "+node.addr.String()+" -j DROP")
		}
	}
	if err := tb.addRules(ctx, rules); err != nil {
		return fmt.Errorf("testbed: blackhole %s: %w", node, err)
	}
	return nil
}

// Loss drops each packet arriving at node (lo aside) with the given
// probability, the substitute for netem on machines without it (TCP
// retransmits, so connections slow down rather than fail). Heal undoes it.
func (tb *Testbed) Loss(ctx context.Context, node *Node, probability float64) error {
	if probability <= 0 || probability > 1 {
		return fmt.Errorf("testbed: loss on %s: probability %v is not in (0, 1]", node, probability)
	}
	p := strconv.FormatFloat(probability, 'f', -1, 64)
	err := tb.addRules(ctx, map[*Node][]string{node: {
		"-A INPUT ! -i lo -m statistic --mode random --probability " + p + " -j DROP",
	}})
	if err != nil {
		return fmt.Errorf("testbed: loss on %s: %w", node, err)
	}
	return nil
}

// addRules appends rules to the filter table of each node's namespace,
// with one iptables-restore per node.
func (tb *Testbed) addRules(ctx context.Context, rules map[*Node][]string) error {
	for n, rs := range rules {
		n.mu.Lock()
		n.rules = true
		n.mu.Unlock()
		if err := n.iptablesRestore(ctx, true, "*filter\n"+strings.Join(rs, "\n")+"\nCOMMIT\n"); err != nil {
			return err
		}
	}
	return nil
}

// iptablesRestore feeds input to iptables-restore in the node's namespace;
// noflush keeps the rules already there.
func (n *Node) iptablesRestore(ctx context.Context, noflush bool, input string) error {
	tool, err := iptablesTool()
	if err != nil {
		return err
	}
	args := []string{"netns", "exec", n.ns, tool}
	if noflush {
		args = append(args, "--noflush")
	}
	cmd := command(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: iptables-restore: %w: %s", n.name, err, bytes.TrimSpace(out))
	}
	return nil
}

// LinkDown sets the node's eth0 down, inside the node: its processes see
// the network go away at once (ENETUNREACH), the others see silence.
// LinkUp or Heal undoes it.
func (tb *Testbed) LinkDown(ctx context.Context, node *Node) error {
	return tb.setLink(ctx, node, false, false)
}

// LinkUp sets the node's eth0 up again and waits until it is
// operationally up.
func (tb *Testbed) LinkUp(ctx context.Context, node *Node) error {
	return tb.setLink(ctx, node, false, true)
}

// Unplug sets the switch side of the node's link down, like pulling its
// cable: the node's eth0 loses its carrier and the rest of the testbed
// sees silence. Plug or Heal undoes it.
func (tb *Testbed) Unplug(ctx context.Context, node *Node) error {
	return tb.setLink(ctx, node, true, false)
}

// Plug sets the switch side of the node's link up again and waits until
// the node's eth0 has its carrier back.
func (tb *Testbed) Plug(ctx context.Context, node *Node) error {
	return tb.setLink(ctx, node, true, true)
}

func (tb *Testbed) setLink(ctx context.Context, node *Node, switchSide, up bool) error {
	state := map[bool]string{true: "up", false: "down"}[up]
	ns, dev := node.ns, "eth0"
	if switchSide {
		ns, dev = tb.sw, node.veth
	}
	if err := ipBatch(ctx, ns, "link set "+dev+" "+state); err != nil {
		return fmt.Errorf("testbed: %s: link %s: %w", node, state, err)
	}
	if up {
		if err := node.waitCarrier(ctx); err != nil {
			return err
		}
	}
	node.mu.Lock()
	if switchSide {
		node.unplugged = !up
	} else {
		node.linkDown = !up
	}
	node.mu.Unlock()
	return nil
}

// waitCarrier polls until the node's eth0 is operationally up: set up,
// with its switch-side peer up too. Until then packets would still be
// lost, and a caller that just set the link up expects it to work.
func (n *Node) waitCarrier(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := command(ctx, "ip", "-n", n.ns, "-o", "link", "show", "dev", "eth0").Output()
		if err == nil && bytes.Contains(out, []byte(" state UP ")) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: %s: eth0 is not up: %w: %s", n.name, ctx.Err(), bytes.TrimSpace(out))
		case <-tick.C:
		}
	}
}

// Heal undoes every network fault: it flushes the fault rules of every
// node that has some and sets every link that was set down up again.
func (tb *Testbed) Heal(ctx context.Context) error {
	var errs []error
	for _, n := range tb.Nodes() {
		n.mu.Lock()
		rules, linkDown, unplugged := n.rules, n.linkDown, n.unplugged
		n.mu.Unlock()
		if rules {
			// Without --noflush, iptables-restore replaces the table.
			err := n.iptablesRestore(ctx, false, "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
			if err == nil {
				n.mu.Lock()
				n.rules = false
				n.mu.Unlock()
			}
			errs = append(errs, err)
		}
		if linkDown {
			errs = append(errs, tb.LinkUp(ctx, n))
		}
		if unplugged {
			errs = append(errs, tb.Plug(ctx, n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testbed: heal: %w", err)
	}
	return nil
}
