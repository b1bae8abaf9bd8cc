package compat

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

// eventTimeout bounds every wait for a WebSocket event.
const eventTimeout = 10 * time.Second

// wsConn is one WebSocket connection of the driver's client, with the
// bookkeeping the tests need: it keeps reading the driver's channels (the
// driver blocks when they fill up), and it checks on every event that seq
// goes up by exactly one.
type wsConn struct {
	name   string // for messages: the user's name
	ws     *model.WebSocketClient
	events chan *model.WebSocketEvent // closed when the connection ends
	done   chan struct{}              // closed when the reader goroutine returns
	close  sync.Once

	// Owned by the test goroutine.
	connID string                // from hello
	seq    int64                 // the seq the next event must carry
	peeked *model.WebSocketEvent // read by peek but not yet consumed
}

// connectWS opens a WebSocket for a (authenticating with the challenge,
// as the driver does) and waits for hello.
func connectWS(t *testing.T, a *account) *wsConn {
	t.Helper()
	ws, err := model.NewWebSocketClient4(srv.wsURL, a.AuthToken)
	require.NoError(t, err, "NewWebSocketClient4")
	c := listen(t, a, ws, 0)
	hello := c.next(t)
	requireHello(t, hello, a)
	require.EqualValues(t, 0, hello.GetSequence(), "hello is the first event of a connection: seq 0")
	c.connID = hello.GetData()["connection_id"].(string)
	return c
}

// reconnectWS opens a WebSocket for a asking to resume connection connID
// at sequence number seq, authenticating on the upgrade request (the
// Authorization header), which is how Mattermost clients resume.
func reconnectWS(t *testing.T, a *account, connID string, seq int64) *wsConn {
	t.Helper()
	ws, err := model.NewReliableWebSocketClientWithDialer(websocket.DefaultDialer, srv.wsURL, a.AuthToken, connID, int(seq), true)
	require.NoError(t, err, "NewReliableWebSocketClientWithDialer")
	c := listen(t, a, ws, seq)
	c.connID = connID
	return c
}

func requireHello(t *testing.T, ev *model.WebSocketEvent, a *account) {
	t.Helper()
	require.Equal(t, model.WebsocketEventHello, ev.EventType(), "the first event of a new connection")
	id, ok := ev.GetData()["connection_id"].(string)
	require.True(t, ok, "hello data.connection_id is %T, want a string", ev.GetData()["connection_id"])
	require.True(t, model.IsValidId(id), "connection_id %q", id)
	require.NotEmpty(t, ev.GetData()["server_version"], "hello data.server_version")
	require.Equal(t, a.User.Id, ev.GetBroadcast().UserId, "hello broadcast.user_id")
}

func listen(t *testing.T, a *account, ws *model.WebSocketClient, seq int64) *wsConn {
	c := &wsConn{
		name:   a.User.Username,
		ws:     ws,
		events: make(chan *model.WebSocketEvent, 10000),
		done:   make(chan struct{}),
		seq:    seq,
	}
	ws.Listen()
	go func() {
		defer close(c.done)
		defer close(c.events)
		responses := ws.ResponseChannel
		for {
			select {
			case ev, ok := <-ws.EventChannel:
				if !ok {
					return
				}
				c.events <- ev
			case _, ok := <-responses:
				if !ok {
					responses = nil
				}
			case <-ws.PingTimeoutChannel:
			}
		}
	}()
	t.Cleanup(c.Close)
	return c
}

// Close closes the connection and waits until the reader has stopped.
func (c *wsConn) Close() {
	c.close.Do(c.ws.Close)
	<-c.done
}

// next returns the next event, failing the test after eventTimeout or if
// the connection ends first.
func (c *wsConn) next(t *testing.T) *model.WebSocketEvent {
	t.Helper()
	ev, err := c.take(t, time.Now().Add(eventTimeout))
	require.NoError(t, err)
	return ev
}

// take returns the next event, or an error if none comes before the
// deadline or the connection ends. It fails the test unless the event's
// seq is the one after the previous event's.
func (c *wsConn) take(t *testing.T, deadline time.Time) (*model.WebSocketEvent, error) {
	t.Helper()
	ev, err := c.peek(deadline)
	if err != nil {
		return nil, err
	}
	c.peeked = nil
	require.Equal(t, c.seq, ev.GetSequence(), "%s: event %q has seq %d; seq must go up by one on every event of a connection (conn %s)",
		c.name, ev.EventType(), ev.GetSequence(), c.connID)
	c.seq++
	return ev, nil
}

// peek returns the next event without consuming it or checking its seq.
func (c *wsConn) peek(deadline time.Time) (*model.WebSocketEvent, error) {
	if c.peeked != nil {
		return c.peeked, nil
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case ev, ok := <-c.events:
		if !ok {
			return nil, fmt.Errorf("%s: the WebSocket closed (%v)", c.name, c.ws.ListenError)
		}
		c.peeked = ev
		return ev, nil
	case <-timer.C:
		return nil, fmt.Errorf("%s: no event before the deadline", c.name)
	}
}

// await reads events until one of type typ for which match (nil: any)
// returns true, and returns it. Other events are skipped, but their seq is
// checked too.
func (c *wsConn) await(t *testing.T, typ model.WebsocketEventType, match func(*model.WebSocketEvent) bool) *model.WebSocketEvent {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	var skipped []string
	for {
		ev, err := c.take(t, deadline)
		if err != nil {
			require.FailNowf(t, "event not received", "%s: waiting %s for %q: %v; events received meanwhile: %s",
				c.name, eventTimeout, typ, err, strings.Join(skipped, ", "))
		}
		if ev.EventType() == typ {
			if match == nil || match(ev) {
				return ev
			}
			// Show the near misses in full: they are what a bug report needs.
			raw, _ := ev.ToJSON()
			skipped = append(skipped, string(raw))
			continue
		}
		skipped = append(skipped, describe(ev))
	}
}

// awaitWithout reads events until the sentinel post arrives and fails if
// any event before it is forbidden. Events for one connection are
// delivered in order, so an event the user should not have received,
// published before the sentinel, would have arrived before it.
func (c *wsConn) awaitWithout(t *testing.T, sentinel *model.Post, forbidden func(*model.WebSocketEvent) bool) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		ev, err := c.take(t, deadline)
		require.NoError(t, err, "waiting for the sentinel post %s", sentinel.Id)
		if forbidden(ev) {
			raw, _ := ev.ToJSON()
			require.FailNowf(t, "event leaked", "%s received an event it may not see: %s", c.name, raw)
		}
		if ev.EventType() == model.WebsocketEventPosted && eventPost(t, ev).Id == sentinel.Id {
			return
		}
	}
}

// mentioning matches events whose JSON contains any of the ids.
func mentioning(ids ...string) func(*model.WebSocketEvent) bool {
	return func(ev *model.WebSocketEvent) bool {
		raw, err := ev.ToJSON()
		if err != nil {
			return true
		}
		for _, id := range ids {
			if strings.Contains(string(raw), id) {
				return true
			}
		}
		return false
	}
}

// ofType matches events of type typ.
func ofType(typ model.WebsocketEventType) func(*model.WebSocketEvent) bool {
	return func(ev *model.WebSocketEvent) bool { return ev.EventType() == typ }
}

// either matches events that a or b matches.
func either(a, b func(*model.WebSocketEvent) bool) func(*model.WebSocketEvent) bool {
	return func(ev *model.WebSocketEvent) bool { return a(ev) || b(ev) }
}

func describe(ev *model.WebSocketEvent) string {
	return fmt.Sprintf("%s(seq %d)", ev.EventType(), ev.GetSequence())
}

// eventPost decodes data.post, which Mattermost sends as a JSON string.
func eventPost(t *testing.T, ev *model.WebSocketEvent) *model.Post {
	t.Helper()
	return decodeDataString[model.Post](t, ev, "post")
}

// decodeDataString decodes data[key], a JSON document sent as a string.
func decodeDataString[T any](t *testing.T, ev *model.WebSocketEvent, key string) *T {
	t.Helper()
	s, ok := ev.GetData()[key].(string)
	require.True(t, ok, "%s: data.%s is %T, want a string holding JSON (Mattermost JSON-encodes it)", ev.EventType(), key, ev.GetData()[key])
	var v T
	require.NoError(t, json.Unmarshal([]byte(s), &v), "%s: data.%s", ev.EventType(), key)
	return &v
}

func dataString(ev *model.WebSocketEvent, key string) string {
	s, _ := ev.GetData()[key].(string)
	return s
}

// postedID matches the posted event of post id.
func postedID(t *testing.T, id string) func(*model.WebSocketEvent) bool {
	return func(ev *model.WebSocketEvent) bool { return eventPost(t, ev).Id == id }
}

// dataIs matches events whose data[key] is the string want.
func dataIs(key, want string) func(*model.WebSocketEvent) bool {
	return func(ev *model.WebSocketEvent) bool { return dataString(ev, key) == want }
}

// wsFixture: alice, bob and carol in a team; alice and bob in a private
// channel; all three in a public channel for sentinels.
type wsFixture struct {
	alice, bob, carol *account
	team              *model.Team
	private, shared   *model.Channel
}

func newWSFixture(t *testing.T) *wsFixture {
	t.Helper()
	f := &wsFixture{alice: newUser(t), bob: newUser(t), carol: newUser(t)}
	f.team = teamWith(t, f.alice, f.bob, f.carol)
	f.private = channelWith(t, f.alice, f.team.Id, model.ChannelTypePrivate, f.bob)
	f.shared = channelWith(t, f.alice, f.team.Id, model.ChannelTypeOpen, f.bob, f.carol)
	return f
}

func TestWebSocketHello(t *testing.T) {
	t.Parallel()
	a := newUser(t)
	c1 := connectWS(t, a)
	c2 := connectWS(t, a)
	require.NotEqual(t, c1.connID, c2.connID, "every connection has its own id")

	// Authenticating with the Authorization header on the upgrade request
	// works as well as the challenge.
	ws, err := model.NewReliableWebSocketClientWithDialer(websocket.DefaultDialer, srv.wsURL, a.AuthToken, "", 0, true)
	require.NoError(t, err)
	c3 := listen(t, a, ws, 0)
	requireHello(t, c3.next(t), a)
}

func TestWebSocketPostEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newWSFixture(t)
	wsA, wsB, wsC := connectWS(t, f.alice), connectWS(t, f.bob), connectWS(t, f.carol)

	// posted
	post := newPost(t, f.alice, f.private.Id, "secret")
	ev := wsB.await(t, model.WebsocketEventPosted, postedID(t, post.Id))
	got := eventPost(t, ev)
	require.Equal(t, "secret", got.Message)
	require.Equal(t, f.alice.User.Id, got.UserId)
	require.Equal(t, f.private.Id, got.ChannelId)
	require.Equal(t, string(model.ChannelTypePrivate), dataString(ev, "channel_type"))
	require.Equal(t, f.private.Name, dataString(ev, "channel_name"))
	require.Equal(t, f.private.DisplayName, dataString(ev, "channel_display_name"))
	require.Equal(t, f.team.Id, dataString(ev, "team_id"))
	require.Equal(t, f.private.Id, ev.GetBroadcast().ChannelId)
	wsA.await(t, model.WebsocketEventPosted, postedID(t, post.Id)) // the sender too

	// post_edited
	msg := "edited secret"
	_, _, err := f.alice.PatchPost(ctx, post.Id, &model.PostPatch{Message: &msg})
	require.NoError(t, err)
	ev = wsB.await(t, model.WebsocketEventPostEdited, postedID(t, post.Id))
	require.Equal(t, msg, eventPost(t, ev).Message)

	// reaction_added and reaction_removed
	reaction := &model.Reaction{UserId: f.bob.User.Id, PostId: post.Id, EmojiName: "smile"}
	_, _, err = f.bob.SaveReaction(ctx, reaction)
	require.NoError(t, err)
	isReaction := func(ev *model.WebSocketEvent) bool {
		r := decodeDataString[model.Reaction](t, ev, "reaction")
		return r.PostId == post.Id && r.UserId == f.bob.User.Id && r.EmojiName == "smile"
	}
	wsA.await(t, model.WebsocketEventReactionAdded, isReaction)
	_, err = f.bob.DeleteReaction(ctx, reaction)
	require.NoError(t, err)
	wsA.await(t, model.WebsocketEventReactionRemoved, isReaction)

	// post_deleted
	_, err = f.alice.DeletePost(ctx, post.Id)
	require.NoError(t, err)
	wsB.await(t, model.WebsocketEventPostDeleted, postedID(t, post.Id))

	// carol, outside the private channel, saw none of it.
	sentinel := newPost(t, f.alice, f.shared.Id, "sentinel")
	wsC.awaitWithout(t, sentinel, mentioning(f.private.Id, post.Id))
}

func TestWebSocketChannelCreatedUpdatedDeleted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newWSFixture(t)
	wsA, wsB, wsC := connectWS(t, f.alice), connectWS(t, f.bob), connectWS(t, f.carol)

	// channel_created goes to the creator only.
	ch := newChannel(t, f.alice, f.team.Id, model.ChannelTypePrivate)
	ev := wsA.await(t, model.WebsocketEventChannelCreated, dataIs("channel_id", ch.Id))
	require.Equal(t, f.team.Id, dataString(ev, "team_id"))
	addToChannel(t, f.alice, ch.Id, f.bob)

	// channel_updated goes to the members, with the channel as a JSON string.
	header := "new header"
	_, _, err := f.alice.PatchChannel(ctx, ch.Id, &model.ChannelPatch{Header: &header})
	require.NoError(t, err)
	isChannel := func(ev *model.WebSocketEvent) bool {
		return decodeDataString[model.Channel](t, ev, "channel").Id == ch.Id
	}
	ev = wsB.await(t, model.WebsocketEventChannelUpdated, isChannel)
	require.Equal(t, header, decodeDataString[model.Channel](t, ev, "channel").Header)

	// channel_deleted: a private channel's to its members...
	_, err = f.alice.DeleteChannel(ctx, ch.Id)
	require.NoError(t, err)
	ev = wsB.await(t, model.WebsocketEventChannelDeleted, dataIs("channel_id", ch.Id))
	deleteAt, ok := ev.GetData()["delete_at"].(float64)
	require.True(t, ok, "data.delete_at is %T, want a number", ev.GetData()["delete_at"])
	require.NotZero(t, deleteAt)

	// ...and none of it reached carol.
	sentinel := newPost(t, f.alice, f.shared.Id, "sentinel")
	wsC.awaitWithout(t, sentinel, mentioning(ch.Id))

	// A public channel's deletion goes to the whole team.
	open := newChannel(t, f.alice, f.team.Id, model.ChannelTypeOpen)
	_, err = f.alice.DeleteChannel(ctx, open.Id)
	require.NoError(t, err)
	wsC.await(t, model.WebsocketEventChannelDeleted, dataIs("channel_id", open.Id))
}

func TestWebSocketDirectAndGroupAdded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newWSFixture(t)
	dave := newUser(t)
	addToTeam(t, f.alice, f.team.Id, dave)
	addToChannel(t, f.alice, f.shared.Id, dave)
	wsA, wsB, wsC, wsD := connectWS(t, f.alice), connectWS(t, f.bob), connectWS(t, f.carol), connectWS(t, dave)

	dm, _, err := f.alice.CreateDirectChannel(ctx, f.alice.User.Id, f.bob.User.Id)
	require.NoError(t, err)
	for _, c := range []*wsConn{wsA, wsB} {
		ev := c.await(t, model.WebsocketEventDirectAdded, func(ev *model.WebSocketEvent) bool { return ev.GetBroadcast().ChannelId == dm.Id })
		require.Equal(t, f.alice.User.Id, dataString(ev, "creator_id"))
		require.Equal(t, f.bob.User.Id, dataString(ev, "teammate_id"))
	}

	ids := []string{f.alice.User.Id, f.bob.User.Id, f.carol.User.Id}
	gm, _, err := f.alice.CreateGroupChannel(ctx, ids)
	require.NoError(t, err)
	for _, c := range []*wsConn{wsA, wsB, wsC} {
		ev := c.await(t, model.WebsocketEventGroupAdded, func(ev *model.WebSocketEvent) bool { return ev.GetBroadcast().ChannelId == gm.Id })
		var teammates []string
		require.NoError(t, json.Unmarshal([]byte(dataString(ev, "teammate_ids")), &teammates),
			"data.teammate_ids is a JSON array in a string: %#v", ev.GetData()["teammate_ids"])
		require.ElementsMatch(t, ids, teammates)
	}

	// dave is in neither.
	sentinel := newPost(t, f.alice, f.shared.Id, "sentinel")
	wsD.awaitWithout(t, sentinel, mentioning(dm.Id, gm.Id))
}

func TestWebSocketChannelMembership(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newWSFixture(t)
	wsA, wsC := connectWS(t, f.alice), connectWS(t, f.carol)

	// user_added: to the added user and to the members.
	ch := newChannel(t, f.alice, f.team.Id, model.ChannelTypePrivate)
	addToChannel(t, f.alice, ch.Id, f.carol)
	for _, c := range []*wsConn{wsC, wsA} {
		ev := c.await(t, model.WebsocketEventUserAdded, dataIs("user_id", f.carol.User.Id))
		require.Equal(t, ch.Id, ev.GetBroadcast().ChannelId, "clients read the channel from broadcast.channel_id")
		require.Equal(t, f.team.Id, dataString(ev, "team_id"))
	}

	// user_removed: the removed user is told which channel; the members
	// are told who.
	_, err := f.alice.RemoveUserFromChannel(ctx, ch.Id, f.carol.User.Id)
	require.NoError(t, err)
	ev := wsC.await(t, model.WebsocketEventUserRemoved, dataIs("channel_id", ch.Id))
	require.Equal(t, f.alice.User.Id, dataString(ev, "remover_id"))
	ev = wsA.await(t, model.WebsocketEventUserRemoved, dataIs("user_id", f.carol.User.Id))
	require.Equal(t, ch.Id, ev.GetBroadcast().ChannelId)
	require.Equal(t, f.alice.User.Id, dataString(ev, "remover_id"))

	// Once out, carol no longer hears from the channel.
	post := newPost(t, f.alice, ch.Id, "after carol left")
	wsA.await(t, model.WebsocketEventPosted, postedID(t, post.Id))
	sentinel := newPost(t, f.alice, f.shared.Id, "sentinel")
	wsC.awaitWithout(t, sentinel, mentioning(post.Id))
}

func TestWebSocketTeamMembership(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob, outsider := newUser(t), newUser(t), newUser(t)
	team := newTeam(t, alice, model.TeamInvite)
	// A DM to send the outsider a sentinel through.
	dm, _, err := alice.CreateDirectChannel(ctx, alice.User.Id, outsider.User.Id)
	require.NoError(t, err)
	wsA, wsB, wsO := connectWS(t, alice), connectWS(t, bob), connectWS(t, outsider)

	addToTeam(t, alice, team.Id, bob)
	ev := wsB.await(t, model.WebsocketEventAddedToTeam, dataIs("team_id", team.Id))
	require.Equal(t, bob.User.Id, dataString(ev, "user_id"))

	_, err = alice.RemoveTeamMember(ctx, team.Id, bob.User.Id)
	require.NoError(t, err)
	for _, c := range []*wsConn{wsB, wsA} {
		ev := c.await(t, model.WebsocketEventLeaveTeam, dataIs("team_id", team.Id))
		require.Equal(t, bob.User.Id, dataString(ev, "user_id"))
	}

	sentinel := newPost(t, alice, dm.Id, "sentinel")
	wsO.awaitWithout(t, sentinel, mentioning(team.Id))
}

func TestWebSocketChannelsViewed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newWSFixture(t)
	wsA, wsB := connectWS(t, f.alice), connectWS(t, f.bob)

	_, _, err := f.alice.ViewChannel(ctx, f.alice.User.Id, &model.ChannelView{ChannelId: f.private.Id})
	require.NoError(t, err)
	ev := wsA.await(t, model.WebsocketEventMultipleChannelsViewed, func(ev *model.WebSocketEvent) bool {
		times, ok := ev.GetData()["channel_times"].(map[string]any)
		return ok && times[f.private.Id] != nil
	})
	ms, ok := ev.GetData()["channel_times"].(map[string]any)[f.private.Id].(float64)
	require.True(t, ok, "channel_times values are numbers (ms)")
	require.NotZero(t, ms)
	require.Equal(t, f.alice.User.Id, ev.GetBroadcast().UserId, "sent to the viewer only")

	// bob, who shares the channel, is not told that alice read it.
	sentinel := newPost(t, f.alice, f.shared.Id, "sentinel")
	wsB.awaitWithout(t, sentinel, ofType(model.WebsocketEventMultipleChannelsViewed))
}

func TestWebSocketUsers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob := newUser(t), newUser(t)
	wsA := connectWS(t, alice)

	// new_user goes to everyone.
	carol := newUser(t)
	wsA.await(t, model.WebsocketEventNewUser, dataIs("user_id", carol.User.Id))

	// user_updated goes to everyone, with the (sanitized) user as an object
	// (which the driver decodes into a *model.User).
	nick := "new nickname"
	_, _, err := bob.PatchUser(ctx, bob.User.Id, &model.UserPatch{Nickname: &nick})
	require.NoError(t, err)
	ev := wsA.await(t, model.WebsocketEventUserUpdated, func(ev *model.WebSocketEvent) bool {
		u, ok := ev.GetData()["user"].(*model.User)
		return ok && u.Id == bob.User.Id
	})
	u := ev.GetData()["user"].(*model.User)
	require.Equal(t, nick, u.Nickname)
	require.Equal(t, bob.User.Username, u.Username)
	require.Empty(t, u.Password)
	require.Empty(t, u.MfaSecret)
	require.Nil(t, u.AuthData)
}

func TestWebSocketTyping(t *testing.T) {
	t.Parallel()
	f := newWSFixture(t)
	wsA, wsB, wsC := connectWS(t, f.alice), connectWS(t, f.bob), connectWS(t, f.carol)

	wsA.ws.UserTyping(f.private.Id, "")
	ev := wsB.await(t, model.WebsocketEventTyping, dataIs("user_id", f.alice.User.Id))
	require.Equal(t, f.private.Id, ev.GetBroadcast().ChannelId, "clients read the channel from broadcast.channel_id")
	require.Equal(t, "", dataString(ev, "parent_id"))

	// Neither the typist nor carol, outside the channel, gets it. bob got
	// it, so it was published before this sentinel.
	sentinel := newPost(t, f.bob, f.shared.Id, "sentinel")
	wsA.awaitWithout(t, sentinel, ofType(model.WebsocketEventTyping))
	wsC.awaitWithout(t, sentinel, either(ofType(model.WebsocketEventTyping), mentioning(f.private.Id)))
}

func TestWebSocketSequence(t *testing.T) {
	t.Parallel()
	f := newWSFixture(t)
	wsB := connectWS(t, f.bob)

	// Every event checks seq; this makes sure there are a few.
	for i := range 10 {
		p := newPost(t, f.alice, f.shared.Id, fmt.Sprint("message ", i))
		ev := wsB.await(t, model.WebsocketEventPosted, postedID(t, p.Id))
		require.Positive(t, ev.GetSequence())
	}
}

func TestWebSocketReconnectReplay(t *testing.T) {
	t.Parallel()
	f := newWSFixture(t)
	c1 := connectWS(t, f.bob)
	p1 := newPost(t, f.alice, f.shared.Id, "before the disconnect")
	c1.await(t, model.WebsocketEventPosted, postedID(t, p1.Id))
	connID, next := c1.connID, c1.seq
	c1.Close()

	// Missed while away.
	p2 := newPost(t, f.alice, f.shared.Id, "missed 1")
	p3 := newPost(t, f.alice, f.shared.Id, "missed 2")

	// Until the server has seen the old socket close, the connection is
	// still live there and a resume gets a fresh connection (as in
	// Mattermost); poll until the resume is accepted.
	var c2 *wsConn
	deadline := time.Now().Add(eventTimeout)
	for c2 == nil {
		c := reconnectWS(t, f.bob, connID, next)
		ev, err := c.peek(time.Now().Add(eventTimeout))
		require.NoError(t, err, "after resuming connection %s at seq %d", connID, next)
		switch {
		case ev.EventType() == model.WebsocketEventHello && dataString(ev, "connection_id") != connID:
			c.Close()
			t.Logf("resume of %s got a new connection; the server has not seen the old socket close yet, trying again", connID)
			require.True(t, time.Now().Before(deadline),
				"resuming connection %s at seq %d keeps getting a new connection (hello with connection_id %s, seq %d)",
				connID, next, dataString(ev, "connection_id"), ev.GetSequence())
		default:
			// The resumed connection carries on with the next seq (take
			// checks it). A server may repeat hello there, with the same
			// connection id.
			c2 = c
		}
	}

	for _, p := range []*model.Post{p2, p3} {
		c2.await(t, model.WebsocketEventPosted, postedID(t, p.Id))
	}
	// And live delivery continues on the same sequence.
	p4 := newPost(t, f.alice, f.shared.Id, "after the resume")
	c2.await(t, model.WebsocketEventPosted, postedID(t, p4.Id))
}

func TestWebSocketReconnectStale(t *testing.T) {
	t.Parallel()
	f := newWSFixture(t)

	t.Run("UnknownSequence", func(t *testing.T) {
		c1 := connectWS(t, f.bob)
		p := newPost(t, f.alice, f.shared.Id, "seen")
		c1.await(t, model.WebsocketEventPosted, postedID(t, p.Id))
		old := c1.connID
		c1.Close()

		// A sequence number the server never sent cannot be resumed: a new
		// connection starts, with a new id and seq 0.
		c2 := reconnectWS(t, f.bob, old, c1.seq+1000)
		c2.seq = 0
		hello := c2.next(t)
		requireHello(t, hello, f.bob)
		require.NotEqual(t, old, dataString(hello, "connection_id"))
	})

	t.Run("UnknownConnection", func(t *testing.T) {
		unknown := model.NewId()
		c := reconnectWS(t, f.bob, unknown, 5)
		c.seq = 0
		hello := c.next(t)
		requireHello(t, hello, f.bob)
		require.NotEqual(t, unknown, dataString(hello, "connection_id"))
	})
}
