package install

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// Health statuses, worst last.
const (
	Green  = "green"
	Yellow = "yellow"
	Red    = "red"
)

func rank(s string) int {
	switch s {
	case Green:
		return 0
	case Yellow:
		return 1
	}
	return 2
}

// NodeHealth is one agent's /health answer.
type NodeHealth struct {
	Node      string          `json:"node"`
	Status    string          `json:"status"`
	CheckedAt string          `json:"checked_at,omitempty"`
	Services  []ServiceHealth `json:"services"`
}

// ServiceHealth is one service on a node.
type ServiceHealth struct {
	Name    string         `json:"name"`
	Status  string         `json:"status"`
	Reason  string         `json:"reason"`
	Details map[string]any `json:"details,omitempty"`
}

// HealthOptions configure CheckHealth.
type HealthOptions struct {
	// Dial opens the connections to the agents (nil: net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each agent's answer (default 10 s).
	Timeout time.Duration
}

// CheckHealth asks every node's agent for its /health over mutual TLS,
// with garrisonctl's client certificate from the site's state directory.
// A node whose agent does not answer is red with the reason.
func CheckHealth(ctx context.Context, inv *inventory.Inventory, stateDir string, o HealthOptions) ([]NodeHealth, error) {
	dir := SiteDir(stateDir, inv.Site)
	caFile := filepath.Join(dir, "ca", "ca.crt")
	if inv.TLS.Mode == inventory.TLSProvided {
		caFile = inv.Path(inv.TLS.CACert)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("health: the site CA (was the site installed from this machine?): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("health: %s holds no certificate", caFile)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "certs", "garrisonctl.crt"), filepath.Join(dir, "certs", "garrisonctl.key"))
	if err != nil {
		return nil, fmt.Errorf("health: garrisonctl's client certificate (made by install): %w", err)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	out := make([]NodeHealth, len(inv.Nodes))
	var wg sync.WaitGroup
	for i, n := range inv.Nodes {
		wg.Go(func() {
			hc := &http.Client{
				Timeout: o.Timeout,
				Transport: &http.Transport{
					DialContext:       dial,
					TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: n.Name, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
					DisableKeepAlives: true,
				},
			}
			out[i] = agentHealth(ctx, hc, n)
		})
	}
	wg.Wait()
	return out, nil
}

func agentHealth(ctx context.Context, hc *http.Client, n inventory.Node) NodeHealth {
	red := func(format string, args ...any) NodeHealth {
		return NodeHealth{Node: n.Name, Status: Red, Services: []ServiceHealth{{Name: "agent", Status: Red, Reason: fmt.Sprintf(format, args...)}}}
	}
	url := "https://" + hostPort(n.Address, PortAgent) + "/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return red("%v", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return red("agent unreachable: %v", err)
	}
	defer resp.Body.Close()
	var h NodeHealth
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return red("agent answered %s without a health report: %v", resp.Status, err)
	}
	if h.Node != n.Name {
		return red("the agent at %s says it is node %q", n.Address, h.Node)
	}
	if rank(h.Status) == 2 {
		h.Status = Red // an unknown status is not good news
	}
	return h
}

// Worst is the worst status of a health report.
func Worst(hs []NodeHealth) string {
	w := Green
	for _, h := range hs {
		if rank(h.Status) > rank(w) {
			w = h.Status
		}
	}
	return w
}

// WriteHealthTable prints one row per node and service.
func WriteHealthTable(w io.Writer, hs []NodeHealth) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSERVICE\tSTATUS\tREASON")
	for _, h := range hs {
		svcs := append([]ServiceHealth(nil), h.Services...)
		sort.SliceStable(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
		if len(svcs) == 0 {
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\n", h.Node, h.Status, "no services reported")
		}
		for _, s := range svcs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Node, s.Name, s.Status, oneLine(s.Reason))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nsite: %s\n", strings.ToUpper(Worst(hs)))
	return err
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
