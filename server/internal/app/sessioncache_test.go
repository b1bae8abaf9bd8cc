package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func TestSessionCacheLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sess := func() *model.Session { return &model.Session{ID: "s1", UserID: "u1"} }

	t.Run("a load is cached", func(t *testing.T) {
		t.Parallel()
		c := newSessionCache(time.Minute, 10, time.Now, nil)
		loads := 0
		load := func(context.Context, string) (*model.Session, error) { loads++; return sess(), nil }
		for range 2 {
			s, err := c.lookup(ctx, "tok", load)
			require.NoError(t, err)
			require.Equal(t, "s1", s.ID)
		}
		require.Equal(t, 1, loads)
	})

	// A revocation landing between the database read and the put (the
	// load func plays the part of the read) must win: the session is
	// returned to the request that read it while it was live, but not
	// cached for later ones.
	races := map[string]func(c *sessionCache){
		"revoke one":  func(c *sessionCache) { c.removeID("s1") },
		"revoke user": func(c *sessionCache) { c.removeUser("u1") },
	}
	for name, revoke := range races {
		t.Run(name+" during load", func(t *testing.T) {
			t.Parallel()
			c := newSessionCache(time.Minute, 10, time.Now, nil)
			s, err := c.lookup(ctx, "tok", func(context.Context, string) (*model.Session, error) {
				revoke(c)
				return sess(), nil
			})
			require.NoError(t, err)
			require.Equal(t, "s1", s.ID)
			require.Nil(t, c.get("tok"), "a session revoked during its load must not be cached")
			// The next load, with no revocation racing, caches again.
			_, err = c.lookup(ctx, "tok", func(context.Context, string) (*model.Session, error) { return sess(), nil })
			require.NoError(t, err)
			require.NotNil(t, c.get("tok"))
		})
	}

	t.Run("a put after a revocation is dropped", func(t *testing.T) {
		t.Parallel()
		// The touch path: generation taken, then TouchSession, then put.
		c := newSessionCache(time.Minute, 10, time.Now, nil)
		gen := c.generation()
		c.removeID("s1")
		c.put("tok", sess(), gen)
		require.Nil(t, c.get("tok"))
		c.put("tok", sess(), c.generation())
		require.NotNil(t, c.get("tok"))
	})

	t.Run("removal drops a cached session", func(t *testing.T) {
		t.Parallel()
		c := newSessionCache(time.Minute, 10, time.Now, nil)
		c.put("tok", sess(), c.generation())
		c.removeID("s1")
		require.Nil(t, c.get("tok"))
	})

	t.Run("disabled cache always loads", func(t *testing.T) {
		t.Parallel()
		c := newSessionCache(0, 10, time.Now, nil)
		loads := 0
		for range 2 {
			_, err := c.lookup(ctx, "tok", func(context.Context, string) (*model.Session, error) { loads++; return sess(), nil })
			require.NoError(t, err)
		}
		require.Equal(t, 2, loads)
	})
}

// TestCachesFollowClusterSync: out of sync, the caches are bypassed (every
// lookup loads, nothing is stored); a new sync epoch empties them, also
// of what a load that spanned the change read.
func TestCachesFollowClusterSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var epoch uint64 = 1
	inSync := true
	sync := func() (uint64, bool) { return epoch, inSync }
	c := newSessionCache(time.Minute, 10, time.Now, sync)
	loads := 0
	load := func(context.Context, string) (*model.Session, error) {
		loads++
		return &model.Session{ID: "s1", UserID: "u1"}, nil
	}
	lookup := func() {
		_, err := c.lookup(ctx, "tok", load)
		require.NoError(t, err)
	}
	lookup()
	lookup()
	require.Equal(t, 1, loads, "in sync: cached")

	inSync = false
	lookup()
	lookup()
	require.Equal(t, 3, loads, "out of sync: every lookup reads the database")
	require.Nil(t, c.get("tok"))

	inSync, epoch = true, 2
	lookup()
	require.Equal(t, 4, loads, "a new epoch starts empty")
	lookup()
	require.Equal(t, 4, loads)

	// A load that began in epoch 2 and ended in epoch 3 is not kept.
	slow := func(context.Context, string) (*model.Session, error) {
		epoch = 3
		return &model.Session{ID: "s2", UserID: "u2"}, nil
	}
	_, err := c.lookup(ctx, "other", slow)
	require.NoError(t, err)
	require.Nil(t, c.get("other"))

	// The member cache follows the same rule.
	m := newMemberCache(nil, sync)
	ids := []string{"u1"}
	calls := 0
	loadMembers := func(context.Context, string) ([]string, error) { calls++; return ids, nil }
	for range 2 {
		_, err := m.lookup(ctx, m.channels, "ch", loadMembers)
		require.NoError(t, err)
	}
	require.Equal(t, 1, calls)
	epoch = 4
	_, err = m.lookup(ctx, m.channels, "ch", loadMembers)
	require.NoError(t, err)
	require.Equal(t, 2, calls, "a new epoch reloads members")
	inSync = false
	_, err = m.lookup(ctx, m.channels, "ch", loadMembers)
	require.NoError(t, err)
	require.Equal(t, 3, calls, "out of sync reloads members")
}
