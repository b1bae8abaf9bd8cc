// Package cluster lets several garrison nodes act as one server. A node
// sends messages (WebSocket events, cache invalidations, connection
// counts) to the others, learns which nodes are alive, and knows whether
// its caches of security state (sessions, memberships) may be trusted.
//
// Two implementations share one conformance suite (clustertest): Gossip,
// built on hashicorp/memberlist with an ordered stream per pair of nodes,
// and Bus, an in-process fake for tests.
//
// # Delivery
//
// Messages from one node to another are delivered in the order they were
// sent and each at most once, and they survive a broken connection: the
// sender keeps every message until the receiver acknowledges it and
// resends after reconnecting, also after a partition heals, as long as the
// receiver stayed in the discovery table. A node that is gone from both
// gossip and the discovery table loses what was queued for it; so does a
// receiver whose queue overflowed (it notices and drops its caches, see
// below). SendReliable and SendAcked wait for the receivers' handlers.
//
// # Sync and security caches
//
// A revoked session must be refused on every node as soon as the revoke
// call returns. Garrison does this with an acknowledged cluster message,
// backed by leases for the nodes that do not acknowledge:
//
//   - SendAcked waits until every other node has handled the message.
//   - Every node pings every other node it must hear from (the live nodes
//     of memberlist and of the discovery table) and the answer travels on
//     the answering node's ordered stream, behind everything it sent
//     before. A node is in sync while, for each such peer, an answer to a
//     ping sent less than the lease time ago has arrived: it has then
//     handled every message that peer sent before answering.
//   - SendAcked stops waiting for a node that does not acknowledge once
//     that node's lease from the sender has run out (the sender knows
//     when it last answered it): from then on that node is out of sync
//     until it has handled the message.
//   - A node out of sync must not use cached security state; it reads the
//     database instead. When it is in sync again its sync epoch changes,
//     and caches filled under another epoch are dropped.
package cluster

import (
	"context"
	"time"
)

// Message is what one node sends the others. Event names the handler;
// Data is opaque to the cluster.
type Message struct {
	Event string
	Data  []byte
}

// Handler handles a message from another node. Handlers of one sender
// run one at a time, in order, so they should be quick.
type Handler func(from string, m Message)

// Node describes a garrison node as cluster status shows it.
type Node struct {
	ID            string `json:"id"`
	Version       string `json:"version"`
	SchemaVersion string `json:"schema_version"`
	ConfigHash    string `json:"config_hash"`
	Address       string `json:"ipaddress"`
	Hostname      string `json:"hostname"`
}

// Cluster is this node's view of the cluster.
type Cluster interface {
	// Self describes this node.
	Self() Node
	// Nodes lists the live nodes, this one first.
	Nodes() []Node
	// Handle registers the handler of an event. Call it before Start.
	Handle(event string, h Handler)
	// OnNodeJoined registers f, called with a node's id when it joins
	// (and, on a node that starts, for each node already there). Call it
	// before Start.
	OnNodeJoined(f func(nodeID string))
	// OnNodeLeft registers f, called with a node's id when it leaves or
	// is declared dead. Call it before Start.
	OnNodeLeft(f func(nodeID string))
	// Alone reports whether there is no other node to send to (so a
	// sender may skip encoding a message).
	Alone() bool
	// Send queues m for every other live node and returns at once.
	Send(m Message)
	// SendAcked sends m and waits until every other node has handled it
	// or is out of sync (see the package doc), or ctx ends. It returns
	// the ids of the nodes that did not acknowledge.
	SendAcked(ctx context.Context, m Message) []string
	// SendReliable sends m and waits until every other node that is in
	// contact (it has acknowledged something within the lease) has
	// handled it, or ctx ends; nodes out of contact get it when they are
	// back, without being waited for. It returns the ids of the nodes
	// that did not acknowledge. It is for events that must not be lost if
	// this node dies right after answering (a post it acknowledged).
	SendReliable(ctx context.Context, m Message) []string
	// Sync reports whether this node's caches of security state may be
	// used, and the sync epoch they must have been filled under.
	Sync() (epoch uint64, ok bool)
	// Start joins the cluster.
	Start(ctx context.Context) error
	// Stop leaves the cluster.
	Stop(ctx context.Context) error
}

// Timing defaults shared by the implementations.
const (
	// DefaultLease is how long an answered ping keeps a node in sync.
	DefaultLease = 2 * time.Second
	// DefaultPingInterval is how often a node pings each peer; several
	// pings fit in a lease so one lost packet does not break sync.
	DefaultPingInterval = 400 * time.Millisecond
)
