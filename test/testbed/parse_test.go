package testbed

import (
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// These need no privileges and run in -short mode.

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	out := `default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
blackhole 10.213.7.0/24
local 192.0.2.2 dev eth0 table local proto kernel scope host src 192.0.2.2
broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1
10.200.0.0/16 via 192.0.2.9 dev eth0 metric 5
`
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("10.213.7.0/24"),
		netip.MustParsePrefix("192.0.2.2/32"),
		netip.MustParsePrefix("127.255.255.255/32"),
		netip.MustParsePrefix("10.200.0.0/16"),
	}, parseRoutes(out))
	require.True(t, overlapsAny(netip.MustParsePrefix("10.200.5.0/24"), parseRoutes(out)), "a wider route covers the /24")
	require.False(t, overlapsAny(netip.MustParsePrefix("10.201.5.0/24"), parseRoutes(out)))
}

func TestParseAddrs(t *testing.T) {
	t.Parallel()
	out := `netns: gtabcde-app1
1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0    inet 10.222.3.10/24 scope global eth0\       valid_lft forever preferred_lft forever
`
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("10.222.3.0/24"),
	}, parseAddrs(out))
}

func TestPrefixes(t *testing.T) {
	t.Parallel()
	for range 100 {
		p := randomPrefix()
		require.True(t, validPrefix(p), p)
	}
	require.False(t, validPrefix("gt"))
	require.False(t, validPrefix("../etc"))
}

func TestProcStart(t *testing.T) {
	t.Parallel()
	a, err := procStart(os.Getpid())
	require.NoError(t, err)
	b, err := procStart(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.NotZero(t, a)
	require.False(t, exited(os.Getpid()))
	_, err = procStart(-1)
	require.Error(t, err)
}
