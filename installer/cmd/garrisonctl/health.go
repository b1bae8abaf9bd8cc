package main

import (
	"encoding/json"
	"flag"
	"fmt"

	"github.com/garrison-chat/garrison/installer/internal/agent"
	"github.com/garrison-chat/garrison/installer/internal/install"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/sitekey"
)

const healthUsage = `Usage: garrisonctl health INVENTORY [flags]

Asks the agent on every node (port 9100, mutual TLS with the site CA) for the
health of its services and prints one table of node x service, green, yellow
or red with the reason.

Exit status: 0 all green; 1 something is red or an agent did not answer;
3 nothing is red but something is yellow (degraded, still serving); 2 a bad
command line.

Flags:
`

// exitDegraded is health's status for yellow.
const exitDegraded = 3

func (e *env) health(args []string) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "garrisonctl's state `DIR` (default $"+stateDirEnv+", else "+sitekey.DefaultStateDir+")")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	pos, code, ok := e.parseFlags(fs, args, healthUsage)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError("health", fmt.Sprintf("want one INVENTORY, have %d arguments", len(pos)), healthUsage)
	}
	inv, err := inventory.Load(pos[0])
	if err != nil {
		return e.fail("health", err)
	}
	hs, err := install.CheckHealth(e.ctx, inv, e.stateDir(*stateDir), install.HealthOptions{})
	if err != nil {
		return e.fail("health", err)
	}
	if *asJSON {
		b, err := json.MarshalIndent(hs, "", "  ")
		if err != nil {
			return e.fail("health", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else if err := install.WriteHealthTable(e.stdout, hs); err != nil {
		return e.fail("health", err)
	}
	switch install.Worst(hs) {
	case agent.Green:
		return exitOK
	case agent.Yellow:
		return exitDegraded
	}
	return exitFail
}
