// Package schema holds the push proxy's Postgres migrations: registrations
// and the outbox of the Mattermost front, and the subscriptions and mailbox
// of the on-premise push service. They are embedded SQL files applied by
// goose under a Postgres advisory lock, so several proxies may start at
// once against one database.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// versionTable records applied migrations. It is distinct from the chat
// server's table, so the proxy may share a database with it if a site
// wants that.
const versionTable = "pushproxy_schema_version"

// Migrate applies every pending migration to the database behind pool.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithTableName(versionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("schema: up: %w", err)
	}
	for _, r := range res {
		logger.Info("applied migration", "version", r.Source.Version, "duration_ms", r.Duration.Milliseconds())
	}
	return nil
}

// MigrateDSN applies every migration to the database at dsn; it is the
// migrate function test harnesses (pgtest.Main) take.
func MigrateDSN(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	defer pool.Close()
	return Migrate(ctx, pool, slog.New(slog.DiscardHandler))
}
