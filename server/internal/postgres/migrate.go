package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationTable records applied migrations.
const migrationTable = "garrison_schema_version"

// ErrBinaryTooOld is returned when the schema no longer supports this
// binary's version (a contract migration from a newer release ran).
var ErrBinaryTooOld = errors.New("binary too old for database schema")

// MigrationStatus describes one migration.
type MigrationStatus struct {
	Version int64
	Name    string
	Applied bool
}

// Migrator applies the embedded migrations.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
	pool     *pgxpool.Pool
	logger   *slog.Logger
}

// NewMigrator prepares a migrator on pool. The migrations run under a
// Postgres advisory lock, so several nodes starting at once apply each
// migration exactly once.
func NewMigrator(pool *pgxpool.Pool, logger *slog.Logger) (*Migrator, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithTableName(migrationTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Migrator{db: db, provider: p, pool: pool, logger: logger}, nil
}

// Close releases the migrator's database handle.
func (m *Migrator) Close() error { return m.db.Close() }

// Latest returns the newest migration version this binary carries.
func (m *Migrator) Latest() int64 {
	src := m.provider.ListSources()
	if len(src) == 0 {
		return 0
	}
	return src[len(src)-1].Version
}

// Up checks that binaryVersion may run on the schema, then applies pending
// migrations. A database migrated by a newer binary (a rollback) is left as
// it is: the newer schema is compatible with this binary as long as its
// recorded minimum version allows it.
func (m *Migrator) Up(ctx context.Context, binaryVersion string) error {
	if err := m.CheckCompatible(ctx, binaryVersion); err != nil {
		return err
	}
	current, err := m.provider.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if current > m.Latest() {
		m.logger.Warn("database schema is newer than this binary; running without migrating",
			"schema_version", current, "binary_schema_version", m.Latest())
		return nil
	}
	res, err := m.provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: up: %w", err)
	}
	for _, r := range res {
		m.logger.Info("applied migration", "version", r.Source.Version, "duration_ms", r.Duration.Milliseconds())
	}
	return m.CheckCompatible(ctx, binaryVersion)
}

// CheckCompatible returns ErrBinaryTooOld when the schema records a minimum
// binary version newer than binaryVersion. An empty database passes.
func (m *Migrator) CheckCompatible(ctx context.Context, binaryVersion string) error {
	var min string
	err := m.pool.QueryRow(ctx, `SELECT value FROM systems WHERE name = 'min_binary_version'`).Scan(&min)
	if err != nil {
		if errors.Is(mapErr(err), ErrNotFound) || isUndefinedTable(err) {
			return nil
		}
		return fmt.Errorf("migrate: read min_binary_version: %w", err)
	}
	if CompareVersions(binaryVersion, min) < 0 {
		return fmt.Errorf("%w: this binary is %s, the schema needs %s or newer", ErrBinaryTooOld, binaryVersion, min)
	}
	return nil
}

// Status lists every migration this binary knows and whether it ran.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, int64, error) {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("migrate: status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{
			Version: s.Source.Version,
			Name:    s.Source.Path,
			Applied: s.State == goose.StateApplied,
		})
	}
	cur, err := m.provider.GetDBVersion(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("migrate: status: %w", err)
	}
	return out, cur, nil
}

func isUndefinedTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLSTATE 42P01")
}

// CompareVersions compares two dotted versions numerically (1.10.0 >
// 1.9.0). A pre-release or build suffix after '-' or '+' is ignored, and a
// development build ("dev" or empty) counts as newest.
func CompareVersions(a, b string) int {
	pa, oka := parseVersion(a)
	pb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return 1
	case !okb:
		return -1
	}
	for i := 0; i < 3; i++ {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// MigrateDSN applies every migration to the database at dsn (test
// templates and tools).
func MigrateDSN(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer pool.Close()
	m, err := NewMigrator(pool, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up(ctx, "dev")
}

// SchemaVersion is the version of the newest migration this binary
// carries: the schema it runs on once started (cluster status shows it).
func SchemaVersion() int64 {
	entries, _ := fs.ReadDir(migrationFS, "migrations") // embedded: cannot fail
	var latest int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(num, 10, 64); ok && err == nil && v > latest {
			latest = v
		}
	}
	return latest
}
