package hostmetrics

import (
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

func gather(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	c, err := NewCollector(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return byName
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return -1
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestHostMetrics(t *testing.T) {
	t.Parallel()
	mfs := gather(t)
	names := make([]string, 0, len(mfs))
	for n := range mfs {
		names = append(names, n)
	}
	slices.Sort(names)

	// anyPositive: at least one sample above zero; nonNegative: every
	// sample at or above zero, and at least one sample.
	anyPositive := func(t *testing.T, mf *dto.MetricFamily) {
		require.True(t, slices.ContainsFunc(mf.GetMetric(), func(m *dto.Metric) bool { return value(m) > 0 }),
			"%s: no sample above 0: %v", mf.GetName(), mf.GetMetric())
	}
	nonNegative := func(t *testing.T, mf *dto.MetricFamily) {
		require.NotEmpty(t, mf.GetMetric())
		for _, m := range mf.GetMetric() {
			require.GreaterOrEqual(t, value(m), 0.0, "%s %v", mf.GetName(), m)
		}
	}
	tests := []struct {
		family string
		check  func(*testing.T, *dto.MetricFamily)
	}{
		{"node_cpu_seconds_total", func(t *testing.T, mf *dto.MetricFamily) {
			require.Equal(t, dto.MetricType_COUNTER, mf.GetType())
			idle := 0.0
			for _, m := range mf.GetMetric() {
				if label(m, "mode") == "idle" {
					idle += value(m)
				}
			}
			require.Positive(t, idle, "idle CPU seconds")
		}},
		{"node_memory_MemTotal_bytes", func(t *testing.T, mf *dto.MetricFamily) {
			require.Len(t, mf.GetMetric(), 1)
			require.Greater(t, value(mf.GetMetric()[0]), float64(16<<20), "MemTotal")
		}},
		{"node_memory_MemAvailable_bytes", anyPositive},
		{"node_filesystem_size_bytes", func(t *testing.T, mf *dto.MetricFamily) {
			anyPositive(t, mf)
			for _, m := range mf.GetMetric() {
				require.NotEmpty(t, label(m, "mountpoint"))
			}
		}},
		{"node_load1", nonNegative},
		{"node_load5", nonNegative},
		{"node_load15", nonNegative},
		{"node_network_receive_bytes_total", func(t *testing.T, mf *dto.MetricFamily) {
			nonNegative(t, mf)
			require.True(t, slices.ContainsFunc(mf.GetMetric(), func(m *dto.Metric) bool { return label(m, "device") == "lo" }),
				"no lo device: %v", mf.GetMetric())
		}},
		{"node_network_transmit_bytes_total", nonNegative},
	}
	for _, tc := range tests {
		t.Run(tc.family, func(t *testing.T) {
			t.Parallel()
			mf := mfs[tc.family]
			require.NotNil(t, mf, "no %s among %v", tc.family, names)
			tc.check(t, mf)
		})
	}

	t.Run("node_disk_*", func(t *testing.T) {
		t.Parallel()
		var disk []string
		for _, n := range names {
			if strings.HasPrefix(n, "node_disk_") {
				disk = append(disk, n)
			}
		}
		require.Contains(t, disk, "node_disk_reads_completed_total", "families: %v", names)
		require.Contains(t, disk, "node_disk_written_bytes_total", "families: %v", names)
	})

	t.Run("exactly the six collectors, all succeeding", func(t *testing.T) {
		t.Parallel()
		mf := mfs["node_scrape_collector_success"]
		require.NotNil(t, mf)
		got := map[string]float64{}
		for _, m := range mf.GetMetric() {
			got[label(m, "collector")] = value(m)
		}
		want := map[string]float64{}
		for _, c := range collectors() {
			want[c] = 1
		}
		require.Equal(t, want, got)
		// Families of default collectors that must not run.
		for _, n := range []string{"node_uname_info", "node_time_seconds", "node_boot_time_seconds", "node_os_info"} {
			require.NotContains(t, names, n)
		}
	})
}

// TestFlags checks what the parse did to the collector package's own
// flags: the six collectors on, every other default collector off, and
// the defaults (paths) filled in.
func TestFlags(t *testing.T) {
	t.Parallel()
	_ = gather(t) // parses, once
	flags := map[string]string{}
	for _, m := range kingpin.CommandLine.Model().Flags {
		flags[m.Name] = m.Value.String()
	}
	for _, c := range collectors() {
		require.Equal(t, "true", flags["collector."+c], c)
	}
	for _, c := range []string{"uname", "time", "stat", "os", "systemd", "hwmon", "timex"} {
		if v, ok := flags["collector."+c]; ok {
			require.Equal(t, "false", v, c)
		}
	}
	require.Equal(t, "false", flags["collector.uname"])
	require.Equal(t, "/proc", flags["path.procfs"])
	require.Equal(t, "/sys", flags["path.sysfs"])
	require.Equal(t, "/", flags["path.rootfs"])
}

// TestOnlyAdapter keeps node_exporter behind this package: no other Go
// file in the repository imports it.
func TestOnlyAdapter(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	self, err := filepath.Abs(".")
	require.NoError(t, err)
	var offenders []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "vendor":
				return filepath.SkipDir
			}
			if path == self {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
		if err != nil {
			return nil // someone else's file mid-edit; not this test's business
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "github.com/prometheus/node_exporter" || strings.HasPrefix(p, "github.com/prometheus/node_exporter/") {
				rel, _ := filepath.Rel(root, path)
				offenders = append(offenders, rel)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, offenders, "only installer/internal/hostmetrics may import node_exporter")
}
