package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/garrison-chat/garrison/installer/internal/install"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/preflight"
	"github.com/garrison-chat/garrison/installer/internal/remote"
	"github.com/garrison-chat/garrison/installer/internal/sitekey"
)

const preflightUsage = `Usage: garrisonctl preflight INVENTORY [flags]

Connects to every node of the inventory over SSH and checks, before anything
changes, that each can take its roles: Debian 12 on amd64; CPUs, memory and
free disk for its roles; its MinIO drives; that the ports its services need
are free (or held by those services, on a node where Garrison is installed);
that the other nodes' names resolve to their addresses; clock skew; and fsync
latency on /var/lib. Host keys are pinned on first contact in the state
directory and checked on every later run.

Prints one row per node and check (pass, warn or fail, with the reason) and
exits 1 if any check failed. It writes nothing on the nodes but a temporary
file to time fsync.
`

func (e *env) preflight(args []string) int {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "garrisonctl's state `DIR` (default $"+stateDirEnv+", else "+sitekey.DefaultStateDir+")")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, code, ok := e.parseFlags(fs, args, preflightUsage)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError("preflight", fmt.Sprintf("want one INVENTORY, have %d arguments", len(pos)), preflightUsage)
	}
	inv, err := inventory.Load(pos[0])
	if err != nil {
		return e.fail("preflight", err)
	}
	siteDir := install.SiteDir(e.stateDir(*stateDir), inv.Site)
	if err := os.MkdirAll(siteDir, 0o700); err != nil {
		return e.fail("preflight", fmt.Errorf("state directory: %w", err))
	}
	keys, err := remote.OpenHostKeys(filepath.Join(siteDir, "known_hosts"))
	if err != nil {
		return e.fail("preflight", err)
	}

	clients, dialErrs := e.dialNodes(inv, keys)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	report := preflight.Run(e.ctx, inv, clients, preflight.Options{HostKeys: keys, DialErrors: dialErrs})
	if err := e.ctx.Err(); err != nil {
		return e.fail("preflight", err)
	}

	if *asJSON {
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return e.fail("preflight", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", data)
	} else if err := report.WriteTable(e.stdout); err != nil {
		return e.fail("preflight", err)
	}
	if report.Failed() {
		return exitFail
	}
	return exitOK
}

// dialNodes connects to every node at once. A node that cannot be reached
// is in the errors, not in the clients; first-contact notices go to stderr.
func (e *env) dialNodes(inv *inventory.Inventory, keys *remote.HostKeys) (map[string]*remote.Client, map[string]error) {
	var mu sync.Mutex // guards the maps and stderr
	clients := map[string]*remote.Client{}
	errs := map[string]error{}
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(e.stderr, "garrisonctl: "+format+"\n", args...)
	}
	var wg sync.WaitGroup
	for _, n := range inv.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := remote.Target{
				Name: n.Name, Address: n.Address, Port: n.SSH.Port, User: n.SSH.User,
				KeyFile: inv.Path(n.SSH.Key), HostKeyFingerprint: n.SSH.HostKey,
			}
			c, err := remote.Dial(e.ctx, t, remote.Options{HostKeys: keys, Logf: logf})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[n.Name] = err
				return
			}
			clients[n.Name] = c
		}()
	}
	wg.Wait()
	return clients, errs
}
