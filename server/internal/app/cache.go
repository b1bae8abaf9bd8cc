package app

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// syncFunc reports whether cached security state may be used, and the
// epoch it must have been cached in (cluster.Cluster.Sync).
type syncFunc func() (epoch uint64, ok bool)

// alwaysInSync is the sync of a server that is not clustered.
func alwaysInSync() (uint64, bool) { return 0, true }

// followEpoch compares the cluster's sync epoch with the one a cache was
// filled under (*epoch). On a change it records the new epoch and bumps
// *gen, so loads in flight are not stored, and reports changed: the
// caller empties the cache. ok reports whether the cache may be used.
func followEpoch(sync syncFunc, epoch, gen *uint64) (changed, ok bool) {
	e, ok := sync()
	if e != *epoch {
		*epoch = e
		*gen++
		changed = true
	}
	return changed, ok
}

// sessionCache keeps recently used sessions in memory so a request does
// not need a database round trip to authenticate. Entries live at most ttl;
// revocation removes them at once on this node (and, through the cluster,
// on the others). Every removal bumps a generation counter, and a session
// read from the database is stored only if no removal happened since the
// read began: otherwise a Logout racing with a load would leave the
// revoked session cached. While the node is out of sync with the cluster
// the cache is bypassed, and a new sync epoch empties it.
type sessionCache struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	sync syncFunc

	mu      sync.Mutex // guards the fields below
	gen     uint64
	epoch   uint64
	byToken map[[32]byte]sessionEntry
	byID    map[string][32]byte
}

type sessionEntry struct {
	s      *model.Session
	expiry time.Time
}

func newSessionCache(ttl time.Duration, max int, now func() time.Time, sync syncFunc) *sessionCache {
	if sync == nil {
		sync = alwaysInSync
	}
	return &sessionCache{ttl: ttl, max: max, now: now, sync: sync, byToken: map[[32]byte]sessionEntry{}, byID: map[string][32]byte{}}
}

// usableLocked reports whether the cache may be used now, emptying it
// first if the sync epoch changed.
func (c *sessionCache) usableLocked() bool {
	if c.ttl <= 0 {
		return false
	}
	changed, ok := followEpoch(c.sync, &c.epoch, &c.gen)
	if changed {
		clear(c.byToken)
		clear(c.byID)
	}
	return ok
}

func tokenKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func (c *sessionCache) get(token string) *model.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usableLocked() {
		return nil
	}
	return c.getLocked(tokenKey(token))
}

func (c *sessionCache) getLocked(k [32]byte) *model.Session {
	e, ok := c.byToken[k]
	if !ok {
		return nil
	}
	if c.now().After(e.expiry) {
		c.removeLocked(k, e.s.ID)
		return nil
	}
	return e.s
}

// lookup returns the cached session for token, or loads and caches it. A
// load that raced with a removal is returned to this caller (it was live
// when read) but not stored.
func (c *sessionCache) lookup(ctx context.Context, token string,
	load func(context.Context, string) (*model.Session, error)) (*model.Session, error) {
	k := tokenKey(token)
	c.mu.Lock()
	var s *model.Session
	if c.usableLocked() {
		s = c.getLocked(k)
	}
	gen := c.gen
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := load(ctx, token)
	if err != nil {
		return nil, err
	}
	c.put(token, s, gen)
	return s, nil
}

// generation returns the current generation, to pass to put after a read
// that must not be stored if a removal happens meanwhile.
func (c *sessionCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores s under token unless a removal happened since generation gen.
func (c *sessionCache) put(token string, s *model.Session, gen uint64) {
	k := tokenKey(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usableLocked() || c.gen != gen {
		return
	}
	if len(c.byToken) >= c.max {
		// Dropping everything is crude but bounded, and a reload costs
		// one query per active token.
		c.byToken = map[[32]byte]sessionEntry{}
		c.byID = map[string][32]byte{}
	}
	c.byToken[k] = sessionEntry{s: s, expiry: c.now().Add(c.ttl)}
	c.byID[s.ID] = k
}

// removeID drops the session with that id, and stops any load in flight
// from caching it.
func (c *sessionCache) removeID(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if k, ok := c.byID[id]; ok {
		c.removeLocked(k, id)
	}
}

// removeUser drops every cached session of a user, and stops any load in
// flight from caching one.
func (c *sessionCache) removeUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.byToken {
		if e.s.UserID == userID {
			c.removeLocked(k, e.s.ID)
		}
	}
}

func (c *sessionCache) removeLocked(k [32]byte, id string) {
	delete(c.byToken, k)
	delete(c.byID, id)
}

// memberCache holds the member ids of channels and teams, used to resolve
// WebSocket audiences and to check read access on hot paths. Every write
// that changes a membership invalidates the entry after it commits; a
// generation counter stops a load that raced with an invalidation from
// storing stale data.
//
// Like sessionCache it is bypassed while the node is out of sync with
// the cluster and emptied by a new sync epoch: a removed member must lose
// access on every node once the removal has returned.
type memberCache struct {
	store *postgres.Store
	sync  syncFunc

	mu       sync.Mutex // guards the fields below
	gen      uint64
	epoch    uint64
	channels map[string]map[string]struct{}
	teams    map[string]map[string]struct{}
}

const memberCacheMax = 20000

func newMemberCache(store *postgres.Store, sync syncFunc) *memberCache {
	if sync == nil {
		sync = alwaysInSync
	}
	return &memberCache{store: store, sync: sync, channels: map[string]map[string]struct{}{}, teams: map[string]map[string]struct{}{}}
}

// usableLocked is sessionCache.usableLocked for members.
func (c *memberCache) usableLocked() bool {
	changed, ok := followEpoch(c.sync, &c.epoch, &c.gen)
	if changed {
		clear(c.channels)
		clear(c.teams)
	}
	return ok
}

func (c *memberCache) lookup(ctx context.Context, m map[string]map[string]struct{}, id string,
	load func(context.Context, string) ([]string, error)) (map[string]struct{}, error) {
	c.mu.Lock()
	usable := c.usableLocked()
	set, ok := m[id]
	gen := c.gen
	c.mu.Unlock()
	if ok && usable {
		return set, nil
	}
	ids, err := load(ctx, id)
	if err != nil {
		return nil, err
	}
	set = make(map[string]struct{}, len(ids))
	for _, u := range ids {
		set[u] = struct{}{}
	}
	c.mu.Lock()
	if c.usableLocked() && c.gen == gen {
		if len(m) >= memberCacheMax {
			clear(m)
		}
		m[id] = set
	}
	c.mu.Unlock()
	return set, nil
}

// channel returns the member set of a channel. The set must not be
// modified.
func (c *memberCache) channel(ctx context.Context, channelID string) (map[string]struct{}, error) {
	return c.lookup(ctx, c.channels, channelID, c.store.ChannelMemberIDs)
}

// team returns the active member set of a team.
func (c *memberCache) team(ctx context.Context, teamID string) (map[string]struct{}, error) {
	return c.lookup(ctx, c.teams, teamID, c.store.TeamMemberIDs)
}

func (c *memberCache) invalidateChannel(channelID string) {
	c.mu.Lock()
	c.gen++
	delete(c.channels, channelID)
	c.mu.Unlock()
}

func (c *memberCache) invalidateTeam(teamID string) {
	c.mu.Lock()
	c.gen++
	delete(c.teams, teamID)
	c.mu.Unlock()
}

func setKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}
