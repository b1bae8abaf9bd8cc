package app

// Reads from replicas, and read-your-writes across the cluster.
//
// A few reads tolerate SqlSettings.ReplicaLagMaxMilliseconds of staleness
// and may run on a replica (fromReplica): channel post pages, post and
// file search, user search and autocomplete, team and channel lists.
// Permission checks (sessions, memberships) always read the primary.
//
// A user's own writes must never be hidden by a replica, and nginx may
// send their next request to any node, while Mattermost clients echo
// nothing back that could carry a WAL position. So the write is told to
// every node before its answer leaves: for a request that wrote
// (postgres.Wrote), the API calls NoteWrites before the first byte of the
// response; it notes the user in this node's store and sends the note
// with SendAcked, which returns once every other node has handled it or
// is out of sync (package cluster). Each node's store then keeps the
// user's reads off any replica that has not replayed the primary's WAL
// past the moment the note arrived, which is after the commit
// (postgres/replica.go). The client's next request, on whichever node,
// starts after the answer; so that node has the note, or is out of sync
// and reads from the primary. A node whose sync epoch changed may have
// missed notes: its store holds everyone's reads to that moment
// (postgres.Store.NotesEpoch).
//
// A request that wrote costs one acknowledged message round when replicas
// are configured, and nothing otherwise.

import (
	"context"

	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// clusterWrote carries the id of a user who wrote.
const clusterWrote = "wrote"

// registerReadYourWrites registers the handler of write notes; New calls
// it before the cluster starts.
func (a *App) registerReadYourWrites() {
	a.cluster.Handle(clusterWrote, func(_ string, m cluster.Message) { a.store.NoteWrite(string(m.Data)) })
}

// TrackWrites returns the context to serve a request under so that
// NoteWrites can tell whether it wrote; ctx itself when there are no
// replicas to keep the user's reads from.
func (a *App) TrackWrites(ctx context.Context) context.Context {
	if !a.store.HasReplicas() {
		return ctx
	}
	return postgres.TrackWrites(ctx)
}

// NoteWrites tells every node that userID wrote, if the request served
// under ctx (TrackWrites) did; call it before the response is sent.
func (a *App) NoteWrites(ctx context.Context, userID string) {
	if userID == "" || !postgres.Wrote(ctx) {
		return
	}
	a.store.NoteWrite(userID)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), invalidateTimeout)
	defer cancel()
	if missing := a.cluster.SendAcked(ctx, cluster.Message{Event: clusterWrote, Data: []byte(userID)}); len(missing) > 0 {
		a.log.Warn("nodes did not acknowledge a write note; they are out of sync until they catch up",
			"nodes", missing, "user_id", userID)
	}
}

// replicaFor returns the store for a read on behalf of userID that
// tolerates the replica lag bound (search: a search replica first).
func (a *App) replicaFor(ctx context.Context, userID string, search bool) *postgres.Store {
	if !a.store.HasReplicas() {
		return a.store
	}
	epoch, ok := a.cluster.Sync()
	if !ok {
		// Write notes may be missing: the primary.
		return a.store
	}
	a.store.NotesEpoch(epoch)
	if search {
		return a.store.SearchReplica(ctx, userID)
	}
	return a.store.Replica(ctx, userID)
}

// readOn runs read on st, and again on the primary if st is a replica
// that is unavailable: a read may be repeated.
func readOn[T any](ctx context.Context, a *App, st *postgres.Store, read func(*postgres.Store) (T, error)) (T, error) {
	v, err := read(st)
	if err != nil && st != a.store && postgres.IsUnavailable(err) && ctx.Err() == nil {
		a.log.Debug("replica read failed; reading the primary", "err", err)
		return read(a.store)
	}
	return v, err
}

// fromReplica is readOn a replica fit for userID's reads.
func fromReplica[T any](ctx context.Context, a *App, userID string, read func(*postgres.Store) (T, error)) (T, error) {
	return readOn(ctx, a, a.replicaFor(ctx, userID, false), read)
}

// fromSearchReplica is fromReplica for search: the search replicas first.
func fromSearchReplica[T any](ctx context.Context, a *App, userID string, read func(*postgres.Store) (T, error)) (T, error) {
	return readOn(ctx, a, a.replicaFor(ctx, userID, true), read)
}

// channelPostsStore returns the store to read a page of a channel's posts
// from: a replica only if it has the channel's post version the primary
// has now, so that a page is never older than the version (and ETag) the
// API caches it under; otherwise the primary.
func (a *App) channelPostsStore(ctx context.Context, userID, channelID string) *postgres.Store {
	st := a.replicaFor(ctx, userID, false)
	if st == a.store {
		return st
	}
	acc, err := a.store.ChannelAccess(ctx, channelID)
	if err != nil {
		return a.store
	}
	if ok, err := st.HasPostVersion(ctx, channelID, acc.PostVersion); err != nil || !ok {
		return a.store
	}
	return st
}

// DatabaseReplica is a replica as the health check shows it to system
// admins.
type DatabaseReplica struct {
	// Name is host:port, without credentials.
	Name string `json:"name"`
	// LagMs is its lag at the last probe in milliseconds; -1 unknown.
	LagMs      int64 `json:"lag_ms"`
	InRotation bool  `json:"in_rotation"`
}

// DatabaseReplicas lists the replicas, their lag and whether they serve
// reads.
func (a *App) DatabaseReplicas() []DatabaseReplica {
	out := []DatabaseReplica{}
	for _, r := range a.store.ReplicaStatus() {
		lag := int64(-1)
		if r.Lag >= 0 {
			lag = r.Lag.Milliseconds()
		}
		out = append(out, DatabaseReplica{Name: r.Name, LagMs: lag, InRotation: r.InRotation})
	}
	return out
}
