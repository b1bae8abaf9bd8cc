// Package pgtest is the integration-test harness for code that talks to
// Postgres: one throwaway cluster per test process, and a fresh database
// per test cloned from a template that the package's migrations have
// already been applied to.
//
// A package using it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }
//
// and each test asks for its own database:
//
//	func TestCreatePost(t *testing.T) {
//		t.Parallel()
//		pool := pgtest.NewPool(t)
//		...
//	}
//
// When Postgres is not installed, tests calling New are skipped, except
// under CI=true where they fail: a CI image without Postgres is broken.
// The harness prints nothing when everything works.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/garrison-chat/garrison/internal/pgcluster"
)

// templateDB is the migrated database every test database is cloned from.
const templateDB = "template_garrison"

// dirPrefix names the temporary directories of the harness under /tmp.
const dirPrefix = "garrison-pgtest-"

// ownerFile, in a harness directory, holds the pid of the test process
// that owns it, so that a later run can clean up after a killed one.
const ownerFile = "owner.pid"

// harness is the cluster of this test process. It is package state
// because testing.M offers no other way to hand TestMain's cluster to the
// tests; Main sets it before m.Run and clears it after.
var harness struct {
	mu      sync.Mutex // guards the fields below; held while creating a database
	cluster *pgcluster.Cluster
	err     error // why there is no cluster (Main not called, or Postgres missing)
	seq     int
}

// Main runs the package's tests against a throwaway Postgres cluster and
// exits with their result. migrate, which may be nil, brings the schema of
// the database at dsn up to date; every database New returns is a copy of
// that migrated database.
//
// If the Postgres binaries are missing, Main fails under CI=true; otherwise
// it prints one note and runs the tests, and those calling New skip. Any
// other failure to set the cluster up fails the run.
func Main(m *testing.M, migrate func(ctx context.Context, dsn string) error) {
	os.Exit(run(m, migrate))
}

func run(m *testing.M, migrate func(ctx context.Context, dsn string) error) int {
	ctx := context.Background()
	dir, cluster, err := setUp(ctx, migrate)
	if err != nil {
		if !errors.Is(err, pgcluster.ErrNotFound) || inCI() {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "pgtest: %v\npgtest: tests that need Postgres will be skipped\n", err)
		setHarness(nil, err)
		return m.Run()
	}
	setHarness(cluster, nil)
	code := m.Run()
	setHarness(nil, errors.New("pgtest: the cluster is stopped (New called after the tests ended?)"))

	if err := cluster.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return max(code, 1)
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return max(code, 1)
	}
	return code
}

func setHarness(c *pgcluster.Cluster, err error) {
	harness.mu.Lock()
	defer harness.mu.Unlock()
	harness.cluster, harness.err = c, err
}

// setUp starts the cluster in a new directory under /tmp and creates the
// migrated template database. On error it leaves nothing behind.
func setUp(ctx context.Context, migrate func(ctx context.Context, dsn string) error) (dir string, c *pgcluster.Cluster, err error) {
	binDir, err := pgcluster.Find("")
	if err != nil {
		return "", nil, err
	}
	sweep(ctx, binDir)

	// Not t.TempDir nor os.TempDir: the postgres user must be able to reach
	// the directory when we are root, and its path must be short enough to
	// hold the unix socket.
	dir, err = os.MkdirTemp("/tmp", dirPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("create cluster directory: %w", err)
	}
	defer func() {
		if err != nil {
			if c != nil {
				_ = c.Stop(ctx)
			}
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", nil, err
	}

	c, err = pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "data"), BinDir: binDir})
	if err != nil {
		return "", nil, err
	}
	if err := c.CreateDatabase(ctx, templateDB, ""); err != nil {
		return "", nil, err
	}
	if migrate != nil {
		if err := migrate(ctx, c.DSN(templateDB)); err != nil {
			return "", nil, fmt.Errorf("migrate %s: %w", templateDB, err)
		}
	}
	// No one connects to the template from now on, so that copying it
	// never waits for a session (autovacuum skips it too); sessions that
	// migrate left open (a pool not closed) are ended.
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+templateDB+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", nil, fmt.Errorf("mark %s as a template: %w", templateDB, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", templateDB); err != nil {
		return "", nil, fmt.Errorf("end sessions on %s: %w", templateDB, err)
	}
	return dir, c, nil
}

// sweep removes the harness directories, and stops the clusters, of test
// processes that died without cleaning up (a test binary killed by
// -timeout or a signal exits without running the end of Main).
func sweep(ctx context.Context, binDir string) {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if err := pgcluster.StopOrphan(ctx, binDir, filepath.Join(dir, "data")); err != nil {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// New creates a database for the test, a copy of the migrated template,
// and returns its DSN. The database is dropped when the test ends. Without
// a cluster (Postgres not installed) New skips the test, or fails it under
// CI=true.
func New(t testing.TB) string {
	t.Helper()
	c, name, err := create(t.Context(), t.Name())
	if err != nil {
		if errors.Is(err, pgcluster.ErrNotFound) && !inCI() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c.DSN(name)
}

// create makes a new database from the template. Postgres cannot copy one
// template for two sessions at once ("source database is being accessed
// by other users"), so creates are serialised here; CreateDatabase retries
// what remains (a session still ending).
func create(ctx context.Context, testName string) (*pgcluster.Cluster, string, error) {
	harness.mu.Lock()
	defer harness.mu.Unlock()
	if harness.cluster == nil {
		if harness.err == nil {
			return nil, "", errors.New("pgtest: no cluster: call pgtest.Main from TestMain")
		}
		return nil, "", harness.err
	}
	harness.seq++
	name := dbName(harness.seq, testName)
	if err := harness.cluster.CreateDatabase(ctx, name, templateDB); err != nil {
		return nil, "", fmt.Errorf("pgtest: %w", err)
	}
	return harness.cluster, name, nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// dbName returns a database name unique in this process that also shows
// which test it belongs to, within Postgres' 63-byte limit on names.
func dbName(seq int, testName string) string {
	name := fmt.Sprintf("t%d_%s", seq, unsafeChars.ReplaceAllString(strings.ToLower(testName), "_"))
	return strings.TrimRight(name[:min(len(name), 63)], "_")
}

// NewPool returns a pool connected to a new database from New, closed when
// the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := New(t)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	// Registered after New's cleanup, so it runs before the drop.
	t.Cleanup(pool.Close)
	return pool
}

// AllowConnections opens or closes the database of dsn (one New made) to
// new sessions; closing also ends the open ones, so to the code under test
// the database is gone until it is opened again (at the latest when the
// test ends).
func AllowConnections(t testing.TB, dsn string, allow bool) {
	t.Helper()
	ctx := context.Background()
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := cc.Database
	cc.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" ALLOW_CONNECTIONS "+strconv.FormatBool(allow)); err != nil {
		t.Fatal(err)
	}
	if allow {
		return
	}
	t.Cleanup(func() { AllowConnections(t, dsn, true) })
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
		t.Fatal(err)
	}
}
