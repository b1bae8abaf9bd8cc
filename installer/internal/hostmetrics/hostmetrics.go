// Package hostmetrics is the one adapter around the Prometheus
// node_exporter collector package: the node agent's host metrics (CPU,
// memory, filesystems, disks, network devices, load). Nothing else in
// Garrison imports node_exporter, so its global flags and registrations
// stay behind this package's two functions.
//
// The collector package registers its settings as kingpin flags on
// kingpin.CommandLine and its collectors in init(); a flag's value (even
// its default, such as --path.procfs=/proc) is filled only when kingpin
// parses. This package copies those flags onto a kingpin application of
// its own and parses a fixed argument list on it, once per process, so
// that neither os.Args nor the environment can change what the agent
// collects, and no kingpin error path can exit the process.
package hostmetrics

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/node_exporter/collector"
)

// collectors are the node_exporter collectors the agent runs, and the only
// ones: what an admin needs to see a node's load and capacity. Others
// (systemd, hwmon, timex, ...) either need privileges the agent's unit
// does not grant or belong to other tools.
func collectors() []string {
	return []string{"cpu", "meminfo", "filesystem", "diskstats", "netdev", "loadavg"}
}

// disableDefaults is the flag node_exporter's main defines (not its
// collector package): every collector not named on the command line is off.
const disableDefaults = "collector.disable-defaults"

// args is the fixed command line parsed for the collector package: the
// defaults off, then exactly collectors() on. The paths (/proc, /sys, /)
// keep node_exporter's defaults.
func args() []string {
	argv := []string{"--" + disableDefaults}
	for _, c := range collectors() {
		argv = append(argv, "--collector."+c)
	}
	return argv
}

// The collector package's flags are process-wide, so their parse is too:
// once, with its outcome kept for every later NewCollector.
var (
	parseOnce sync.Once
	parseErr  error
)

// NewCollector returns a Prometheus collector for the host metrics of the
// cpu, meminfo, filesystem, diskstats, netdev and loadavg collectors (node_cpu_seconds_total, node_memory_*, node_filesystem_*,
// node_disk_*, node_network_*, node_load1/5/15, and node_scrape_collector_*
// for each). Collectors that fail during a scrape log to logger and report
// node_scrape_collector_success 0; the scrape goes on.
func NewCollector(logger *slog.Logger) (prometheus.Collector, error) {
	parseOnce.Do(func() { parseErr = parse(args()) })
	if parseErr != nil {
		return nil, fmt.Errorf("hostmetrics: %w", parseErr)
	}
	nc, err := collector.NewNodeCollector(logger, collectors()...)
	if err != nil {
		return nil, fmt.Errorf("hostmetrics: %w", err)
	}
	return nc, nil
}

// parse gives the collector package's flags their values by parsing argv
// on an application of our own that shares their Value objects.
func parse(argv []string) error {
	app := kingpin.New("garrison-hostmetrics", "node_exporter collector settings")
	app.Terminate(nil).ErrorWriter(io.Discard).UsageWriter(io.Discard)
	own := make(map[string]bool)
	for _, f := range app.Model().Flags {
		own[f.Name] = true // help and its hidden siblings
	}
	disable := app.Flag(disableDefaults, "Disable every collector not enabled explicitly.").Bool()

	enables := make(map[string]kingpin.Value) // collector name -> its enable flag
	forced := make(map[string]bool)           // collectors named on the command line
	for _, m := range kingpin.CommandLine.Model().Flags {
		if own[m.Name] || m.Name == disableDefaults {
			continue
		}
		// Defaults only, never Envar: the environment must not change what is collected.
		f := app.Flag(m.Name, m.Help).Default(m.Default...)
		f.SetValue(m.Value)
		if name, ok := enableFlag(m); ok {
			enables[name] = m.Value
			f.Action(func(*kingpin.ParseContext) error {
				forced[name] = true
				return nil
			})
		}
	}
	if _, err := app.Parse(argv); err != nil {
		return fmt.Errorf("collector flags %q: %w", strings.Join(argv, " "), err)
	}
	for _, c := range collectors() {
		if enables[c] == nil {
			return fmt.Errorf("node_exporter has no %q collector on this platform", c)
		}
	}
	if *disable {
		// What collector.DisableDefaultCollectors does, which cannot see
		// which flags this application parsed.
		var errs []error
		for name, v := range enables {
			if !forced[name] {
				errs = append(errs, v.Set("false"))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("disable default collectors: %w", err)
		}
	}
	return nil
}

// enableFlag reports whether m is a collector's on/off switch
// (--collector.<name>, registered by the collector package's
// registerCollector) and returns the collector's name.
func enableFlag(m *kingpin.FlagModel) (string, bool) {
	name, ok := strings.CutPrefix(m.Name, "collector.")
	if !ok || name == "" || strings.Contains(name, ".") || !strings.HasPrefix(m.Help, "Enable the "+name+" collector") {
		return "", false
	}
	b, ok := m.Value.(interface{ IsBoolFlag() bool })
	return name, ok && b.IsBoolFlag()
}
