package pushservice

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLimitersCapped: keys a sender makes up cannot grow the map past its
// cap; buckets that refilled make room again.
func TestLimitersCapped(t *testing.T) {
	t.Parallel()
	l := newLimiters(1, 1)
	l.max = 2
	now := time.Unix(1_700_000_000, 0)
	for _, k := range []string{"a", "b"} {
		undo, wait := l.reserve(k, now)
		require.NotNil(t, undo, k)
		require.Zero(t, wait, k)
	}
	undo, wait := l.reserve("c", now)
	require.Nil(t, undo, "the map is full of live buckets")
	require.Equal(t, fullWait, wait)
	require.Len(t, l.buckets, 2)

	// A second later "a" and "b" have refilled: "c" takes a pruned slot.
	undo, wait = l.reserve("c", now.Add(time.Second))
	require.NotNil(t, undo)
	require.Zero(t, wait)
	require.Len(t, l.buckets, 1)
}
