package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTypingThrottle(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	th := newTypingThrottle(time.Second, 4)

	require.True(t, th.allow("u1", "c1", t0))
	require.False(t, th.allow("u1", "c1", t0.Add(999*time.Millisecond)), "a repeat within the interval")
	require.True(t, th.allow("u1", "c2", t0), "another channel")
	require.True(t, th.allow("u2", "c1", t0), "another user")
	// A dropped event does not restart the interval.
	require.True(t, th.allow("u1", "c1", t0.Add(time.Second)))
	require.False(t, th.allow("u1", "c1", t0.Add(1500*time.Millisecond)))

	// The map stays bounded: past max pairs, old entries go first.
	now := t0.Add(time.Hour)
	for i := range 100 {
		require.True(t, th.allow(fmt.Sprint("user", i), "c", now.Add(time.Duration(i)*time.Second)))
		require.LessOrEqual(t, len(th.last), 4)
	}
	// All recent: making room forgets them all, which lets at most one
	// extra event of each through.
	th = newTypingThrottle(time.Minute, 4)
	for i := range 100 {
		require.True(t, th.allow(fmt.Sprint("user", i), "c", now))
		require.LessOrEqual(t, len(th.last), 4)
	}
	require.False(t, th.allow("user99", "c", now), "the newest pair is still remembered")
}
