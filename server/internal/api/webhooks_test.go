package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// hookEnv is a server with incoming webhooks on: a system admin, a team
// whose admin is teamAdmin, an open channel ch with member in it, and a
// private channel priv that member created and teamAdmin is not in.
type hookEnv struct {
	ts                  *testServer
	sysadmin, teamAdmin *client
	member, outsider    *client
	team, otherTeam     *model.Team
	ch, other, priv     *model.Channel
	otherTeamCh         *model.Channel
}

func newHookEnv(t *testing.T, mutate ...func(*app.Settings, *api.Options)) *hookEnv {
	t.Helper()
	mutate = append([]func(*app.Settings, *api.Options){func(s *app.Settings, _ *api.Options) {
		s.EnableIncomingWebhooks = true
	}}, mutate...)
	ts := newTestServer(t, mutate...)
	e := &hookEnv{ts: ts, sysadmin: ts.newUser(), teamAdmin: ts.newUser(), member: ts.newUser(), outsider: ts.newUser()}
	e.team = e.teamAdmin.createTeam(true)
	e.teamAdmin.addToTeam(e.team.ID, e.member)
	e.ch = e.teamAdmin.createChannel(e.team.ID, model.ChannelOpen)
	e.other = e.teamAdmin.createChannel(e.team.ID, model.ChannelOpen)
	e.teamAdmin.addToChannel(e.ch.ID, e.member)
	e.priv = e.member.createChannel(e.team.ID, model.ChannelPrivate)
	e.otherTeam = e.teamAdmin.createTeam(true)
	e.otherTeamCh = e.teamAdmin.createChannel(e.otherTeam.ID, model.ChannelOpen)
	return e
}

func (c *client) createHook(body map[string]any) *model.IncomingWebhook {
	c.ts.t.Helper()
	var h model.IncomingWebhook
	c.mustDo("POST", "/hooks/incoming", body, http.StatusCreated, &h)
	return &h
}

// callHook POSTs body to /hooks/{id} with the content type and returns
// the status and body.
func (ts *testServer) callHook(id, contentType, body string) (int, string, http.Header) {
	ts.t.Helper()
	req, err := http.NewRequest("POST", ts.URL+"/hooks/"+id, strings.NewReader(body))
	require.NoError(ts.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	return resp.StatusCode, string(b), resp.Header
}

// requireHookError calls a hook and requires an AppError.
func (ts *testServer) requireHookError(id, contentType, body string, status int, errID string) {
	ts.t.Helper()
	code, b, _ := ts.callHook(id, contentType, body)
	require.Equal(ts.t, status, code, b)
	var ae model.AppError
	require.NoError(ts.t, json.Unmarshal([]byte(b), &ae), b)
	require.Equal(ts.t, errID, ae.ID, b)
	require.NotEmpty(ts.t, ae.RequestID)
}

// lastPost returns the newest post of a channel.
func (c *client) lastPost(channelID string) *model.Post {
	c.ts.t.Helper()
	l := c.postList("/channels/" + channelID + "/posts?per_page=1")
	require.Len(c.ts.t, l.Order, 1)
	return l.Posts[l.Order[0]]
}

func TestIncomingWebhookCreate(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID, "display_name": "CI", "description": "builds",
		"username": "ci-bot", "icon_url": "http://x/y.png", "channel_locked": true})
	require.True(t, model.IsValidID(h.ID))
	require.Equal(t, e.teamAdmin.User.ID, h.UserID)
	require.Equal(t, e.team.ID, h.TeamID)
	require.Equal(t, e.ch.ID, h.ChannelID)
	require.Equal(t, "CI", h.DisplayName)
	require.Equal(t, "builds", h.Description)
	require.True(t, h.ChannelLocked)
	require.NotZero(t, h.CreateAt)
	// Overrides are off: the name and icon are not kept.
	require.Empty(t, h.Username)
	require.Empty(t, h.IconURL)

	// A system admin may create one on a private channel, and for another user.
	sh := e.sysadmin.createHook(map[string]any{"channel_id": e.priv.ID, "user_id": e.member.User.ID})
	require.Equal(t, e.member.User.ID, sh.UserID)

	long := strings.Repeat("x", 65)
	cases := []struct {
		name   string
		c      *client
		body   any
		status int
		id     string
	}{
		{"team member", e.member, map[string]any{"channel_id": e.ch.ID}, 403, "api.context.permissions.app_error"},
		{"outsider", e.outsider, map[string]any{"channel_id": e.ch.ID}, 403, "api.context.permissions.app_error"},
		{"private channel the team admin cannot read", e.teamAdmin, map[string]any{"channel_id": e.priv.ID}, 403, "api.context.permissions.app_error"},
		{"bad channel id", e.teamAdmin, map[string]any{"channel_id": "nope"}, 400, "api.context.invalid_body_param.app_error"},
		{"unknown channel", e.teamAdmin, map[string]any{"channel_id": model.NewID()}, 404, "app.channel.get.existing.app_error"},
		{"long display name", e.teamAdmin, map[string]any{"channel_id": e.ch.ID, "display_name": long}, 400, "model.incoming_hook.display_name.app_error"},
		{"long description", e.teamAdmin, map[string]any{"channel_id": e.ch.ID, "description": strings.Repeat("d", 501)}, 400, "model.incoming_hook.description.app_error"},
		{"NUL in name", e.teamAdmin, map[string]any{"channel_id": e.ch.ID, "display_name": "a\x00b"}, 400, "model.incoming_hook.display_name.app_error"},
		{"unknown owner", e.teamAdmin, map[string]any{"channel_id": e.ch.ID, "user_id": model.NewID()}, 404, "app.user.missing_account.const"},
		{"bad owner", e.teamAdmin, map[string]any{"channel_id": e.ch.ID, "user_id": "x"}, 400, "api.context.invalid_body_param.app_error"},
		{"not JSON", e.teamAdmin, "{", 400, "api.context.invalid_body_param.app_error"},
		{"wrong type", e.teamAdmin, map[string]any{"channel_id": 5}, 400, "api.context.invalid_body_param.app_error"},
		{"anonymous", e.ts.anon(), map[string]any{"channel_id": e.ch.ID}, 401, "api.context.session_expired.app_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.c.requireAppError("POST", "/hooks/incoming", c.body, c.status, c.id)
		})
	}
}

func TestIncomingWebhookOverrideFieldsKept(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t, func(s *app.Settings, _ *api.Options) {
		s.EnablePostUsernameOverride, s.EnablePostIconOverride = true, true
	})
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID, "username": "ci-bot", "icon_url": "http://x/y.png"})
	require.Equal(t, "ci-bot", h.Username)
	require.Equal(t, "http://x/y.png", h.IconURL)
	e.teamAdmin.requireAppError("POST", "/hooks/incoming", map[string]any{"channel_id": e.ch.ID, "username": "Bad Name!"},
		400, "api.incoming_webhook.invalid_username.app_error")
	e.teamAdmin.requireAppError("POST", "/hooks/incoming", map[string]any{"channel_id": e.ch.ID, "icon_url": strings.Repeat("i", 1025)},
		400, "model.incoming_hook.icon_url.app_error")
}

func TestIncomingWebhookReadUpdateDelete(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID, "display_name": "one"})
	ph := e.sysadmin.createHook(map[string]any{"channel_id": e.priv.ID, "display_name": "private"})
	oh := e.teamAdmin.createHook(map[string]any{"channel_id": e.otherTeamCh.ID, "display_name": "other team"})

	var got model.IncomingWebhook
	e.teamAdmin.mustDo("GET", "/hooks/incoming/"+h.ID, nil, 200, &got)
	require.Equal(t, *h, got)
	e.sysadmin.mustDo("GET", "/hooks/incoming/"+ph.ID, nil, 200, nil)

	for _, c := range []struct {
		name   string
		c      *client
		path   string
		status int
		id     string
	}{
		{"member", e.member, "/hooks/incoming/" + h.ID, 403, "api.context.permissions.app_error"},
		{"private channel's hook", e.teamAdmin, "/hooks/incoming/" + ph.ID, 403, "api.context.permissions.app_error"},
		{"unknown", e.teamAdmin, "/hooks/incoming/" + model.NewID(), 404, "app.webhooks.get_incoming.app_error"},
		{"bad id", e.teamAdmin, "/hooks/incoming/xyz", 400, "api.context.invalid_url_param.app_error"},
		{"list as member", e.member, "/hooks/incoming?team_id=" + e.team.ID, 403, "api.context.permissions.app_error"},
		{"list all as team admin", e.teamAdmin, "/hooks/incoming", 403, "api.context.permissions.app_error"},
		{"list bad team", e.teamAdmin, "/hooks/incoming?team_id=bad", 400, "api.context.invalid_url_param.app_error"},
	} {
		t.Run(c.name, func(t *testing.T) { c.c.requireAppError("GET", c.path, nil, c.status, c.id) })
	}

	t.Run("lists", func(t *testing.T) {
		var list []*model.IncomingWebhook
		// The team admin does not see the private channel's hook.
		e.teamAdmin.mustDo("GET", "/hooks/incoming?team_id="+e.team.ID, nil, 200, &list)
		require.Len(t, list, 1)
		require.Equal(t, h.ID, list[0].ID)
		e.sysadmin.mustDo("GET", "/hooks/incoming?team_id="+e.team.ID, nil, 200, &list)
		require.Len(t, list, 2)
		e.sysadmin.mustDo("GET", "/hooks/incoming?per_page=2&page=0", nil, 200, &list)
		require.Len(t, list, 2)
		e.sysadmin.mustDo("GET", "/hooks/incoming?per_page=2&page=1", nil, 200, &list)
		require.Len(t, list, 1)
		var wc model.IncomingWebhooksWithCount
		e.sysadmin.mustDo("GET", "/hooks/incoming?include_total_count=true&per_page=1", nil, 200, &wc)
		require.Len(t, wc.Webhooks, 1)
		require.EqualValues(t, 3, wc.TotalCount)
	})

	t.Run("update", func(t *testing.T) {
		up := map[string]any{"id": h.ID, "channel_id": e.other.ID, "display_name": "renamed", "description": "d", "channel_locked": true}
		var out model.IncomingWebhook
		e.teamAdmin.mustDo("PUT", "/hooks/incoming/"+h.ID, up, 201, &out)
		require.Equal(t, "renamed", out.DisplayName)
		require.Equal(t, e.other.ID, out.ChannelID)
		require.True(t, out.ChannelLocked)
		require.Equal(t, h.CreateAt, out.CreateAt)
		require.Equal(t, h.UserID, out.UserID)
		require.GreaterOrEqual(t, out.UpdateAt, h.UpdateAt)

		for _, c := range []struct {
			name   string
			c      *client
			body   map[string]any
			status int
			id     string
		}{
			{"id mismatch", e.teamAdmin, map[string]any{"id": model.NewID(), "channel_id": e.ch.ID}, 400, "api.context.invalid_body_param.app_error"},
			{"team mismatch", e.teamAdmin, map[string]any{"id": h.ID, "channel_id": e.ch.ID, "team_id": e.otherTeam.ID}, 400, "api.webhook.team_mismatch.app_error"},
			{"channel of another team", e.teamAdmin, map[string]any{"id": h.ID, "channel_id": e.otherTeamCh.ID}, 400, "api.context.invalid_body_param.app_error"},
			{"private channel", e.teamAdmin, map[string]any{"id": h.ID, "channel_id": e.priv.ID}, 403, "api.context.permissions.app_error"},
			{"member", e.member, map[string]any{"id": h.ID, "channel_id": e.ch.ID}, 403, "api.context.permissions.app_error"},
			{"long name", e.teamAdmin, map[string]any{"id": h.ID, "channel_id": e.ch.ID, "display_name": strings.Repeat("n", 65)}, 400, "model.incoming_hook.display_name.app_error"},
		} {
			t.Run(c.name, func(t *testing.T) { c.c.requireAppError("PUT", "/hooks/incoming/"+h.ID, c.body, c.status, c.id) })
		}
	})

	t.Run("delete", func(t *testing.T) {
		e.member.requireAppError("DELETE", "/hooks/incoming/"+oh.ID, nil, 403, "api.context.permissions.app_error")
		e.teamAdmin.requireAppError("DELETE", "/hooks/incoming/"+ph.ID, nil, 403, "api.context.permissions.app_error")
		e.teamAdmin.mustDo("DELETE", "/hooks/incoming/"+oh.ID, nil, 200, nil)
		e.teamAdmin.requireAppError("GET", "/hooks/incoming/"+oh.ID, nil, 404, "app.webhooks.get_incoming.app_error")
		e.teamAdmin.requireAppError("DELETE", "/hooks/incoming/"+oh.ID, nil, 404, "app.webhooks.get_incoming.app_error")
		e.ts.requireHookError(oh.ID, "application/json", `{"text":"hi"}`, 400, "web.incoming_webhook.invalid.app_error")
	})
}

func TestIncomingWebhooksDisabled(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID})
	e2 := newHookEnv(t, func(s *app.Settings, _ *api.Options) { s.EnableIncomingWebhooks = false })
	e2.teamAdmin.requireAppError("POST", "/hooks/incoming", map[string]any{"channel_id": e2.ch.ID}, 501, "api.incoming_webhook.disabled.app_error")
	e2.teamAdmin.requireAppError("GET", "/hooks/incoming?team_id="+e2.team.ID, nil, 501, "api.incoming_webhook.disabled.app_error")
	e2.teamAdmin.requireAppError("GET", "/hooks/incoming/"+h.ID, nil, 501, "api.incoming_webhook.disabled.app_error")
	e2.teamAdmin.requireAppError("DELETE", "/hooks/incoming/"+h.ID, nil, 501, "api.incoming_webhook.disabled.app_error")
	e2.ts.requireHookError(h.ID, "application/json", `{"text":"hi"}`, 501, "web.incoming_webhook.disabled.app_error")
}

func TestIncomingWebhookPost(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID, "display_name": "CI"})
	locked := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID, "channel_locked": true})

	t.Run("json", func(t *testing.T) {
		code, body, hdr := e.ts.callHook(h.ID, "application/json",
			`{"text":"build <http://ci/1|#1> passed","username":"x","props":{"from_webhook":"no","override_username":"evil","k":"v"}}`)
		require.Equal(t, 200, code, body)
		require.Equal(t, "ok", body)
		require.Equal(t, "text/plain", hdr.Get("Content-Type"))
		p := e.member.lastPost(e.ch.ID)
		require.Equal(t, "build [#1](http://ci/1) passed", p.Message)
		require.Equal(t, e.teamAdmin.User.ID, p.UserID)
		require.Equal(t, "true", p.Props["from_webhook"])
		require.Equal(t, "CI", p.Props["webhook_display_name"])
		require.Equal(t, "v", p.Props["k"])
		require.NotContains(t, p.Props, "override_username") // overrides are off
		var got model.IncomingWebhook
		e.teamAdmin.mustDo("GET", "/hooks/incoming/"+h.ID, nil, 200, &got)
		require.NotZero(t, got.LastUsed)
	})

	t.Run("form", func(t *testing.T) {
		form := url.Values{"payload": {`{"text":"from a form"}`}}.Encode()
		code, body, _ := e.ts.callHook(h.ID, "application/x-www-form-urlencoded", form)
		require.Equal(t, 200, code, body)
		require.Equal(t, "from a form", e.member.lastPost(e.ch.ID).Message)
	})

	t.Run("no content type", func(t *testing.T) {
		code, body, _ := e.ts.callHook(h.ID, "", `{"text":"bare"}`)
		require.Equal(t, 200, code, body)
		require.Equal(t, "bare", e.member.lastPost(e.ch.ID).Message)
	})

	t.Run("raw newline", func(t *testing.T) {
		code, body, _ := e.ts.callHook(h.ID, "application/json", "{\"text\":\"line 1\nline 2\"}")
		require.Equal(t, 200, code, body)
		require.Equal(t, "line 1\nline 2", e.member.lastPost(e.ch.ID).Message)
	})

	t.Run("attachments", func(t *testing.T) {
		payload := `{"text":"Deploy","attachments":[
			{"pretext":"pre","title":"Title","title_link":"http://x","text":"body","fields":[{"title":"Env","value":"prod"},{"title":"N","value":3}]},
			{"fallback":"only fallback"}]}`
		code, body, _ := e.ts.callHook(h.ID, "application/json", payload)
		require.Equal(t, 200, code, body)
		p := e.member.lastPost(e.ch.ID)
		require.Equal(t, "Deploy\n\npre\n[Title](http://x)\nbody\nEnv: prod\nN: 3\n\nonly fallback", p.Message)
		require.NotContains(t, p.Props, "attachments")
		// Attachments alone are enough.
		code, body, _ = e.ts.callHook(h.ID, "application/json", `{"attachments":[{"text":"just this"}]}`)
		require.Equal(t, 200, code, body)
		require.Equal(t, "just this", e.member.lastPost(e.ch.ID).Message)
	})

	t.Run("channel override", func(t *testing.T) {
		code, body, _ := e.ts.callHook(h.ID, "application/json", fmt.Sprintf(`{"text":"elsewhere","channel":"#%s"}`, e.other.Name))
		require.Equal(t, 200, code, body)
		require.Equal(t, "elsewhere", e.teamAdmin.lastPost(e.other.ID).Message)
		code, body, _ = e.ts.callHook(h.ID, "application/json", fmt.Sprintf(`{"text":"dm","channel":"@%s"}`, e.member.User.Username))
		require.Equal(t, 200, code, body)
	})

	cases := []struct {
		name, id, ct, body string
		status             int
		errID              string
	}{
		{"empty text", h.ID, "application/json", `{"text":""}`, 400, "web.incoming_webhook.text.app_error"},
		{"empty attachments", h.ID, "application/json", `{"attachments":[{}]}`, 400, "web.incoming_webhook.text.app_error"},
		{"unknown hook", model.NewID(), "application/json", `{"text":"x"}`, 400, "web.incoming_webhook.invalid.app_error"},
		{"malformed hook id", "nope", "application/json", `{"text":"x"}`, 400, "web.incoming_webhook.invalid.app_error"},
		{"not JSON", h.ID, "application/json", `{"text":`, 400, "model.incoming_hook.parse_data.app_error"},
		{"empty body", h.ID, "application/json", ``, 400, "model.incoming_hook.parse_data.app_error"},
		{"form without payload", h.ID, "application/x-www-form-urlencoded", `text=x`, 400, "model.incoming_hook.parse_data.app_error"},
		{"bad content type", h.ID, "a b c", `{"text":"x"}`, 400, "api.webhook.incoming.error"},
		{"too large", h.ID, "application/json", `{"text":"` + strings.Repeat("a", 300001) + `"}`, 413, "api.context.request_body_too_large.app_error"},
		{"too long for a post", h.ID, "application/json", `{"text":"` + strings.Repeat("a", 20000) + `"}`, 400, "model.post.is_valid.message_length.app_error"},
		{"NUL in text", h.ID, "application/json", `{"text":"a\u0000b"}`, 400, "api.context.invalid_body_param.app_error"},
		{"unknown channel", h.ID, "application/json", `{"text":"x","channel":"no-such-channel"}`, 404, "web.incoming_webhook.channel.app_error"},
		{"locked hook, other channel", locked.ID, "application/json", fmt.Sprintf(`{"text":"x","channel":%q}`, e.other.Name), 403, "web.incoming_webhook.channel_locked.app_error"},
		{"locked hook, direct message", locked.ID, "application/json", fmt.Sprintf(`{"text":"x","channel":"@%s"}`, e.member.User.Username), 403, "web.incoming_webhook.channel_locked.app_error"},
		{"private channel the creator cannot read", h.ID, "application/json", fmt.Sprintf(`{"text":"x","channel":%q}`, e.priv.Name), 403, "web.incoming_webhook.permissions.app_error"},
		{"unknown user", h.ID, "application/json", `{"text":"x","channel":"@nobody-here"}`, 400, "web.incoming_webhook.user.app_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { e.ts.requireHookError(c.id, c.ct, c.body, c.status, c.errID) })
	}

	t.Run("locked hook, own channel by name", func(t *testing.T) {
		code, body, _ := e.ts.callHook(locked.ID, "application/json", fmt.Sprintf(`{"text":"same","channel":%q}`, e.ch.Name))
		require.Equal(t, 200, code, body)
	})
}

func TestIncomingWebhookOverrides(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t, func(s *app.Settings, _ *api.Options) {
		s.EnablePostUsernameOverride, s.EnablePostIconOverride = true, true
	})
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID, "username": "hookname", "icon_url": "http://hook/icon.png"})
	bare := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID})
	cases := []struct {
		name, hook, payload, user, icon string
	}{
		{"payload wins", h.ID, `{"text":"a","username":"payloadname","icon_url":"http://p/i.png"}`, "payloadname", "http://p/i.png"},
		{"hook's", h.ID, `{"text":"b"}`, "hookname", "http://hook/icon.png"},
		{"default", bare.ID, `{"text":"c"}`, model.DefaultWebhookUsername, ""},
	}
	for _, c := range cases {
		code, body, _ := e.ts.callHook(c.hook, "application/json", c.payload)
		require.Equal(t, 200, code, body)
		p := e.member.lastPost(e.ch.ID)
		require.Equal(t, c.user, p.Props["override_username"], c.name)
		if c.icon == "" {
			require.NotContains(t, p.Props, "override_icon_url", c.name)
		} else {
			require.Equal(t, c.icon, p.Props["override_icon_url"], c.name)
		}
	}
}

func TestIncomingWebhookCreatorGone(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID})
	// The hook posts as its creator, who must still be able to post there.
	e.teamAdmin.mustDo("DELETE", "/channels/"+e.ch.ID+"/members/"+e.teamAdmin.User.ID, nil, 200, nil)
	e.ts.requireHookError(h.ID, "application/json", `{"text":"x"}`, 403, "api.context.permissions.app_error")

	h2 := e.teamAdmin.createHook(map[string]any{"channel_id": e.other.ID})
	_, err := e.ts.Store.Pool().Exec(context.Background(), `UPDATE users SET delete_at = $2 WHERE id = $1`,
		e.teamAdmin.User.ID, time.Now().UnixMilli())
	require.NoError(t, err)
	e.ts.requireHookError(h2.ID, "application/json", `{"text":"x"}`, 403, "web.incoming_webhook.user.app_error")
}

func TestIncomingWebhookRateLimit(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	h := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID})
	other := e.teamAdmin.createHook(map[string]any{"channel_id": e.ch.ID})
	// Empty payloads are refused after the limiter has counted them, so
	// the burst is spent without writing posts. The burst (30) refills at
	// 10 per second, so the calls below outrun it by far.
	limited := false
	for range 200 {
		code, body, hdr := e.ts.callHook(h.ID, "application/json", `{}`)
		if code == http.StatusTooManyRequests {
			require.Equal(t, "1", hdr.Get("Retry-After"))
			var ae model.AppError
			require.NoError(t, json.Unmarshal([]byte(body), &ae), body)
			require.Equal(t, "api.context.rate_limit.app_error", ae.ID)
			limited = true
			break
		}
		require.Equal(t, http.StatusBadRequest, code, body)
	}
	require.True(t, limited, "the hook was never rate limited")
	// Each hook has its own bucket.
	code, body, _ := e.ts.callHook(other.ID, "application/json", `{"text":"x"}`)
	require.Equal(t, 200, code, body)
}
