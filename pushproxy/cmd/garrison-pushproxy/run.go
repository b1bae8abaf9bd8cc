package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/internal/buildinfo"
	"github.com/garrison-chat/garrison/internal/logging"
	"github.com/garrison-chat/garrison/pushproxy/internal/config"
	"github.com/garrison-chat/garrison/pushproxy/internal/daemon"
)

const usage = `usage:
  garrison-pushproxy [--config FILE]   run the push proxy
  garrison-pushproxy version [--json]  print the version

Without --config, /etc/garrison/pushproxy.json is read if it exists;
GARRISON_PUSHPROXY_<KEY> variables override the file.
`

// stopTimeout bounds a graceful shutdown.
const stopTimeout = 30 * time.Second

// run is the whole program; main only supplies the process's context,
// arguments, environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fs := flag.NewFlagSet("version", flag.ContinueOnError)
			fs.SetOutput(stderr)
			asJSON := fs.Bool("json", false, "print JSON")
			if err := fs.Parse(args[1:]); err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(stdout).Encode(buildinfo.Read())
			}
			fmt.Fprintln(stdout, "garrison-pushproxy", buildinfo.Read().String())
			return nil
		case "help", "-h", "--help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	fs := flag.NewFlagSet("garrison-pushproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	path := fs.String("config", "", "path to pushproxy.json (default "+config.DefaultPath+" if it exists)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, warnings, err := config.Load(*path, *path != "", getenv, os.Hostname)
	if err != nil {
		return err
	}
	logger, closeLog, err := logging.New(logging.Options{
		Console: true, ConsoleLevel: cfg.LogLevel, ConsoleJSON: strings.EqualFold(cfg.LogFormat, "json"), Stderr: stderr,
	})
	if err != nil {
		return err
	}
	defer func() { _ = closeLog() }()
	for _, w := range warnings {
		logger.Warn("config: " + w)
	}
	if cfg.SenderSecret == "" {
		logger.Warn("SenderSecret is not set: any host that reaches ListenAddress can send pushes; set it in production")
	}
	info := buildinfo.Read()
	d, err := daemon.New(ctx, daemon.Options{Config: cfg, Logger: logger, Version: info.Version, Hash: shortHash(info.Revision)})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return errors.Join(err, d.Stop(stopCtx))
	}
	<-ctx.Done()
	logger.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func shortHash(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
