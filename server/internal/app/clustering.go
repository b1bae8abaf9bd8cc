package app

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"sync"
	"time"

	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// What the nodes of a cluster tell each other. Postgres holds all state;
// nodes share only what they keep in memory: WebSocket events for their
// sockets, cache invalidations, and how many sockets each user has where.
const (
	clusterPublish    = "publish"
	clusterInvalidate = "invalidate"
	clusterConns      = "conns"
	clusterNodeStatus = "node_status"
)

// invalidateTimeout bounds how long a write waits for the other nodes to
// drop their caches; past the cluster's lease every node that has not
// answered is out of sync anyway (see package cluster).
const invalidateTimeout = 10 * time.Second

// invalidation lists cached state a write made stale.
type invalidation struct {
	// Sessions are forgotten and their sockets closed.
	Sessions []string `json:"sessions,omitempty"`
	// Users have every cached session forgotten.
	Users []string `json:"users,omitempty"`
	// CloseUsers have every socket closed.
	CloseUsers []string `json:"close_users,omitempty"`
	// Channels and Teams have their member sets forgotten.
	Channels []string `json:"channels,omitempty"`
	Teams    []string `json:"teams,omitempty"`
}

func (inv *invalidation) empty() bool {
	return len(inv.Sessions)+len(inv.Users)+len(inv.CloseUsers)+len(inv.Channels)+len(inv.Teams) == 0
}

// invalidate applies inv on this node, then on every other node before
// it returns. This is how a revoked session or a removed member is
// refused on every node once the call that did it returns: the message
// is acknowledged by every node that is in sync, and a node that does not
// acknowledge is out of sync and reads the database instead of its caches
// (cluster.Cluster.SendAcked).
func (a *App) invalidate(ctx context.Context, inv invalidation) {
	m, ok := a.applyInvalidationHere(inv)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), invalidateTimeout)
	defer cancel()
	if missing := a.cluster.SendAcked(ctx, m); len(missing) > 0 {
		a.log.Warn("nodes did not acknowledge an invalidation; they are out of sync until they catch up",
			"nodes", missing)
	}
}

// refresh applies inv here and sends it to the other nodes without
// waiting: for state that grew (a new channel, a new member), where a
// stale cache denies nothing it should allow for long. The ordered
// stream still delivers it before any event this node publishes next.
func (a *App) refresh(inv invalidation) {
	if m, ok := a.applyInvalidationHere(inv); ok {
		a.cluster.Send(m)
	}
}

// applyInvalidationHere applies inv on this node and returns the message
// that tells the other nodes; ok is false when there is nothing to send.
func (a *App) applyInvalidationHere(inv invalidation) (m cluster.Message, ok bool) {
	if inv.empty() {
		return m, false
	}
	a.applyInvalidation(inv)
	if a.cluster.Alone() {
		return m, false
	}
	b, err := json.Marshal(inv)
	if err != nil { // lists of strings: cannot happen
		a.log.Error("encode invalidation", "err", err)
		return m, false
	}
	return cluster.Message{Event: clusterInvalidate, Data: b}, true
}

func (a *App) applyInvalidation(inv invalidation) {
	for _, id := range inv.Users {
		a.sessions.removeUser(id)
	}
	for _, id := range inv.Sessions {
		a.sessions.removeID(id)
		if a.pub != nil {
			a.pub.CloseSession(id)
		}
	}
	for _, id := range inv.CloseUsers {
		if a.pub != nil {
			a.pub.CloseUser(id)
		}
	}
	for _, id := range inv.Teams {
		a.members.invalidateTeam(id)
	}
	for _, id := range inv.Channels {
		a.members.invalidateChannel(id)
	}
}

// dropSessions forgets revoked sessions on every node and ends their
// sockets.
func (a *App) dropSessions(ctx context.Context, ids ...string) {
	a.invalidate(ctx, invalidation{Sessions: ids})
}

// sendEvent passes an event published here to the other nodes, whose
// hubs deliver it to their own sockets (Mattermost's "publish").
//
// The events Mattermost sends reliably (posts, edits, new direct and group
// channels, team joins) are waited for: every node in contact has handled
// them before the request that caused them is answered, so a post this
// node acknowledged reaches every node's sockets even if this node dies
// right after.
func (a *App) sendEvent(ctx context.Context, ev *ws.Event) {
	if a.cluster.Alone() {
		return
	}
	data, err := json.Marshal(ev)
	if err != nil {
		a.log.Warn("encode event for the cluster", "event", ev.Name, "err", err)
		return
	}
	m := cluster.Message{Event: clusterPublish, Data: data}
	if !reliableEvent(ev.Name) {
		a.cluster.Send(m)
		return
	}
	if missing := a.cluster.SendReliable(ctx, m); len(missing) > 0 {
		a.log.Warn("nodes did not acknowledge an event; they get it when back in contact",
			"event", ev.Name, "nodes", missing)
	}
}

// reliableEvent reports whether an event is one of Mattermost's reliable
// cluster sends (and post_deleted, which must not linger either).
func reliableEvent(name string) bool {
	switch name {
	case "posted", "post_edited", "post_deleted", "direct_added", "group_added", "added_to_team":
		return true
	}
	return false
}

func (a *App) receiveEvent(from string, m cluster.Message) {
	ev := &ws.Event{}
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	dec.UseNumber() // numbers go back out exactly as they came
	if err := dec.Decode(ev); err != nil {
		a.log.Warn("bad event from node", "node", from, "err", err)
		return
	}
	if a.pub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := a.pub.Publish(ctx, ev); err != nil {
		a.log.Warn("publish event from node", "node", from, "event", ev.Name, "err", err)
	}
}

func (a *App) receiveInvalidation(from string, m cluster.Message) {
	var inv invalidation
	if err := json.Unmarshal(m.Data, &inv); err != nil {
		a.log.Warn("bad invalidation from node", "node", from, "err", err)
		return
	}
	a.applyInvalidation(inv)
}

// presence counts each user's live sockets on every node, so that a user
// whose last socket on one node closes stays online while they have one
// on another (Mattermost's WebConnCountForUser).
type presence struct {
	mu     sync.Mutex                // guards the fields below
	local  map[string]int            // user → sockets on this node
	remote map[string]map[string]int // node → user → sockets
}

func newPresence() *presence {
	return &presence{local: map[string]int{}, remote: map[string]map[string]int{}}
}

// connsMessage is a node's socket counts: some users, or all (Full).
type connsMessage struct {
	Full   bool           `json:"full,omitempty"`
	Counts map[string]int `json:"counts"`
}

// othersLocked counts a user's sockets on other nodes.
func (p *presence) othersLocked(userID string) int {
	n := 0
	for _, users := range p.remote {
		n += users[userID]
	}
	return n
}

// setLocal records this node's count and reports whether the user has no
// socket anywhere.
func (p *presence) setLocal(userID string, live int) (gone bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if live > 0 {
		p.local[userID] = live
		return false
	}
	delete(p.local, userID)
	return p.othersLocked(userID) == 0
}

// setRemote applies a node's counts and returns the users who now have
// no socket anywhere.
func (p *presence) setRemote(node string, msg connsMessage) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	users := p.remote[node]
	var before map[string]int
	if msg.Full {
		before = users
		users = map[string]int{}
	} else if users == nil {
		users = map[string]int{}
	}
	var gone []string
	for id, n := range msg.Counts {
		if n > 0 {
			users[id] = n
			continue
		}
		delete(users, id)
		if p.local[id] == 0 && p.othersLocked(id) == 0 {
			gone = append(gone, id)
		}
	}
	p.remote[node] = users
	for id := range before {
		if users[id] == 0 && p.local[id] == 0 && p.othersLocked(id) == 0 {
			gone = append(gone, id)
		}
	}
	return gone
}

// dropNode forgets a node that left and returns the users who now have no
// socket anywhere.
func (p *presence) dropNode(node string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	users := p.remote[node]
	delete(p.remote, node)
	var gone []string
	for id := range users {
		if p.local[id] == 0 && p.othersLocked(id) == 0 {
			gone = append(gone, id)
		}
	}
	return gone
}

// SocketsElsewhere counts a user's live sockets on the other nodes.
func (a *App) SocketsElsewhere(userID string) int {
	a.presence.mu.Lock()
	defer a.presence.mu.Unlock()
	return a.presence.othersLocked(userID)
}

func (p *presence) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.local)
}

func (a *App) sendConns(msg connsMessage) {
	if a.cluster.Alone() {
		return
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return
	}
	a.cluster.Send(cluster.Message{Event: clusterConns, Data: b})
}

func (a *App) receiveConns(from string, m cluster.Message) {
	var msg connsMessage
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		a.log.Warn("bad socket counts from node", "node", from, "err", err)
		return
	}
	a.usersGone(a.presence.setRemote(from, msg))
}

// usersGone marks offline (unless their status is manual) users who have
// no socket left on any node. Several nodes may do it for the same user;
// the change is idempotent.
func (a *App) usersGone(ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	for _, id := range ids {
		a.automatic(ctx, id, statusInput{kind: inDisconnected})
	}
}

// nodeJoined tells a new node (and the others: a send goes to all) this
// node's socket counts.
func (a *App) nodeJoined(string) {
	a.sendConns(connsMessage{Full: true, Counts: a.presence.snapshot()})
	a.ShareNodeStatus()
}

func (a *App) nodeLeft(id string) {
	a.usersGone(a.presence.dropNode(id))
	a.nodeStatus.mu.Lock()
	delete(a.nodeStatus.nodes, id)
	a.nodeStatus.mu.Unlock()
}

// NodeStatus is a node as GET /cluster/status shows it: Mattermost's
// ClusterInfo, plus how the node sees the database replicas.
type NodeStatus struct {
	cluster.Node
	DatabaseReplicas []DatabaseReplica `json:"database_replicas"`
}

// nodeStatuses keeps what the other nodes last said about themselves.
type nodeStatuses struct {
	mu    sync.Mutex // guards nodes
	nodes map[string][]DatabaseReplica
}

// ShareNodeStatus tells the other nodes how this one sees the replicas;
// the daemon calls it every few seconds.
func (a *App) ShareNodeStatus() {
	if a.cluster.Alone() {
		return
	}
	b, err := json.Marshal(a.DatabaseReplicas())
	if err != nil {
		return
	}
	a.cluster.Send(cluster.Message{Event: clusterNodeStatus, Data: b})
}

func (a *App) receiveNodeStatus(from string, m cluster.Message) {
	var reps []DatabaseReplica
	if err := json.Unmarshal(m.Data, &reps); err != nil {
		a.log.Warn("bad node status from node", "node", from, "err", err)
		return
	}
	a.nodeStatus.mu.Lock()
	a.nodeStatus.nodes[from] = reps
	a.nodeStatus.mu.Unlock()
}

// ClusterStatus lists the live nodes (GET /cluster/status), system admins
// only, each with its view of the database replicas (as of its last
// report, every few seconds; empty until the first).
func (a *App) ClusterStatus(_ context.Context, s *model.Session) ([]NodeStatus, *model.AppError) {
	if !s.IsSystemAdmin() {
		return nil, model.ErrPermission("app.cluster_status", s.UserID, "sysconsole_read_environment_high_availability")
	}
	nodes := a.cluster.Nodes()
	out := make([]NodeStatus, 0, len(nodes))
	a.nodeStatus.mu.Lock()
	defer a.nodeStatus.mu.Unlock()
	for i, n := range nodes {
		reps := a.nodeStatus.nodes[n.ID]
		if i == 0 {
			reps = a.DatabaseReplicas()
		}
		if reps == nil {
			reps = []DatabaseReplica{}
		}
		out = append(out, NodeStatus{Node: n, DatabaseReplicas: reps})
	}
	return out, nil
}

// registerCluster sets up the cluster handlers; the cluster must not be
// started yet.
func (a *App) registerCluster() {
	a.cluster.Handle(clusterPublish, a.receiveEvent)
	a.cluster.Handle(clusterInvalidate, a.receiveInvalidation)
	a.cluster.Handle(clusterConns, a.receiveConns)
	a.cluster.Handle(clusterNodeStatus, a.receiveNodeStatus)
	a.cluster.OnNodeJoined(a.nodeJoined)
	a.cluster.OnNodeLeft(a.nodeLeft)
}
