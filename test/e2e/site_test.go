package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/nginx"
	"github.com/garrison-chat/garrison/test/testbed"
)

const (
	apiPort     = 8065
	gossipPort  = 8074
	dbName      = "garrison"
	clusterName = "e2e"
	// password is every test user's; it meets the default policy.
	password = "e2e-passw0rd"
	// setupTimeout bounds building a site: Postgres pair, three nodes
	// that migrate and join, nginx, and the first admin.
	setupTimeout = 3 * time.Minute
	// converge bounds waiting for the cluster to reach a state (a node
	// seen joining, leaving, rejoining): memberlist's failure detector
	// and the discovery table's heartbeats take seconds, more on two
	// loaded cores.
	converge = 90 * time.Second
	// pollEvery is how often a condition is polled.
	pollEvery = 50 * time.Millisecond
)

// site is the cluster under test on a fresh testbed:
//
//	db1          Postgres primary
//	db2          its streaming replica
//	app1..app3   garrison: cluster on with gossip encryption, listening on
//	             <address>:8065, DataSource over db1 and db2 with
//	             target_session_attrs=read-write, SiteURL the nginx URL
//	lb           nginx in front of the three app nodes
//	client       where every request of the test comes from
//
// Tests do not share sites: most of them break something.
type site struct {
	t                    *testing.T
	tb                   *testbed.Testbed
	db1, db2, lb, client *testbed.Node
	apps                 []*testbed.Node
	garrison             []*testbed.Process
	primary, replica     *testbed.Postgres

	hc        *http.Client      // dials from the client node
	wsd       *websocket.Dialer // dials from the client node
	admin     *api              // the first user, system admin, through nginx
	adminUser user
}

// siteOptions vary the site.
type siteOptions struct {
	// advertise sets ClusterSettings.AdvertiseAddress to each node's
	// address (see TestAdvertiseAddress). Sites leave it empty by
	// default, BindAddress alone giving the same advertised address.
	advertise bool
	// noWait returns before the nodes list each other.
	noWait bool
}

// newSite builds the topology and returns once the three nodes list each
// other in their cluster status.
func newSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	tb := testbed.New(t, testbed.Options{Postgres: true, Nginx: true})
	bin := garrisonBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	nodes, err := tb.AddNodes(ctx, "db1", "db2", "app1", "app2", "app3", "lb", "client")
	require.NoError(t, err)
	s := &site{t: t, tb: tb, db1: nodes[0], db2: nodes[1], apps: nodes[2:5], lb: nodes[5], client: nodes[6]}
	s.hc = s.client.HTTPClient()
	s.wsd = s.client.WebSocketDialer()
	t.Cleanup(s.hc.CloseIdleConnections)

	s.primary, err = s.db1.StartPostgres(ctx, testbed.PostgresOptions{})
	require.NoError(t, err)
	require.NoError(t, s.primary.CreateDatabase(ctx, dbName, ""))
	s.replica, err = s.db2.StartReplica(ctx, s.primary, testbed.PostgresOptions{})
	require.NoError(t, err)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	for _, n := range s.apps {
		s.garrison = append(s.garrison, s.startGarrison(bin, n, base64.StdEncoding.EncodeToString(key), o.advertise))
	}
	for i, n := range s.apps {
		require.NoError(t, s.garrison[i].WaitListening(ctx, s.client, n.HostPort(apiPort)))
	}
	var upstream []nginx.Server
	for _, n := range s.apps {
		upstream = append(upstream, nginx.Server{Addr: n.HostPort(apiPort)})
	}
	_, err = s.lb.StartNginx(ctx, nginx.Config{App: nginx.Upstream{Servers: upstream}, ClientMaxBodySize: 110 << 20})
	require.NoError(t, err)

	// The first user of an empty system becomes its admin.
	anon := s.api(s.lbURL())
	_, err = anon.createUser(ctx, "admin", password)
	require.NoError(t, err)
	s.admin, s.adminUser, err = anon.login(ctx, "admin", password)
	require.NoError(t, err)
	require.Contains(t, s.adminUser.Roles, "system_admin")
	if !o.noWait {
		for _, n := range s.apps {
			require.NoError(t, s.waitCluster(ctx, n, "app1", "app2", "app3"))
		}
	}
	return s
}

// startGarrison writes n's config.json and starts garrison on n.
func (s *site) startGarrison(bin string, n *testbed.Node, key string, advertise bool) *testbed.Process {
	s.t.Helper()
	dsn := "postgres://postgres@" + s.db1.HostPort(5432) + "," + s.db2.HostPort(5432) + "/" + dbName +
		"?sslmode=disable&target_session_attrs=read-write"
	cs := map[string]any{
		"Enable":                 true,
		"ClusterName":            clusterName,
		"OverrideHostname":       n.Name(),
		"GossipPort":             gossipPort,
		"BindAddress":            n.Addr().String(),
		"EnableGossipEncryption": true,
		"GossipEncryptionKey":    key,
	}
	if advertise {
		cs["AdvertiseAddress"] = n.Addr().String()
	}
	cfg := map[string]any{
		"ServiceSettings": map[string]any{
			"SiteURL":       s.lbURL(),
			"ListenAddress": n.HostPort(apiPort),
		},
		"SqlSettings":     map[string]any{"DataSource": dsn},
		"ClusterSettings": cs,
		"FileSettings":    map[string]any{"Directory": filepath.Join(n.Dir(), "data")},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	require.NoError(s.t, err)
	path := filepath.Join(n.Dir(), "config.json")
	require.NoError(s.t, os.WriteFile(path, b, 0o600))
	require.NoError(s.t, os.MkdirAll(filepath.Join(n.Dir(), "data"), 0o755))
	p, err := n.Start("garrison", bin, []string{"--config", path}, nil)
	require.NoError(s.t, err)
	return p
}

// api returns an anonymous client of base, dialing from the client node.
func (s *site) api(base string) *api { return &api{base: base, hc: s.hc} }

// nodeURL is the base URL of app node n's API.
func nodeURL(n *testbed.Node) string { return "http://" + n.HostPort(apiPort) }

// lbURL is nginx's base URL, the site's public address.
func (s *site) lbURL() string { return "http://" + s.lb.HostPort(80) }

// clusterHosts returns the host names node n lists in its cluster status,
// sorted.
func (s *site) clusterHosts(ctx context.Context, n *testbed.Node) ([]string, error) {
	nodes, err := s.admin.at(nodeURL(n)).clusterStatus(ctx)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, cn := range nodes {
		hosts = append(hosts, cn.Hostname)
	}
	slices.Sort(hosts)
	return hosts, nil
}

// waitCluster polls n's cluster status until it lists exactly hosts.
func (s *site) waitCluster(ctx context.Context, n *testbed.Node, hosts ...string) error {
	want := slices.Sorted(slices.Values(hosts))
	return poll(ctx, converge, func(ctx context.Context) error {
		got, err := s.clusterHosts(ctx, n)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s lists %v, want %v", n, got, want)
		}
		return nil
	})
}

// poll calls cond every pollEvery until it returns nil, and returns the
// last error when timeout passes or ctx ends first: the last one of a call
// that the deadline did not cut short, which says what was wrong.
func poll(ctx context.Context, timeout time.Duration, cond func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last error
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		var stop *stopPolling
		if errors.As(err, &stop) {
			return stop.err
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s: %w", timeout, last)
		case <-tick.C:
		}
	}
}

// stopPolling, returned by a poll's condition, ends the poll with err:
// waiting longer cannot help.
type stopPolling struct{ err error }

func (e *stopPolling) Error() string { return e.err.Error() }

// member is a user of the test's channel, logged in through nginx.
type member struct {
	user
	rest *api // through nginx, with the user's token
}

// on returns the member's client of app node n.
func (m member) on(n *testbed.Node) *api { return m.rest.at(nodeURL(n)) }

// setup makes a team with an open channel (or a private one) and n users
// who belong to both, created by the admin and logged in through nginx.
// The admin belongs to both too.
func (s *site) setup(ctx context.Context, name, kind string, n int) (channel, []member) {
	s.t.Helper()
	tm, err := s.admin.createTeam(ctx, name)
	require.NoError(s.t, err)
	ch, err := s.admin.createChannel(ctx, tm.ID, name, kind)
	require.NoError(s.t, err)
	members := make([]member, n)
	anon := s.api(s.lbURL())
	err = forEach(ctx, n, 8, func(ctx context.Context, i int) error {
		username := name + "-u" + strconv.Itoa(i)
		u, err := s.admin.createUser(ctx, username, password)
		if err != nil {
			return err
		}
		if err := s.admin.addTeamMember(ctx, tm.ID, u.ID); err != nil {
			return err
		}
		if err := s.admin.addChannelMember(ctx, ch.ID, u.ID); err != nil {
			return err
		}
		c, _, err := anon.login(ctx, username, password)
		if err != nil {
			return err
		}
		members[i] = member{user: u, rest: c}
		return nil
	})
	require.NoError(s.t, err)
	return ch, members
}

// forEach calls fn for 0..n-1 from at most workers goroutines and returns
// the first error, which stops the rest.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex // guards next
	next := 0
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}
