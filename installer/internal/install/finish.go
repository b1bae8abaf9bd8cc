package install

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/agent"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/pki"
	"github.com/garrison-chat/garrison/installer/internal/preflight"
)

// AgentConfig renders /etc/garrison/agent.json for node n: the checks of
// the services its roles run.
func (s *Site) AgentConfig(n inventory.Node) ([]byte, error) {
	c := agent.Config{
		Node:               n.Name,
		Listen:             hostPort(n.Address, PortAgent),
		TLS:                agent.TLSFiles{Cert: NodeCertFile, Key: KeyFile("garrison-agent"), CA: CAFile},
		MonitoringNetworks: s.Inv.Options.MonitoringNetworks,
	}
	add := func(name, kind, url string) {
		c.Checks = append(c.Checks, agent.Check{Name: name, Kind: kind, URL: url})
	}
	if s.isEtcd(n) {
		add("etcd", agent.KindEtcd, "http://127.0.0.1:2381/health")
	}
	if n.Has(inventory.RoleDB) {
		c.Checks = append(c.Checks, agent.Check{Name: "postgres", Kind: agent.KindPatroni, URL: "https://" + hostPort(n.Address, PortPatroni) + "/cluster", Member: n.Name})
	}
	if s.runsPGBackRestServer(n) {
		add("pgbackrest", agent.KindTLS, "tls://"+hostPort(n.Address, PortPGBackRest))
	}
	if n.Has(inventory.RoleStorage) && s.Inv.UsesMinIO() {
		add("minio", agent.KindHTTP, "https://127.0.0.1:"+strconv.Itoa(PortMinIO)+"/minio/health/live")
	}
	if n.Has(inventory.RoleApp) {
		add("garrison", agent.KindGarrison, "https://"+hostPort(n.Address, PortAPI)+"/api/v4/system/ping?get_server_status=true")
		if s.Inv.Push() {
			add("pushproxy", agent.KindHTTP, "https://"+hostPort(n.Address, PortPush)+"/readyz")
		}
	}
	if n.Has(inventory.RoleProxy) {
		add("nginx", agent.KindHTTP, "http://127.0.0.1:"+strconv.Itoa(PortHTTP)+"/nginx-health")
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// --- agent -----------------------------------------------------------------

func (in *Installer) agent(ctx context.Context) error {
	return in.each(ctx, in.site.Inv.Nodes, func(ctx context.Context, n *node) error {
		cfg, err := in.site.AgentConfig(n.Node)
		if err != nil {
			return err
		}
		ch, err := in.write(ctx, n, AgentConfig, cfg, 0o640, "root:garrison-agent")
		if err != nil {
			return err
		}
		return in.ensureUnit(ctx, n, "garrison-agent.service", ch)
	})
}

func (in *Installer) clientCert() (tls.Certificate, error) {
	return ClientCert(in.ca, in.dir, in.opts.Now())
}

// ClientCert is garrisonctl's own client certificate for the node agents,
// issued from the site CA and kept in the site's state directory siteDir.
func ClientCert(ca *pki.CA, siteDir string, now time.Time) (tls.Certificate, error) {
	c, _, err := ca.Ensure(filepath.Join(siteDir, "certs"), "garrisonctl", pki.Request{CommonName: "garrisonctl", Client: true}, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c.CertPEM, c.KeyPEM)
}

// --- health ----------------------------------------------------------------

func (in *Installer) health(ctx context.Context) error {
	cert, err := in.clientCert()
	if err != nil {
		return err
	}
	results := make([]agent.Report, len(in.site.Inv.Nodes))
	for i, n := range in.site.Inv.Nodes {
		err := in.waitFor(ctx, "every service on "+n.Name+" green", func(ctx context.Context) error {
			nd := in.nodes[n.Name]
			results[i] = agentHealth(ctx, in.httpClient(nd, n.Name, &cert), n)
			if results[i].Status == agent.Green {
				return nil
			}
			var bad []string
			for _, s := range results[i].Services {
				if s.Status != agent.Green {
					bad = append(bad, s.Name+" "+string(s.Status)+": "+s.Reason)
				}
			}
			return errors.New(strings.Join(bad, "; "))
		})
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return in.writeReceipt(ctx, results)
}

// --- receipt ---------------------------------------------------------------

// Receipt records what an install put where: signed with the site key,
// for auditors.
type Receipt struct {
	Kind       string            `json:"kind"`
	Site       string            `json:"site"`
	SiteURL    string            `json:"site_url"`
	Bundle     string            `json:"bundle_version"`
	Manifest   string            `json:"bundle_manifest_sha256"`
	Nodes      []ReceiptNode     `json:"nodes"`
	Health     []agent.Report    `json:"health"`
	Preflight  *preflight.Report `json:"preflight"`
	Changes    []string          `json:"changes"`
	Inventory  string            `json:"inventory_sha256"`
	FinishedAt string            `json:"finished_at"`
}

// ReceiptNode is one node in a receipt.
type ReceiptNode struct {
	Name     string            `json:"name"`
	Address  string            `json:"address"`
	HostKey  string            `json:"ssh_host_key"`
	Roles    []string          `json:"roles"`
	Packages map[string]string `json:"packages"`
	Files    map[string]string `json:"files"` // path → sha256 of what garrisonctl wrote there
}

// ReceiptKind names install receipts.
const ReceiptKind = "garrison-install-receipt"

func (in *Installer) writeReceipt(ctx context.Context, health []agent.Report) error {
	r := Receipt{
		Kind: ReceiptKind, Site: in.site.Inv.Site, SiteURL: in.site.Inv.SiteURL, Bundle: in.opts.Version,
		Health: health, Preflight: in.preflightReport, Changes: in.Changes(), FinishedAt: in.opts.Now().UTC().Format("2006-01-02T15:04:05Z"),
	}
	if r.Changes == nil {
		r.Changes = []string{}
	}
	if sum, err := fileSHA256(filepath.Join(in.opts.BundleDir, "MANIFEST")); err == nil {
		r.Manifest = sum
	}
	err := in.each(ctx, in.site.Inv.Nodes, func(ctx context.Context, n *node) error {
		pk := in.site.Packages(n.Node)
		out, err := in.sh(ctx, n, "dpkg-query -W -f='${Package} ${Version}\\n' "+strings.Join(pk, " "))
		if err != nil {
			return err
		}
		rn := ReceiptNode{Name: n.Name, Address: n.Address, Roles: n.Roles, Packages: map[string]string{}}
		rn.HostKey, _ = in.keys.Fingerprint(n.Name)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if p, v, ok := strings.Cut(l, " "); ok {
				rn.Packages[p] = v
			}
		}
		files := []string{CAFile, NodeCertFile, AgentConfig}
		if n.Has(inventory.RoleApp) {
			files = append(files, GarrisonConfig)
			if in.site.Inv.Push() {
				files = append(files, PushProxyConfig)
			}
		}
		if n.Has(inventory.RoleDB) {
			files = append(files, PatroniConfig)
		}
		if n.Has(inventory.RoleDB) || n.Has(inventory.RoleBackup) {
			files = append(files, PGBackRestConfig)
		}
		if in.site.runsBackups(n.Node) {
			files = append(files, "/etc/systemd/system/"+BackupService, "/etc/systemd/system/"+BackupTimer)
		}
		if in.site.isEtcd(n.Node) {
			files = append(files, EtcdEnvFile)
		}
		if n.Has(inventory.RoleStorage) && in.site.Inv.UsesMinIO() {
			files = append(files, MinIOEnvFile)
		}
		if n.Has(inventory.RoleProxy) {
			files = append(files, NginxConfig, PublicCert)
		}
		out, err = in.sh(ctx, n, "sha256sum "+strings.Join(files, " "))
		if err != nil {
			return err
		}
		rn.Files = parseSums(out)
		in.mu.Lock()
		r.Nodes = append(r.Nodes, rn)
		in.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	sortReceipt(&r)
	in.receipt = &r
	return nil
}

func sortReceipt(r *Receipt) {
	slices.SortFunc(r.Nodes, func(a, b ReceiptNode) int { return strings.Compare(a.Name, b.Name) })
}

// Receipt is the receipt of a complete run (nil before the health step).
func (in *Installer) Receipt() *Receipt { return in.receipt }

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
