package postgres

// Reads from streaming replicas, under a lag bound and never hiding a
// user's own writes from them.
//
// # Lag
//
// pg_last_xact_replay_timestamp() on a replica says when the last
// transaction it replayed committed; on an idle primary that time grows
// old while the replica is fully caught up, so it cannot bound staleness.
// The monitor compares WAL positions instead. Every round (every quarter
// of ReplicaLagMax, at most 250 ms) it notes the local time t, then asks
// the primary for its WAL insert position P: every transaction that
// committed before t has its commit record before P. It then asks each
// replica for its replay position R. A replica with R >= P has replayed
// everything committed before t. Keeping the recent samples (t, P), the
// replica's fresh time is the newest t whose P is at most R: it has
// replayed every commit completed before that time, whatever happened
// since. Its lag is the age of its fresh time at the round.
//
// A replica serves a read at time now only if its fresh time is at least
// now - ReplicaLagMax. So the bound holds at the moment of the read, not
// only at the last probe: a replica that stops replaying, or stops
// answering (its fresh time is then cleared), leaves the rotation within
// the bound, and comes back when a probe finds it caught up again. With no
// replica in rotation, reads go to the primary.
//
// # Read-your-writes
//
// After a request of user u wrote, the API has every node note the write
// before it answers (app/readyourwrites.go): a node notes the local time m
// at which it learned of the write, which is after the commit. A replica
// serves u's reads only if its fresh time is at least m, that is, only if
// it has replayed the WAL position the primary had at a moment after u's
// commit: its replayed LSN is at least the LSN of u's last write. A note
// older than ReplicaLagMax is dropped, since every replica in rotation is
// fresher than that anyway; when more than maxMarks are recent, the oldest
// ones are dropped and everyone's reads are held to their time instead
// (floor), which is stricter. Within the request that wrote, reads go to
// the primary (Wrote).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Monitor timing.
const (
	// maxProbeInterval is the slowest the monitor polls; it polls faster
	// for a small ReplicaLagMax (a quarter of it, at least minProbeInterval).
	maxProbeInterval = 250 * time.Millisecond
	minProbeInterval = 20 * time.Millisecond
	// probeTimeout bounds one round of probes.
	probeTimeout = time.Second
	// sampleSpan and maxSamples bound the primary positions kept; beyond
	// them a replica's lag is reported as at least the span.
	sampleSpan = 30 * time.Second
	maxSamples = 1024
	// maxMarks bounds the recent writers remembered.
	maxMarks = 100000
)

// lsn is a WAL position.
type lsn uint64

func parseLSN(s string) (lsn, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	return lsn(h<<32 | l), nil
}

// WAL page header sizes (on 64-bit builds): the long one opens each
// segment, the short one every other page.
const (
	shortPageHeader = 24
	longPageHeader  = 40
)

// recordEnd turns an insert position into the end of the last record.
// When a record fills a page to its end, the insert position points past
// the next page's header, while a replica that replayed that record
// reports the page boundary. No record ends right after a header, so the
// correction is exact.
func recordEnd(p lsn, block, segment uint64) lsn {
	switch {
	case segment > 0 && uint64(p)%segment == longPageHeader:
		return p - longPageHeader
	case block > 0 && uint64(p)%block == shortPageHeader:
		return p - shortPageHeader
	}
	return p
}

// sample is the primary's WAL position, read after at.
type sample struct {
	at  time.Time
	pos lsn
}

// replica is one server of DataSourceReplicas or DataSourceSearchReplicas.
type replica struct {
	name   string // host:port, without credentials
	search bool
	view   *Store        // queries on the replica's pool
	probe  *pgxpool.Pool // the monitor's own connection

	// Guarded by replicaSet.mu.
	fresh time.Time     // every commit completed on the primary before it is replayed here; zero: unknown
	lag   time.Duration // at the last probe; -1 unknown
	err   error         // why the last probe failed
	inRot bool          // in rotation at the last round, for logging changes
}

// replicaSet chooses a replica for a read and runs the lag monitor.
type replicaSet struct {
	primary  *Store
	lagMax   time.Duration
	interval time.Duration
	log      *slog.Logger
	probe    *pgxpool.Pool // the monitor's connection to the primary
	all      []*replica    // search replicas first
	stop     context.CancelFunc
	done     chan struct{}

	mu        sync.Mutex // guards the fields below and those of the replicas
	samples   []sample   // oldest first
	marks     map[string]time.Time
	floor     time.Time // reads of every user wait for this time (marks dropped or lost)
	next      uint64    // round robin
	epoch     uint64    // the caller's generation of write notes (NotesEpoch)
	seenEpoch bool
}

// openReplicas opens the replica pools and starts the monitor; it
// returns nil when there are none or ReplicaLagMax is 0.
func openReplicas(ctx context.Context, primary *Store, o PoolOptions) (*replicaSet, error) {
	if len(o.Replicas)+len(o.SearchReplicas) == 0 || o.ReplicaLagMax <= 0 {
		return nil, nil
	}
	rs := &replicaSet{
		primary: primary, lagMax: o.ReplicaLagMax, log: o.Logger, marks: map[string]time.Time{},
		interval: min(max(o.ReplicaLagMax/4, minProbeInterval), maxProbeInterval),
		done:     make(chan struct{}),
	}
	if rs.log == nil {
		rs.log = slog.New(slog.DiscardHandler)
	}
	ok := false
	defer func() {
		if !ok {
			rs.closePools()
		}
	}()
	pcfg, err := ParseConfig(o)
	if err != nil {
		return nil, err
	}
	if rs.probe, err = probePool(ctx, pcfg); err != nil {
		return nil, err
	}
	add := func(setting string, i int, dsn string, search bool) error {
		cfg, err := parseDSN(dsn, o)
		if err != nil {
			// pgx errors can quote the DSN, password included: do not wrap.
			return fmt.Errorf("postgres: invalid SqlSettings.%s entry %d (check its syntax; the value is not shown because it may hold a password)", setting, i)
		}
		r := &replica{name: strings.Join(hosts(cfg.ConnConfig), ","), search: search, lag: -1}
		rs.all = append(rs.all, r)
		if r.probe, err = probePool(ctx, cfg.Copy()); err != nil {
			return err
		}
		pool, err := newPool(ctx, cfg, &health{})
		if err != nil {
			return fmt.Errorf("postgres: open replica %s: %w", r.name, err)
		}
		r.view = &Store{pool: pool}
		return nil
	}
	for i, dsn := range o.SearchReplicas {
		if err := add("DataSourceSearchReplicas", i, dsn, true); err != nil {
			return nil, err
		}
	}
	for i, dsn := range o.Replicas {
		if err := add("DataSourceReplicas", i, dsn, false); err != nil {
			return nil, err
		}
	}
	ok = true
	mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	rs.stop = stop
	go rs.run(mctx)
	return rs, nil
}

// probePool is a one-connection pool for the monitor, apart from the
// pools that serve requests: a busy pool must not make a replica look
// dead, nor the probes wait for the requests.
func probePool(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	cfg.MaxConns, cfg.MinConns, cfg.MinIdleConns = 1, 0, 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open replica monitor: %w", err)
	}
	return pool, nil
}

func (rs *replicaSet) close() {
	rs.stop()
	<-rs.done
	rs.closePools()
}

func (rs *replicaSet) closePools() {
	if rs.probe != nil {
		rs.probe.Close()
	}
	for _, r := range rs.all {
		if r.probe != nil {
			r.probe.Close()
		}
		if r.view != nil {
			r.view.pool.Close()
		}
	}
}

func (rs *replicaSet) run(ctx context.Context) {
	defer close(rs.done)
	tick := time.NewTicker(rs.interval)
	defer tick.Stop()
	for {
		rs.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// round samples the primary's position, then each replica's.
func (rs *replicaSet) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	t0 := time.Now()
	pos, err := primaryPosition(ctx, rs.probe)
	if err != nil {
		// Without the primary's position no replica's freshness can be
		// measured; what is known stays true and ages out of the bound.
		rs.log.Debug("replica monitor: primary position", "err", err)
		return
	}
	rs.mu.Lock()
	if n := len(rs.samples); n == 0 || rs.samples[n-1].pos != pos {
		rs.samples = append(rs.samples, sample{at: t0, pos: pos})
	} else {
		// The same position as before: the newer time says more.
		rs.samples[n-1].at = t0
	}
	drop := 0
	for drop < len(rs.samples)-1 && (t0.Sub(rs.samples[drop].at) > sampleSpan || len(rs.samples)-drop > maxSamples) {
		drop++
	}
	rs.samples = rs.samples[drop:]
	rs.mu.Unlock()

	var wg sync.WaitGroup
	for _, r := range rs.all {
		wg.Go(func() { rs.probeReplica(ctx, r, t0) })
	}
	wg.Wait()

	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.pruneLocked(t0)
	for _, r := range rs.all {
		in := rs.inRotationLocked(r, t0)
		if in != r.inRot {
			if in {
				rs.log.Info("replica joined the rotation", "replica", r.name, "lag_ms", r.lag.Milliseconds())
			} else {
				attrs := []any{"replica", r.name, "lag_ms", r.lag.Milliseconds(), "lag_max_ms", rs.lagMax.Milliseconds()}
				if r.err != nil {
					attrs = append(attrs, "err", r.err.Error())
				}
				rs.log.Warn("replica left the rotation", attrs...)
			}
			r.inRot = in
		}
	}
}

// primaryPosition returns the end of the primary's WAL as of now (see
// recordEnd).
func primaryPosition(ctx context.Context, pool *pgxpool.Pool) (lsn, error) {
	const q = `SELECT pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')::bigint,
		(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')`
	var (
		s              string
		block, segment uint64
	)
	if err := pool.QueryRow(ctx, q).Scan(&s, &block, &segment); err != nil {
		// A demoted server keeps the connection but fails the query;
		// the next round connects afresh, to the primary.
		pool.Reset()
		return 0, err
	}
	p, err := parseLSN(s)
	if err != nil {
		return 0, err
	}
	return recordEnd(p, block, segment), nil
}

// ErrNotReplica is the probe error of a replica that is not in recovery
// (promoted, or misconfigured): its data may have diverged from the
// primary's, so it serves no reads.
var ErrNotReplica = errors.New("the server is not a streaming replica")

func (rs *replicaSet) probeReplica(ctx context.Context, r *replica, t0 time.Time) {
	var (
		inRecovery bool
		replay     *string
	)
	err := r.probe.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text`).Scan(&inRecovery, &replay)
	var pos lsn
	switch {
	case err != nil:
		r.probe.Reset()
	case !inRecovery || replay == nil:
		err = ErrNotReplica
	default:
		pos, err = parseLSN(*replay)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r.err, r.fresh, r.lag = err, time.Time{}, -1
	if err != nil {
		return
	}
	// The newest sample the replica has reached.
	for i := len(rs.samples) - 1; i >= 0; i-- {
		if rs.samples[i].pos <= pos {
			r.fresh, r.lag = rs.samples[i].at, t0.Sub(rs.samples[i].at)
			break
		}
	}
	if r.fresh.IsZero() && len(rs.samples) > 0 {
		// Behind every sample kept: at least that old.
		r.lag = t0.Sub(rs.samples[0].at)
	}
}

func (rs *replicaSet) inRotationLocked(r *replica, now time.Time) bool {
	return r.err == nil && !r.fresh.IsZero() && !r.fresh.Before(now.Add(-rs.lagMax))
}

// pruneLocked forgets writes that every replica in rotation has replayed
// by definition.
func (rs *replicaSet) pruneLocked(now time.Time) {
	horizon := now.Add(-rs.lagMax)
	for u, m := range rs.marks {
		if m.Before(horizon) {
			delete(rs.marks, u)
		}
	}
}

func (rs *replicaSet) mark(userID string, now time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.marks[userID]; !ok && len(rs.marks) >= maxMarks {
		// More recent writers than the monitor has pruned (every round):
		// drop one and hold everyone to its write instead, which is
		// stricter, never staler.
		for u, m := range rs.marks {
			if m.After(rs.floor) {
				rs.floor = m
			}
			delete(rs.marks, u)
			break
		}
	}
	rs.marks[userID] = now
}

// pick returns a replica fit for a read by userID at now, or nil. Search
// tries the search replicas first. It runs on every replica read, so it
// does not allocate.
func (rs *replicaSet) pick(userID string, search bool, now time.Time) *replica {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	need := rs.floor
	if m, ok := rs.marks[userID]; ok && m.After(need) {
		need = m
	}
	fit := func(r *replica, searchOnes bool) bool {
		return r.search == searchOnes && rs.inRotationLocked(r, now) && !r.fresh.Before(need)
	}
	count := func(searchOnes bool) (n uint64) {
		for _, r := range rs.all {
			if fit(r, searchOnes) {
				n++
			}
		}
		return n
	}
	group := search && count(true) > 0
	n := count(group)
	if n == 0 {
		return nil
	}
	rs.next++
	k := rs.next % n
	for _, r := range rs.all {
		if fit(r, group) {
			if k == 0 {
				return r
			}
			k--
		}
	}
	return nil // unreachable: n replicas fit
}

// Replica returns where to run a read on behalf of userID that tolerates
// ReplicaLagMax of staleness: a replica in rotation that has replayed
// userID's last write, or the primary (s) when there is none, when no
// replicas are configured, or when the request of ctx has written
// (TrackWrites). Reads that decide permissions must not use it.
func (s *Store) Replica(ctx context.Context, userID string) *Store {
	return s.pickReplica(ctx, userID, false)
}

// SearchReplica is Replica for search: DataSourceSearchReplicas first,
// then DataSourceReplicas, then the primary.
func (s *Store) SearchReplica(ctx context.Context, userID string) *Store {
	return s.pickReplica(ctx, userID, true)
}

func (s *Store) pickReplica(ctx context.Context, userID string, search bool) *Store {
	if s.replicas == nil || Wrote(ctx) {
		return s
	}
	if r := s.replicas.pick(userID, search, time.Now()); r != nil {
		return r.view
	}
	return s
}

// HasReplicas reports whether reads may go to replicas at all.
func (s *Store) HasReplicas() bool { return s.replicas != nil }

// NoteWrite records that userID has just written, that is, that a write
// of theirs committed before now: until a replica has replayed the
// primary's WAL up to a position read after this call, it serves userID
// no reads.
func (s *Store) NoteWrite(userID string) {
	if s.replicas == nil || userID == "" {
		return
	}
	s.replicas.mark(userID, time.Now())
}

// NotesEpoch tells the store the generation of the write notes its caller
// has received: a cluster node passes its sync epoch, which changes when
// it may have lost messages, and so NoteWrite calls. On the first call and
// on every change, every user's reads are held to writes committed before
// now, as if all of them had just written: a replica serves them again
// once it has replayed past this moment.
func (s *Store) NotesEpoch(epoch uint64) {
	if s.replicas == nil {
		return
	}
	rs := s.replicas
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.seenEpoch || epoch != rs.epoch {
		rs.epoch, rs.seenEpoch = epoch, true
		if now := time.Now(); now.After(rs.floor) {
			rs.floor = now
		}
	}
}

// ReplicaStatus is a replica as the monitor last saw it.
type ReplicaStatus struct {
	// Name is the replica's host:port (hosts joined by commas), without
	// credentials.
	Name string
	// Search says it is one of DataSourceSearchReplicas.
	Search bool
	// Lag is how far behind the primary it was at the last probe; -1
	// when unknown (not answering, or not a replica).
	Lag time.Duration
	// InRotation says it serves reads now.
	InRotation bool
	// Err is why the last probe failed; nil when it succeeded.
	Err error
}

// ReplicaStatus lists the replicas with their lag and whether they are in
// rotation.
func (s *Store) ReplicaStatus() []ReplicaStatus {
	if s.replicas == nil {
		return nil
	}
	rs := s.replicas
	now := time.Now()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]ReplicaStatus, 0, len(rs.all))
	for _, r := range rs.all {
		out = append(out, ReplicaStatus{Name: r.name, Search: r.search, Lag: r.lag, InRotation: rs.inRotationLocked(r, now),
			Err: r.err})
	}
	return out
}

// HasPostVersion reports whether the channel's post version here is at
// least v. On a replica that means it has replayed every change to the
// channel's posts that the primary had made by version v, which a cached
// page or an ETag read under v may rely on.
func (s *Store) HasPostVersion(ctx context.Context, channelID string, v int64) (bool, error) {
	var have int64
	if err := s.pool.QueryRow(ctx, `SELECT post_version FROM channels WHERE id = $1`, channelID).Scan(&have); err != nil {
		return false, fmt.Errorf("posts: version: %w", mapErr(err))
	}
	return have >= v, nil
}

// writeFlag records that a request wrote.
type writeFlag struct{ wrote atomic.Bool }

type writeFlagKey struct{}

// TrackWrites returns a context under which the primary notes whether a
// statement that may write ran (Wrote). The API tracks every
// authenticated request, to tell the cluster that its user wrote.
func TrackWrites(ctx context.Context) context.Context {
	return context.WithValue(ctx, writeFlagKey{}, new(writeFlag))
}

// Wrote reports whether a statement that may write ran on the primary
// under ctx (see TrackWrites).
func Wrote(ctx context.Context) bool {
	f, _ := ctx.Value(writeFlagKey{}).(*writeFlag)
	return f != nil && f.wrote.Load()
}

// noteWrite sets ctx's write flag if sql may write. The flag is set before
// the statement runs and whether or not it succeeds: a write that failed
// only costs its author a read from the primary.
func noteWrite(ctx context.Context, sql string) {
	if f, _ := ctx.Value(writeFlagKey{}).(*writeFlag); f != nil && !f.wrote.Load() && writes(sql) {
		f.wrote.Store(true)
	}
}

// writes reports whether sql holds a data-modifying keyword. Statements
// are constants with every value a parameter, so a keyword is a keyword;
// a SELECT ... FOR UPDATE counts too, which errs on the safe side.
func writes(sql string) bool {
	word := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
	}
	for i := 0; i < len(sql); {
		if !word(sql[i]) {
			i++
			continue
		}
		j := i
		for j < len(sql) && word(sql[j]) {
			j++
		}
		switch w := sql[i:j]; {
		case strings.EqualFold(w, "insert"), strings.EqualFold(w, "update"), strings.EqualFold(w, "delete"),
			strings.EqualFold(w, "merge"), strings.EqualFold(w, "truncate"):
			return true
		}
		i = j
	}
	return false
}
