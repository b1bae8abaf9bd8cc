package testbed

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// These need no privileges and run in -short mode.

func TestHostsFile(t *testing.T) {
	t.Parallel()
	nodes := []*Node{
		{name: "admin", addr: netip.MustParseAddr("10.213.7.10")},
		{name: "app1", addr: netip.MustParseAddr("10.213.7.11")},
		{name: "app2", addr: netip.MustParseAddr("10.213.7.12")},
	}
	require.Equal(t, `# /etc/hosts of app1, written by the testbed (run gtabcde): every node of the run
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters

10.213.7.10	admin
10.213.7.11	app1
10.213.7.12	app2
`, string(hostsFile("gtabcde", "app1", nodes)))
}

func TestResourceShortfall(t *testing.T) {
	t.Parallel()
	const gib, mib = 1 << 30, 1 << 20
	needs := resourceNeeds{disk: DefaultMachineDisk, memory: DefaultMachineMemory}
	tests := []struct {
		name      string
		count     int
		disk, mem uint64
		want      []string // substrings; none means no error
		notWant   string
	}{
		{name: "enough for one", count: 1, disk: 2 * gib, mem: 1 * gib},
		{name: "enough for three", count: 3, disk: 4 * gib, mem: 3 * gib},
		{
			name: "disk short", count: 1, disk: 512 * mib, mem: 8 * gib,
			want:    []string{"disk: 512 MiB free under /tmp/x, a machine needs 1.2 GiB (Options.MachineDisk: 1.2 GiB each)"},
			notWant: "memory",
		},
		{
			name: "memory short for three", count: 3, disk: 100 * gib, mem: 1 * gib,
			want:    []string{"memory: 1.0 GiB available, 3 machines need 2.1 GiB (Options.MachineMemory: 700 MiB each)"},
			notWant: "disk",
		},
		{
			name: "both short", count: 2, disk: 2 * gib, mem: 600 * mib,
			want: []string{"disk: 2.0 GiB free under /tmp/x, 2 machines need 2.4 GiB", "; memory: 600 MiB available, 2 machines need 1.4 GiB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := resourceShortfall("/tmp/x", tt.count, needs, tt.disk, tt.mem)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrResources)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			if tt.notWant != "" {
				require.NotContains(t, err.Error(), tt.notWant)
			}
		})
	}
}

func TestMachineOptionsAreChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"negative count", Options{Machines: -1}, "Options.Machines -1 is negative"},
		// An impossible need fails before anything is created, naming it.
		{"too much memory", Options{Machines: 1, MachineMemory: 1 << 50}, "a machine needs 1048576.0 GiB (Options.MachineMemory"},
		{"too much disk", Options{Machines: 2, MachineDisk: 1 << 50}, "2 machines need 2097152.0 GiB (Options.MachineDisk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.o.StateDir = t.TempDir()
			tb, err := Create(t.Context(), tt.o)
			if err == nil {
				_ = tb.Close(t.Context())
			}
			require.Error(t, err)
			if errors.Is(err, ErrUnsupported) {
				return // not root: Create fails before it reads the options
			}
			require.ErrorContains(t, err, tt.want)
			entries, err := os.ReadDir(tt.o.StateDir)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing recorded, so nothing created")
		})
	}
}
