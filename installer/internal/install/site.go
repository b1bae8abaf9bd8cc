// Package install turns an inventory and a verified bundle into a running
// site: it plans the steps, runs them node by node over SSH, waits for
// health at each stage and ends with a signed receipt. Every step is
// idempotent (it looks before it changes anything and reports what it
// changed), so a second run changes nothing and a run stopped anywhere
// finishes on the next.
//
// The files below are pure: they compute the site's layout (who runs
// what, on which address and port, with which certificate) and render
// every configuration file from it. The steps that apply them over SSH are
// in steps.go.
package install

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// Ports, from DESIGN.md.
const (
	PortHTTP       = 80
	PortHTTPS      = 443
	PortAPI        = 8065
	PortPush       = 8066
	PortMetrics    = 8067
	PortPushMetric = 8069
	PortGossip     = 8074
	PortAgent      = 9100
	PortPostgres   = 5432
	PortPatroni    = 8008
	PortEtcdClient = 2379
	PortEtcdPeer   = 2380
	PortMinIO      = 9000
	PortMinIOAdmin = 9001 // MinIO console, loopback only
	PortPGBackRest = 8432 // pgBackRest's TLS server, on db nodes and the backup node
)

// Paths on the nodes.
const (
	TLSDir       = "/etc/garrison/tls"
	CAFile       = TLSDir + "/ca.crt"
	NodeCertFile = TLSDir + "/node.crt"
	PublicCert   = TLSDir + "/public.crt"
	PublicKey    = TLSDir + "/public.key"
	MinIOCerts   = "/etc/garrison/minio/certs"

	GarrisonConfig  = "/etc/garrison/config.json"
	PushProxyConfig = "/etc/garrison/pushproxy.json"
	AgentConfig     = "/etc/garrison/agent.json"
	MinIOEnvFile    = "/etc/garrison/minio.env"
	PatroniConfig   = "/etc/patroni/config.yml"
	EtcdEnvFile     = "/etc/default/etcd"
	NginxConfig     = "/etc/nginx/nginx.conf"

	PGBackRestConfig = "/etc/pgbackrest.conf"
	PGBackRestRepo   = "/var/lib/pgbackrest" // the repository on a backup node, or on a site's one db node

	PGDataDir  = "/var/lib/postgresql/15/garrison"
	PGBinDir   = "/usr/lib/postgresql/15/bin"
	EtcdData   = "/var/lib/etcd/garrison"
	RepoDir    = "/var/lib/garrisonctl/repo"
	KeyringDir = "/etc/apt/keyrings"
)

// Database names and the bucket.
const (
	DBGarrison = "garrison"
	DBPush     = "garrison_push"
	Bucket     = "garrison"
	// BackupBucket holds the pgBackRest repository on a site with MinIO,
	// under the Stanza's path.
	BackupBucket = "garrison-pgbackrest"
	// Stanza is the pgBackRest stanza of the site's database cluster.
	Stanza = "garrison"
	// AppServerName is a name in every app node's certificate, so nginx,
	// which checks one name for a whole upstream, can verify them all.
	AppServerName = "garrison-app.internal"
)

// KeyFile is the path of the node key's copy that owner (a system user)
// reads: each service gets its own 0600 copy, so no service can read a
// key through another's group.
func KeyFile(owner string) string { return TLSDir + "/" + owner + ".key" }

// Site is an inventory as the installer lays it out.
type Site struct {
	Inv *inventory.Inventory
	// Relaxed timings for oversubscribed test machines (see Timings).
	Timings Timings
}

// Timings are the failure-detection timings of etcd and Patroni.
type Timings struct {
	EtcdHeartbeatMS, EtcdElectionMS int
	// Patroni: a dead primary's leader key expires after TTL; Patroni
	// requires LoopWait + 2*RetryTimeout <= TTL.
	TTL, LoopWait, RetryTimeout int
}

// DefaultTimings replace a dead primary within about 20 s on real
// hardware: the leader key's TTL bounds the detection, a loop runs the
// promotion.
func DefaultTimings() Timings {
	return Timings{EtcdHeartbeatMS: 100, EtcdElectionMS: 1000, TTL: 20, LoopWait: 5, RetryTimeout: 7}
}

// RelaxedTimings suit two oversubscribed cores running a whole site (the
// testbed): slower detection, no false failovers under load.
func RelaxedTimings() Timings {
	return Timings{EtcdHeartbeatMS: 300, EtcdElectionMS: 3000, TTL: 30, LoopWait: 10, RetryTimeout: 10}
}

// NewSite lays out inv.
func NewSite(inv *inventory.Inventory) *Site {
	return &Site{Inv: inv, Timings: DefaultTimings()}
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// Packages are the Debian packages node n needs, sorted.
func (s *Site) Packages(n inventory.Node) []string {
	set := map[string]bool{"garrisonctl": true}
	if n.Has(inventory.RoleApp) {
		set["garrison"] = true
		if s.Inv.Push() {
			set["garrison-pushproxy"] = true
		}
	}
	if n.Has(inventory.RoleDB) {
		set["postgresql-15"] = true
		set["patroni"] = true
		set["pgbackrest"] = true
		if s.isEtcd(n) {
			set["etcd-server"] = true
		}
	}
	if n.Has(inventory.RoleStorage) && s.Inv.UsesMinIO() {
		set["garrison-minio"] = true
	}
	if n.Has(inventory.RoleProxy) {
		set["nginx"] = true
	}
	if n.Has(inventory.RoleBackup) {
		set["pgbackrest"] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (s *Site) isEtcd(n inventory.Node) bool {
	return slices.ContainsFunc(s.Inv.EtcdMembers(), func(m inventory.Node) bool { return m.Name == n.Name })
}

// Units are the systemd units node n runs, in start order.
func (s *Site) Units(n inventory.Node) []string {
	var u []string
	if s.isEtcd(n) {
		u = append(u, "etcd.service")
	}
	if n.Has(inventory.RoleStorage) && s.Inv.UsesMinIO() {
		u = append(u, "garrison-minio.service")
	}
	if s.runsPGBackRestServer(n) {
		u = append(u, "pgbackrest.service")
	}
	if n.Has(inventory.RoleDB) {
		u = append(u, "patroni.service")
	}
	if n.Has(inventory.RoleApp) {
		if s.Inv.Push() {
			u = append(u, "garrison-pushproxy.service")
		}
		u = append(u, "garrison.service")
	}
	if n.Has(inventory.RoleProxy) {
		u = append(u, "nginx.service")
	}
	return append(u, "garrison-agent.service")
}

// KeyOwners are the system users that get a copy of node n's TLS key.
func (s *Site) KeyOwners(n inventory.Node) []string {
	owners := []string{"garrison-agent"}
	if n.Has(inventory.RoleApp) {
		owners = append(owners, "garrison")
		if s.Inv.Push() {
			owners = append(owners, "garrison-pushproxy")
		}
	}
	if n.Has(inventory.RoleDB) || n.Has(inventory.RoleBackup) {
		owners = append(owners, "postgres") // PostgreSQL, Patroni, pgBackRest
	}
	if n.Has(inventory.RoleDB) {
		if s.isEtcd(n) {
			owners = append(owners, "etcd")
		}
	}
	if n.Has(inventory.RoleStorage) && s.Inv.UsesMinIO() {
		owners = append(owners, "garrison-minio")
	}
	if n.Has(inventory.RoleProxy) {
		owners = append(owners, "root")
	}
	return owners
}

// CertNames are the DNS names in node n's certificate (its IP address and
// loopback go in as IP SANs).
func (s *Site) CertNames(n inventory.Node) []string {
	names := []string{n.Name, "localhost"}
	if net.ParseIP(n.Address) == nil {
		names = append(names, n.Address)
	}
	if n.Has(inventory.RoleApp) {
		names = append(names, AppServerName)
	}
	return names
}

// SiteHost is site_url's host name.
func (s *Site) SiteHost() string {
	u, err := url.Parse(s.Inv.SiteURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// dbHosts is the multi-host list of every db node, for a libpq URL.
func (s *Site) dbHosts() string {
	var hosts []string
	for _, n := range s.Inv.With(inventory.RoleDB) {
		hosts = append(hosts, hostPort(n.Address, PortPostgres))
	}
	return strings.Join(hosts, ",")
}

// DSN is the writer's DSN for database db as user: every db node, TLS
// verified against the site CA, and target_session_attrs=read-write so a
// connection always lands on the current primary.
func (s *Site) DSN(user, password, db string) string {
	return s.dsn(user, password, db, s.dbHosts(), "read-write")
}

// ReplicaDSNs are one DSN per db node that reads only from a standby.
func (s *Site) ReplicaDSNs(user, password, db string) []string {
	var out []string
	for _, n := range s.Inv.With(inventory.RoleDB) {
		out = append(out, s.dsn(user, password, db, hostPort(n.Address, PortPostgres), "standby"))
	}
	return out
}

func (s *Site) dsn(user, password, db, hosts, attrs string) string {
	q := url.Values{}
	q.Set("sslmode", "verify-full")
	q.Set("sslrootcert", CAFile)
	q.Set("target_session_attrs", attrs)
	q.Set("connect_timeout", "3")
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: hosts, Path: "/" + db, RawQuery: q.Encode()}
	return u.String()
}

// MinIOEndpoint is the S3 endpoint app node n uses: its own MinIO when it
// is a storage node, else the first storage node.
func (s *Site) MinIOEndpoint(n inventory.Node) string {
	if n.Has(inventory.RoleStorage) {
		return hostPort(n.Address, PortMinIO)
	}
	st := s.Inv.With(inventory.RoleStorage)
	if len(st) == 0 {
		return ""
	}
	return hostPort(st[0].Address, PortMinIO)
}

// BackupHost is the site's backup node, which holds the pgBackRest
// repository and serves it over pgBackRest's TLS protocol, if the
// inventory has one.
func (s *Site) BackupHost() (inventory.Node, bool) {
	b := s.Inv.With(inventory.RoleBackup)
	if len(b) == 0 {
		return inventory.Node{}, false
	}
	return b[0], true
}

// runsPGBackRestServer reports whether node n runs pgBackRest's TLS
// server (pgbackrest.service): the backup node, and with one, every db
// node, which it backs up from.
func (s *Site) runsPGBackRestServer(n inventory.Node) bool {
	_, ok := s.BackupHost()
	return ok && (n.Has(inventory.RoleBackup) || n.Has(inventory.RoleDB))
}

// backupEndpoint is the MinIO node db node n's pgBackRest writes to, by
// name (pgBackRest checks a certificate's DNS names, not its IP
// addresses): n itself when it is a storage node, else the first one.
func (s *Site) backupEndpoint(n inventory.Node) string {
	if n.Has(inventory.RoleStorage) {
		return n.Name
	}
	return s.Inv.With(inventory.RoleStorage)[0].Name
}

// MinIOVolumes is MINIO_VOLUMES: the drives of every storage node as
// https URLs (distributed mode), or the node's own drives on a site with
// one storage node.
func (s *Site) MinIOVolumes() string {
	st := s.Inv.With(inventory.RoleStorage)
	var v []string
	for _, n := range st {
		for _, d := range n.Drives {
			if len(st) == 1 {
				v = append(v, d)
				continue
			}
			v = append(v, "https://"+hostPort(n.Address, PortMinIO)+d)
		}
	}
	return strings.Join(v, " ")
}
