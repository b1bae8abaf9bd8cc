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

	"github.com/garrison-chat/garrison/installer/internal/agent"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

func rank(s agent.Status) int {
	switch s {
	case agent.Green:
		return 0
	case agent.Yellow:
		return 1
	}
	return 2
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
func CheckHealth(ctx context.Context, inv *inventory.Inventory, stateDir string, o HealthOptions) ([]agent.Report, error) {
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
	out := make([]agent.Report, len(inv.Nodes))
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

func agentHealth(ctx context.Context, hc *http.Client, n inventory.Node) agent.Report {
	red := func(format string, args ...any) agent.Report {
		return agent.Report{Node: n.Name, Status: agent.Red, CheckedAt: time.Now().UTC(),
			Services: []agent.Service{{Name: "agent", Status: agent.Red, Reason: fmt.Sprintf(format, args...)}}}
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
	var h agent.Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return red("agent answered %s without a health report: %v", resp.Status, err)
	}
	if h.Node != n.Name {
		return red("the agent at %s says it is node %q", n.Address, h.Node)
	}
	if rank(h.Status) == 2 {
		h.Status = agent.Red // an unknown status is not good news
	}
	return h
}

// Worst is the worst status of a health report.
func Worst(hs []agent.Report) agent.Status {
	w := agent.Green
	for _, h := range hs {
		if rank(h.Status) > rank(w) {
			w = h.Status
		}
	}
	return w
}

// WriteHealthTable prints one row per node and service.
func WriteHealthTable(w io.Writer, hs []agent.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSERVICE\tSTATUS\tREASON")
	for _, h := range hs {
		svcs := append([]agent.Service(nil), h.Services...)
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
	_, err := fmt.Fprintf(w, "\nsite: %s\n", strings.ToUpper(string(Worst(hs))))
	return err
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
