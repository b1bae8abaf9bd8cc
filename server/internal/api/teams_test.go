package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// Subtests in this package run serially: a fixture's clients report
// failures on the T of the test that made them.

var nameSeq atomic.Int64

// uniq returns a name no other test uses.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, nameSeq.Add(1)) }

// createTeam creates a team owned by c: open (type O, anyone may join) or
// invite-only.
func (c *client) createTeam(open bool) *model.Team {
	c.ts.t.Helper()
	typ := model.TeamInvite
	if open {
		typ = model.TeamOpen
	}
	var t model.Team
	c.mustDo("POST", "/teams", map[string]any{"name": uniq("team"), "display_name": "Team " + typ, "type": typ,
		"allow_open_invite": open}, http.StatusCreated, &t)
	return &t
}

// addToTeam has c add u to a team.
func (c *client) addToTeam(teamID string, u *client) {
	c.ts.t.Helper()
	c.mustDo("POST", "/teams/"+teamID+"/members", map[string]any{"team_id": teamID, "user_id": u.User.ID}, http.StatusCreated, nil)
}

// channelByName returns a team's channel as c sees it.
func (c *client) channelByName(teamID, name string) *model.Channel {
	c.ts.t.Helper()
	var ch model.Channel
	c.mustDo("GET", "/teams/"+teamID+"/channels/name/"+name, nil, http.StatusOK, &ch)
	return &ch
}

// createChannel creates an open or private channel in a team.
func (c *client) createChannel(teamID, typ string) *model.Channel {
	c.ts.t.Helper()
	var ch model.Channel
	c.mustDo("POST", "/channels", map[string]any{"team_id": teamID, "name": uniq("chan"), "display_name": "Channel", "type": typ},
		http.StatusCreated, &ch)
	return &ch
}

// requireKeys checks that a JSON object has exactly the given keys.
func requireKeys(t *testing.T, body []byte, keys ...string) {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m), string(body))
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	require.ElementsMatch(t, keys, got, string(body))
}

var teamKeys = []string{"id", "create_at", "update_at", "delete_at", "display_name", "name", "description", "email",
	"type", "company_name", "allowed_domains", "invite_id", "allow_open_invite", "scheme_id", "group_constrained",
	"policy_id", "cloud_limits_archived"}

var teamMemberKeys = []string{"team_id", "user_id", "roles", "delete_at", "scheme_guest", "scheme_user", "scheme_admin",
	"explicit_roles", "create_at"}

// wsClient is a WebSocket connection of a test user.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	seq  int64
}

// wsEvent is a server → client event.
type wsEvent struct {
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Broadcast map[string]any `json:"broadcast"`
	Status    string         `json:"status"`
	SeqReply  int64          `json:"seq_reply"`
	Error     map[string]any `json:"error"`
}

// ws connects c to the WebSocket and waits for hello, so events published
// afterwards reach it.
func (c *client) ws() *wsClient {
	c.ts.t.Helper()
	url := "ws" + strings.TrimPrefix(c.ts.URL, "http") + "/api/v4/websocket"
	conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + c.Token}})
	require.NoError(c.ts.t, err)
	resp.Body.Close()
	c.ts.t.Cleanup(func() { conn.Close() })
	w := &wsClient{t: c.ts.t, conn: conn}
	w.next("hello")
	return w
}

// read returns the next frame, failing the test after a deadline.
func (w *wsClient) read() wsEvent {
	w.t.Helper()
	require.NoError(w.t, w.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, b, err := w.conn.ReadMessage()
	require.NoError(w.t, err)
	var ev wsEvent
	require.NoError(w.t, json.Unmarshal(b, &ev), string(b))
	return ev
}

// next returns the next event called name, skipping other frames.
func (w *wsClient) next(name string) wsEvent {
	w.t.Helper()
	for {
		if ev := w.read(); ev.Event == name {
			return ev
		}
	}
}

// until reads events up to the first one marker matches and returns it,
// failing the test if an event before it is one forbidden matches. An
// event reaches a connection after every event published before it, so a
// marker published after an action proves, without sleeping, that the
// action sent this connection nothing forbidden matches.
func (w *wsClient) until(marker, forbidden func(wsEvent) bool) wsEvent {
	w.t.Helper()
	for {
		ev := w.nextEvent()
		if marker(ev) {
			return ev
		}
		require.False(w.t, forbidden(ev), "%s before the marker: %+v", ev.Event, ev)
	}
}

// nextEvent returns the next event, whatever it is (replies skipped).
func (w *wsClient) nextEvent() wsEvent {
	w.t.Helper()
	for {
		if ev := w.read(); ev.Event != "" {
			return ev
		}
	}
}

// action sends a client action and returns its reply.
func (w *wsClient) action(name string, data any) wsEvent {
	w.t.Helper()
	w.seq++
	require.NoError(w.t, w.conn.WriteJSON(map[string]any{"seq": w.seq, "action": name, "data": data}))
	for {
		if ev := w.read(); ev.Event == "" && ev.SeqReply == w.seq {
			return ev
		}
	}
}

func TestTeamCreate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser() // the system admin
	owner := ts.newUser()
	ws := owner.ws()

	resp, body := owner.do("POST", "/teams", map[string]any{"name": "core-team", "display_name": "  Core Team ", "type": "O",
		"allow_open_invite": true, "description": "the core"})
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	requireKeys(t, body, teamKeys...)
	var team model.Team
	require.NoError(t, json.Unmarshal(body, &team))
	require.True(t, model.IsValidID(team.ID))
	require.Equal(t, "core-team", team.Name)
	require.Equal(t, "Core Team", team.DisplayName)
	require.Equal(t, model.TeamOpen, team.Type)
	require.True(t, team.AllowOpenInvite)
	require.Equal(t, "the core", team.Description)
	require.Equal(t, owner.User.Email, team.Email, "the creator is admin and sees the team email")
	require.True(t, model.IsValidID(team.InviteID))
	require.NotZero(t, team.CreateAt)
	require.Equal(t, team.CreateAt, team.UpdateAt)

	ev := ws.next("added_to_team")
	require.Equal(t, map[string]any{"team_id": team.ID, "user_id": owner.User.ID}, ev.Data)

	// The creator is team admin.
	resp, body = owner.do("GET", "/teams/"+team.ID+"/members/me", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	requireKeys(t, body, teamMemberKeys...)
	var tm model.TeamMember
	require.NoError(t, json.Unmarshal(body, &tm))
	require.Equal(t, model.TeamMember{TeamID: team.ID, UserID: owner.User.ID, Roles: "team_user team_admin",
		SchemeUser: true, SchemeAdmin: true, CreateAt: tm.CreateAt}, tm)

	// Default channels exist and the creator is their admin.
	var chans []*model.Channel
	owner.mustDo("GET", "/users/me/teams/"+team.ID+"/channels", nil, http.StatusOK, &chans)
	require.Len(t, chans, 2)
	byName := map[string]*model.Channel{}
	for _, c := range chans {
		byName[c.Name] = c
		require.Equal(t, model.ChannelOpen, c.Type)
		require.Equal(t, team.ID, c.TeamID)
	}
	require.Equal(t, "Town Square", byName["town-square"].DisplayName)
	require.Equal(t, "Off-Topic", byName["off-topic"].DisplayName)
	var cm model.ChannelMember
	owner.mustDo("GET", "/channels/"+byName["town-square"].ID+"/members/me", nil, http.StatusOK, &cm)
	require.Equal(t, "channel_user channel_admin", cm.Roles)

	// Listed among the creator's teams.
	var mine []*model.Team
	owner.mustDo("GET", "/users/me/teams", nil, http.StatusOK, &mine)
	require.Len(t, mine, 1)
	require.Equal(t, team.ID, mine[0].ID)
}

func TestTeamCreateDefaultChannelsFromSettings(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.DefaultChannels = []string{"town-square", "lobby"} })
	admin := ts.newUser()
	team := admin.createTeam(true)
	u := ts.newUser()
	u.addToTeam(team.ID, u)
	var chans []*model.Channel
	u.mustDo("GET", "/users/me/teams/"+team.ID+"/channels", nil, http.StatusOK, &chans)
	var names []string
	for _, c := range chans {
		names = append(names, c.Name)
	}
	require.ElementsMatch(t, []string{"town-square", "lobby"}, names)
}

func TestTeamCreateInvalid(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	u := ts.newUser()
	u.mustDo("POST", "/teams", map[string]any{"name": "taken", "display_name": "Taken", "type": "O"}, http.StatusCreated, nil)
	team := func(name, display, typ string) map[string]any {
		return map[string]any{"name": name, "display_name": display, "type": typ}
	}
	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		body any
		id   string
	}{
		{"duplicate name", team("taken", "Again", "O"), "store.sql_team.save_team.existing.app_error"},
		{"upper case", team("MyTeam", "x", "O"), "model.team.is_valid.characters.app_error"},
		{"one character", team("a", "x", "O"), "model.team.is_valid.characters.app_error"},
		{"leading dash", team("-ab", "x", "O"), "model.team.is_valid.characters.app_error"},
		{"space", team("my team", "x", "O"), "model.team.is_valid.characters.app_error"},
		{"too long", team(long, "x", "O"), "model.team.is_valid.url.app_error"},
		{"reserved", team("api", "x", "O"), "model.team.is_valid.reserved.app_error"},
		{"reserved prefix", team("signup-team", "x", "O"), "model.team.is_valid.reserved.app_error"},
		{"no display name", team("nodisplay", "", "O"), "model.team.is_valid.name.app_error"},
		{"long display name", team("longdisplay", strings.Repeat("é", 65), "O"), "model.team.is_valid.name.app_error"},
		{"bad type", team("badtype", "x", "X"), "model.team.is_valid.type.app_error"},
		{"malformed JSON", `{"name":`, "api.context.invalid_body_param.app_error"},
		{"wrong field type", `{"name": 5}`, "api.context.invalid_body_param.app_error"},
		{"no body", nil, "api.context.invalid_body_param.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u.requireAppError("POST", "/teams", tt.body, http.StatusBadRequest, tt.id)
		})
	}
}

func TestTeamGet(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	owner, member, outsider := ts.newUser(), ts.newUser(), ts.newUser()
	open := owner.createTeam(true)
	closed := owner.createTeam(false)
	owner.addToTeam(closed.ID, member)
	owner.addToTeam(open.ID, member)

	// Email is for team admins, the invite id for members.
	tests := []struct {
		name        string
		c           *client
		team        *model.Team
		status      int
		email, invt bool
	}{
		{"owner open", owner, open, http.StatusOK, true, true},
		{"member open", member, open, http.StatusOK, false, true},
		{"outsider open", outsider, open, http.StatusOK, false, false},
		{"outsider closed", outsider, closed, http.StatusForbidden, false, false},
		{"member closed", member, closed, http.StatusOK, false, true},
		{"system admin closed", admin, closed, http.StatusOK, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/teams/" + tt.team.ID, "/teams/name/" + tt.team.Name} {
				if tt.status != http.StatusOK {
					tt.c.requireAppError("GET", path, nil, tt.status, "api.context.permissions.app_error")
					continue
				}
				var got model.Team
				tt.c.mustDo("GET", path, nil, http.StatusOK, &got)
				require.Equal(t, tt.team.ID, got.ID)
				require.Equal(t, tt.email, got.Email != "", "email")
				require.Equal(t, tt.invt, got.InviteID != "", "invite id")
			}
		})
	}

	outsider.requireAppError("GET", "/teams/"+model.NewID(), nil, http.StatusNotFound, "app.team.get.find.app_error")
	outsider.requireAppError("GET", "/teams/name/nosuchteam", nil, http.StatusNotFound, "app.team.get_by_name.missing.app_error")
	outsider.requireAppError("GET", "/teams/not-an-id", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
	outsider.requireAppError("GET", "/teams/name/Bad_Name", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
	ts.anon().requireAppError("GET", "/teams/"+open.ID, nil, http.StatusUnauthorized, "api.context.session_expired.app_error")

	exists := func(c *client, name string) bool {
		var out map[string]bool
		c.mustDo("GET", "/teams/name/"+name+"/exists", nil, http.StatusOK, &out)
		return out["exists"]
	}
	require.True(t, exists(outsider, open.Name))
	require.False(t, exists(outsider, closed.Name), "an invite-only team is not listed to outsiders")
	require.True(t, exists(member, closed.Name))
	require.True(t, exists(admin, closed.Name))
	require.False(t, exists(admin, "nosuchteam"))
}

func TestTeamList(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	u := ts.newUser()
	open1, open2 := admin.createTeam(true), admin.createTeam(true)
	closed := admin.createTeam(false)

	ids := func(c *client, query string) []string {
		var teams []*model.Team
		c.mustDo("GET", "/teams"+query, nil, http.StatusOK, &teams)
		out := []string{}
		for _, t := range teams {
			out = append(out, t.ID)
		}
		return out
	}
	require.ElementsMatch(t, []string{open1.ID, open2.ID}, ids(u, ""))
	require.ElementsMatch(t, []string{open1.ID, open2.ID, closed.ID}, ids(admin, ""))
	page0, page1 := ids(admin, "?page=0&per_page=2"), ids(admin, "?page=1&per_page=2")
	require.Len(t, page0, 2)
	require.Len(t, page1, 1)
	require.NotContains(t, page0, page1[0])
	require.Empty(t, ids(admin, "?page=5&per_page=2"))

	var withCount struct {
		Teams      []*model.Team `json:"teams"`
		TotalCount int64         `json:"total_count"`
	}
	u.mustDo("GET", "/teams?include_total_count=true&per_page=1", nil, http.StatusOK, &withCount)
	require.Len(t, withCount.Teams, 1)
	require.Equal(t, int64(2), withCount.TotalCount)
}

func TestTeamPatch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	owner, member := ts.newUser(), ts.newUser()
	team := owner.createTeam(true)
	owner.addToTeam(team.ID, member)
	ws := member.ws()

	member.requireAppError("PUT", "/teams/"+team.ID+"/patch", map[string]any{"display_name": "Mine"},
		http.StatusForbidden, "api.context.permissions.app_error")
	ts.newUser().requireAppError("PUT", "/teams/"+team.ID+"/patch", map[string]any{"display_name": "Mine"},
		http.StatusForbidden, "api.context.permissions.app_error")

	var got model.Team
	owner.mustDo("PUT", "/teams/"+team.ID+"/patch", map[string]any{"display_name": "Renamed", "description": "new"},
		http.StatusOK, &got)
	require.Equal(t, "Renamed", got.DisplayName)
	require.Equal(t, "new", got.Description)
	require.Equal(t, team.Name, got.Name)
	require.Equal(t, team.InviteID, got.InviteID)
	require.Greater(t, got.UpdateAt, int64(0))

	ev := ws.next("update_team")
	var evTeam model.Team
	require.NoError(t, json.Unmarshal([]byte(ev.Data["team"].(string)), &evTeam), "team is a JSON string")
	require.Equal(t, "Renamed", evTeam.DisplayName)
	require.Empty(t, evTeam.Email)
	require.Empty(t, evTeam.InviteID)

	// Closing the team to open invites regenerates the invite id.
	admin.mustDo("PUT", "/teams/"+team.ID+"/patch", map[string]any{"allow_open_invite": false}, http.StatusOK, &got)
	require.False(t, got.AllowOpenInvite)
	require.NotEqual(t, team.InviteID, got.InviteID)

	owner.requireAppError("PUT", "/teams/"+team.ID+"/patch", map[string]any{"display_name": ""},
		http.StatusBadRequest, "model.team.is_valid.name.app_error")
	owner.requireAppError("PUT", "/teams/"+team.ID+"/patch", map[string]any{"description": strings.Repeat("x", 256)},
		http.StatusBadRequest, "model.team.is_valid.description.app_error")
	owner.requireAppError("PUT", "/teams/"+team.ID+"/patch", "[", http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	admin.requireAppError("PUT", "/teams/"+model.NewID()+"/patch", map[string]any{}, http.StatusNotFound, "app.team.get.find.app_error")
}

func TestTeamMembership(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	owner, member, joiner, other := ts.newUser(), ts.newUser(), ts.newUser(), ts.newUser()
	open := owner.createTeam(true)
	closed := owner.createTeam(false)
	owner.addToTeam(open.ID, member)
	owner.addToTeam(closed.ID, member)
	joinerWS := joiner.ws()

	path := func(teamID string) string { return "/teams/" + teamID + "/members" }
	body := func(teamID string, u *client) map[string]any {
		return map[string]any{"team_id": teamID, "user_id": u.User.ID}
	}

	// Joining an open team yourself.
	resp, b := joiner.do("POST", path(open.ID), body(open.ID, joiner))
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	requireKeys(t, b, teamMemberKeys...)
	var tm model.TeamMember
	require.NoError(t, json.Unmarshal(b, &tm))
	require.Equal(t, "team_user", tm.Roles)
	require.False(t, tm.SchemeAdmin)
	require.Zero(t, tm.DeleteAt)
	ev := joinerWS.next("added_to_team")
	require.Equal(t, open.ID, ev.Data["team_id"])
	ev = joinerWS.next("user_added")
	require.Equal(t, joiner.User.ID, ev.Data["user_id"])
	require.Equal(t, open.ID, ev.Data["team_id"])

	// The joiner is in the default channels.
	town := joiner.channelByName(open.ID, "town-square")
	offTopic := joiner.channelByName(open.ID, "off-topic")
	for _, ch := range []*model.Channel{town, offTopic} {
		var cm model.ChannelMember
		joiner.mustDo("GET", "/channels/"+ch.ID+"/members/me", nil, http.StatusOK, &cm)
		require.Equal(t, "channel_user", cm.Roles)
	}

	// Adding an active member again changes nothing.
	joiner.mustDo("POST", path(open.ID), body(open.ID, joiner), http.StatusCreated, &tm)
	require.Zero(t, tm.DeleteAt)

	tests := []struct {
		name   string
		c      *client
		teamID string
		body   any
		status int
		id     string
	}{
		{"join invite-only yourself", other, closed.ID, body(closed.ID, other), http.StatusForbidden, "api.context.permissions.app_error"},
		{"non-member adds to open team", other, open.ID, body(open.ID, admin), http.StatusForbidden, "api.context.permissions.app_error"},
		{"non-member adds to invite-only team", joiner, closed.ID, body(closed.ID, other), http.StatusForbidden, "api.context.permissions.app_error"},
		{"team_id differs from path", joiner, open.ID, body(closed.ID, joiner), http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"bad user id", owner, open.ID, map[string]any{"team_id": open.ID, "user_id": "nope"}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"unknown user", owner, open.ID, map[string]any{"team_id": open.ID, "user_id": model.NewID()}, http.StatusNotFound, "app.user.missing_account.const"},
		{"malformed body", owner, open.ID, "{", http.StatusBadRequest, "api.team.add_team_member.invalid_body.app_error"},
		{"unknown team", admin, model.NewID(), nil, http.StatusNotFound, "app.team.get.find.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.body
			if b == nil {
				b = map[string]any{"team_id": tt.teamID, "user_id": other.User.ID}
			}
			tt.c.requireAppError("POST", path(tt.teamID), b, tt.status, tt.id)
		})
	}
	owner.requireAppError("POST", "/teams/bad/members", body(open.ID, other), http.StatusBadRequest, "api.context.invalid_url_param.app_error")

	// A member of an open team may add others; a team admin may add to an
	// invite-only team.
	member.addToTeam(open.ID, other)
	owner.addToTeam(closed.ID, other)

	// Listing members.
	var ms []*model.TeamMember
	member.mustDo("GET", path(open.ID), nil, http.StatusOK, &ms)
	require.Len(t, ms, 4)
	member.mustDo("GET", path(open.ID)+"?page=1&per_page=3", nil, http.StatusOK, &ms)
	require.Len(t, ms, 1)
	ts.newUser().requireAppError("GET", path(open.ID), nil, http.StatusForbidden, "api.context.permissions.app_error")
	member.mustDo("POST", path(open.ID)+"/ids", []string{owner.User.ID, admin.User.ID}, http.StatusOK, &ms)
	require.Len(t, ms, 1)
	require.Equal(t, owner.User.ID, ms[0].UserID)
	member.requireAppError("POST", path(open.ID)+"/ids", []string{}, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	member.requireAppError("GET", path(open.ID)+"/"+admin.User.ID, nil, http.StatusNotFound, "app.team.get_member.missing.app_error")

	// Removing: others need team admin, users may leave.
	member.requireAppError("DELETE", path(open.ID)+"/"+joiner.User.ID, nil, http.StatusForbidden, "api.context.permissions.app_error")
	var st model.StatusOK
	joiner.mustDo("DELETE", path(open.ID)+"/me", nil, http.StatusOK, &st)
	require.Equal(t, "OK", st.Status)
	ev = joinerWS.next("leave_team")
	require.Equal(t, map[string]any{"user_id": joiner.User.ID, "team_id": open.ID}, ev.Data)
	joiner.requireAppError("DELETE", path(open.ID)+"/me", nil, http.StatusBadRequest, "api.team.remove_user_from_team.missing.app_error")
	owner.mustDo("GET", path(open.ID)+"/"+joiner.User.ID, nil, http.StatusOK, &tm)
	require.NotZero(t, tm.DeleteAt)
	owner.requireAppError("GET", "/channels/"+town.ID+"/members/"+joiner.User.ID, nil, http.StatusNotFound, "app.channel.get_member.missing.app_error")
	joiner.requireAppError("GET", "/teams/"+open.ID+"/channels", nil, http.StatusForbidden, "api.context.permissions.app_error")
	var mine []*model.TeamMember
	joiner.mustDo("GET", "/users/me/teams/members", nil, http.StatusOK, &mine)
	require.Len(t, mine, 1, "removed memberships are listed")
	require.NotZero(t, mine[0].DeleteAt)
	var teams []*model.Team
	joiner.mustDo("GET", "/users/me/teams", nil, http.StatusOK, &teams)
	require.Empty(t, teams)

	// A team admin removes someone; re-adding reactivates them.
	owner.mustDo("DELETE", path(open.ID)+"/"+other.User.ID, nil, http.StatusOK, nil)
	joiner.mustDo("POST", path(open.ID), body(open.ID, joiner), http.StatusCreated, &tm)
	require.Zero(t, tm.DeleteAt)
	joiner.mustDo("GET", "/channels/"+town.ID+"/members/me", nil, http.StatusOK, nil)

	// Other users' teams are for system admins.
	joiner.requireAppError("GET", "/users/"+owner.User.ID+"/teams", nil, http.StatusForbidden, "api.context.permissions.app_error")
	joiner.requireAppError("GET", "/users/"+owner.User.ID+"/teams/members", nil, http.StatusForbidden, "api.context.permissions.app_error")
	admin.mustDo("GET", "/users/"+owner.User.ID+"/teams", nil, http.StatusOK, &teams)
	require.Len(t, teams, 2)
	require.NotEmpty(t, teams[0].Email, "system admins see everything")
}

func TestTeamMaxUsers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.MaxUsersPerTeam = 2 })
	admin := ts.newUser()
	u1, u2 := ts.newUser(), ts.newUser()
	team := admin.createTeam(true)
	u1.addToTeam(team.ID, u1)
	u2.requireAppError("POST", "/teams/"+team.ID+"/members", map[string]any{"team_id": team.ID, "user_id": u2.User.ID},
		http.StatusBadRequest, "app.team.join_user_to_team.max_accounts.app_error")
	admin.requireAppError("POST", "/teams/"+team.ID+"/members/batch", []map[string]any{{"team_id": team.ID, "user_id": u2.User.ID}},
		http.StatusBadRequest, "app.team.join_user_to_team.max_accounts.app_error")
	// An active member re-added does not count twice.
	u1.addToTeam(team.ID, u1)
	// Leaving frees a seat.
	u1.mustDo("DELETE", "/teams/"+team.ID+"/members/me", nil, http.StatusOK, nil)
	u2.addToTeam(team.ID, u2)
	u1.requireAppError("POST", "/teams/"+team.ID+"/members", map[string]any{"team_id": team.ID, "user_id": u1.User.ID},
		http.StatusBadRequest, "app.team.join_user_to_team.max_accounts.app_error")
}

func TestTeamMaxUsersConcurrent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *app.Settings, _ *api.Options) { s.MaxUsersPerTeam = 3 })
	admin := ts.newUser()
	team := admin.createTeam(true)
	users := make([]*client, 6)
	for i := range users {
		users[i] = ts.newUser()
	}
	// The joins run in their own goroutines, which must not call
	// require: they report status codes (0 for a transport error).
	join := func(u *client) int {
		body := fmt.Sprintf(`{"team_id":%q,"user_id":%q}`, team.ID, u.User.ID)
		req, err := http.NewRequest("POST", ts.URL+"/api/v4/teams/"+team.ID+"/members", strings.NewReader(body))
		if err != nil {
			return 0
		}
		req.Header.Set("Authorization", "Bearer "+u.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := make(chan int, len(users))
	for _, u := range users {
		go func() { codes <- join(u) }()
	}
	created := 0
	for range users {
		code := <-codes
		require.Contains(t, []int{http.StatusCreated, http.StatusBadRequest}, code)
		if code == http.StatusCreated {
			created++
		}
	}
	require.Equal(t, 2, created, "the creator holds one of the three seats")
	var ms []*model.TeamMember
	admin.mustDo("GET", "/teams/"+team.ID+"/members", nil, http.StatusOK, &ms)
	require.Len(t, ms, 3)
}

func TestTeamBatchAdd(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	owner, u1, u2 := ts.newUser(), ts.newUser(), ts.newUser()
	team := owner.createTeam(false)
	member := func(u *client) map[string]any { return map[string]any{"team_id": team.ID, "user_id": u.User.ID} }

	var ms []*model.TeamMember
	owner.mustDo("POST", "/teams/"+team.ID+"/members/batch", []any{member(u1), member(u2)}, http.StatusCreated, &ms)
	require.Len(t, ms, 2)
	require.Equal(t, u1.User.ID, ms[0].UserID)
	require.Equal(t, u2.User.ID, ms[1].UserID)

	outsider := ts.newUser()
	outsider.requireAppError("POST", "/teams/"+team.ID+"/members/batch", []any{member(outsider)}, http.StatusForbidden, "api.context.permissions.app_error")
	owner.requireAppError("POST", "/teams/"+team.ID+"/members/batch", []any{}, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	owner.requireAppError("POST", "/teams/"+team.ID+"/members/batch", []any{map[string]any{"team_id": model.NewID(), "user_id": u1.User.ID}},
		http.StatusBadRequest, "api.context.invalid_body_param.app_error")

	// Graceful mode reports each user.
	ghost := model.NewID()
	var res []struct {
		UserID string            `json:"user_id"`
		Member *model.TeamMember `json:"member"`
		Error  *model.AppError   `json:"error"`
	}
	owner.mustDo("POST", "/teams/"+team.ID+"/members/batch?graceful=true",
		[]any{member(u1), map[string]any{"team_id": team.ID, "user_id": ghost}}, http.StatusCreated, &res)
	require.Len(t, res, 2)
	require.NotNil(t, res[0].Member)
	require.Nil(t, res[0].Error)
	require.Equal(t, ghost, res[1].UserID)
	require.Nil(t, res[1].Member)
	require.Equal(t, "app.user.missing_account.const", res[1].Error.ID)
}

func TestTeamJoinByInvite(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	owner, u := ts.newUser(), ts.newUser()
	team := owner.createTeam(false)

	var tm model.TeamMember
	u.mustDo("POST", "/teams/members/invite?invite_id="+team.InviteID, nil, http.StatusCreated, &tm)
	require.Equal(t, team.ID, tm.TeamID)
	require.Equal(t, u.User.ID, tm.UserID)
	u.channelByName(team.ID, "town-square")

	u.requireAppError("POST", "/teams/members/invite?invite_id="+model.NewID(), nil, http.StatusNotFound, "app.team.get_by_invite_id.finding.app_error")
	u.requireAppError("POST", "/teams/members/invite", nil, http.StatusBadRequest, "api.team.add_user_to_team.missing_parameter.app_error")
	u.requireAppError("POST", "/teams/members/invite?token=abc", nil, http.StatusBadRequest, "api.user.create_user.signup_link_invalid.app_error")
}

func TestTeamUnread(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser()
	owner, u := ts.newUser(), ts.newUser()
	team1, team2 := owner.createTeam(true), owner.createTeam(true)
	u.addToTeam(team1.ID, u)
	u.addToTeam(team2.ID, u)
	town1 := u.channelByName(team1.ID, "town-square")
	off1 := u.channelByName(team1.ID, "off-topic")
	town2 := u.channelByName(team2.ID, "town-square")
	// Posts are someone else's feature: fake their counters.
	setCounts(t, ts, town1.ID, u.User.ID, 5, 3, 2)
	setCounts(t, ts, off1.ID, u.User.ID, 4, 4, 1)
	setCounts(t, ts, town2.ID, u.User.ID, 7, 7, 0)

	var tu model.TeamUnread
	resp, body := u.do("GET", "/users/me/teams/"+team1.ID+"/unread", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	requireKeys(t, body, "team_id", "msg_count", "mention_count", "mention_count_root", "msg_count_root",
		"thread_count", "thread_mention_count", "thread_urgent_mention_count")
	require.NoError(t, json.Unmarshal(body, &tu))
	require.Equal(t, model.TeamUnread{TeamID: team1.ID, MsgCount: 9, MsgCountRoot: 7, MentionCount: 3, MentionCountRoot: 3}, tu)

	var all []*model.TeamUnread
	u.mustDo("GET", "/users/me/teams/unread", nil, http.StatusOK, &all)
	require.Len(t, all, 2)
	u.mustDo("GET", "/users/me/teams/unread?exclude_team="+team1.ID, nil, http.StatusOK, &all)
	require.Len(t, all, 1)
	require.Equal(t, model.TeamUnread{TeamID: team2.ID, MsgCount: 7, MsgCountRoot: 7}, *all[0])

	// Viewing a channel clears its part.
	u.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": town1.ID}, http.StatusOK, nil)
	u.mustDo("GET", "/users/me/teams/"+team1.ID+"/unread", nil, http.StatusOK, &tu)
	require.Equal(t, model.TeamUnread{TeamID: team1.ID, MsgCount: 4, MsgCountRoot: 4, MentionCount: 1, MentionCountRoot: 1}, tu)

	// mark_unread=mention channels add mentions only.
	u.mustDo("PUT", "/channels/"+off1.ID+"/members/me/notify_props", map[string]string{"mark_unread": "mention"}, http.StatusOK, nil)
	u.mustDo("GET", "/users/me/teams/"+team1.ID+"/unread", nil, http.StatusOK, &tu)
	require.Equal(t, model.TeamUnread{TeamID: team1.ID, MentionCount: 1, MentionCountRoot: 1}, tu)

	u.requireAppError("GET", "/users/"+owner.User.ID+"/teams/unread", nil, http.StatusForbidden, "api.context.permissions.app_error")
	u.requireAppError("GET", "/users/"+owner.User.ID+"/teams/"+team1.ID+"/unread", nil, http.StatusForbidden, "api.context.permissions.app_error")
	u.requireAppError("GET", "/users/me/teams/unread?exclude_team=bad", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
	ts.newUser().requireAppError("GET", "/users/me/teams/"+team1.ID+"/unread", nil, http.StatusForbidden, "api.context.permissions.app_error")
}

// setCounts fakes the effect of posts on a channel: total messages, of
// which roots, and the member's mentions (all of them in root posts).
func setCounts(t *testing.T, ts *testServer, channelID, userID string, total, roots, mentions int64) {
	t.Helper()
	ctx := context.Background()
	_, err := ts.Store.Pool().Exec(ctx, `UPDATE channels SET total_msg_count = $2, total_msg_count_root = $3, last_post_at = $4 WHERE id = $1`,
		channelID, total, roots, time.Now().UnixMilli())
	require.NoError(t, err)
	_, err = ts.Store.Pool().Exec(ctx, `UPDATE channel_members SET mention_count = $3, mention_count_root = $3
		WHERE channel_id = $1 AND user_id = $2`, channelID, userID, mentions)
	require.NoError(t, err)
}
