package install

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/pki"
	"github.com/garrison-chat/garrison/installer/internal/preflight"
	"github.com/garrison-chat/garrison/installer/internal/remote"
)

// Options configure one install run.
type Options struct {
	// StateDir is garrisonctl's state directory; the site's state lives
	// in StateDir/sites/<site>.
	StateDir string
	// BundleDir is the verified, extracted bundle directory
	// (garrison-<version>/) and Version its version.
	BundleDir string
	Version   string
	// Force installs over a newer Garrison on a node.
	Force bool
	// StopAfter ends the run, successfully, after the step with this ID.
	StopAfter string
	// Dial opens the SSH connections (nil: a plain net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log receives the progress lines (the install log gets them too).
	Log io.Writer
	// StageTimeout bounds each wait for health (default 5 minutes).
	StageTimeout time.Duration
	// Now is the clock for certificates and receipts (time.Now if nil).
	Now func() time.Time
}

// ErrStopped is returned when the run stopped after Options.StopAfter.
var ErrStopped = errors.New("stopped as asked")

// Installer runs one install of a site.
type Installer struct {
	site  *Site
	opts  Options
	dir   string // the site's state directory
	sec   *Secrets
	ca    *pki.CA
	keys  *remote.HostKeys
	nodes map[string]*node
	log   *logger

	mu      sync.Mutex // guards changes
	changes []string   // what this run changed, "node: what"

	adminCreated    bool              // set by the admin step
	receipt         *Receipt          // set by the health step
	preflightReport *preflight.Report // set by the connect step
}

type node struct {
	inventory.Node
	c *remote.Client
}

// SiteDir is the state directory of site name.
func SiteDir(stateDir, site string) string { return filepath.Join(stateDir, "sites", site) }

// New prepares an install of site: it loads (or makes) the site's secrets
// and CA from the state directory. It contacts no node.
func New(site *Site, o Options) (*Installer, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StageTimeout == 0 {
		o.StageTimeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.StopAfter != "" && !slices.Contains(site.StepIDs(), o.StopAfter) {
		return nil, fmt.Errorf("install: --stop-after %q is not a step; the steps are %s", o.StopAfter, strings.Join(site.StepIDs(), ", "))
	}
	dir := SiteDir(o.StateDir, site.Inv.Site)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("install: state directory: %w", err)
	}
	sec, err := LoadSecrets(dir)
	if err != nil {
		return nil, err
	}
	ca, err := loadCA(site, dir, o.Now())
	if err != nil {
		return nil, err
	}
	keys, err := remote.OpenHostKeys(filepath.Join(dir, "known_hosts"))
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	lg, err := openLogger(filepath.Join(dir, "install.log"), o.Log)
	if err != nil {
		return nil, err
	}
	return &Installer{site: site, opts: o, dir: dir, sec: sec, ca: ca, keys: keys, nodes: map[string]*node{}, log: lg}, nil
}

func loadCA(site *Site, dir string, now time.Time) (*pki.CA, error) {
	inv := site.Inv
	if inv.TLS.Mode == inventory.TLSProvided {
		ca, err := pki.Load(inv.Path(inv.TLS.CACert), inv.Path(inv.TLS.CAKey))
		if err != nil {
			return nil, fmt.Errorf("install: tls: %w", err)
		}
		return ca, nil
	}
	ca, _, err := pki.LoadOrCreate(filepath.Join(dir, "ca"), inv.Site, now)
	if err != nil {
		return nil, fmt.Errorf("install: site CA: %w", err)
	}
	return ca, nil
}

// Close ends the SSH connections and the log.
func (in *Installer) Close() error {
	for _, n := range in.nodes {
		n.c.Close()
	}
	return in.log.Close()
}

// AdminCreated reports whether this run created the first admin (whose
// initial password the caller then shows, once).
func (in *Installer) AdminCreated() bool { return in.adminCreated }

// Secrets are the site's credentials (the caller prints the admin's once).
func (in *Installer) Secrets() *Secrets { return in.sec }

// Changes lists what the run changed.
func (in *Installer) Changes() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.changes)
}

func (in *Installer) changed(n *node, format string, args ...any) {
	msg := n.Name + ": " + fmt.Sprintf(format, args...)
	in.mu.Lock()
	in.changes = append(in.changes, msg)
	in.mu.Unlock()
	in.log.Printf("  changed %s", msg)
}

// Run runs every step of the plan in order (or up to StopAfter).
func (in *Installer) Run(ctx context.Context) error {
	steps := map[string]func(context.Context) error{
		StepConnect:  in.connect,
		StepRepo:     in.repo,
		StepPackages: in.packages,
		StepTLS:      in.tls,
		StepEtcd:     in.etcd,
		StepDatabase: in.database,
		StepRoles:    in.dbRoles,
		StepStorage:  in.storage,
		StepBackup:   in.backup,
		StepApp:      in.app,
		StepAdmin:    in.admin,
		StepProxy:    in.proxy,
		StepAgent:    in.agent,
		StepHealth:   in.health,
	}
	plan := in.site.Plan(in.opts.Version)
	in.log.Printf("install of site %s from bundle %s: %d steps", in.site.Inv.Site, in.opts.Version, len(plan))
	for i, st := range plan {
		run, ok := steps[st.ID]
		if !ok {
			panic("install: no code for planned step " + st.ID)
		}
		before := len(in.Changes())
		in.log.Printf("step %d/%d %s: %s", i+1, len(plan), st.ID, st.Title)
		start := time.Now()
		if err := run(ctx); err != nil {
			in.log.Printf("step %s failed: %v", st.ID, err)
			return fmt.Errorf("step %s: %w", st.ID, err)
		}
		n := len(in.Changes()) - before
		if n == 0 {
			in.log.Printf("step %s: done, nothing changed (%.1fs)", st.ID, time.Since(start).Seconds())
		} else {
			in.log.Printf("step %s: done, %d change(s) (%.1fs)", st.ID, n, time.Since(start).Seconds())
		}
		if st.ID == in.opts.StopAfter {
			in.log.Printf("stopping after step %s as asked; run install again to finish", st.ID)
			return ErrStopped
		}
	}
	if len(in.Changes()) == 0 {
		in.log.Printf("install complete: nothing changed, the site already matched the inventory and bundle %s", in.opts.Version)
	} else {
		in.log.Printf("install complete: %d change(s)", len(in.Changes()))
	}
	return nil
}

// each runs fn on every node in ns concurrently and joins the errors.
func (in *Installer) each(ctx context.Context, ns []inventory.Node, fn func(context.Context, *node) error) error {
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		nd := in.nodes[n.Name]
		if nd == nil {
			errs[i] = fmt.Errorf("%s: not connected", n.Name)
			continue
		}
		wg.Go(func() {
			if err := fn(ctx, nd); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sh runs a shell script on n and returns its standard output.
func (in *Installer) sh(ctx context.Context, n *node, script string) (string, error) {
	res, err := n.c.Run(ctx, script, nil)
	if err != nil {
		return "", err
	}
	return string(res.Stdout), nil
}

// write puts a file on n and records the change.
func (in *Installer) write(ctx context.Context, n *node, path string, data []byte, mode os.FileMode, owner string) (bool, error) {
	ch, err := n.c.WriteFile(ctx, path, data, mode, owner)
	if err != nil {
		return false, err
	}
	if ch {
		in.changed(n, "wrote %s", path)
	}
	return ch, nil
}

// httpClient is an HTTPS client whose connections the node n opens (an
// SSH direct-tcpip channel), trusting the site CA; cert, if set, is
// presented as a client certificate.
func (in *Installer) httpClient(n *node, serverName string, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(in.ca.CertPEM())
	cfg := &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:       n.c.DialContext,
			TLSClientConfig:   cfg,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// waitFor polls check every second until it returns nil or the stage
// timeout passes; the error then says what was awaited and the last
// reason.
func (in *Installer) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, in.opts.StageTimeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("gave up waiting for %s after %s: %w", what, in.opts.StageTimeout, last)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
