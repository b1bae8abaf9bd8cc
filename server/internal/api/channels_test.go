package api_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

var channelKeys = []string{"id", "create_at", "update_at", "delete_at", "team_id", "type", "display_name", "name", "header",
	"purpose", "last_post_at", "total_msg_count", "extra_update_at", "creator_id", "scheme_id", "props", "group_constrained",
	"shared", "total_msg_count_root", "policy_id", "last_root_post_at"}

var channelMemberKeys = []string{"channel_id", "user_id", "roles", "last_viewed_at", "msg_count", "mention_count",
	"mention_count_root", "urgent_mention_count", "msg_count_root", "notify_props", "last_update_at", "scheme_guest",
	"scheme_user", "scheme_admin", "explicit_roles"}

// Reading a private, direct or group channel by id without access is
// refused with 403 api.context.permissions.app_error, as Mattermost does
// (app.readableChannel); lookups by name answer 404.
const (
	hiddenStatus = http.StatusForbidden
	hiddenID     = "api.context.permissions.app_error"
)

// channelFixture is a team with an owner (team admin), a member and an
// outsider (a user in no team), plus a public and a private channel made
// by the owner.
type channelFixture struct {
	ts                    *testServer
	admin, owner, member  *client
	outsider              *client
	team                  *model.Team
	town, public, private *model.Channel
}

func newChannelFixture(t *testing.T, mutate ...func(*app.Settings, *api.Options)) *channelFixture {
	t.Helper()
	ts := newTestServer(t, mutate...)
	f := &channelFixture{ts: ts, admin: ts.newUser(), owner: ts.newUser(), member: ts.newUser(), outsider: ts.newUser()}
	f.team = f.owner.createTeam(true)
	f.owner.addToTeam(f.team.ID, f.member)
	f.town = f.owner.channelByName(f.team.ID, "town-square")
	f.public = f.owner.createChannel(f.team.ID, model.ChannelOpen)
	f.private = f.owner.createChannel(f.team.ID, model.ChannelPrivate)
	return f
}

func TestChannelCreate(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	ws := f.member.ws()

	for _, typ := range []string{model.ChannelOpen, model.ChannelPrivate} {
		name := uniq("new-chan_")
		resp, body := f.member.do("POST", "/channels", map[string]any{"team_id": f.team.ID, "name": name, "display_name": " Fresh ",
			"type": typ, "purpose": "why", "header": "what"})
		require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
		requireKeys(t, body, channelKeys...)
		var ch model.Channel
		require.NoError(t, json.Unmarshal(body, &ch))
		require.True(t, model.IsValidID(ch.ID))
		require.Equal(t, typ, ch.Type)
		require.Equal(t, name, ch.Name)
		require.Equal(t, "Fresh", ch.DisplayName)
		require.Equal(t, "why", ch.Purpose)
		require.Equal(t, "what", ch.Header)
		require.Equal(t, f.team.ID, ch.TeamID)
		require.Equal(t, f.member.User.ID, ch.CreatorID)
		require.NotZero(t, ch.CreateAt)
		require.Zero(t, ch.DeleteAt)

		ev := ws.next("channel_created")
		require.Equal(t, map[string]any{"channel_id": ch.ID, "team_id": f.team.ID}, ev.Data)

		resp, body = f.member.do("GET", "/channels/"+ch.ID+"/members/me", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		requireKeys(t, body, channelMemberKeys...)
		var cm model.ChannelMember
		require.NoError(t, json.Unmarshal(body, &cm))
		require.Equal(t, "channel_user channel_admin", cm.Roles)
		require.True(t, cm.SchemeUser)
		require.True(t, cm.SchemeAdmin)
		require.Empty(t, cm.ExplicitRoles)
		require.Equal(t, model.DefaultChannelNotifyProps(), cm.NotifyProps)
	}
}

func TestChannelCreateInvalid(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	ch := func(name, display, typ string) map[string]any {
		return map[string]any{"team_id": f.team.ID, "name": name, "display_name": display, "type": typ}
	}
	with := func(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
	id1, id2 := model.NewID(), model.NewID()
	tests := []struct {
		name   string
		c      *client
		body   any
		status int
		id     string
	}{
		{"duplicate", f.member, ch(f.public.Name, "x", "O"), http.StatusBadRequest, "store.sql_channel.save_channel.exists.app_error"},
		{"duplicate of default", f.member, ch("town-square", "x", "P"), http.StatusBadRequest, "store.sql_channel.save_channel.exists.app_error"},
		{"no team", f.member, with(ch("a", "x", "O"), "team_id", ""), http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"no display name", f.member, ch("nodisplay", "", "O"), http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"upper case name", f.member, ch("Upper", "x", "O"), http.StatusBadRequest, "model.channel.is_valid.1_or_more.app_error"},
		{"leading dash", f.member, ch("-abc", "x", "O"), http.StatusBadRequest, "model.channel.is_valid.1_or_more.app_error"},
		{"empty name", f.member, ch("", "x", "O"), http.StatusBadRequest, "model.channel.is_valid.1_or_more.app_error"},
		{"long name", f.member, ch(strings.Repeat("a", 65), "x", "O"), http.StatusBadRequest, "model.channel.is_valid.1_or_more.app_error"},
		{"long display name", f.member, ch("longdisplay", strings.Repeat("é", 65), "O"), http.StatusBadRequest, "model.channel.is_valid.display_name.app_error"},
		{"long purpose", f.member, with(ch("longpurpose", "x", "O"), "purpose", strings.Repeat("p", 251)), http.StatusBadRequest, "model.channel.is_valid.purpose.app_error"},
		{"long header", f.member, with(ch("longheader", "x", "O"), "header", strings.Repeat("h", 1025)), http.StatusBadRequest, "model.channel.is_valid.header.app_error"},
		{"bad type", f.member, ch("badtype", "x", "X"), http.StatusBadRequest, "model.channel.is_valid.type.app_error"},
		{"direct type", f.member, ch("direct", "x", "D"), http.StatusBadRequest, "api.channel.create_channel.direct_channel.app_error"},
		{"DM-like name", f.member, ch(id1+"__"+id2, "x", "O"), http.StatusBadRequest, "model.channel.is_valid.name.app_error"},
		{"GM-like name", f.member, ch(strings.Repeat("ab", 20), "x", "O"), http.StatusBadRequest, "model.channel.is_valid.name.app_error"},
		{"not a team member", f.outsider, ch("outside", "x", "O"), http.StatusForbidden, "api.context.permissions.app_error"},
		{"not a team member, private", f.outsider, ch("outside", "x", "P"), http.StatusForbidden, "api.context.permissions.app_error"},
		{"unknown team", f.admin, with(ch("lost", "x", "O"), "team_id", model.NewID()), http.StatusNotFound, "app.team.get.find.app_error"},
		{"malformed JSON", f.member, `{"team_id":`, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.requireAppError("POST", "/channels", tt.body, tt.status, tt.id)
		})
	}
}

func TestChannelMaxPerTeam(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t, func(s *app.Settings, _ *api.Options) { s.MaxChannelsPerTeam = 4 })
	// town-square, off-topic, public and private: the team is full.
	f.member.requireAppError("POST", "/channels", map[string]any{"team_id": f.team.ID, "name": "full", "display_name": "Full", "type": "O"},
		http.StatusBadRequest, "api.channel.create_channel.max_channel_limit.app_error")
}

func TestChannelRead(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	teamMate := f.member // in the team, not in the private channel
	tests := []struct {
		name   string
		c      *client
		ch     *model.Channel
		status int
		id     string
	}{
		{"owner public", f.owner, f.public, http.StatusOK, ""},
		{"team mate public", teamMate, f.public, http.StatusOK, ""},
		{"outsider public", f.outsider, f.public, http.StatusForbidden, "api.context.permissions.app_error"},
		{"owner private", f.owner, f.private, http.StatusOK, ""},
		{"team mate private", teamMate, f.private, hiddenStatus, hiddenID},
		{"outsider private", f.outsider, f.private, hiddenStatus, hiddenID},
		{"system admin private", f.admin, f.private, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/channels/" + tt.ch.ID, "/channels/" + tt.ch.ID + "/members", "/channels/" + tt.ch.ID + "/stats",
				"/channels/" + tt.ch.ID + "/members/" + f.owner.User.ID} {
				if tt.status != http.StatusOK {
					tt.c.requireAppError("GET", path, nil, tt.status, tt.id)
					continue
				}
				tt.c.mustDo("GET", path, nil, http.StatusOK, nil)
			}
			byName := "/teams/" + f.team.ID + "/channels/name/" + tt.ch.Name
			byTeamName := "/teams/name/" + f.team.Name + "/channels/name/" + tt.ch.Name
			for _, path := range []string{byName, byTeamName} {
				switch {
				case tt.status == http.StatusOK:
					var got model.Channel
					tt.c.mustDo("GET", path, nil, http.StatusOK, &got)
					require.Equal(t, tt.ch.ID, got.ID)
				case tt.ch.Type != model.ChannelOpen:
					// By name a hidden channel is missing, as in Mattermost.
					tt.c.requireAppError("GET", path, nil, http.StatusNotFound, "app.channel.get_by_name.missing.app_error")
				default:
					tt.c.requireAppError("GET", path, nil, tt.status, tt.id)
				}
			}
		})
	}

	resp, body := f.member.do("GET", "/channels/"+f.public.ID, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	requireKeys(t, body, channelKeys...)
	require.Contains(t, string(body), `"props":null`)

	f.member.requireAppError("GET", "/channels/xyz", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
	f.member.requireAppError("GET", "/channels/"+model.NewID(), nil, http.StatusNotFound, "app.channel.get.existing.app_error")
	f.member.requireAppError("GET", "/teams/"+f.team.ID+"/channels/name/Bad%20Name", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
	f.member.requireAppError("GET", "/teams/"+f.team.ID+"/channels/name/nothere", nil, http.StatusNotFound, "app.channel.get_by_name.missing.app_error")
	f.member.requireAppError("GET", "/teams/name/noteam/channels/name/town-square", nil, http.StatusNotFound, "app.team.get_by_name.missing.app_error")
	f.member.requireAppError("GET", "/teams/name/No_Team/channels/name/town-square", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")

	// Public channel list: public and unarchived only, paged by display
	// name.
	var list []*model.Channel
	f.member.mustDo("GET", "/teams/"+f.team.ID+"/channels", nil, http.StatusOK, &list)
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	require.ElementsMatch(t, []string{"town-square", "off-topic", f.public.Name}, names)
	f.member.mustDo("GET", "/teams/"+f.team.ID+"/channels?page=1&per_page=2", nil, http.StatusOK, &list)
	require.Len(t, list, 1)
	f.outsider.requireAppError("GET", "/teams/"+f.team.ID+"/channels", nil, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestChannelsForUser(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	var dm model.Channel
	f.member.mustDo("POST", "/channels/direct", []string{f.member.User.ID, f.outsider.User.ID}, http.StatusCreated, &dm)
	gone := f.member.createChannel(f.team.ID, model.ChannelOpen)
	f.member.mustDo("DELETE", "/channels/"+gone.ID, nil, http.StatusOK, nil)

	names := func(c *client, path string) []string {
		var list []*model.Channel
		c.mustDo("GET", path, nil, http.StatusOK, &list)
		out := []string{}
		for _, ch := range list {
			out = append(out, ch.Name)
		}
		return out
	}
	path := "/users/me/teams/" + f.team.ID + "/channels"
	require.ElementsMatch(t, []string{"town-square", "off-topic", dm.Name}, names(f.member, path))
	require.ElementsMatch(t, []string{"town-square", "off-topic", dm.Name, gone.Name}, names(f.member, path+"?include_deleted=true"))
	require.ElementsMatch(t, []string{"town-square", "off-topic", dm.Name},
		names(f.member, path+"?include_deleted=true&last_delete_at="+strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)))
	require.ElementsMatch(t, []string{"town-square", "off-topic", f.public.Name, f.private.Name},
		names(f.admin, "/users/"+f.owner.User.ID+"/teams/"+f.team.ID+"/channels"))

	f.member.requireAppError("GET", "/users/"+f.owner.User.ID+"/teams/"+f.team.ID+"/channels", nil, http.StatusForbidden, "api.context.permissions.app_error")
	f.outsider.requireAppError("GET", "/users/me/teams/"+f.team.ID+"/channels", nil, http.StatusForbidden, "api.context.permissions.app_error")
	f.member.requireAppError("GET", path+"?last_delete_at=x", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")

	var ms []*model.ChannelMember
	f.member.mustDo("GET", "/users/me/teams/"+f.team.ID+"/channels/members", nil, http.StatusOK, &ms)
	require.Len(t, ms, 4, "town-square, off-topic, the archived channel and the DM")
	f.member.requireAppError("GET", "/users/"+f.owner.User.ID+"/teams/"+f.team.ID+"/channels/members", nil, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestChannelAddMember(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	joiner := f.ts.newUser()
	f.owner.addToTeam(f.team.ID, joiner)
	removed := f.ts.newUser()
	f.owner.addToTeam(f.team.ID, removed)
	f.owner.mustDo("DELETE", "/teams/"+f.team.ID+"/members/"+removed.User.ID, nil, http.StatusOK, nil)
	joinerWS := joiner.ws()
	ownerWS := f.owner.ws()
	path := func(ch *model.Channel) string { return "/channels/" + ch.ID + "/members" }

	// A team member joins a public channel.
	resp, body := joiner.do("POST", path(f.public), map[string]any{"user_id": joiner.User.ID})
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	requireKeys(t, body, channelMemberKeys...)
	var cm model.ChannelMember
	require.NoError(t, json.Unmarshal(body, &cm))
	require.Equal(t, "channel_user", cm.Roles)
	require.Equal(t, f.public.ID, cm.ChannelID)
	ev := joinerWS.next("user_added")
	require.Equal(t, map[string]any{"user_id": joiner.User.ID, "team_id": f.team.ID}, ev.Data)
	require.Equal(t, f.public.ID, ev.Broadcast["channel_id"])
	ev = ownerWS.next("user_added")
	require.Equal(t, joiner.User.ID, ev.Data["user_id"])

	// Joining twice returns the membership.
	joiner.mustDo("POST", path(f.public), map[string]any{"user_id": joiner.User.ID}, http.StatusCreated, &cm)

	// A member adds others, in a list; a member's view of others hides
	// their read times.
	var ms []*model.ChannelMember
	f.owner.mustDo("POST", path(f.private), map[string]any{"user_ids": []string{f.member.User.ID, joiner.User.ID}}, http.StatusCreated, &ms)
	require.Len(t, ms, 2)
	for _, m := range ms {
		require.Equal(t, int64(-1), m.LastViewedAt)
		require.Equal(t, int64(-1), m.LastUpdateAt)
	}
	f.member.mustDo("GET", path(f.private)+"/me", nil, http.StatusOK, &cm)
	require.NotEqual(t, int64(-1), cm.LastUpdateAt)

	tests := []struct {
		name   string
		c      *client
		ch     *model.Channel
		body   any
		status int
		id     string
	}{
		{"non-member adds other to public", f.member, f.public, map[string]any{"user_id": f.outsider.User.ID}, http.StatusForbidden, "api.context.permissions.app_error"},
		{"outsider joins public", f.outsider, f.public, map[string]any{"user_id": f.outsider.User.ID}, http.StatusForbidden, "api.context.permissions.app_error"},
		{"user not in team", f.owner, f.public, map[string]any{"user_id": f.outsider.User.ID}, http.StatusNotFound, "app.team.get_member.missing.app_error"},
		{"user removed from team", f.owner, f.public, map[string]any{"user_id": removed.User.ID}, http.StatusBadRequest, "api.channel.add_user.to.channel.failed.deleted.app_error"},
		{"unknown user", f.owner, f.public, map[string]any{"user_id": model.NewID()}, http.StatusNotFound, "app.user.missing_account.const"},
		{"bad user id", f.owner, f.public, map[string]any{"user_id": "x"}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"bad id in list", f.owner, f.public, map[string]any{"user_ids": []string{"x"}}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"no user", f.owner, f.public, map[string]any{}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"malformed", f.owner, f.public, "{", http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"unknown channel", f.admin, &model.Channel{ID: model.NewID()}, map[string]any{"user_id": f.member.User.ID}, http.StatusNotFound, "app.channel.get.existing.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.requireAppError("POST", path(tt.ch), tt.body, tt.status, tt.id)
		})
	}

	// Direct and group messages take no new members.
	var dm model.Channel
	f.owner.mustDo("POST", "/channels/direct", []string{f.owner.User.ID, f.member.User.ID}, http.StatusCreated, &dm)
	f.owner.requireAppError("POST", path(&dm), map[string]any{"user_id": joiner.User.ID}, http.StatusBadRequest, "api.channel.add_user_to_channel.type.app_error")

	// A private channel's non-members cannot see it to add to it.
	other := f.owner.createChannel(f.team.ID, model.ChannelPrivate)
	f.member.requireAppError("POST", path(other), map[string]any{"user_id": f.member.User.ID}, hiddenStatus, hiddenID)

	// Members listing, by ids and paged.
	f.owner.mustDo("POST", path(f.private)+"/ids", []string{f.member.User.ID, f.outsider.User.ID}, http.StatusOK, &ms)
	require.Len(t, ms, 1)
	f.owner.mustDo("GET", path(f.private)+"?per_page=2", nil, http.StatusOK, &ms)
	require.Len(t, ms, 2)
	f.owner.mustDo("GET", path(f.private)+"?page=1&per_page=2", nil, http.StatusOK, &ms)
	require.Len(t, ms, 1)
	f.owner.requireAppError("POST", path(f.private)+"/ids", "[]", http.StatusBadRequest, "api.context.invalid_body_param.app_error")
}

func TestChannelRemoveMember(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	f.owner.mustDo("POST", "/channels/"+f.public.ID+"/members", map[string]any{"user_id": f.member.User.ID}, http.StatusCreated, nil)
	third := f.ts.newUser()
	f.owner.addToTeam(f.team.ID, third)
	memberWS := f.member.ws()
	ownerWS := f.owner.ws()
	path := func(ch *model.Channel, u *client) string { return "/channels/" + ch.ID + "/members/" + u.User.ID }

	third.requireAppError("DELETE", path(f.public, f.member), nil, http.StatusForbidden, "api.context.permissions.app_error")
	f.member.requireAppError("DELETE", path(f.private, f.owner), nil, hiddenStatus, hiddenID)
	f.member.requireAppError("DELETE", path(f.town, f.member), nil, http.StatusBadRequest, "api.channel.remove.default.app_error")
	f.owner.requireAppError("DELETE", path(f.public, third), nil, http.StatusNotFound, "app.channel.get_member.missing.app_error")
	f.owner.requireAppError("DELETE", "/channels/"+f.public.ID+"/members/"+model.NewID(), nil, http.StatusNotFound, "app.user.missing_account.const")

	// A member removes another.
	var st model.StatusOK
	f.owner.mustDo("DELETE", path(f.public, f.member), nil, http.StatusOK, &st)
	require.Equal(t, "OK", st.Status)
	ev := memberWS.next("user_removed")
	require.Equal(t, map[string]any{"channel_id": f.public.ID, "remover_id": f.owner.User.ID}, ev.Data)
	ev = ownerWS.next("user_removed")
	require.Equal(t, map[string]any{"user_id": f.member.User.ID, "remover_id": f.owner.User.ID}, ev.Data)
	f.owner.requireAppError("GET", path(f.public, f.member), nil, http.StatusNotFound, "app.channel.get_member.missing.app_error")

	// Users may leave.
	f.owner.mustDo("DELETE", "/channels/"+f.private.ID+"/members/me", nil, http.StatusOK, nil)
	f.owner.requireAppError("GET", "/channels/"+f.private.ID, nil, hiddenStatus, hiddenID)

	var dm model.Channel
	f.member.mustDo("POST", "/channels/direct", []string{f.member.User.ID, third.User.ID}, http.StatusCreated, &dm)
	f.member.requireAppError("DELETE", "/channels/"+dm.ID+"/members/me", nil, http.StatusBadRequest, "api.channel.remove_channel_member.type.app_error")
}

func TestChannelDirect(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	a, b := f.member, f.outsider // DMs need no common team
	bWS := b.ws()

	resp, body := a.do("POST", "/channels/direct", []string{a.User.ID, b.User.ID})
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	requireKeys(t, body, channelKeys...)
	var dm model.Channel
	require.NoError(t, json.Unmarshal(body, &dm))
	ids := []string{a.User.ID, b.User.ID}
	slices.Sort(ids)
	require.Equal(t, ids[0]+"__"+ids[1], dm.Name)
	require.Equal(t, model.ChannelDirect, dm.Type)
	require.Empty(t, dm.TeamID)
	require.Empty(t, dm.DisplayName)
	ev := bWS.next("direct_added")
	require.Equal(t, map[string]any{"creator_id": a.User.ID, "teammate_id": b.User.ID}, ev.Data)

	// Idempotent, from either side, still 201.
	var again model.Channel
	a.mustDo("POST", "/channels/direct", []string{a.User.ID, b.User.ID}, http.StatusCreated, &again)
	require.Equal(t, dm.ID, again.ID)
	b.mustDo("POST", "/channels/direct", []string{a.User.ID, b.User.ID}, http.StatusCreated, &again)
	require.Equal(t, dm.ID, again.ID)
	var ms []*model.ChannelMember
	a.mustDo("GET", "/channels/"+dm.ID+"/members", nil, http.StatusOK, &ms)
	require.Len(t, ms, 2)
	for _, m := range ms {
		require.Equal(t, "channel_user", m.Roles)
	}

	// A self-DM.
	var self model.Channel
	a.mustDo("POST", "/channels/direct", []string{a.User.ID}, http.StatusCreated, &self)
	require.Equal(t, a.User.ID+"__"+a.User.ID, self.Name)
	a.mustDo("GET", "/channels/"+self.ID+"/members", nil, http.StatusOK, &ms)
	require.Len(t, ms, 1)

	// Outsiders do not see it.
	f.owner.requireAppError("GET", "/channels/"+dm.ID, nil, hiddenStatus, hiddenID)
	f.owner.requireAppError("GET", "/channels/"+dm.ID+"/members", nil, hiddenStatus, hiddenID)
	f.admin.mustDo("GET", "/channels/"+dm.ID, nil, http.StatusOK, nil)

	// Members may change the header only.
	var got model.Channel
	a.mustDo("PUT", "/channels/"+dm.ID+"/patch", map[string]any{"header": "hi"}, http.StatusOK, &got)
	require.Equal(t, "hi", got.Header)
	a.requireAppError("PUT", "/channels/"+dm.ID+"/patch", map[string]any{"display_name": "x"}, http.StatusBadRequest,
		"api.channel.patch_update_channel.update_direct_or_group_messages_not_allowed.app_error")
	a.requireAppError("DELETE", "/channels/"+dm.ID, nil, http.StatusBadRequest, "api.channel.delete_channel.type.invalid")

	tests := []struct {
		name   string
		c      *client
		body   any
		status int
		id     string
	}{
		{"three users", a, []string{a.User.ID, b.User.ID, f.owner.User.ID}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"someone else alone", a, []string{b.User.ID}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"empty", a, []string{}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"caller not included", a, []string{b.User.ID, f.owner.User.ID}, http.StatusForbidden, "api.context.permissions.app_error"},
		{"unknown user", a, []string{a.User.ID, model.NewID()}, http.StatusBadRequest, "api.channel.create_direct_channel.invalid_user.app_error"},
		{"bad id", a, []string{a.User.ID, "bad"}, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"not an array", a, `{"a":1}`, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.requireAppError("POST", "/channels/direct", tt.body, tt.status, tt.id)
		})
	}

	// A system admin may create a DM between others.
	f.admin.mustDo("POST", "/channels/direct", []string{b.User.ID, f.owner.User.ID}, http.StatusCreated, &got)
	require.Equal(t, model.ChannelDirect, got.Type)
}

func TestChannelGroup(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	users := []*client{f.member, f.owner, f.outsider}
	for range 6 {
		users = append(users, f.ts.newUser())
	}
	c := users[0]
	ws := users[2].ws()

	others := []string{users[1].User.ID, users[2].User.ID}
	resp, body := c.do("POST", "/channels/group", others)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	requireKeys(t, body, channelKeys...)
	var gm model.Channel
	require.NoError(t, json.Unmarshal(body, &gm))
	ids := []string{users[0].User.ID, users[1].User.ID, users[2].User.ID}
	slices.Sort(ids)
	h := sha1.Sum([]byte(strings.Join(ids, "")))
	require.Equal(t, hex.EncodeToString(h[:]), gm.Name)
	require.Equal(t, model.ChannelGroup, gm.Type)
	require.Empty(t, gm.TeamID)
	names := []string{users[0].User.Username, users[1].User.Username, users[2].User.Username}
	slices.Sort(names)
	require.Equal(t, strings.Join(names, ", "), gm.DisplayName)

	ev := ws.next("group_added")
	var teammates []string
	require.NoError(t, json.Unmarshal([]byte(ev.Data["teammate_ids"].(string)), &teammates), "teammate_ids is a JSON string")
	require.Equal(t, ids, teammates)
	require.Equal(t, gm.ID, ev.Broadcast["channel_id"])

	// The same set, in any order and with the caller named, is the same
	// channel.
	var again model.Channel
	users[1].mustDo("POST", "/channels/group", []string{ids[2], ids[1], ids[0], ids[0]}, http.StatusCreated, &again)
	require.Equal(t, gm.ID, again.ID)
	users[1].mustDo("POST", "/channels/group", slices.Repeat(ids, 10), http.StatusCreated, &again)
	require.Equal(t, gm.ID, again.ID)
	var ms []*model.ChannelMember
	c.mustDo("GET", "/channels/"+gm.ID+"/members", nil, http.StatusOK, &ms)
	require.Len(t, ms, 3)

	all := func(n int) []string {
		var out []string
		for _, u := range users[1:n] {
			out = append(out, u.User.ID)
		}
		return out
	}
	var eight model.Channel
	c.mustDo("POST", "/channels/group", all(8), http.StatusCreated, &eight)
	tests := []struct {
		name string
		body any
		id   string
	}{
		{"two users", all(2), "api.channel.create_group.bad_size.app_error"},
		{"nine users", all(9), "api.channel.create_group.bad_size.app_error"},
		// Repeats are dropped, but a list this long is refused unread.
		{"long list of repeats", slices.Repeat(all(3), 17), "api.channel.create_group.bad_size.app_error"},
		{"unknown user", []string{ids[0], ids[1], model.NewID()}, "api.channel.create_group.bad_user.app_error"},
		{"empty", []string{}, "api.context.invalid_body_param.app_error"},
		{"bad id", []string{"x", ids[1]}, "api.context.invalid_body_param.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.requireAppError("POST", "/channels/group", tt.body, http.StatusBadRequest, tt.id)
		})
	}
	users[8].requireAppError("GET", "/channels/"+gm.ID, nil, hiddenStatus, hiddenID)
}

func TestChannelUpdate(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	f.owner.mustDo("POST", "/channels/"+f.public.ID+"/members", map[string]any{"user_id": f.member.User.ID}, http.StatusCreated, nil)
	third := f.ts.newUser()
	f.owner.addToTeam(f.team.ID, third)
	ws := f.member.ws()

	var got model.Channel
	f.member.mustDo("PUT", "/channels/"+f.public.ID+"/patch", map[string]any{"header": "new header", "display_name": " Better "}, http.StatusOK, &got)
	require.Equal(t, "new header", got.Header)
	require.Equal(t, "Better", got.DisplayName)
	require.Equal(t, f.public.Name, got.Name)
	require.Greater(t, got.UpdateAt, f.public.UpdateAt-1)
	ev := ws.next("channel_updated")
	var evCh model.Channel
	require.NoError(t, json.Unmarshal([]byte(ev.Data["channel"].(string)), &evCh), "channel is a JSON string")
	require.Equal(t, "new header", evCh.Header)

	// PUT replaces header and purpose; empty names are kept.
	full := *f.public
	full.Header, full.Purpose, full.DisplayName, full.Name = "h2", "", "", ""
	f.member.mustDo("PUT", "/channels/"+f.public.ID, &full, http.StatusOK, &got)
	require.Equal(t, "h2", got.Header)
	require.Empty(t, got.Purpose)
	require.Equal(t, "Better", got.DisplayName)
	require.Equal(t, f.public.Name, got.Name)
	full.Name = "renamed-" + f.public.Name
	f.member.mustDo("PUT", "/channels/"+f.public.ID, &full, http.StatusOK, &got)
	require.Equal(t, full.Name, got.Name)

	town := *f.town
	town.Name = "other-square"
	tests := []struct {
		name   string
		c      *client
		method string
		path   string
		body   any
		status int
		id     string
	}{
		{"non-member of public", third, "PUT", "/channels/" + f.public.ID + "/patch", map[string]any{"header": "x"}, http.StatusForbidden, "api.context.permissions.app_error"},
		{"non-member of private", f.member, "PUT", "/channels/" + f.private.ID + "/patch", map[string]any{"header": "x"}, hiddenStatus, hiddenID},
		{"outsider", f.outsider, "PUT", "/channels/" + f.public.ID + "/patch", map[string]any{"header": "x"}, http.StatusForbidden, "api.context.permissions.app_error"},
		{"rename town-square", f.owner, "PUT", "/channels/" + f.town.ID + "/patch", map[string]any{"name": "lobby"}, http.StatusBadRequest, "api.channel.update_channel.tried.app_error"},
		{"rename town-square by PUT", f.owner, "PUT", "/channels/" + f.town.ID, &town, http.StatusBadRequest, "api.channel.update_channel.tried.app_error"},
		{"duplicate name", f.owner, "PUT", "/channels/" + f.private.ID + "/patch", map[string]any{"name": "off-topic"}, http.StatusBadRequest, "store.sql_channel.save_channel.exists.app_error"},
		{"bad name", f.owner, "PUT", "/channels/" + f.private.ID + "/patch", map[string]any{"name": "Not Valid"}, http.StatusBadRequest, "model.channel.is_valid.1_or_more.app_error"},
		{"long purpose", f.owner, "PUT", "/channels/" + f.private.ID + "/patch", map[string]any{"purpose": strings.Repeat("p", 251)}, http.StatusBadRequest, "model.channel.is_valid.purpose.app_error"},
		{"id differs", f.owner, "PUT", "/channels/" + f.private.ID, f.public, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"type change", f.owner, "PUT", "/channels/" + f.private.ID, func() *model.Channel { c := *f.private; c.Type = "O"; return &c }(), http.StatusBadRequest, "api.channel.update_channel.typechange.app_error"},
		{"malformed", f.owner, "PUT", "/channels/" + f.private.ID + "/patch", "{", http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.requireAppError(tt.method, tt.path, tt.body, tt.status, tt.id)
		})
	}

	// A team admin manages public channels they are not in.
	f.owner.mustDo("DELETE", "/channels/"+f.public.ID+"/members/me", nil, http.StatusOK, nil)
	f.owner.mustDo("PUT", "/channels/"+f.public.ID+"/patch", map[string]any{"purpose": "admin"}, http.StatusOK, &got)
	require.Equal(t, "admin", got.Purpose)
}

func TestChannelDelete(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	third := f.ts.newUser()
	f.owner.addToTeam(f.team.ID, third)
	ws := third.ws()
	ownerWS := f.owner.ws()

	third.requireAppError("DELETE", "/channels/"+f.public.ID, nil, http.StatusForbidden, "api.context.permissions.app_error")
	third.requireAppError("DELETE", "/channels/"+f.private.ID, nil, hiddenStatus, hiddenID)
	f.owner.requireAppError("DELETE", "/channels/"+f.town.ID, nil, http.StatusBadRequest, "api.channel.delete_channel.cannot.app_error")
	f.owner.requireAppError("DELETE", "/channels/"+f.public.ID+"?permanent=true", nil, http.StatusUnauthorized, "api.user.delete_channel.not_enabled.app_error")

	var st model.StatusOK
	f.owner.mustDo("DELETE", "/channels/"+f.public.ID, nil, http.StatusOK, &st)
	require.Equal(t, "OK", st.Status)
	ev := ws.next("channel_deleted") // public: the whole team hears
	require.Equal(t, f.public.ID, ev.Data["channel_id"])
	require.NotZero(t, ev.Data["delete_at"])
	require.Equal(t, f.team.ID, ev.Broadcast["team_id"], "%v", ev)

	var got model.Channel
	f.owner.mustDo("GET", "/channels/"+f.public.ID, nil, http.StatusOK, &got)
	require.NotZero(t, got.DeleteAt)
	f.owner.requireAppError("GET", "/teams/"+f.team.ID+"/channels/name/"+f.public.Name, nil, http.StatusNotFound, "app.channel.get_by_name.missing.app_error")
	f.owner.mustDo("GET", "/teams/"+f.team.ID+"/channels/name/"+f.public.Name+"?include_deleted=true", nil, http.StatusOK, &got)
	require.Equal(t, f.public.ID, got.ID)
	f.owner.requireAppError("DELETE", "/channels/"+f.public.ID, nil, http.StatusBadRequest, "api.channel.delete_channel.deleted.app_error")
	f.owner.requireAppError("PUT", "/channels/"+f.public.ID+"/patch", map[string]any{"header": "x"}, http.StatusBadRequest, "api.channel.update_channel.deleted.app_error")

	f.owner.mustDo("DELETE", "/channels/"+f.private.ID, nil, http.StatusOK, nil)
	require.Equal(t, f.public.ID, ownerWS.next("channel_deleted").Data["channel_id"])
	ev = ownerWS.next("channel_deleted") // private: its members hear
	require.Equal(t, f.private.ID, ev.Data["channel_id"])
	require.Equal(t, f.private.ID, ev.Broadcast["channel_id"])
}

func TestChannelStats(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	f.owner.mustDo("POST", "/channels/"+f.public.ID+"/members", map[string]any{"user_id": f.member.User.ID}, http.StatusCreated, nil)
	ctx := context.Background()
	for i, pinned := range []bool{true, true, false} {
		_, err := f.ts.Store.Pool().Exec(ctx, `INSERT INTO posts (id, create_at, update_at, user_id, channel_id, message, is_pinned)
			VALUES ($1, $2, $2, $3, $4, 'hi', $5)`, model.NewID(), int64(i+1), f.owner.User.ID, f.public.ID, pinned)
		require.NoError(t, err)
	}
	resp, body := f.member.do("GET", "/channels/"+f.public.ID+"/stats", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	requireKeys(t, body, "channel_id", "member_count", "guest_count", "pinnedpost_count", "files_count")
	var st app.ChannelStats
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, app.ChannelStats{ChannelID: f.public.ID, MemberCount: 2, PinnedPostCount: 2}, st)
	f.member.mustDo("GET", "/channels/"+f.public.ID+"/stats?exclude_files_count=true", nil, http.StatusOK, &st)
	require.Equal(t, int64(-1), st.FilesCount)
	f.outsider.requireAppError("GET", "/channels/"+f.public.ID+"/stats", nil, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestChannelViewAndUnread(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	u := f.member
	off := u.channelByName(f.team.ID, "off-topic")
	setCounts(t, f.ts, f.town.ID, u.User.ID, 6, 4, 2)
	setCounts(t, f.ts, off.ID, u.User.ID, 3, 3, 0)
	ws := u.ws()

	resp, body := u.do("GET", "/users/me/channels/"+f.town.ID+"/unread", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var cu model.ChannelUnread
	require.NoError(t, json.Unmarshal(body, &cu))
	require.Equal(t, f.team.ID, cu.TeamID)
	require.Equal(t, f.town.ID, cu.ChannelID)
	require.Equal(t, int64(6), cu.MsgCount)
	require.Equal(t, int64(4), cu.MsgCountRoot)
	require.Equal(t, int64(2), cu.MentionCount)
	require.Equal(t, int64(2), cu.MentionCountRoot)

	// Viewing marks both the channel and the one left.
	before := time.Now().UnixMilli()
	resp, body = u.do("POST", "/channels/members/me/view", map[string]any{"channel_id": f.town.ID, "prev_channel_id": off.ID})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	requireKeys(t, body, "status", "last_viewed_at_times")
	var vr model.ChannelViewResponse
	require.NoError(t, json.Unmarshal(body, &vr))
	require.Equal(t, "OK", vr.Status)
	require.Len(t, vr.LastViewedAtTimes, 2)
	require.GreaterOrEqual(t, vr.LastViewedAtTimes[f.town.ID], before)
	ev := ws.next("multiple_channels_viewed")
	times := ev.Data["channel_times"].(map[string]any)
	require.EqualValues(t, vr.LastViewedAtTimes[f.town.ID], times[f.town.ID])

	u.mustDo("GET", "/users/me/channels/"+f.town.ID+"/unread", nil, http.StatusOK, &cu)
	require.Zero(t, cu.MsgCount)
	require.Zero(t, cu.MentionCount)
	var cm model.ChannelMember
	u.mustDo("GET", "/channels/"+f.town.ID+"/members/me", nil, http.StatusOK, &cm)
	require.Equal(t, int64(6), cm.MsgCount)
	require.Equal(t, int64(4), cm.MsgCountRoot)
	require.Equal(t, vr.LastViewedAtTimes[f.town.ID], cm.LastViewedAt)

	// Blank ids are fine; channels the user is not in are ignored.
	resp, body = u.do("POST", "/channels/members/me/view", map[string]any{"channel_id": ""})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"status":"OK","last_viewed_at_times":{}}`, string(body))
	resp, body = u.do("POST", "/channels/members/me/view", map[string]any{"channel_id": f.private.ID})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"status":"OK","last_viewed_at_times":{}}`, string(body))

	u.requireAppError("POST", "/channels/members/me/view", map[string]any{"channel_id": "bad"}, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	u.requireAppError("POST", "/channels/members/me/view", "{", http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	u.requireAppError("POST", "/channels/members/"+f.owner.User.ID+"/view", map[string]any{"channel_id": f.town.ID}, http.StatusForbidden, "api.context.permissions.app_error")
	u.requireAppError("GET", "/users/"+f.owner.User.ID+"/channels/"+f.town.ID+"/unread", nil, http.StatusForbidden, "api.context.permissions.app_error")
	u.requireAppError("GET", "/users/me/channels/"+f.private.ID+"/unread", nil, hiddenStatus, hiddenID)
	u.requireAppError("GET", "/users/me/channels/"+f.public.ID+"/unread", nil, http.StatusNotFound, "app.channel.get_unread.app_error")
}

func TestChannelViewedEventOff(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t, func(s *app.Settings, _ *api.Options) { s.EnableChannelViewed = false })
	ws := f.owner.ws()
	f.owner.mustDo("POST", "/channels/members/me/view", map[string]any{"channel_id": f.town.ID}, http.StatusOK, nil)
	f.owner.mustDo("PUT", "/channels/"+f.town.ID+"/patch", map[string]any{"header": "marker"}, http.StatusOK, nil)
	require.Equal(t, "channel_updated", ws.nextEvent().Event, "no multiple_channels_viewed before the marker")
}

func TestChannelNotifyProps(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	ws := f.owner.ws()
	path := "/channels/" + f.public.ID + "/members/me/notify_props"

	var st model.StatusOK
	f.owner.mustDo("PUT", path, map[string]string{"desktop": "all", "mark_unread": "mention", "unknown_key": "x"}, http.StatusOK, &st)
	require.Equal(t, "OK", st.Status)
	var cm model.ChannelMember
	f.owner.mustDo("GET", "/channels/"+f.public.ID+"/members/me", nil, http.StatusOK, &cm)
	want := model.DefaultChannelNotifyProps()
	want["desktop"], want["mark_unread"] = "all", "mention"
	require.Equal(t, want, cm.NotifyProps)
	ev := ws.next("channel_member_updated")
	var evm model.ChannelMember
	require.NoError(t, json.Unmarshal([]byte(ev.Data["channelMember"].(string)), &evm), "channelMember is a JSON string")
	require.Equal(t, want, evm.NotifyProps)

	tests := []struct {
		name   string
		c      *client
		path   string
		body   any
		status int
		id     string
	}{
		{"bad desktop", f.owner, path, map[string]string{"desktop": "loud"}, http.StatusBadRequest, "model.channel_member.is_valid.notify_level.app_error"},
		{"bad mark_unread", f.owner, path, map[string]string{"mark_unread": "never"}, http.StatusBadRequest, "model.channel_member.is_valid.unread_level.app_error"},
		{"bad push", f.owner, path, map[string]string{"push": "x"}, http.StatusBadRequest, "model.channel_member.is_valid.push_level.app_error"},
		{"bad email", f.owner, path, map[string]string{"email": "x"}, http.StatusBadRequest, "model.channel_member.is_valid.email_value.app_error"},
		{"bad ignore", f.owner, path, map[string]string{"ignore_channel_mentions": "x"}, http.StatusBadRequest, "model.channel_member.is_valid.ignore_channel_mentions_value.app_error"},
		{"not strings", f.owner, path, `{"desktop": 1}`, http.StatusBadRequest, "api.context.invalid_body_param.app_error"},
		{"someone else", f.member, "/channels/" + f.public.ID + "/members/" + f.owner.User.ID + "/notify_props", map[string]string{"desktop": "all"}, http.StatusForbidden, "api.context.permissions.app_error"},
		{"not a member", f.member, path, map[string]string{"desktop": "all"}, http.StatusNotFound, "app.channel.get_member.missing.app_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.requireAppError("PUT", tt.path, tt.body, tt.status, tt.id)
		})
	}
	// Failed updates changed nothing.
	f.owner.mustDo("GET", "/channels/"+f.public.ID+"/members/me", nil, http.StatusOK, &cm)
	require.Equal(t, want, cm.NotifyProps)
}

func TestChannelTyping(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	typist, listener := f.owner, f.member
	typistWS, listenerWS := typist.ws(), listener.ws()

	root := typist.post(f.town.ID, "root")
	var st model.StatusOK
	typist.mustDo("POST", "/users/me/typing", map[string]any{"channel_id": f.town.ID, "parent_id": root.ID}, http.StatusOK, &st)
	require.Equal(t, "OK", st.Status)
	ev := listenerWS.next("typing")
	require.Equal(t, map[string]any{"user_id": typist.User.ID, "parent_id": root.ID}, ev.Data)
	require.Equal(t, f.town.ID, ev.Broadcast["channel_id"])

	// Over the WebSocket.
	reply := listenerWS.action("user_typing", map[string]any{"channel_id": f.town.ID})
	require.Equal(t, "OK", reply.Status)
	ev = typistWS.next("typing")
	require.Equal(t, map[string]any{"user_id": listener.User.ID, "parent_id": ""}, ev.Data)

	// The typist does not hear themself: the next event they get is the
	// marker published after their typing.
	typist.mustDo("POST", "/users/me/typing", map[string]any{"channel_id": f.town.ID}, http.StatusOK, nil)
	typist.mustDo("PUT", "/channels/"+f.town.ID+"/patch", map[string]any{"header": "marker"}, http.StatusOK, nil)
	require.Equal(t, "channel_updated", typistWS.nextEvent().Event)

	listener.requireAppError("POST", "/users/me/typing", map[string]any{"channel_id": f.private.ID}, http.StatusForbidden, "api.context.permissions.app_error")
	listener.requireAppError("POST", "/users/"+typist.User.ID+"/typing", map[string]any{"channel_id": f.town.ID}, http.StatusForbidden, "api.context.permissions.app_error")
	listener.requireAppError("POST", "/users/me/typing", map[string]any{"channel_id": "x"}, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	// parent_id is "" or an id: nothing else is relayed to the channel.
	for _, parent := range []any{"root", strings.Repeat("x", 1000), 7} {
		listener.requireAppError("POST", "/users/me/typing", map[string]any{"channel_id": f.town.ID, "parent_id": parent},
			http.StatusBadRequest, "api.context.invalid_body_param.app_error")
		reply = listenerWS.action("user_typing", map[string]any{"channel_id": f.town.ID, "parent_id": parent})
		require.Equal(t, "FAIL", reply.Status)
		require.Equal(t, "api.websocket_handler.invalid_param.app_error", reply.Error["id"])
	}

	reply = listenerWS.action("user_typing", map[string]any{"channel_id": f.private.ID})
	require.Equal(t, "FAIL", reply.Status)
	require.Equal(t, "api.websocket_handler.invalid_param.app_error", reply.Error["id"])
	reply = listenerWS.action("user_typing", map[string]any{"channel_id": "x"})
	require.Equal(t, "api.websocket_handler.invalid_param.app_error", reply.Error["id"])
	reply = listenerWS.action("no_such_action", nil)
	require.Equal(t, "FAIL", reply.Status)
	require.Equal(t, "api.web_socket_router.bad_action.app_error", reply.Error["id"])
	require.EqualValues(t, http.StatusBadRequest, reply.Error["status_code"])
}

func TestChannelTypingThrottle(t *testing.T) {
	t.Parallel()
	// An hour-long interval: the repeats below always fall inside it,
	// however slow the machine.
	f := newChannelFixture(t, func(s *app.Settings, _ *api.Options) { s.TypingThrottle = time.Hour })
	typist, listener := f.owner, f.member
	off := typist.channelByName(f.team.ID, "off-topic")
	typistWS, listenerWS := typist.ws(), listener.ws()
	typing := map[string]any{"channel_id": f.town.ID}

	// Repeats within the interval, over REST or the WebSocket, are
	// accepted and dropped.
	typist.mustDo("POST", "/users/me/typing", typing, http.StatusOK, nil)
	typist.mustDo("POST", "/users/me/typing", typing, http.StatusOK, nil)
	require.Equal(t, "OK", typistWS.action("user_typing", typing).Status)
	// Another channel, and another user in the same channel, are not
	// held back.
	typist.mustDo("POST", "/users/me/typing", map[string]any{"channel_id": off.ID}, http.StatusOK, nil)
	listener.mustDo("POST", "/users/me/typing", typing, http.StatusOK, nil)
	typist.post(f.town.ID, "marker")

	ev := listenerWS.next("typing")
	require.Equal(t, f.town.ID, ev.Broadcast["channel_id"])
	isMarker := func(ev wsEvent) bool { return ev.Event == "posted" }
	isTyping := func(ev wsEvent) bool { return ev.Event == "typing" }
	listenerWS.until(func(ev wsEvent) bool { return isTyping(ev) && ev.Broadcast["channel_id"] == off.ID }, isTyping)
	listenerWS.until(isMarker, isTyping)
	ev = typistWS.until(isTyping, isMarker)
	require.Equal(t, map[string]any{"user_id": listener.User.ID, "parent_id": ""}, ev.Data)
}

func TestChannelTypingDisabled(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t, func(s *app.Settings, _ *api.Options) { s.EnableUserTypingMessages = false })
	ws := f.member.ws()
	f.owner.mustDo("POST", "/users/me/typing", map[string]any{"channel_id": f.town.ID}, http.StatusOK, nil)
	f.owner.mustDo("PUT", "/channels/"+f.town.ID+"/patch", map[string]any{"header": "marker"}, http.StatusOK, nil)
	require.Equal(t, "channel_updated", ws.nextEvent().Event, "no typing before the marker")
}

func TestChannelMembershipFollowsTeam(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	f.owner.mustDo("POST", "/channels/"+f.private.ID+"/members", map[string]any{"user_id": f.member.User.ID}, http.StatusCreated, nil)
	var dm model.Channel
	f.member.mustDo("POST", "/channels/direct", []string{f.member.User.ID, f.owner.User.ID}, http.StatusCreated, &dm)

	off := f.member.channelByName(f.team.ID, "off-topic")
	memberWS, ownerWS := f.member.ws(), f.owner.ws()

	// Leaving the team leaves its channels but not direct messages.
	f.member.mustDo("DELETE", "/teams/"+f.team.ID+"/members/me", nil, http.StatusOK, nil)
	// Each channel left is told, and so is the user, as when removed
	// from one channel.
	left := []string{f.town.ID, off.ID, f.private.ID}
	var toUser, toChannels []string
	for range left {
		ev := memberWS.next("user_removed")
		require.Equal(t, f.member.User.ID, ev.Broadcast["user_id"])
		require.Equal(t, f.member.User.ID, ev.Data["remover_id"])
		toUser = append(toUser, ev.Data["channel_id"].(string))
		ev = ownerWS.next("user_removed")
		require.Equal(t, map[string]any{"user_id": f.member.User.ID, "remover_id": f.member.User.ID}, ev.Data)
		toChannels = append(toChannels, ev.Broadcast["channel_id"].(string))
	}
	require.ElementsMatch(t, left, toUser)
	require.ElementsMatch(t, left, toChannels)
	f.member.requireAppError("GET", "/channels/"+f.private.ID, nil, hiddenStatus, hiddenID)
	f.member.requireAppError("GET", "/channels/"+f.town.ID, nil, http.StatusForbidden, "api.context.permissions.app_error")
	f.member.mustDo("GET", "/channels/"+dm.ID, nil, http.StatusOK, nil)
	var st app.ChannelStats
	f.owner.mustDo("GET", "/channels/"+f.town.ID+"/stats", nil, http.StatusOK, &st)
	require.Equal(t, int64(1), st.MemberCount)

	// The WebSocket audience follows at once.
	ws := f.member.ws()
	f.member.mustDo("POST", "/teams/"+f.team.ID+"/members", map[string]any{"team_id": f.team.ID, "user_id": f.member.User.ID}, http.StatusCreated, nil)
	f.owner.mustDo("PUT", "/channels/"+f.town.ID+"/patch", map[string]any{"header": "welcome back"}, http.StatusOK, nil)
	ev := ws.next("channel_updated")
	require.Contains(t, ev.Data["channel"], "welcome back")
}

func TestChannelAddMemberRacesLeaveTeam(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	for range 10 {
		var added, left int
		var wg sync.WaitGroup
		wg.Go(func() {
			added = f.owner.status("POST", "/channels/"+f.private.ID+"/members", map[string]any{"user_id": f.member.User.ID})
		})
		wg.Go(func() { left = f.member.status("DELETE", "/teams/"+f.team.ID+"/members/me", nil) })
		wg.Wait()
		require.Equal(t, http.StatusOK, left)
		require.Contains(t, []int{http.StatusCreated, http.StatusBadRequest}, added)
		// Whichever came first, the user who left the team is in none of
		// its channels.
		f.owner.requireAppError("GET", "/channels/"+f.private.ID+"/members/"+f.member.User.ID, nil,
			http.StatusNotFound, "app.channel.get_member.missing.app_error")
		f.owner.addToTeam(f.team.ID, f.member)
	}
	f.owner.mustDo("DELETE", "/teams/"+f.team.ID+"/members/"+f.member.User.ID, nil, http.StatusOK, nil)
	f.owner.requireAppError("POST", "/channels/"+f.private.ID+"/members", map[string]any{"user_id": f.member.User.ID},
		http.StatusBadRequest, "api.channel.add_user.to.channel.failed.deleted.app_error")
}

func TestChannelRemovedMemberHearsNothing(t *testing.T) {
	t.Parallel()
	f := newChannelFixture(t)
	f.owner.mustDo("POST", "/channels/"+f.private.ID+"/members", map[string]any{"user_id": f.member.User.ID}, http.StatusCreated, nil)
	memberWS := f.member.ws()
	f.owner.post(f.private.ID, "before")
	require.Equal(t, "before", postMessage(t, memberWS.next("posted")))

	f.owner.mustDo("DELETE", "/channels/"+f.private.ID+"/members/"+f.member.User.ID, nil, http.StatusOK, nil)
	require.Equal(t, f.private.ID, memberWS.next("user_removed").Data["channel_id"])
	f.owner.post(f.private.ID, "after")
	f.owner.mustDo("PUT", "/channels/"+f.private.ID+"/patch", map[string]any{"header": "after"}, http.StatusOK, nil)
	f.owner.post(f.town.ID, "marker")
	ev := memberWS.until(
		func(ev wsEvent) bool { return ev.Event == "posted" && ev.Broadcast["channel_id"] == f.town.ID },
		func(ev wsEvent) bool { return ev.Broadcast["channel_id"] == f.private.ID })
	require.Equal(t, "marker", postMessage(t, ev))
}
