// Package pgcluster starts and stops a throwaway local PostgreSQL cluster
// (initdb + pg_ctl) for the test harness (internal/pgtest) and for the
// all-in-one dev mode (`make run`).
//
// The cluster listens on 127.0.0.1 (or on Options.ListenAddr) and on a
// unix socket in its data directory (or in a short directory under /tmp
// when the data directory's path is too long for a socket), trusts every
// local connection (and those from Options.TrustNetworks) and has a single
// superuser, postgres. It is not meant for production data.
//
// For the multi-node testbed (test/testbed) a cluster can also run inside
// a network namespace (Options.Exec), be a streaming replica of another
// (StartReplica), be promoted, have its replay paused and resumed, and be
// killed the way a crash ends it (Kill).
//
// When the process runs as root, which Postgres refuses, every Postgres
// binary runs as the postgres user through `runuser -u postgres --`, and the
// data directory is owned by that user.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound reports that no PostgreSQL server binaries were found.
// Callers test for it with errors.Is to tell "Postgres is not installed"
// apart from every other failure.
var ErrNotFound = errors.New("pgcluster: postgres server binaries not found")

// Options configures Start.
type Options struct {
	// Dir is the data directory. Start creates it (with initdb) when it does
	// not hold a cluster yet, and reuses the cluster in it otherwise.
	Dir string

	// Port is the TCP port on 127.0.0.1 (or ListenAddr); 0 picks a free one
	// at every start.
	Port int

	// ListenAddr is the IP address the server listens on and DSN points
	// at; empty means 127.0.0.1. Start's own connections go through the
	// unix socket, so any address works, including one only reachable from
	// inside the network namespace the server runs in.
	ListenAddr string

	// Exec is a command prefix every Postgres binary (initdb, pg_ctl and so
	// the postmaster, pg_basebackup) runs under, for example
	// {"ip", "netns", "exec", "ns1"} to run the server in network namespace
	// ns1. When we are root the prefix runs first, as root (entering a
	// namespace needs it), and runuser after it.
	Exec []string

	// TrustNetworks are CIDRs (10.200.3.0/24) whose clients may connect to
	// any database and for replication without a password: Start adds a
	// "host all" and a "host replication" trust line for each to pg_hba.conf.
	TrustNetworks []string

	// Settings are extra server settings passed as -c name=value at every
	// start (synchronous_standby_names, cluster_name, ...). Being on the
	// command line, they override postgresql.conf and survive pg_basebackup
	// and pg_rewind copying that file from another node.
	Settings map[string]string

	// BinDir holds initdb, pg_ctl and postgres. Empty means Find("").
	BinDir string

	// Logger receives a few lines about what Start and Stop do; nil
	// discards them.
	Logger *slog.Logger

	// Fsync keeps Postgres' durability settings at their defaults (run
	// mode). When false (tests), initdb runs with --no-sync and the server
	// with fsync=off and full_page_writes=off: much faster, but an OS crash
	// can corrupt the cluster.
	Fsync bool

	// FallbackDir is used instead of Dir when the process runs as root and
	// the postgres user cannot reach Dir because a parent directory is not
	// searchable by it (typically Dir under /root, which is mode 0700).
	// Start never loosens the permissions of someone's home directory, so
	// with FallbackDir empty that case is an error. The caller decides where
	// the fallback lives (for example /var/tmp/garrison-pg); Cluster.Dir
	// reports the directory actually used.
	FallbackDir string
}

// Cluster is a running PostgreSQL cluster started (or reused) by Start.
type Cluster struct {
	dir      string // absolute data directory
	binDir   string
	sockDir  string
	ownSock  bool // sockDir is a directory under /tmp that Stop removes
	port     int
	listen   string   // the address the server listens on
	prefix   []string // Options.Exec
	log      *slog.Logger
	runas    *runAs // nil when not running as root
	adminDSN string // through the unix socket

	mu      sync.Mutex // guards the fields below
	stopped bool
}

const (
	// defaultListen is the address the server listens on without
	// Options.ListenAddr.
	defaultListen = "127.0.0.1"
	// maxSocketPath is sizeof(sockaddr_un.sun_path) minus the trailing NUL.
	maxSocketPath = 107
	// socketName is the longest name Postgres gives its socket in the
	// socket directory (".s.PGSQL.65535"), plus the separating slash.
	socketName = len("/.s.PGSQL.65535")
	// sockPrefix names the short socket directories Start creates under
	// /tmp, so that a later Start can clean up after a crashed run.
	sockPrefix = "garrison-pgsock-"

	pgctlTimeout = "60" // seconds pg_ctl -w waits for start or stop
)

// Find locates the directory holding the PostgreSQL server binaries
// (initdb, pg_ctl, postgres). A non-empty binDir is checked and returned.
// Otherwise Find looks in /usr/lib/postgresql/*/bin (Debian's layout),
// preferring version 15 and then the newest, and finally in $PATH. The
// error wraps ErrNotFound and says which Debian package to install.
func Find(binDir string) (string, error) {
	if binDir != "" {
		if err := checkBinDir(binDir); err != nil {
			return "", fmt.Errorf("%w in %s: %v; install them with: apt-get install postgresql-15", ErrNotFound, binDir, err)
		}
		return binDir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	type candidate struct {
		version float64
		dir     string
	}
	var found []candidate
	for _, m := range matches {
		dir := filepath.Dir(m)
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err != nil || checkBinDir(dir) != nil {
			continue
		}
		found = append(found, candidate{v, dir})
	}
	sort.Slice(found, func(i, j int) bool {
		if (found[i].version == 15) != (found[j].version == 15) {
			return found[i].version == 15
		}
		return found[i].version > found[j].version
	})
	if len(found) > 0 {
		return found[0].dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve symlinks (/usr/local/bin/initdb -> .../15/bin/initdb) to
		// get the directory that has all the binaries.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w in /usr/lib/postgresql/*/bin or $PATH; install them with: apt-get install postgresql-15", ErrNotFound)
}

func checkBinDir(dir string) error {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", filepath.Join(dir, name))
		}
	}
	return nil
}

// Start makes sure a cluster is running in o.Dir and returns it.
//
//   - When o.Dir holds no cluster (no PG_VERSION), Start runs initdb.
//   - When a postmaster for o.Dir is still running (left by an earlier run
//     that crashed or was killed) and answers, Start reuses it as it is:
//     port, socket directory and settings stay those of that earlier start,
//     unless o.Port asks for another port, in which case Start stops it and
//     starts it again. A live postmaster that does not answer is stopped
//     with pg_ctl and started again.
//   - A stale postmaster.pid (its process is gone, or the pid now belongs
//     to some other process) is removed before starting.
//
// Start only ever signals a postmaster through pg_ctl on o.Dir, after
// checking through /proc that the pid in postmaster.pid is a process whose
// working directory is o.Dir. The returned Cluster owns the server: Stop
// shuts it down whether Start started or reused it.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c, err := newCluster(o)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, o.Fsync); err != nil {
			return nil, fmt.Errorf("pgcluster: start: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	return c.run(ctx, o)
}

// newCluster checks o, finds the binaries and prepares the data directory.
func newCluster(o Options) (*Cluster, error) {
	if o.Dir == "" {
		return nil, errors.New("pgcluster: start: Options.Dir is empty")
	}
	if err := checkOptions(o); err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	binDir, err := Find(o.BinDir)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{binDir: binDir, log: log, listen: o.ListenAddr, prefix: slices.Clone(o.Exec)}
	if c.listen == "" {
		c.listen = defaultListen
	}
	if os.Geteuid() == 0 {
		if c.runas, err = lookupRunAs(); err != nil {
			return nil, fmt.Errorf("pgcluster: start: %w", err)
		}
	}
	if c.dir, err = c.chooseDir(o); err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	if err := c.prepareDir(); err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	return c, nil
}

// checkOptions reports every malformed field of o at once.
func checkOptions(o Options) error {
	var errs []error
	if o.ListenAddr != "" {
		if _, err := netip.ParseAddr(o.ListenAddr); err != nil {
			errs = append(errs, fmt.Errorf("Options.ListenAddr %q is not an IP address", o.ListenAddr))
		}
	}
	for _, n := range o.TrustNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			errs = append(errs, fmt.Errorf("Options.TrustNetworks: %q is not a CIDR", n))
		}
	}
	for name := range o.Settings {
		if !validSettingName(name) {
			errs = append(errs, fmt.Errorf("Options.Settings: %q is not a setting name", name))
		}
	}
	return errors.Join(errs...)
}

func validSettingName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// run starts the server on an existing cluster, or adopts the one already
// running in the directory.
func (c *Cluster) run(ctx context.Context, o Options) (*Cluster, error) {
	if err := c.trustNetworks(o.TrustNetworks); err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	reused, err := c.adoptRunning(ctx, o.Port)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	if reused {
		return c, nil
	}
	if err := c.start(ctx, o); err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	c.adminDSN = c.socketDSN("postgres")
	if err := c.ping(ctx); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	return c, nil
}

// hbaMarker ends every pg_hba.conf line trustNetworks adds, so that a
// restart does not add them twice.
const hbaMarker = "# pgcluster TrustNetworks"

// trustNetworks appends trust lines for networks to pg_hba.conf, once.
func (c *Cluster) trustNetworks(networks []string) error {
	if len(networks) == 0 {
		return nil
	}
	path := filepath.Join(c.dir, "pg_hba.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	have := strings.Split(string(b), "\n")
	var add strings.Builder
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
		add.WriteString("\n")
	}
	n0 := add.Len()
	for _, n := range networks {
		for _, db := range []string{"all", "replication"} {
			line := fmt.Sprintf("host %s all %s trust %s", db, n, hbaMarker)
			if !slices.Contains(have, line) {
				add.WriteString(line + "\n")
			}
		}
	}
	if add.Len() == n0 {
		return nil
	}
	// O_APPEND keeps the file's owner, the postgres user.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(add.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// chooseDir returns the absolute data directory to use: o.Dir, or
// o.FallbackDir when running as root and the postgres user cannot reach
// o.Dir.
func (c *Cluster) chooseDir(o Options) (string, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return "", err
	}
	if c.runas == nil {
		return dir, nil
	}
	blocked, err := c.runas.blockedAncestor(dir)
	if err != nil {
		return "", err
	}
	if blocked == "" {
		return dir, nil
	}
	if o.FallbackDir == "" {
		return "", fmt.Errorf("the postgres user cannot reach %s: %s is not searchable by it; "+
			"choose a data directory elsewhere (for example under /var/tmp) or set Options.FallbackDir", dir, blocked)
	}
	fallback, err := filepath.Abs(o.FallbackDir)
	if err != nil {
		return "", err
	}
	fb, err := c.runas.blockedAncestor(fallback)
	if err != nil {
		return "", err
	}
	if fb != "" {
		return "", fmt.Errorf("the postgres user can reach neither %s (%s is not searchable by it) nor the fallback %s (%s is not searchable by it)",
			dir, blocked, fallback, fb)
	}
	c.log.Warn("postgres cannot reach the data directory; using the fallback",
		"dir", dir, "blocked_by", blocked, "fallback_dir", fallback)
	return fallback, nil
}

func (c *Cluster) initdb(ctx context.Context, fsync bool) error {
	args := []string{"-D", c.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C.UTF-8"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	c.log.Info("creating postgres cluster", "dir", c.dir)
	if out, err := c.command(ctx, "initdb", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// start runs pg_ctl start. With an automatic port it retries a few times,
// since another process may bind the port between picking and starting.
func (c *Cluster) start(ctx context.Context, o Options) error {
	if err := c.chooseSocketDir(); err != nil {
		return err
	}
	attempts := 1
	if o.Port == 0 {
		attempts = 3
	}
	var err error
	for range attempts {
		c.port = o.Port
		if c.port == 0 {
			if c.port, err = freePort(); err != nil {
				break
			}
		}
		if err = c.pgctlStart(ctx, o.Fsync, o.Settings); err == nil {
			c.log.Info("postgres started", "dir", c.dir, "port", c.port)
			return nil
		}
		if o.Port != 0 || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	c.removeSocketDir()
	return err
}

func (c *Cluster) pgctlStart(ctx context.Context, fsync bool, settings map[string]string) error {
	opts := []string{
		"-c listen_addresses=" + shellQuote(c.listen),
		"-p " + strconv.Itoa(c.port),
		"-k " + shellQuote(c.sockDir),
		"-c max_connections=300",
	}
	if !fsync {
		opts = append(opts, "-c fsync=off", "-c full_page_writes=off")
	}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		opts = append(opts, "-c "+shellQuote(name+"="+settings[name]))
	}
	logFile := filepath.Join(c.dir, "postgres.log")
	out, err := c.command(ctx, "pg_ctl", "-D", c.dir, "-w", "-t", pgctlTimeout,
		"-l", logFile, "-o", strings.Join(opts, " "), "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s\n%s", err, strings.TrimSpace(string(out)), tail(logFile, 20))
	}
	return nil
}

// chooseSocketDir puts the socket in the data directory when the socket's
// path fits in sockaddr_un, and in a new short directory under /tmp
// otherwise.
func (c *Cluster) chooseSocketDir() error {
	if len(c.dir)+socketName <= maxSocketPath {
		c.sockDir, c.ownSock = c.dir, false
		return nil
	}
	d, err := os.MkdirTemp("/tmp", sockPrefix)
	if err != nil {
		return err
	}
	if c.runas != nil {
		if err := os.Chown(d, c.runas.uid, c.runas.gid); err != nil {
			_ = os.Remove(d)
			return err
		}
	}
	c.sockDir, c.ownSock = d, true
	return nil
}

func (c *Cluster) removeSocketDir() {
	if c.ownSock {
		_ = os.RemoveAll(c.sockDir)
	}
}

// adoptRunning looks at postmaster.pid. It reports true when a postmaster
// for this directory is running, answers and may be kept; c.port and
// c.sockDir are then those of the running server.
func (c *Cluster) adoptRunning(ctx context.Context, wantPort int) (bool, error) {
	pidFile := filepath.Join(c.dir, "postmaster.pid")
	pf, err := readPidFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !c.isPostmasterFor(pf.pid) {
		c.log.Info("removing stale postmaster.pid", "dir", c.dir, "pid", pf.pid)
		if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		if isOurSocketDir(pf.sockDir) {
			_ = os.RemoveAll(pf.sockDir)
		} else {
			removeSocketLock(pf)
		}
		return false, nil
	}
	c.port, c.sockDir, c.ownSock = pf.port, pf.sockDir, isOurSocketDir(pf.sockDir)
	c.adminDSN = c.socketDSN("postgres")
	if pf.listen != c.listen {
		c.log.Info("running postgres listens on another address; restarting it",
			"dir", c.dir, "listen", pf.listen, "want_listen", c.listen)
	} else if wantPort == 0 || wantPort == pf.port {
		if err := c.ping(ctx); err == nil {
			c.log.Info("reusing running postgres", "dir", c.dir, "port", c.port, "pid", pf.pid)
			return true, nil
		}
		c.log.Warn("running postgres does not answer; restarting it", "dir", c.dir, "pid", pf.pid)
	} else {
		c.log.Info("running postgres listens on another port; restarting it",
			"dir", c.dir, "port", pf.port, "want_port", wantPort)
	}
	if err := c.pgctlStop(ctx); err != nil {
		return false, err
	}
	c.removeSocketDir()
	return false, nil
}

// isPostmasterFor reports whether pid is a live process whose working
// directory is this data directory: a postmaster chdirs to its data
// directory, and an unrelated process that reused the pid does not.
func (c *Cluster) isPostmasterFor(pid int) bool {
	if pid <= 0 {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return false
	}
	return cwd == want
}

// ping waits, until a deadline, for the server to accept a connection, and
// checks that it serves this data directory.
func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	want, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var dataDir string
		conn, err := pgx.Connect(ctx, c.adminDSN)
		if err == nil {
			err = conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir)
			_ = conn.Close(ctx)
		}
		if err == nil {
			got, err := filepath.EvalSymlinks(dataDir)
			if err != nil || got != want {
				return fmt.Errorf("port %d is served by a postgres with data directory %s, not %s", c.port, dataDir, c.dir)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to postgres on port %d: %w", c.port, err)
		case <-tick.C:
		}
	}
}

// DSN returns the URL of database dbname over TCP, for example
// postgres://postgres@127.0.0.1:5432/garrison?sslmode=disable; the host is
// Options.ListenAddr when set.
func (c *Cluster) DSN(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort(c.listen, strconv.Itoa(c.port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// socketDSN returns the keyword/value DSN of database dbname through the
// unix socket, which works from any network namespace.
func (c *Cluster) socketDSN(dbname string) string {
	q := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", q(c.sockDir), c.port, q(dbname))
}

// SocketDSN returns the DSN of database dbname through the server's unix
// socket. Unlike DSN it does not depend on the network: it reaches a
// server in a network namespace, or behind a simulated network fault,
// from any namespace on the machine.
func (c *Cluster) SocketDSN(dbname string) string { return c.socketDSN(dbname) }

// Port returns the TCP port the server listens on (on 127.0.0.1, or
// Options.ListenAddr).
func (c *Cluster) Port() int { return c.port }

// ListenAddr returns the IP address the server listens on.
func (c *Cluster) ListenAddr() string { return c.listen }

// Dir returns the data directory in use: Options.Dir, or
// Options.FallbackDir when Start had to fall back to it.
func (c *Cluster) Dir() string { return c.dir }

// SocketDir returns the directory holding the server's unix socket: the
// data directory, or a short directory under /tmp when the data
// directory's path is too long for a socket.
func (c *Cluster) SocketDir() string { return c.sockDir }

// Stop shuts the server down (pg_ctl stop -m fast, waiting for it) and
// removes the socket directory Start created under /tmp, if any. Calling
// Stop again does nothing.
func (c *Cluster) Stop(ctx context.Context) error { return c.StopWith(ctx, StopFast) }

func (c *Cluster) pgctlStop(ctx context.Context) error { return c.pgctlStopMode(ctx, StopFast) }

func (c *Cluster) pgctlStopMode(ctx context.Context, mode StopMode) error {
	out, err := c.command(ctx, "pg_ctl", "-D", c.dir, "-m", string(mode), "-w", "-t", pgctlTimeout, "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// StopOrphan stops a postmaster still running in dir, typically left
// behind by a process that was killed before it could call Stop (a test
// binary hitting -timeout). It does nothing when no postmaster for dir is
// running, and like Start it only signals through pg_ctl on dir once
// /proc shows that the pid in postmaster.pid really serves dir.
func StopOrphan(ctx context.Context, binDir, dir string) error {
	binDir, err := Find(binDir)
	if err != nil {
		return err
	}
	c := &Cluster{binDir: binDir, log: slog.New(slog.DiscardHandler)}
	if c.dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if c.runas, err = lookupRunAs(); err != nil {
			return fmt.Errorf("pgcluster: stop orphan: %w", err)
		}
	}
	pf, err := readPidFile(filepath.Join(c.dir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgcluster: stop orphan: %w", err)
	}
	if c.isPostmasterFor(pf.pid) {
		if err := c.pgctlStop(ctx); err != nil {
			return fmt.Errorf("pgcluster: stop orphan: %w", err)
		}
	}
	if isOurSocketDir(pf.sockDir) {
		_ = os.RemoveAll(pf.sockDir)
	}
	return nil
}

// CreateDatabase creates database name, copied from template ("" means
// Postgres' default, template1). Postgres refuses to copy a template while
// another session is connected to it (SQLSTATE 55006, "source database is
// being accessed by other users", after waiting 5 seconds for such sessions
// to end); CreateDatabase retries that error until 30 seconds have passed
// or ctx ends.
func (c *Cluster) CreateDatabase(ctx context.Context, name, template string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var inUse error // the last "being accessed by other users" error
	for {
		err := c.exec(ctx, sql)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == "55006":
			inUse = err
		case ctx.Err() != nil && inUse != nil:
			return fmt.Errorf("pgcluster: create database %s: %w (%w)", name, ctx.Err(), inUse)
		default:
			return fmt.Errorf("pgcluster: create database %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: create database %s: %w", name, inUse)
		case <-tick.C:
		}
	}
}

// DropDatabase drops database name if it exists, terminating the sessions
// still connected to it (DROP DATABASE ... WITH (FORCE)).
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgcluster: drop database %s: %w", name, err)
	}
	return nil
}

// exec runs one statement in the postgres database on a fresh connection
// (CREATE and DROP DATABASE cannot run in a transaction block, and a
// connection costs a few milliseconds here).
func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.adminDSN)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, sql)
	return err
}

// command returns a command running a Postgres binary, as the postgres
// user when we are root.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{filepath.Join(c.binDir, name)}, args...)
	if c.runas != nil {
		argv = append([]string{c.runas.runuser, "-u", "postgres", "--"}, argv...)
	}
	argv = append(slices.Clone(c.prefix), argv...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// Our working directory may be one the postgres user cannot enter
	// (/root), which initdb and postgres complain about.
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pidFile is what pgcluster needs from postmaster.pid, whose lines are:
// pid, data directory, start time, port, first socket directory, first
// listen address, shared memory key, status.
type pidFile struct {
	pid     int
	port    int
	sockDir string
	listen  string
}

func readPidFile(path string) (pidFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidFile{}, err
	}
	lines := strings.Split(string(b), "\n")
	var pf pidFile
	// A file cut short by a crash parses to zero values, which callers
	// treat as stale.
	if len(lines) > 0 {
		pf.pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	}
	if len(lines) > 3 {
		pf.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if len(lines) > 4 {
		pf.sockDir = strings.TrimSpace(lines[4])
	}
	if len(lines) > 5 {
		pf.listen = strings.TrimSpace(lines[5])
	}
	return pf, nil
}

// removeSocketLock removes the socket lock file a dead postmaster left
// (after a SIGKILL), when it names that same postmaster. Postgres removes
// such a file itself only once the pid in it is gone, and a killed
// postmaster stays a zombie until init reaps it, which can take seconds.
func removeSocketLock(pf pidFile) {
	if pf.sockDir == "" || pf.port == 0 || pf.pid <= 0 {
		return
	}
	path := filepath.Join(pf.sockDir, ".s.PGSQL."+strconv.Itoa(pf.port)+".lock")
	lock, err := readPidFile(path)
	if err == nil && lock.pid == pf.pid {
		_ = os.Remove(path)
	}
}

func isOurSocketDir(dir string) bool {
	return filepath.Dir(dir) == "/tmp" && strings.HasPrefix(filepath.Base(dir), sockPrefix)
}

// shellQuote quotes s for /bin/sh: pg_ctl passes -o through a shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return path + ":\n" + strings.Join(lines, "\n")
}
