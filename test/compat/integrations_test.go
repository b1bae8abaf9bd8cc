package compat

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

// postToHook POSTs body to /hooks/{id} (the driver has no helper for it)
// and returns the status and body.
func postToHook(t *testing.T, hookID, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.url+"/hooks/"+hookID, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// newestPost returns the newest post of a channel as c sees it.
func newestPost(t *testing.T, c *account, channelID string) *model.Post {
	t.Helper()
	l, _, err := c.GetPostsForChannel(t.Context(), channelID, 0, 1, "", false, false)
	require.NoError(t, err)
	require.Len(t, l.Order, 1)
	return l.Posts[l.Order[0]]
}

func TestIncomingWebhooks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// alice owns the team, so she is its admin; bob is a member.
	f := newPostFixture(t)

	hook, resp, err := f.alice.CreateIncomingWebhook(ctx, &model.IncomingWebhook{
		ChannelId: f.ch.Id, DisplayName: "CI", Description: "build results",
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.True(t, model.IsValidId(hook.Id))
	require.Equal(t, f.alice.User.Id, hook.UserId)
	require.Equal(t, f.team.Id, hook.TeamId)
	require.Equal(t, "CI", hook.DisplayName)

	_, resp, err = f.bob.CreateIncomingWebhook(ctx, &model.IncomingWebhook{ChannelId: f.ch.Id})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	got, _, err := f.alice.GetIncomingWebhook(ctx, hook.Id, "")
	require.NoError(t, err)
	require.Equal(t, hook, got)

	forTeam, _, err := f.alice.GetIncomingWebhooksForTeam(ctx, f.team.Id, 0, 60, "")
	require.NoError(t, err)
	require.Len(t, forTeam, 1)
	all, _, err := srv.admin.GetIncomingWebhooks(ctx, 0, 200, "")
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(all, func(h *model.IncomingWebhook) bool { return h.Id == hook.Id }))
	_, resp, err = f.alice.GetIncomingWebhooks(ctx, 0, 60, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	withCount, _, err := srv.admin.GetIncomingWebhooksWithCount(ctx, 0, 1, "")
	require.NoError(t, err)
	require.Len(t, withCount.Webhooks, 1)
	require.GreaterOrEqual(t, withCount.TotalCount, int64(1))

	hook.DisplayName = "CI builds"
	updated, _, err := f.alice.UpdateIncomingWebhook(ctx, hook)
	require.NoError(t, err)
	require.Equal(t, "CI builds", updated.DisplayName)

	// The hook URL posts as its creator.
	code, body := postToHook(t, hook.Id, "application/json", `{"text":"build #1 passed","attachments":[{"title":"Tests","fields":[{"title":"Passed","value":"412"}]}]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "ok", body)
	p := newestPost(t, f.bob, f.ch.Id)
	require.Equal(t, "build #1 passed\n\nTests\nPassed: 412", p.Message)
	require.Equal(t, f.alice.User.Id, p.UserId)
	require.Equal(t, "true", p.GetProp("from_webhook"))

	form := url.Values{"payload": {`{"text":"from a form"}`}}.Encode()
	code, body = postToHook(t, hook.Id, "application/x-www-form-urlencoded", form)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "from a form", newestPost(t, f.bob, f.ch.Id).Message)

	code, body = postToHook(t, hook.Id, "application/json", `{"text":""}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	var appErr model.AppError
	require.NoError(t, json.Unmarshal([]byte(body), &appErr), body)
	require.Equal(t, "web.incoming_webhook.text.app_error", appErr.Id)

	_, err = f.alice.DeleteIncomingWebhook(ctx, hook.Id)
	require.NoError(t, err)
	_, resp, err = f.alice.GetIncomingWebhook(ctx, hook.Id, "")
	requireAppError(t, resp, err, http.StatusNotFound, "app.webhooks.get_incoming.app_error")
	code, body = postToHook(t, hook.Id, "application/json", `{"text":"gone"}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &appErr), body)
	require.Equal(t, "web.incoming_webhook.invalid.app_error", appErr.Id)
}

func TestUserAccessTokens(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bob := newUser(t)

	// A user without the system_user_access_token role may not make one.
	_, resp, err := bob.CreateUserAccessToken(ctx, bob.User.Id, "mine")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, resp, err = srv.admin.CreateUserAccessToken(ctx, bob.User.Id, "")
	requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")

	tok, resp, err := srv.admin.CreateUserAccessToken(ctx, bob.User.Id, "bob's script")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, tok.Token, 26)
	require.Equal(t, bob.User.Id, tok.UserId)
	require.True(t, tok.IsActive)

	script := model.NewAPIv4Client(srv.url)
	script.SetToken(tok.Token)
	me, _, err := script.GetMe(ctx, "")
	require.NoError(t, err)
	require.Equal(t, bob.User.Id, me.Id)

	listed, _, err := srv.admin.GetUserAccessTokensForUser(ctx, bob.User.Id, 0, 60)
	require.NoError(t, err)
	require.Len(t, listed, 1)
	require.Empty(t, listed[0].Token)
	one, _, err := srv.admin.GetUserAccessToken(ctx, tok.Id)
	require.NoError(t, err)
	require.Equal(t, "bob's script", one.Description)
	require.Empty(t, one.Token)

	_, err = srv.admin.DisableUserAccessToken(ctx, tok.Id)
	require.NoError(t, err)
	_, resp, err = script.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
	_, err = srv.admin.EnableUserAccessToken(ctx, tok.Id)
	require.NoError(t, err)
	_, _, err = script.GetMe(ctx, "")
	require.NoError(t, err)

	_, err = srv.admin.RevokeUserAccessToken(ctx, tok.Id)
	require.NoError(t, err)
	_, resp, err = script.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
	resp, err = srv.admin.RevokeUserAccessToken(ctx, tok.Id)
	requireAppError(t, resp, err, http.StatusNotFound, "app.user_access_token.get_by_user.app_error")
}
