package main

import (
	"flag"
	"fmt"

	"github.com/garrison-chat/garrison/installer/internal/agent"
	"github.com/garrison-chat/garrison/internal/logging"
	"github.com/garrison-chat/garrison/internal/sdnotify"
)

const agentUsage = `Usage: garrisonctl agent [--config FILE]

Runs the node agent (garrison-agent.service): HTTPS on port 9100 with
GET /health (this node's services: green, yellow or red with reasons; 503
when something is red) and GET /metrics (host metrics and the checks, for
Prometheus). Clients with a certificate from the site CA may use every
endpoint; clients without one may only GET /health and /metrics, and only
from the configuration's monitoring_networks.

Under systemd (Type=notify) it sends READY=1 once it listens and pings the
watchdog while its own listener answers. It runs until SIGINT or SIGTERM.
Logs are JSON on stderr.

Exit status: 0 stopped cleanly; 1 bad configuration or the listener failed;
2 usage error.
`

func (e *env) agent(args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	configPath := fs.String("config", agent.DefaultConfigPath, "the agent's configuration `FILE` (JSON)")
	pos, code, ok := e.parseFlags(fs, args, agentUsage)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return e.usageError("agent", fmt.Sprintf("takes no arguments, have %d", len(pos)), agentUsage)
	}
	cfg, err := agent.LoadConfig(*configPath)
	if err != nil {
		return e.fail("agent", err)
	}
	logger, closeLog, err := logging.New(logging.Options{Console: true, ConsoleJSON: true, Stderr: e.stderr})
	if err != nil {
		return e.fail("agent", err)
	}
	defer closeLog()
	logger = logger.With("node", cfg.Node)
	notifier := sdnotify.New(logger.With("component", "systemd"))
	if err := agent.Run(e.ctx, cfg, logger, notifier); err != nil {
		return e.fail("agent", err)
	}
	return exitOK
}
