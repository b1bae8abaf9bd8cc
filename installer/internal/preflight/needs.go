package preflight

import (
	"fmt"
	"slices"
	"strings"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// Sizes.
const (
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// headroom is the free space every node keeps on /var/lib beyond the
// bundle's repository: packages unpack, apt caches, logs grow.
const headroom = 1 * GiB

// rootNeed is the free space the root filesystem needs when /var/lib is
// another filesystem: the packages unpack into /usr and /etc.
const rootNeed = 1 * GiB

// memSlack is the share of a memory need that counts as meeting it: the
// kernel and the firmware keep some RAM, so a 2 GiB machine shows about
// 1.9 GiB in MemTotal.
const memSlack = 0.9

// need is what one role asks of a node.
type need struct {
	CPUs   int
	Memory int64
	// Data is free space on /var/lib for the role's data, beyond the
	// bundle and the headroom. Below it is a warning, not a failure.
	Data int64
}

// roleNeeds are the needs of each role; a node with several roles needs
// their sum. The package documentation has the same table.
var roleNeeds = map[string]need{
	inventory.RoleApp:     {CPUs: 2, Memory: 2 * GiB},
	inventory.RoleDB:      {CPUs: 2, Memory: 2 * GiB, Data: 10 * GiB},
	inventory.RoleStorage: {CPUs: 1, Memory: 1 * GiB},
	inventory.RoleProxy:   {CPUs: 1, Memory: 512 * MiB},
	inventory.RoleBackup:  {CPUs: 1, Memory: 512 * MiB, Data: 10 * GiB},
}

// nodeNeed is the sum of the needs of the roles node n really runs, and
// which roles those are (a storage node runs nothing when the site keeps
// its files on local disk).
func nodeNeed(inv *inventory.Inventory, n inventory.Node) (need, []string) {
	var sum need
	var roles []string
	for _, r := range inventory.AllRoles {
		if !n.Has(r) || (r == inventory.RoleStorage && !inv.UsesMinIO()) {
			continue
		}
		nd := roleNeeds[r]
		sum.CPUs += nd.CPUs
		sum.Memory += nd.Memory
		sum.Data += nd.Data
		roles = append(roles, r)
	}
	return sum, roles
}

// Port is a port a node's services listen on.
type Port struct {
	Number int
	Proto  string // "tcp" or "udp"
	// Service is the program that listens on it once Garrison runs: the
	// name the kernel gives its process.
	Service string
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.Proto) }

// NodePorts are the ports node n's services will listen on, from
// DESIGN.md's table, in ascending order: the agent's on every node, and
// those of the roles the node runs.
func NodePorts(inv *inventory.Inventory, n inventory.Node) []Port {
	var ps []Port
	add := func(service, proto string, numbers ...int) {
		for _, num := range numbers {
			ps = append(ps, Port{Number: num, Proto: proto, Service: service})
		}
	}
	add("garrisonctl", "tcp", 9100) // garrison-agent.service runs `garrisonctl agent`
	if n.Has(inventory.RoleProxy) {
		add("nginx", "tcp", 80, 443)
	}
	if n.Has(inventory.RoleApp) {
		add("garrison", "tcp", 8065, 8067, 8074)
		add("garrison", "udp", 8074) // memberlist gossip
		if inv.Push() {
			add("garrison-pushproxy", "tcp", 8066, 8069)
		}
	}
	if n.Has(inventory.RoleDB) {
		add("postgres", "tcp", 5432)
		add("patroni", "tcp", 8008)
		if slices.ContainsFunc(inv.EtcdMembers(), func(m inventory.Node) bool { return m.Name == n.Name }) {
			add("etcd", "tcp", 2379, 2380)
		}
	}
	if n.Has(inventory.RoleStorage) && inv.UsesMinIO() {
		add("minio", "tcp", 9000, 9001)
	}
	// pgBackRest's TLS server: on the backup node, and with one on every
	// db node, which the backup node backs up from.
	if len(inv.With(inventory.RoleBackup)) > 0 && (n.Has(inventory.RoleBackup) || n.Has(inventory.RoleDB)) {
		add("pgbackrest", "tcp", 8432)
	}
	slices.SortFunc(ps, func(a, b Port) int {
		if a.Number != b.Number {
			return a.Number - b.Number
		}
		return strings.Compare(a.Proto, b.Proto)
	})
	return ps
}

// commName is name as the kernel keeps it for a process (comm): at most
// 15 bytes.
func commName(name string) string {
	if len(name) > 15 {
		return name[:15]
	}
	return name
}
