package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/garrison-chat/garrison/internal/buildinfo"
	"github.com/garrison-chat/garrison/internal/logging"
	"github.com/garrison-chat/garrison/server/internal/allinone"
	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/daemon"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

const usage = `usage:
  garrison [--config FILE]                 run the server
  garrison migrate [up|status] [--config FILE]
                                           apply or list database migrations
  garrison allinone [--dir DIR] [--config FILE]
                                           run with a throwaway local Postgres (make run)
  garrison version [--json]                print the version

Config lookup: --config, then MM_CONFIG, then ./config/config.json, then
/etc/garrison/config.json; none found means defaults. MM_<SECTION>_<FIELD>
variables override the file.
`

// run is the whole program; main only supplies the process's context,
// arguments, environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "", "server":
		return serve(ctx, args, getenv, stderr)
	case "migrate":
		return migrateCmd(ctx, args, getenv, stdout, stderr)
	case "allinone":
		return allinoneCmd(ctx, args, getenv, stdout, stderr)
	case "version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		fs.SetOutput(stderr)
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(buildinfo.Read())
		}
		fmt.Fprintln(stdout, "garrison", buildinfo.Read().String(), "(Mattermost API", daemon.MattermostVersion+")")
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// loadConfig finds and loads the configuration and builds the logger it
// describes.
func loadConfig(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) (*config.Config, *slog.Logger, func() error, error) {
	path := fs.String("config", "", "path to config.json")
	if err := fs.Parse(args); err != nil {
		return nil, nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	boot := slog.New(slog.NewJSONHandler(stderr, nil))
	p, err := config.Lookup(*path, getenv, func(name string) error { _, err := os.Stat(name); return err })
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := config.Load(p, getenv, boot)
	if err != nil {
		return nil, nil, nil, err
	}
	ls := cfg.LogSettings
	logger, closeLog, err := logging.New(logging.Options{
		Console: ls.EnableConsole, ConsoleLevel: ls.ConsoleLevel, ConsoleJSON: ls.ConsoleJson,
		File: ls.EnableFile, FileLevel: ls.FileLevel, FileJSON: ls.FileJson, FilePath: ls.FileLocation, Stderr: stderr,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if p != "" {
		logger.Info("configuration loaded", "path", p)
	}
	return cfg, logger, closeLog, nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("garrison", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, logger, closeLog, err := loadConfig(fs, args, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	d := daemon.New(cfg, logger)
	if err := d.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case serveErr = <-d.Serving():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return errors.Join(serveErr, d.Stop(sctx))
}

func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := "up"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	if sub != "up" && sub != "status" {
		return fmt.Errorf("migrate: unknown subcommand %q (want up or status)", sub)
	}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, logger, closeLog, err := loadConfig(fs, args, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	store, err := daemon.OpenStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := postgres.NewMigrator(store.Pool(), logger)
	if err != nil {
		return err
	}
	defer m.Close()
	if sub == "up" {
		if err := m.Up(ctx, buildinfo.Version()); err != nil {
			return err
		}
	}
	st, cur, err := m.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d (this binary carries up to %d)\n", cur, m.Latest())
	for _, s := range st {
		state := "pending"
		if s.Applied {
			state = "applied"
		}
		fmt.Fprintf(stdout, "%5d  %-8s %s\n", s.Version, state, s.Name)
	}
	return nil
}

func allinoneCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("allinone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".run", "directory for the database, files and credentials")
	path := fs.String("config", "", "optional config.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if lvl, err := logging.ParseLevel(getenv("MM_LOGSETTINGS_CONSOLELEVEL")); err == nil && getenv("MM_LOGSETTINGS_CONSOLELEVEL") != "" {
		logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	}
	return allinone.Run(ctx, allinone.Options{Dir: *dir, ConfigPath: *path, Getenv: getenv, Stdout: stdout, Logger: logger})
}
