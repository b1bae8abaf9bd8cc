package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// recordingPub keeps the events published to it.
type recordingPub struct{ got []*ws.Event }

func (p *recordingPub) Publish(_ context.Context, ev *ws.Event) error {
	p.got = append(p.got, ev)
	return nil
}
func (p *recordingPub) CloseSession(string) {}
func (p *recordingPub) CloseUser(string)    {}

// TestEventCrossesTheClusterWhole: every part of a broadcast, and numbers
// exactly, survive the trip to another node.
func TestEventCrossesTheClusterWhole(t *testing.T) {
	t.Parallel()
	pub := &recordingPub{}
	a := &App{log: slog.New(slog.DiscardHandler), pub: pub}
	ev := &ws.Event{Name: "posted", Data: map[string]any{"post": `{"id":"p"}`, "create_at": int64(1732212345678901)},
		Broadcast: ws.Broadcast{UserID: "u", ChannelID: "c", TeamID: "t", ConnectionID: "conn", OmitConnectionID: "other",
			OmitUsers: map[string]bool{"x": true}, OnlyAdmins: true, OnlyNonAdmins: true}}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	a.receiveEvent("node1", cluster.Message{Event: clusterPublish, Data: b})
	require.Len(t, pub.got, 1)
	got := pub.got[0]
	require.Equal(t, ev.Name, got.Name)
	require.Equal(t, ev.Broadcast, got.Broadcast)
	require.Equal(t, json.Number("1732212345678901"), got.Data["create_at"], "no float rounding")
	require.Equal(t, ev.Data["post"], got.Data["post"])

	a.receiveEvent("node1", cluster.Message{Event: clusterPublish, Data: []byte("{not json")})
	require.Len(t, pub.got, 1, "a malformed event is dropped")
}
