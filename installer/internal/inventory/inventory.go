// Package inventory reads and checks the YAML file that describes a
// Garrison site: its name and URL, how TLS is done, the first admin, the
// options, and every node with its SSH access, roles and MinIO drives.
// docs/install.md is the schema an admin reads; this package is the one
// the installer obeys, and the two are kept in step by a test.
//
// Load reports every problem at once, each with the place it is about
// (`nodes[2] (app3).drives`), so an admin fixes a file in one pass instead
// of one error per run.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Roles a node may have.
const (
	RoleApp     = "app"     // garrison, the push proxy
	RoleProxy   = "proxy"   // nginx in front of the app nodes
	RoleDB      = "db"      // PostgreSQL under Patroni; etcd on up to three of them
	RoleStorage = "storage" // MinIO on the node's drives
	RoleBackup  = "backup"  // holds the pgBackRest repository
)

// AllRoles lists the roles in the order the installer brings them up.
var AllRoles = []string{RoleDB, RoleStorage, RoleApp, RoleProxy, RoleBackup}

// TLS modes.
const (
	TLSSiteCA   = "site-ca"  // garrisonctl makes and keeps the site CA
	TLSProvided = "provided" // the site gives a CA that garrisonctl issues from
)

// MaxNodes bounds an inventory; a site larger than this is a typo or an
// attack on the tool, not a site.
const MaxNodes = 64

// maxFileSize bounds the inventory file itself.
const maxFileSize = 1 << 20

// Inventory is a site as its YAML file describes it, after defaults.
type Inventory struct {
	Site    string  `yaml:"site"`
	SiteURL string  `yaml:"site_url"`
	TLS     TLS     `yaml:"tls"`
	Admin   Admin   `yaml:"admin"`
	Options Options `yaml:"options"`
	SSH     SSH     `yaml:"ssh"` // defaults for every node's ssh
	Nodes   []Node  `yaml:"nodes"`

	// Dir is the directory of the inventory file; relative paths in it
	// (keys, certificates) are relative to this directory.
	Dir string `yaml:"-"`
}

// TLS says where the certificates of every cross-node link and of nginx
// come from.
type TLS struct {
	Mode string `yaml:"mode"`
	// CACert and CAKey: with mode provided, the site's CA (usually an
	// intermediate) that garrisonctl issues the internal certificates from.
	CACert string `yaml:"ca_cert"`
	CAKey  string `yaml:"ca_key"`
	// PublicCert and PublicKey: optional in both modes, the certificate
	// nginx shows users for site_url's host; without them nginx shows one
	// issued by the site CA, which browsers trust only if the site
	// distributes the CA.
	PublicCert string `yaml:"public_cert"`
	PublicKey  string `yaml:"public_key"`
}

// Admin is the first system admin, created at install.
type Admin struct {
	Username string `yaml:"username"`
	Email    string `yaml:"email"`
}

// Options are the site-wide choices.
type Options struct {
	// SynchronousReplication makes a commit wait for a replica (Patroni
	// synchronous_mode): no acknowledged write is lost when the primary
	// dies. Default true on sites with two or more db nodes.
	SynchronousReplication *bool `yaml:"synchronous_replication"`
	// Push runs the push proxy and routes /push/, /m/ and /ws to it.
	// Default true.
	Push *bool `yaml:"push"`
	// MonitoringNetworks may read /health and /metrics of the node agents
	// without a client certificate.
	MonitoringNetworks []string `yaml:"monitoring_networks"`
	// LoginRateLimitExempt are addresses (the site's NATs) that the login
	// rate limit does not apply to.
	LoginRateLimitExempt []string `yaml:"login_rate_limit_exempt"`
	// MaxFileSizeMB is the largest upload (FileSettings.MaxFileSize);
	// default 100.
	MaxFileSizeMB int `yaml:"max_file_size_mb"`
	// AllowDrivesOnRootDisk lets MinIO drives live on the root filesystem.
	// Only for test sites: a production drive must be its own disk.
	AllowDrivesOnRootDisk bool `yaml:"allow_drives_on_root_disk"`
}

// SSH is how garrisonctl reaches a node.
type SSH struct {
	User string `yaml:"user"`
	Key  string `yaml:"key"`
	Port int    `yaml:"port"`
	// HostKey is the node's SSH host key fingerprint as `ssh-keygen -lf`
	// prints it (SHA256:...). Optional: without it the key is pinned on
	// first contact and its fingerprint shown for the admin to confirm.
	HostKey string `yaml:"host_key"`
}

// Node is one machine of the site.
type Node struct {
	Name    string   `yaml:"name"`
	Address string   `yaml:"address"`
	SSH     SSH      `yaml:"ssh"`
	Roles   []string `yaml:"roles"`
	// Drives are MinIO's data directories on a storage node, each the
	// mount point of its own disk.
	Drives []string `yaml:"drives"`
}

// Has reports whether the node has role r.
func (n Node) Has(r string) bool { return slices.Contains(n.Roles, r) }

// Sync reports whether the database replicates synchronously.
func (inv *Inventory) Sync() bool {
	return inv.Options.SynchronousReplication != nil && *inv.Options.SynchronousReplication
}

// Push reports whether the push proxy runs.
func (inv *Inventory) Push() bool { return inv.Options.Push == nil || *inv.Options.Push }

// With returns the nodes that have role r, in inventory order.
func (inv *Inventory) With(r string) []Node {
	var out []Node
	for _, n := range inv.Nodes {
		if n.Has(r) {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node called name.
func (inv *Inventory) Node(name string) (Node, bool) {
	for _, n := range inv.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// EtcdMembers are the db nodes that run etcd: the first three, or the one
// db node of a small site (Validate refuses two).
func (inv *Inventory) EtcdMembers() []Node {
	db := inv.With(RoleDB)
	if len(db) > 3 {
		db = db[:3]
	}
	return db
}

// AllInOne reports whether the site is a single node.
func (inv *Inventory) AllInOne() bool { return len(inv.Nodes) == 1 }

// UsesMinIO reports whether files go to MinIO (storage nodes with drives)
// rather than to the local directory of a single-node site.
func (inv *Inventory) UsesMinIO() bool {
	for _, n := range inv.With(RoleStorage) {
		if len(n.Drives) > 0 {
			return true
		}
	}
	return false
}

// Path resolves a path from the inventory: ~/ is the user's home, and a
// relative path is relative to the inventory's directory.
func (inv *Inventory) Path(p string) string {
	if p == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) || inv.Dir == "" {
		return p
	}
	return filepath.Join(inv.Dir, p)
}

// Load reads, defaults and validates the inventory at path.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("inventory: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("inventory: %s is larger than %d bytes", path, maxFileSize)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	inv, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	inv.Dir = filepath.Dir(abs)
	if err := inv.checkFiles(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return inv, nil
}

// Parse decodes an inventory (unknown fields are errors), applies the
// defaults and validates it. It does not look at the files the inventory
// names; Load does.
func Parse(data []byte) (*Inventory, error) {
	var inv Inventory
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&inv); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("inventory is empty")
		}
		return nil, fmt.Errorf("inventory: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("inventory: more than one YAML document; write one")
	}
	inv.applyDefaults()
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &inv, nil
}

func (inv *Inventory) applyDefaults() {
	if inv.TLS.Mode == "" {
		inv.TLS.Mode = TLSSiteCA
	}
	if inv.SSH.User == "" {
		inv.SSH.User = "root"
	}
	if inv.SSH.Port == 0 {
		inv.SSH.Port = 22
	}
	if inv.Options.MaxFileSizeMB == 0 {
		inv.Options.MaxFileSizeMB = 100
	}
	if inv.Options.SynchronousReplication == nil {
		sync := len(inv.With(RoleDB)) >= 2
		inv.Options.SynchronousReplication = &sync
	}
	for i := range inv.Nodes {
		n := &inv.Nodes[i]
		if n.SSH.User == "" {
			n.SSH.User = inv.SSH.User
		}
		if n.SSH.Key == "" {
			n.SSH.Key = inv.SSH.Key
		}
		if n.SSH.Port == 0 {
			n.SSH.Port = inv.SSH.Port
		}
	}
}

// Problems is every problem found in an inventory.
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return "inventory: " + p[0]
	}
	return fmt.Sprintf("inventory: %d problems:\n  %s", len(p), strings.Join(p, "\n  "))
}

var (
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	usernameRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{2,21}$`)
	hostnameRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
	userRE     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	fpRE       = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)
)

// Validate checks the inventory as a whole and returns Problems naming
// every one found.
func (inv *Inventory) Validate() error {
	var p Problems
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	switch {
	case inv.Site == "":
		add("site: missing (a short name such as example-site)")
	case !nameRE.MatchString(inv.Site):
		add("site: %q must be lower-case letters, digits and '-', starting with a letter, at most 63 characters", inv.Site)
	}
	inv.validateURL(add)
	inv.validateTLS(add)
	switch {
	case inv.Admin.Username == "":
		add("admin.username: missing")
	case !usernameRE.MatchString(inv.Admin.Username):
		add("admin.username: %q must be 3 to 22 lower-case letters, digits, '.', '-' or '_', starting with a letter", inv.Admin.Username)
	}
	if inv.Admin.Email == "" {
		add("admin.email: missing")
	} else if a, err := mail.ParseAddress(inv.Admin.Email); err != nil || a.Address != inv.Admin.Email {
		add("admin.email: %q is not an email address", inv.Admin.Email)
	}
	for i, c := range inv.Options.MonitoringNetworks {
		if _, err := netip.ParsePrefix(c); err != nil {
			add("options.monitoring_networks[%d]: %q is not a network in CIDR form (10.0.0.0/24)", i, c)
		}
	}
	for i, a := range inv.Options.LoginRateLimitExempt {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				add("options.login_rate_limit_exempt[%d]: %q is neither an address nor a network", i, a)
			}
		}
	}
	if inv.Options.MaxFileSizeMB < 1 || inv.Options.MaxFileSizeMB > 10240 {
		add("options.max_file_size_mb: %d is outside 1..10240", inv.Options.MaxFileSizeMB)
	}
	inv.validateNodes(add)
	if len(p) == 0 {
		return nil
	}
	return p
}

func (inv *Inventory) validateURL(add func(string, ...any)) {
	if inv.SiteURL == "" {
		add("site_url: missing (the address users type, such as https://chat.example.mil)")
		return
	}
	u, err := url.Parse(inv.SiteURL)
	switch {
	case err != nil:
		add("site_url: %q is not a URL", inv.SiteURL)
	case u.Scheme != "https":
		add("site_url: %q must start with https:// (nginx serves the site over TLS)", inv.SiteURL)
	case u.Hostname() == "":
		add("site_url: %q has no host", inv.SiteURL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		add("site_url: %q must be just scheme, host and optional port (Garrison is served at the root)", inv.SiteURL)
	}
}

func (inv *Inventory) validateTLS(add func(string, ...any)) {
	t := inv.TLS
	switch t.Mode {
	case TLSSiteCA:
		if t.CACert != "" || t.CAKey != "" {
			add("tls: ca_cert and ca_key are only for mode %q; with %q garrisonctl makes the CA", TLSProvided, TLSSiteCA)
		}
	case TLSProvided:
		if t.CACert == "" {
			add("tls.ca_cert: missing (mode %q needs the CA certificate garrisonctl issues from)", TLSProvided)
		}
		if t.CAKey == "" {
			add("tls.ca_key: missing (mode %q needs the CA's private key)", TLSProvided)
		}
	default:
		add("tls.mode: %q is neither %q nor %q", t.Mode, TLSSiteCA, TLSProvided)
	}
	if (t.PublicCert == "") != (t.PublicKey == "") {
		add("tls: public_cert and public_key go together; give both or neither")
	}
}

// checkFiles checks that the files the inventory names exist and are
// regular files; keys must not be readable by others.
func (inv *Inventory) checkFiles() error {
	var p Problems
	check := func(field, path string, secret bool) {
		if path == "" {
			return
		}
		full := inv.Path(path)
		fi, err := os.Stat(full)
		switch {
		case err != nil:
			p = append(p, fmt.Sprintf("%s: %v", field, err))
		case !fi.Mode().IsRegular():
			p = append(p, fmt.Sprintf("%s: %s is not a regular file", field, full))
		case secret && fi.Mode().Perm()&0o077 != 0:
			p = append(p, fmt.Sprintf("%s: %s is readable by others (mode %o); chmod 600 it", field, full, fi.Mode().Perm()))
		}
	}
	check("tls.ca_cert", inv.TLS.CACert, false)
	check("tls.ca_key", inv.TLS.CAKey, true)
	check("tls.public_cert", inv.TLS.PublicCert, false)
	check("tls.public_key", inv.TLS.PublicKey, true)
	seen := map[string]bool{}
	for i, n := range inv.Nodes {
		if seen[n.SSH.Key] {
			continue
		}
		seen[n.SSH.Key] = true
		check(fmt.Sprintf("nodes[%d] (%s).ssh.key", i, n.Name), n.SSH.Key, true)
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

func (inv *Inventory) validateNodes(add func(string, ...any)) {
	if len(inv.Nodes) == 0 {
		add("nodes: none; list at least one (an all-in-one site is one node with every role)")
		return
	}
	if len(inv.Nodes) > MaxNodes {
		add("nodes: %d nodes, more than %d", len(inv.Nodes), MaxNodes)
		return
	}
	names := map[string]int{}
	addrs := map[string]int{}
	for i, n := range inv.Nodes {
		at := fmt.Sprintf("nodes[%d]", i)
		if n.Name != "" {
			at += " (" + n.Name + ")"
		}
		switch {
		case n.Name == "":
			add("%s.name: missing", at)
		case !nameRE.MatchString(n.Name):
			add("%s.name: %q must be lower-case letters, digits and '-', starting with a letter", at, n.Name)
		default:
			if j, dup := names[n.Name]; dup {
				add("%s.name: %q is also nodes[%d]'s name", at, n.Name, j)
			} else {
				names[n.Name] = i
			}
		}
		switch {
		case n.Address == "":
			add("%s.address: missing", at)
		case net.ParseIP(n.Address) == nil && !hostnameRE.MatchString(n.Address):
			add("%s.address: %q is neither an IP address nor a host name", at, n.Address)
		default:
			key := strings.ToLower(n.Address)
			if ip, err := netip.ParseAddr(n.Address); err == nil {
				key = ip.Unmap().String()
				if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
					add("%s.address: %s is not an address other nodes can reach", at, n.Address)
				}
			}
			if j, dup := addrs[key]; dup {
				add("%s.address: %s is also nodes[%d]'s address", at, n.Address, j)
			} else {
				addrs[key] = i
			}
		}
		if !userRE.MatchString(n.SSH.User) {
			add("%s.ssh.user: %q is not a user name", at, n.SSH.User)
		}
		if n.SSH.Key == "" {
			add("%s.ssh.key: missing (set it on the node or in the top-level ssh:)", at)
		}
		if n.SSH.Port < 1 || n.SSH.Port > 65535 {
			add("%s.ssh.port: %d is not a port", at, n.SSH.Port)
		}
		if n.SSH.HostKey != "" && !fpRE.MatchString(n.SSH.HostKey) {
			add("%s.ssh.host_key: %q is not a SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256:...)", at, n.SSH.HostKey)
		}
		if len(n.Roles) == 0 {
			add("%s.roles: none; give at least one of %s", at, strings.Join(AllRoles, ", "))
		}
		seenRole := map[string]bool{}
		for _, r := range n.Roles {
			switch {
			case !slices.Contains(AllRoles, r):
				add("%s.roles: unknown role %q (roles are %s)", at, r, strings.Join(AllRoles, ", "))
			case seenRole[r]:
				add("%s.roles: %q listed twice", at, r)
			}
			seenRole[r] = true
		}
		inv.validateDrives(at, n, add)
	}
	inv.validateTopology(add)
}

func (inv *Inventory) validateDrives(at string, n Node, add func(string, ...any)) {
	if len(n.Drives) > 0 && !n.Has(RoleStorage) {
		add("%s.drives: only storage nodes have MinIO drives; add the storage role or remove drives", at)
		return
	}
	if n.Has(RoleStorage) && len(n.Drives) == 0 && !inv.AllInOne() {
		add("%s.drives: a storage node needs at least one drive (a directory that is the mount point of its own disk)", at)
	}
	seen := map[string]bool{}
	for j, d := range n.Drives {
		clean := filepath.Clean(d)
		switch {
		case !filepath.IsAbs(d):
			add("%s.drives[%d]: %q is not an absolute path", at, j, d)
		case clean == "/" || strings.HasPrefix(clean, "/proc") || strings.HasPrefix(clean, "/sys") || strings.HasPrefix(clean, "/dev"):
			add("%s.drives[%d]: %q cannot hold data", at, j, d)
		case strings.ContainsAny(d, " \t\n'\"\\$`{}"):
			add("%s.drives[%d]: %q has a space, quote, brace or backslash; MinIO cannot take it", at, j, d)
		case seen[clean]:
			add("%s.drives[%d]: %q is listed twice", at, j, d)
		}
		seen[clean] = true
	}
}

func (inv *Inventory) validateTopology(add func(string, ...any)) {
	for _, r := range []string{RoleApp, RoleDB, RoleProxy} {
		if len(inv.With(r)) == 0 {
			add("nodes: no node has the %s role; a site needs at least one", r)
		}
	}
	db := len(inv.With(RoleDB))
	if db == 2 {
		add("nodes: 2 db nodes cannot keep an etcd quorum when one fails; use 1 (no failover) or 3 or more")
	}
	if db == 1 && inv.Sync() {
		add("options.synchronous_replication: needs at least 2 db nodes (there is 1)")
	}
	if b := len(inv.With(RoleBackup)); b > 1 {
		add("nodes: %d nodes have the backup role; the pgBackRest repository lives on one", b)
	}
	if db > 1 && !inv.UsesMinIO() && len(inv.With(RoleBackup)) == 0 {
		add("nodes: %d db nodes archive to one pgBackRest repository, which needs storage nodes (MinIO) or a backup node", db)
	}
	storage := inv.With(RoleStorage)
	if len(inv.With(RoleApp)) > 1 && len(storage) == 0 {
		add("nodes: %d app nodes share files, so the site needs storage nodes (MinIO); add the storage role", len(inv.With(RoleApp)))
	}
	if len(storage) > 1 {
		total := 0
		for _, n := range storage {
			if len(n.Drives) != len(storage[0].Drives) {
				add("nodes: storage nodes must have the same number of drives (%s has %d, %s has %d)", storage[0].Name, len(storage[0].Drives), n.Name, len(n.Drives))
				break
			}
		}
		for _, n := range storage {
			total += len(n.Drives)
		}
		if total < 4 {
			add("nodes: distributed MinIO needs at least 4 drives over its storage nodes (there are %d)", total)
		}
	}
}
