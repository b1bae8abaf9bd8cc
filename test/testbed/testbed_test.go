package testbed_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/nginx"
	"github.com/garrison-chat/garrison/test/testbed"
)

// helperEnv makes the test binary act as a small program for the
// processes the tests start on nodes (see TestMain).
const helperEnv = "TESTBED_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "http":
		helperHTTP()
	case "orphan":
		helperOrphan()
	case "orphan-machine":
		helperOrphanMachine()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperHTTP serves "hello from $NODE" on $ADDR until SIGTERM, then exits 0.
func helperHTTP() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	l, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s to %s", os.Getenv("NODE"), r.RemoteAddr)
	})}
	go func() {
		<-ctx.Done()
		fmt.Println("terminating")
		_ = srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// helperOrphan builds a testbed with a node running a process, prints
// the prefix and exits without cleaning up: a test run killed mid-way.
func helperOrphan() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := orphan(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func orphan(ctx context.Context) error {
	tb, err := testbed.Create(ctx, testbed.Options{StateDir: os.Getenv("STATE_DIR")})
	if err != nil {
		return err
	}
	n, err := tb.AddNode(ctx, "app1")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := n.Start("http", self, nil, []string{helperEnv + "=http", "ADDR=" + n.HostPort(8080)})
	if err != nil {
		return err
	}
	if err := p.WaitListening(ctx, n, n.HostPort(8080)); err != nil {
		return err
	}
	fmt.Println(tb.Prefix(), tb.Subnet(), tb.Dir(), p.PID())
	return nil
}

// startHelper runs the test binary as an HTTP server on node:8080.
func startHelper(t *testing.T, n *testbed.Node) *testbed.Process {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	p, err := n.Start("http", self, nil, []string{helperEnv + "=http", "ADDR=" + n.HostPort(8080), "NODE=" + n.Name()})
	require.NoError(t, err)
	require.NoError(t, n.WaitListening(t.Context(), n.HostPort(8080)))
	return p
}

// get fetches url through c and returns the body, or an error when there
// is no answer before timeout (a dropped packet never answers).
func get(c *http.Client, url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return string(b), err
}

// reachable reports whether from can open a TCP connection to hostport.
// A silently dropped SYN never connects, so the short deadline decides
// only how long the test waits to conclude "unreachable".
func reachable(from *testbed.Node, hostport string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// serve runs an in-process HTTP server on node:port, listening inside the
// node's namespace.
func serve(t *testing.T, n *testbed.Node, port int, h http.Handler) {
	t.Helper()
	l, err := n.Listen(t.Context(), "tcp", n.HostPort(port))
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func hello(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s: %s %s xff=%s proto=%s real=%s rid=%s host=%s",
			name, r.Method, r.URL.Path, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Real-IP"), r.Header.Get("X-Request-ID"), r.Host)
	})
}

func skipUnlessSupported(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("testbed: needs root and builds network namespaces; not run with -short")
	}
	if err := testbed.Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true, so this is a failure", err)
		}
		t.Skip(err)
	}
}

func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %v: %s", args, out)
	return string(out)
}

func rootLinks(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(ipOut(t, "-o", "link", "show")), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	return names
}

func namespaces(t *testing.T, prefix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join("/run/netns", prefix+"-*"))
	require.NoError(t, err)
	return m
}

func blackholed(t *testing.T, subnet string) bool {
	t.Helper()
	return strings.TrimSpace(ipOut(t, "route", "show", "type", "blackhole", subnet)) != ""
}

func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndex(string(b), ") ")
	return i >= 0 && !strings.HasPrefix(string(b[i+2:]), "Z")
}

func TestTopologyUpAndDown(t *testing.T) {
	t.Parallel()
	skipUnlessSupported(t)
	ctx := t.Context()
	links := rootLinks(t)
	stateDir := t.TempDir()

	tb, err := testbed.Create(ctx, testbed.Options{StateDir: stateDir, Logf: t.Logf})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			require.NoError(t, tb.Close(context.Background()))
		}
	})
	subnet := tb.Subnet().String()
	require.True(t, blackholed(t, subnet), "the blackhole route comes first")
	require.FileExists(t, filepath.Join(stateDir, tb.Prefix()+".json"))

	nodes, err := tb.AddNodes(ctx, "app1", "app2", "app3", "lb", "db1", "db2", "client")
	require.NoError(t, err)
	require.Len(t, namespaces(t, tb.Prefix()), len(nodes)+1, "a namespace per node and the switch")
	require.ElementsMatch(t, links, rootLinks(t), "the root namespace gets no links")
	_, err = tb.AddNode(ctx, "app1")
	require.ErrorContains(t, err, "exists")
	_, err = tb.AddNode(ctx, "Bad-Name")
	require.Error(t, err)
	require.Equal(t, nodes[2], tb.Node("app3"))

	for i, n := range nodes {
		require.True(t, tb.Subnet().Contains(n.Addr()))
		require.Equal(t, byte(10+i), n.Addr().As4()[3])
		require.Equal(t, tb.Prefix()+"-"+n.Name(), n.Namespace())
		out, err := n.Run(ctx, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
		require.NoError(t, err)
		require.Contains(t, string(out), n.Addr().String()+"/24")
	}

	// A process on a node lives in the node's namespace.
	p := startHelper(t, nodes[0])
	nsLink, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.PID()))
	require.NoError(t, err)
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat("/run/netns/"+nodes[0].Namespace(), &st))
	require.Equal(t, fmt.Sprintf("net:[%d]", st.Ino), nsLink)
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID()))
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	require.Equal(t, self, exe, "the pid is the program's, not ip's: ip netns exec execs")
	body, err := get(nodes[6].HTTPClient(), "http://"+nodes[0].HostPort(8080)+"/", 5*time.Second)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(body, "hello from app1 to "+nodes[6].Addr().String()+":"), body)

	dir := tb.Dir()
	require.DirExists(t, dir)
	require.NoError(t, tb.Close(ctx))
	closed = true
	require.NoError(t, tb.Close(ctx), "a second Close does nothing")

	require.Empty(t, namespaces(t, tb.Prefix()))
	require.False(t, blackholed(t, subnet), "the route is removed")
	require.False(t, alive(p.PID()), "the process is killed")
	require.NoDirExists(t, dir)
	require.NoFileExists(t, filepath.Join(stateDir, tb.Prefix()+".json"))
	require.NoFileExists(t, filepath.Join(stateDir, tb.Prefix()+".lock"))
	require.ElementsMatch(t, links, rootLinks(t))
	_, err = nodes[0].Start("again", "/bin/true", nil, nil)
	require.ErrorContains(t, err, "closed")
}

func TestTwoTestbedsDoNotCollide(t *testing.T) {
	t.Parallel()
	skipUnlessSupported(t)
	ctx := t.Context()
	// Created at the same time, they race for prefixes and subnets.
	tbs := make([]*testbed.Testbed, 4)
	errs := make(chan error, len(tbs))
	for i := range tbs {
		go func() {
			var err error
			tbs[i], err = testbed.Create(ctx, testbed.Options{})
			errs <- err
		}()
	}
	for range tbs {
		require.NoError(t, <-errs)
	}
	for _, tb := range tbs {
		t.Cleanup(func() { require.NoError(t, tb.Close(context.Background())) })
	}
	for i, x := range tbs {
		for _, y := range tbs[i+1:] {
			require.NotEqual(t, x.Prefix(), y.Prefix())
			require.False(t, x.Subnet().Overlaps(y.Subnet()), "%s and %s", x.Subnet(), y.Subnet())
		}
	}

	a, b := tbs[0], tbs[1]
	an, err := a.AddNodes(ctx, "app1", "client")
	require.NoError(t, err)
	bn, err := b.AddNodes(ctx, "app1", "client")
	require.NoError(t, err)
	serve(t, an[0], 8080, hello("a"))
	serve(t, bn[0], 8080, hello("b"))

	body, err := get(an[1].HTTPClient(), "http://"+an[0].HostPort(8080)+"/", 5*time.Second)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(body, "a:"), body)
	body, err = get(bn[1].HTTPClient(), "http://"+bn[0].HostPort(8080)+"/", 5*time.Second)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(body, "b:"), body)
	require.False(t, reachable(an[1], bn[0].HostPort(8080)), "one testbed cannot reach the other")
}

func TestDialerAndSafetyRule(t *testing.T) {
	t.Parallel()
	tb := testbed.New(t, testbed.Options{})
	ctx := t.Context()
	nodes, err := tb.AddNodes(ctx, "app1", "client")
	require.NoError(t, err)
	app, client := nodes[0], nodes[1]
	serve(t, app, 8080, hello("app1"))
	url := "http://" + app.HostPort(8080) + "/x"

	body, err := get(client.HTTPClient(), url, 5*time.Second)
	require.NoError(t, err)
	require.Contains(t, body, "app1: GET /x")

	// The safety rule: from the root namespace a node address is
	// blackholed, so a client there fails on this machine at once.
	_, err = net.DialTimeout("tcp", app.HostPort(8080), 5*time.Second)
	require.Error(t, err)
	require.ErrorIs(t, err, syscall.EINVAL, "a blackhole route refuses the connect: %v", err)
	// No proxy: http.DefaultClient would hand the request to
	// $HTTP_PROXY, which would dial the node address off this machine.
	rootHTTP := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer rootHTTP.CloseIdleConnections()
	_, err = get(rootHTTP, url, 5*time.Second)
	require.ErrorIs(t, err, syscall.EINVAL, "an HTTP client in the root namespace: %v", err)
	_, err = pgx.Connect(ctx, "postgres://postgres@"+app.HostPort(5432)+"/postgres?connect_timeout=5")
	require.ErrorIs(t, err, syscall.EINVAL, "a Postgres client in the root namespace: %v", err)

	// A name would be resolved from the root namespace: refused.
	_, err = client.DialContext(ctx, "tcp", "localhost:8080")
	require.ErrorContains(t, err, "must be an IP address")

	// The dialing thread goes back to the test's namespace: many dials,
	// in parallel with root-namespace listeners, never mix them up.
	root, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer root.Close()
	go func() {
		for {
			c, err := root.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	errs := make(chan error, 40)
	for i := range 40 {
		go func() {
			if i%2 == 0 {
				_, err := get(client.HTTPClient(), url, 5*time.Second)
				errs <- err
				return
			}
			c, err := net.Dial("tcp", root.Addr().String())
			if err == nil {
				_ = c.Close()
			}
			errs <- err
		}()
	}
	for range 40 {
		require.NoError(t, <-errs)
	}

	// A WebSocket dialed from the client node.
	up := websocket.Upgrader{}
	serve(t, app, 8081, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte("hi "+r.RemoteAddr))
	}))
	ws, _, err := client.WebSocketDialer().DialContext(ctx, "ws://"+app.HostPort(8081)+"/", nil)
	require.NoError(t, err)
	defer ws.Close()
	_, msg, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Contains(t, string(msg), "hi "+client.Addr().String()+":")
}

func TestProcesses(t *testing.T) {
	t.Parallel()
	tb := testbed.New(t, testbed.Options{})
	ctx := t.Context()
	nodes, err := tb.AddNodes(ctx, "app1", "client")
	require.NoError(t, err)
	app, client := nodes[0], nodes[1]
	url := "http://" + app.HostPort(8080) + "/"

	p := startHelper(t, app)
	require.Same(t, p, app.Process("http"))
	_, err = app.Start("http", "/bin/true", nil, nil)
	require.ErrorContains(t, err, "is running")
	body, err := get(client.HTTPClient(), url, 5*time.Second)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(body, "hello from app1"), body)

	// Stop: SIGTERM, a clean exit.
	require.NoError(t, p.Stop(ctx))
	require.True(t, p.Exited())
	require.NoError(t, p.Wait(ctx), "exit status 0 after SIGTERM")
	require.Contains(t, p.Log(10), "terminating")

	// Restart under the same name; the log is appended to.
	p2 := startHelper(t, app)
	require.NotEqual(t, p.PID(), p2.PID())
	_, err = get(client.HTTPClient(), url, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, p2.Kill(ctx))
	var exitErr *exec.ExitError
	require.ErrorAs(t, p2.Wait(ctx), &exitErr)
	require.Equal(t, 2, strings.Count(p2.Log(100), "=== testbed:"))
	require.Equal(t, p.LogPath(), p2.LogPath())
	require.Contains(t, tb.LogTails(5), "--- app1/http: "+p.LogPath(), "what a failed test prints")
	require.False(t, reachable(client, app.HostPort(8080)))

	// A process that exits by itself.
	p3, err := app.Start("false", "/bin/false", nil, nil)
	require.NoError(t, err)
	require.ErrorAs(t, p3.Wait(ctx), &exitErr)
	require.Equal(t, 1, exitErr.ExitCode())

	// Waiting for a process to serve ends as soon as it exits.
	p6, err := app.Start("gone", "/bin/true", nil, nil)
	require.NoError(t, err)
	err = p6.WaitListening(ctx, client, app.HostPort(8090))
	require.ErrorIs(t, err, context.Canceled, "not the test's deadline")
	require.ErrorContains(t, err, "app1/gone is not serving")

	// The environment reaches the process, which runs in the node's
	// directory.
	p4, err := app.Start("env", "/bin/sh", []string{"-c", "echo $GREETING; pwd"}, []string{"GREETING=hi there"})
	require.NoError(t, err)
	require.NoError(t, p4.Wait(ctx))
	require.Contains(t, p4.Log(5), "hi there\n"+app.Dir())

	// Stop escalates to SIGKILL when the context ends first.
	p5, err := app.Start("stubborn", "/bin/sh", []string{"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(p5.Log(5), "ready") }, 10*time.Second, 10*time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	require.NoError(t, p5.Stop(sctx))
	require.True(t, p5.Exited())
}

func TestPartitionAndHeal(t *testing.T) {
	t.Parallel()
	tb := testbed.New(t, testbed.Options{})
	ctx := t.Context()
	nodes, err := tb.AddNodes(ctx, "app1", "app2", "app3", "client")
	require.NoError(t, err)
	app1, app2, app3, client := nodes[0], nodes[1], nodes[2], nodes[3]
	for _, n := range nodes[:3] {
		serve(t, n, 8080, hello(n.Name()))
	}
	type link struct{ from, to *testbed.Node }
	// check probes every link at once. A link that should work is tried
	// until a deadline (a busy machine may be slow to answer); one that
	// should not gets a single probe, which a dropped SYN never answers.
	check := func(what string, want map[link]bool) {
		t.Helper()
		got := make(map[link]chan bool, len(want))
		for l, ok := range want {
			c := make(chan bool, 1)
			got[l] = c
			go func() {
				deadline := time.Now().Add(10 * time.Second)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				r := reachable(l.from, l.to.HostPort(8080))
				for ok && !r && time.Now().Before(deadline) {
					<-tick.C // a refused dial returns at once: do not spin
					r = reachable(l.from, l.to.HostPort(8080))
				}
				c <- r
			}()
		}
		for l, ok := range want {
			require.Equal(t, ok, <-got[l], "%s: %s -> %s", what, l.from, l.to)
		}
	}
	all := func(ok bool) map[link]bool {
		m := map[link]bool{}
		for _, from := range nodes {
			for _, to := range nodes[:3] {
				if from != to {
					m[link{from, to}] = ok
				}
			}
		}
		return m
	}
	check("before", all(true))

	require.NoError(t, tb.Partition(ctx, app1, app2, client))
	check("partition", map[link]bool{
		{client, app1}: false, {app2, app1}: false, {app1, app2}: false,
		{app3, app1}: true, {app1, app3}: true, {client, app2}: true,
	})
	require.NoError(t, tb.Heal(ctx))
	check("healed", all(true))

	require.NoError(t, tb.Isolate(ctx, app1))
	check("isolate", map[link]bool{{client, app1}: false, {app1, app2}: false, {app2, app3}: true})
	require.NoError(t, tb.Heal(ctx))

	require.NoError(t, tb.Blackhole(ctx, app2))
	check("blackhole", map[link]bool{{client, app2}: false, {app2, app1}: false, {app1, app3}: true})
	// Silent for the sender: its connect does not fail, it just hangs.
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = client.DialContext(dctx, "tcp", app2.HostPort(8080))
	cancel()
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	require.True(t, netErr.Timeout(), "a timeout, not a refusal: %v", err)
	require.NoError(t, tb.Heal(ctx))

	require.NoError(t, tb.LinkDown(ctx, app3))
	check("link down", map[link]bool{{client, app3}: false, {app3, app1}: false, {client, app1}: true})
	require.NoError(t, tb.LinkUp(ctx, app3))
	check("link up", map[link]bool{{client, app3}: true})

	require.NoError(t, tb.Unplug(ctx, app3))
	check("unplugged", map[link]bool{{client, app3}: false, {client, app2}: true})
	require.NoError(t, tb.LinkDown(ctx, app1))
	require.NoError(t, tb.Loss(ctx, app2, 0.01))
	require.NoError(t, tb.Heal(ctx), "heal plugs, sets links up and flushes rules")
	check("healed again", all(true))
}

func TestPostgresPrimaryAndReplica(t *testing.T) {
	t.Parallel()
	tb := testbed.New(t, testbed.Options{Postgres: true})
	ctx := t.Context()
	nodes, err := tb.AddNodes(ctx, "db1", "db2", "client")
	require.NoError(t, err)
	db1, db2, client := nodes[0], nodes[1], nodes[2]

	primary, err := db1.StartPostgres(ctx, testbed.PostgresOptions{})
	require.NoError(t, err)
	replica, err := db2.StartReplica(ctx, primary, testbed.PostgresOptions{})
	require.NoError(t, err)
	require.Contains(t, primary.DSN("postgres"), "@"+db1.HostPort(5432)+"/")

	pconn, err := client.ConnectPG(ctx, primary.DSN("postgres"))
	require.NoError(t, err)
	defer pconn.Close(context.Background())
	rconn, err := client.ConnectPG(ctx, replica.DSN("postgres"))
	require.NoError(t, err)
	defer rconn.Close(context.Background())
	count := func() int {
		t.Helper()
		var n int
		require.NoError(t, rconn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
		return n
	}

	// The replica streams from db1's address.
	standbys, err := primary.Standbys(ctx)
	require.NoError(t, err)
	require.Len(t, standbys, 1)
	require.Equal(t, "db2", standbys[0].Name)
	require.Equal(t, db2.Addr().String(), standbys[0].Addr)

	_, err = pconn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
	require.NoError(t, err)
	lsn, err := primary.CurrentLSN(ctx)
	require.NoError(t, err)
	require.NoError(t, replica.WaitReplayed(ctx, lsn))
	require.Equal(t, 1, count(), "a write on the primary is visible on the replica")
	_, err = rconn.Exec(ctx, "INSERT INTO t VALUES (2)")
	require.ErrorContains(t, err, "read-only")

	// Paused, the replica stays behind.
	require.NoError(t, replica.PauseReplay(ctx))
	_, err = pconn.Exec(ctx, "INSERT INTO t SELECT generate_series(2, 1000)")
	require.NoError(t, err)
	lsn, err = primary.CurrentLSN(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := replica.ReplayStatus(ctx)
		return err == nil && r.Received >= lsn
	}, 10*time.Second, 10*time.Millisecond, "the WAL still arrives")
	lag, err := primary.Lag(ctx, replica)
	require.NoError(t, err)
	require.Positive(t, lag)
	require.Equal(t, 1, count())
	require.NoError(t, replica.ResumeReplay(ctx))
	require.NoError(t, replica.WaitReplayed(ctx, lsn))
	require.Equal(t, 1000, count())

	// The primary crashes; the promoted replica takes writes.
	require.NoError(t, primary.Kill(ctx))
	require.False(t, reachable(client, db1.HostPort(5432)))
	require.NoError(t, replica.Promote(ctx))
	_, err = rconn.Exec(ctx, "INSERT INTO t VALUES (1001)")
	require.NoError(t, err)
	require.Equal(t, 1001, count())

	// The old primary comes back (crash recovery) with what it had.
	again, err := primary.Restart(ctx)
	require.NoError(t, err)
	conn, err := client.ConnectPG(ctx, again.DSN("postgres"))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
	require.Equal(t, 1000, n)
}

func TestNginxInFrontOfApps(t *testing.T) {
	t.Parallel()
	tb := testbed.New(t, testbed.Options{Nginx: true})
	ctx := t.Context()
	nodes, err := tb.AddNodes(ctx, "app1", "app2", "lb", "client")
	require.NoError(t, err)
	app1, app2, lb, client := nodes[0], nodes[1], nodes[2], nodes[3]
	up := websocket.Upgrader{}
	mux := func(name string) http.Handler {
		m := http.NewServeMux()
		m.Handle("/", hello(name))
		m.HandleFunc("/api/v4/websocket", func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.WriteMessage(websocket.TextMessage, []byte(name))
		})
		return m
	}
	l1, err := app1.Listen(ctx, "tcp", app1.HostPort(8065))
	require.NoError(t, err)
	srv1 := &http.Server{Handler: mux("app1")}
	go func() { _ = srv1.Serve(l1) }()
	t.Cleanup(func() { _ = srv1.Close() })
	serve(t, app2, 8065, mux("app2"))

	_, err = lb.StartNginx(ctx, nginx.Config{
		App: nginx.Upstream{Servers: []nginx.Server{
			{Addr: app1.HostPort(8065)}, {Addr: app2.HostPort(8065)},
		}},
		ClientMaxBodySize: 1 << 20,
	})
	require.NoError(t, err)
	hc := client.HTTPClient()
	seen := map[string]bool{}
	for range 4 {
		body, err := get(hc, "http://"+lb.HostPort(80)+"/api/v4/system/ping", 5*time.Second)
		require.NoError(t, err)
		seen[body[:4]] = true
		require.Contains(t, body, "GET /api/v4/system/ping xff="+client.Addr().String()+" proto=http real="+client.Addr().String()+" rid=")
		require.NotContains(t, body, "rid= ", "nginx sets a request id")
		require.Contains(t, body, "host="+lb.HostPort(80))
	}
	require.Equal(t, map[string]bool{"app1": true, "app2": true}, seen, "round robin over the app nodes")

	ws, _, err := client.WebSocketDialer().DialContext(ctx, "ws://"+lb.HostPort(80)+"/api/v4/websocket", nil)
	require.NoError(t, err)
	_, msg, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Contains(t, []string{"app1", "app2"}, string(msg))
	require.NoError(t, ws.Close())

	// app1 goes away: every request is answered by app2.
	require.NoError(t, srv1.Close())
	for range 4 {
		body, err := get(hc, "http://"+lb.HostPort(80)+"/", 5*time.Second)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(body, "app2:"), body)
	}
}

func TestSweepsDeadRuns(t *testing.T) {
	t.Parallel()
	skipUnlessSupported(t)
	ctx := t.Context()
	stateDir := t.TempDir()

	// A live run in the same state directory must survive the sweep.
	live, err := testbed.Create(ctx, testbed.Options{StateDir: stateDir})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, live.Close(context.Background())) })
	liveNode, err := live.AddNode(ctx, "app1")
	require.NoError(t, err)

	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), helperEnv+"=orphan", "STATE_DIR="+stateDir)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var prefix, subnet, dir string
	var pid int
	_, err = fmt.Sscan(string(out), &prefix, &subnet, &dir, &pid)
	require.NoError(t, err, "%q", out)
	require.True(t, alive(pid), "the orphan's process outlives it")
	require.Len(t, namespaces(t, prefix), 2)
	require.True(t, blackholed(t, subnet))
	require.DirExists(t, dir)

	next, err := testbed.Create(ctx, testbed.Options{StateDir: stateDir, Logf: t.Logf})
	require.NoError(t, err)
	require.NoError(t, next.Close(ctx))
	require.False(t, alive(pid))
	require.Empty(t, namespaces(t, prefix))
	require.False(t, blackholed(t, subnet))
	require.NoDirExists(t, dir)
	require.NoFileExists(t, filepath.Join(stateDir, prefix+".json"))

	require.Len(t, namespaces(t, live.Prefix()), 2, "the live run is untouched")
	require.True(t, blackholed(t, live.Subnet().String()))
	out, err = liveNode.Run(ctx, "ip", "-o", "addr", "show", "dev", "eth0")
	require.NoError(t, err)
	require.Contains(t, string(out), liveNode.Addr().String())
}

// TestCheck makes sure Check agrees with the environment: it names root
// exactly when we are not root, and ip exactly when it is missing. A Check
// wrong on a capable machine would skip every testbed test.
func TestCheck(t *testing.T) {
	t.Parallel()
	err := testbed.Check()
	if os.Geteuid() != 0 {
		require.ErrorIs(t, err, testbed.ErrUnsupported)
		require.ErrorContains(t, err, "root")
		return
	}
	_, ipErr := exec.LookPath("ip")
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, serr := os.Stat(filepath.Join(dir, "ip")); serr == nil {
			ipErr = nil
		}
	}
	if err == nil {
		require.NoError(t, ipErr, "Check passes, so ip is there")
		return
	}
	require.ErrorIs(t, err, testbed.ErrUnsupported)
	require.NotContains(t, err.Error(), "root (", "we are root")
	if ipErr == nil {
		require.NotContains(t, err.Error(), "ip (apt-get install iproute2)", "ip is there")
	}
	if os.Getenv("CI") == "true" {
		require.NoError(t, err, "CI machines run the testbed")
	}
}
