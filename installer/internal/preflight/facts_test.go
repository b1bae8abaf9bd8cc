package preflight

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// factsFrom parses canned script output (the version line is added).
func factsFrom(t *testing.T, lines ...string) *facts {
	t.Helper()
	f, err := parseFacts([]byte("version=" + scriptVersion + "\n" + strings.Join(lines, "\n") + "\n"))
	require.NoError(t, err)
	return f
}

func TestParseFacts(t *testing.T) {
	t.Parallel()
	f := factsFrom(t,
		"os_id=debian", "os_version_id=12", "os_pretty=Debian GNU/Linux 12 (bookworm)",
		"arch=amd64",
		"installed=install ok installed",
		"nproc=4",
		"mem_kb=2048000",
		"fs=root 2049 4096 1000 500",
		"fs=varlib 2050 4096 2000 1500",
		"drive=0 dir 2051 4096 100 50 1",
		"drive=2 missing 2049 /srv",
		"drive=1 notdir",
		"resolve=app2 10.0.0.12 10.0.0.12 ::ffff:10.0.0.12 fd00::12 ",
		"resolve=app3 ",
		"port_range=32768\t60999",
		"port_reserved=8065,9000-9001",
		"ports_source=ss",
		`ss=tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=12,fd=6),("nginx",pid=13,fd=6))`,
		`ss=udp UNCONN 0 0 *:8074 *:*`,
		"a stray line from a tool",
		"fsync=250000000 50",
		"time=1700000001.000000001",
	)
	require.Equal(t, "debian", f.OSID)
	require.Equal(t, "12", f.OSVersion)
	require.Equal(t, "Debian GNU/Linux 12 (bookworm)", f.OSPretty)
	require.Equal(t, "amd64", f.Arch)
	require.True(t, f.Installed)
	require.Equal(t, 4, f.CPUs)
	require.Equal(t, int64(2048000*1024), f.MemBytes)
	require.Equal(t, &fsInfo{Dev: 2049, Total: 4096 * 1000, Avail: 4096 * 500}, f.Root)
	require.Equal(t, &fsInfo{Dev: 2050, Total: 4096 * 2000, Avail: 4096 * 1500}, f.VarLib)
	require.Len(t, f.Drives, 3)
	require.Equal(t, &drive{State: "dir", FS: fsInfo{Dev: 2051, Total: 409600, Avail: 204800}, Writable: true}, f.Drives[0])
	require.Equal(t, &drive{State: "notdir"}, f.Drives[1])
	require.Equal(t, &drive{State: "missing", FS: fsInfo{Dev: 2049}, Parent: "/srv"}, f.Drives[2])
	require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("fd00::12")}, f.Resolved["app2"])
	require.Contains(t, f.Resolved, "app3")
	require.Empty(t, f.Resolved["app3"])
	require.Equal(t, [2]int{32768, 60999}, f.PortRange)
	require.Equal(t, [][2]int{{8065, 8065}, {9000, 9001}}, f.Reserved)
	require.Equal(t, "ss", f.PortsSource)
	require.Equal(t, []listener{
		{Proto: "tcp", Addr: "0.0.0.0", Port: 80, Owners: []owner{{"nginx", 12}, {"nginx", 13}}},
		{Proto: "udp", Addr: "*", Port: 8074},
	}, f.Listeners)
	require.Equal(t, 250*time.Millisecond, f.FsyncTotal)
	require.Equal(t, 50, f.FsyncCount)
	require.Equal(t, time.Unix(1700000001, 1), f.Time)
	require.Empty(t, f.Errs)
}

func TestParseFactsErrors(t *testing.T) {
	t.Parallel()
	f := factsFrom(t,
		"err=os /etc/os-release is missing",
		"err=fsync dd is missing",
		"nproc=lots",
		"mem_kb=",
		"fs=root 1 2",
		"drive=0 sideways",
		"drive=x dir",
		"resolve=app2 not-an-ip",
		"port_range=",
		"ss=garbage",
		"owner=123",
		"fsync=-1 50",
		"time=yesterday",
		"fsync_timeout=0 50",
	)
	require.Equal(t, "/etc/os-release is missing", f.errFor("os"))
	require.True(t, strings.HasPrefix(f.errFor("fsync"), "dd is missing; "), f.errFor("fsync"))
	require.Contains(t, f.errFor("fsync"), "bad timing")
	require.Contains(t, f.errFor("fsync"), "bad timeout")
	require.Contains(t, f.errFor("cpu"), `nproc printed "lots"`)
	require.Contains(t, f.errFor("memory"), "MemTotal")
	require.Contains(t, f.errFor("disk"), "bad filesystem line")
	require.Contains(t, f.errFor("drives"), `"0 sideways"`)
	require.Contains(t, f.errFor("drives"), `"x dir"`)
	require.Contains(t, f.errFor("names"), "not-an-ip")
	require.Contains(t, f.errFor("ports"), "ip_local_port_range")
	require.Contains(t, f.errFor("ports"), "bad ss line")
	require.Contains(t, f.errFor("ports"), "bad owner line")
	require.Contains(t, f.errFor("clock"), "yesterday")
	require.Zero(t, f.CPUs)
	require.Zero(t, f.MemBytes)
	require.Nil(t, f.Root)
	require.Zero(t, f.FsyncCount)
	require.True(t, f.Time.IsZero())
}

func TestParseFactsRefusesOtherOutput(t *testing.T) {
	t.Parallel()
	for _, out := range []string{"", "sudo: a password is required\n", "version=0\nos_id=debian\n"} {
		_, err := parseFacts([]byte(out))
		require.ErrorIs(t, err, errNoFacts, "%q", out)
	}
}

func TestParseProcSockets(t *testing.T) {
	t.Parallel()
	f := factsFrom(t,
		"ports_source=proc",
		"sock=tcp 0100007F:1F91 4242",
		"sock=tcp 00000000000000000000000000000000:01BB 4343",
		"sock=udp 0000000000000000FFFF00000B00000A:1F8A 4444",
		"owner=4242 77 garrison",
		"owner=4242 77 garrison",
		"owner=4343 12 nginx",
		"owner=4343 13 nginx",
		"owner=9999 1 unrelated",
	)
	require.Equal(t, []listener{
		{Proto: "tcp", Addr: "127.0.0.1", Port: 8081, Owners: []owner{{"garrison", 77}}, inode: "4242"},
		{Proto: "tcp", Addr: "::", Port: 443, Owners: []owner{{"nginx", 12}, {"nginx", 13}}, inode: "4343"},
		{Proto: "udp", Addr: "10.0.0.11", Port: 8074, inode: "4444"},
	}, f.Listeners)
}

func TestParseSS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line   string
		want   listener
		errMsg string
	}{
		{`tcp LISTEN 0 4096 [::]:443 [::]:* users:(("nginx",pid=5,fd=7))`,
			listener{Proto: "tcp", Addr: "::", Port: 443, Owners: []owner{{"nginx", 5}}}, ""},
		{`udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=300,fd=13))`,
			listener{Proto: "udp", Addr: "127.0.0.53", Port: 53, Owners: []owner{{"systemd-resolve", 300}}}, ""},
		{`tcp LISTEN 0 128 0.0.0.0:2024 0.0.0.0:*`, listener{Proto: "tcp", Addr: "0.0.0.0", Port: 2024}, ""},
		{`tcp LISTEN 0 128 [::ffff:10.0.0.1]:8065 *:* users:(("odd \"name\"",pid=9,fd=3))`,
			listener{Proto: "tcp", Addr: "::ffff:10.0.0.1", Port: 8065, Owners: []owner{{`odd \"name\"`, 9}}}, ""},
		{`tcp LISTEN 0 128 nocolon *:*`, listener{}, "no port"},
		{`tcp LISTEN 0 128 1.2.3.4:http *:*`, listener{}, "bad port"},
		{`tcp LISTEN`, listener{}, "bad ss line"},
	}
	for _, tt := range tests {
		got, err := parseSS(tt.line)
		if tt.errMsg != "" {
			require.ErrorContains(t, err, tt.errMsg, tt.line)
			continue
		}
		require.NoError(t, err, tt.line)
		require.Equal(t, tt.want, got, tt.line)
	}
}

func TestParseEpoch(t *testing.T) {
	t.Parallel()
	got, err := parseEpoch("1700000000.000000001")
	require.NoError(t, err)
	require.Equal(t, time.Unix(1700000000, 1), got)
	for _, bad := range []string{"", "1700000000", "1700000000.1", "x.000000000", "1.-00000001", "1700000000.%N"} {
		_, err := parseEpoch(bad)
		require.Error(t, err, bad)
	}
}

func TestParseRanges(t *testing.T) {
	t.Parallel()
	got, err := parseRanges(" 8065, 9000-9001 ,")
	require.NoError(t, err)
	require.Equal(t, [][2]int{{8065, 8065}, {9000, 9001}}, got)
	got, err = parseRanges("")
	require.NoError(t, err)
	require.Empty(t, got)
	for _, bad := range []string{"a", "9-1", "1-x"} {
		_, err := parseRanges(bad)
		require.Error(t, err, bad)
	}
}

// FuzzParseFacts feeds the parser and the checks what a broken or hostile
// node could print: nothing may panic, and every check still ends in one
// of the three statuses.
func FuzzParseFacts(f *testing.F) {
	f.Add("version=1\nnproc=2\nfs=root 1 4096 10 5\ndrive=0 dir 2 4096 10 5 1\n")
	f.Add("version=1\nports_source=proc\nsock=tcp 0100007F:1F91 42\nowner=42 7 garrison\nfsync=1000 50\ntime=1.000000000\n")
	f.Add("version=1\nss=tcp LISTEN 0 1 [::]:80 [::]:* users:((\"nginx\",pid=1,fd=2))\nresolve=app2 10.0.0.12\ndrive=1023 missing 5 /\n")
	f.Add("version=1\nfsync_timeout=60 50\nport_range=1 65535\nport_reserved=1-2,x\n")
	f.Fuzz(func(t *testing.T, out string) {
		facts, err := parseFacts([]byte(out))
		if err != nil {
			return
		}
		inv, err := inventory.Parse([]byte(haYAML))
		require.NoError(t, err)
		offsets := map[string]time.Duration{"app2": time.Second}
		for _, c := range checkNode(inv, inv.Nodes[0], gathered{connected: true, facts: facts, clock: !facts.Time.IsZero()}, offsets, Options{}) {
			require.Contains(t, []string{Pass, Warn, Fail}, c.Status, "%+v", c)
		}
	})
}
