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
