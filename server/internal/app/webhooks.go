package app

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// Incoming webhooks. Who may manage them follows Mattermost's default
// roles: manage_own_incoming_webhooks, manage_others_incoming_webhooks and
// bypass_incoming_webhook_channel_lock belong to team admins (and system
// admins), not to team members; so whoever may manage their own hooks in a
// team may also manage the others', and may lock or unlock them. Beyond
// Mattermost, a hook in a private channel is invisible to a team admin who
// cannot read that channel, in lists as well as one by one: its URL can
// post there.

const hookMissing = "app.webhooks.get_incoming.app_error"

// slackLink is Slack's <url|text> link, which Mattermost turns into
// Markdown.
var slackLink = regexp.MustCompile(`<([^\n<|>]+)\|([^\n>]+)>`)

func hooksDisabled(where string) *model.AppError {
	return model.NewAppError(where, "api.incoming_webhook.disabled.app_error", http.StatusNotImplemented,
		"Incoming webhooks have been disabled by the system admin.")
}

// requireManageHooks lets team admins of teamID and system admins through.
func (a *App) requireManageHooks(ctx context.Context, s *model.Session, teamID string) *model.AppError {
	if teamID == "" && !s.IsSystemAdmin() {
		return model.ErrPermission("app.require_manage_hooks", s.UserID, "manage_own_incoming_webhooks")
	}
	return a.requireTeamAdmin(ctx, s, teamID, "manage_own_incoming_webhooks")
}

// hookChannel loads the channel a hook is (to be) attached to: a live
// team channel the caller may read.
func (a *App) hookChannel(ctx context.Context, where string, s *model.Session, channelID string) (*model.Channel, *model.AppError) {
	if !model.IsValidID(channelID) {
		return nil, model.ErrInvalidBody(where, "channel_id")
	}
	ch, err := a.store.GetChannel(ctx, channelID)
	if err != nil {
		return nil, storeErr(where, err, channelMissing, "channel")
	}
	if ch.TeamID == "" {
		return nil, model.ErrInvalidBody(where, "channel_id").Detail("direct and group messages have no webhooks")
	}
	if err := a.requireManageHooks(ctx, s, ch.TeamID); err != nil {
		return nil, err
	}
	ok, e := a.canRead(ctx, s, accessOf(ch))
	if e != nil {
		return nil, internalErr(where, e)
	}
	if !ok {
		return nil, model.ErrPermission(where, s.UserID, "read_channel_content")
	}
	return ch, nil
}

// checkHookFields validates what a client sets on a hook, after the
// override settings have blanked what they do not allow.
func checkHookFields(where string, h *model.IncomingWebhook) *model.AppError {
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"display_name", h.DisplayName, model.IncomingWebhookDisplayNameMax},
		{"description", h.Description, model.IncomingWebhookDescriptionMax},
		{"username", h.Username, model.IncomingWebhookUsernameMax},
		{"icon_url", h.IconURL, model.IncomingWebhookIconURLMax},
	} {
		if utf8.RuneCountInString(f.v) > f.max || strings.ContainsRune(f.v, 0) || !utf8.ValidString(f.v) {
			return badRequest(where, "model.incoming_hook."+f.name+".app_error", "Invalid "+f.name+".")
		}
	}
	if h.Username != "" && !validUsername(h.Username) {
		return badRequest(where, "api.incoming_webhook.invalid_username.app_error", "Invalid username.")
	}
	return nil
}

// applyOverrideSettings drops the username and icon when the server does
// not let webhooks override them, keeping old's (nil on create).
func (a *App) applyOverrideSettings(h, old *model.IncomingWebhook) {
	if !a.set.EnablePostUsernameOverride {
		h.Username = ""
		if old != nil {
			h.Username = old.Username
		}
	}
	if !a.set.EnablePostIconOverride {
		h.IconURL = ""
		if old != nil {
			h.IconURL = old.IconURL
		}
	}
}

// CreateIncomingWebhook creates a hook on in.ChannelID, owned by the
// caller or, for someone who may manage others' hooks, by in.UserID.
func (a *App) CreateIncomingWebhook(ctx context.Context, s *model.Session, in *model.IncomingWebhook) (*model.IncomingWebhook, *model.AppError) {
	const where = "app.create_incoming_webhook"
	if !a.set.EnableIncomingWebhooks {
		return nil, hooksDisabled(where)
	}
	ch, appErr := a.hookChannel(ctx, where, s, in.ChannelID)
	if appErr != nil {
		return nil, appErr
	}
	if ch.DeleteAt != 0 {
		return nil, archived(where, "api.incoming_webhook.channel_archived.app_error")
	}
	owner := s.UserID
	if in.UserID != "" && in.UserID != s.UserID {
		if !model.IsValidID(in.UserID) {
			return nil, model.ErrInvalidBody(where, "user_id")
		}
		if _, err := a.store.GetUser(ctx, in.UserID); err != nil {
			return nil, storeErr(where, err, userMissing, "user")
		}
		owner = in.UserID
	}
	now := a.millis()
	h := &model.IncomingWebhook{
		ID: model.NewID(), CreateAt: now, UpdateAt: now, UserID: owner, ChannelID: ch.ID, TeamID: ch.TeamID,
		DisplayName: in.DisplayName, Description: in.Description, Username: in.Username, IconURL: in.IconURL,
		ChannelLocked: in.ChannelLocked,
	}
	a.applyOverrideSettings(h, nil)
	if err := checkHookFields(where, h); err != nil {
		return nil, err
	}
	if err := a.store.CreateIncomingWebhook(ctx, h); err != nil {
		return nil, internalErr(where, err)
	}
	return h, nil
}

// manageableHook loads a live hook the caller may manage.
func (a *App) manageableHook(ctx context.Context, where string, s *model.Session, id string) (*model.IncomingWebhook, *model.AppError) {
	if !a.set.EnableIncomingWebhooks {
		return nil, hooksDisabled(where)
	}
	h, err := a.store.GetIncomingWebhook(ctx, id)
	if err != nil {
		return nil, storeErr(where, err, hookMissing, "incoming webhook")
	}
	if err := a.requireManageHooks(ctx, s, h.TeamID); err != nil {
		return nil, err
	}
	acc, err := a.store.ChannelAccess(ctx, h.ChannelID)
	if err != nil {
		return nil, storeErr(where, err, channelMissing, "channel")
	}
	ok, err := a.canRead(ctx, s, acc)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if !ok {
		return nil, model.ErrPermission(where, s.UserID, "manage_own_incoming_webhooks")
	}
	return h, nil
}

// IncomingWebhook returns a hook the caller may manage.
func (a *App) IncomingWebhook(ctx context.Context, s *model.Session, id string) (*model.IncomingWebhook, *model.AppError) {
	return a.manageableHook(ctx, "app.get_incoming_webhook", s, id)
}

// IncomingWebhooks lists a page of the hooks the caller may manage: of
// one team (its admins), or of every team (system admins). With
// withCount the total is returned too.
func (a *App) IncomingWebhooks(ctx context.Context, s *model.Session, teamID string, offset, limit int, withCount bool) ([]*model.IncomingWebhook, int64, *model.AppError) {
	const where = "app.get_incoming_webhooks"
	if !a.set.EnableIncomingWebhooks {
		return nil, 0, hooksDisabled(where)
	}
	if err := a.requireManageHooks(ctx, s, teamID); err != nil {
		return nil, 0, err
	}
	f := postgres.WebhookFilter{TeamID: teamID}
	if !s.IsSystemAdmin() {
		f.Viewer = s.UserID
	}
	hooks, err := a.store.ListIncomingWebhooks(ctx, f, offset, limit)
	if err != nil {
		return nil, 0, internalErr(where, err)
	}
	var total int64
	if withCount {
		if total, err = a.store.CountIncomingWebhooks(ctx, f); err != nil {
			return nil, 0, internalErr(where, err)
		}
	}
	return hooks, total, nil
}

// UpdateIncomingWebhook replaces a hook's editable fields: channel (in the
// same team), names, description, icon and lock.
func (a *App) UpdateIncomingWebhook(ctx context.Context, s *model.Session, id string, in *model.IncomingWebhook) (*model.IncomingWebhook, *model.AppError) {
	const where = "app.update_incoming_webhook"
	if in.ID != id {
		return nil, model.ErrInvalidBody(where, "hook_id")
	}
	old, appErr := a.manageableHook(ctx, where, s, id)
	if appErr != nil {
		return nil, appErr
	}
	if in.TeamID == "" {
		in.TeamID = old.TeamID
	}
	if in.TeamID != old.TeamID {
		return nil, badRequest(where, "api.webhook.team_mismatch.app_error", "The webhook cannot be moved to another team.")
	}
	ch, appErr := a.hookChannel(ctx, where, s, in.ChannelID)
	if appErr != nil {
		return nil, appErr
	}
	if ch.TeamID != old.TeamID {
		return nil, model.ErrInvalidBody(where, "channel_id").Detail("the channel is in another team")
	}
	if ch.DeleteAt != 0 {
		return nil, archived(where, "api.incoming_webhook.channel_archived.app_error")
	}
	h := &model.IncomingWebhook{
		ID: old.ID, UpdateAt: a.millis(), ChannelID: ch.ID, DisplayName: in.DisplayName, Description: in.Description,
		Username: in.Username, IconURL: in.IconURL, ChannelLocked: in.ChannelLocked,
	}
	a.applyOverrideSettings(h, old)
	if err := checkHookFields(where, h); err != nil {
		return nil, err
	}
	out, err := a.store.UpdateIncomingWebhook(ctx, h)
	if err != nil {
		return nil, storeErr(where, err, hookMissing, "incoming webhook")
	}
	return out, nil
}

// DeleteIncomingWebhook deletes a hook; its URL stops working at once.
func (a *App) DeleteIncomingWebhook(ctx context.Context, s *model.Session, id string) *model.AppError {
	const where = "app.delete_incoming_webhook"
	h, appErr := a.manageableHook(ctx, where, s, id)
	if appErr != nil {
		return appErr
	}
	if err := a.store.DeleteIncomingWebhook(ctx, h.ID, a.millis()); err != nil {
		return storeErr(where, err, hookMissing, "incoming webhook")
	}
	return nil
}

// HandleIncomingWebhook posts a payload sent to /hooks/{id}: as the hook's
// creator, through CreatePost's rules, with attachments rendered as text
// after the message.
func (a *App) HandleIncomingWebhook(ctx context.Context, hookID string, req *model.IncomingWebhookRequest) (*model.Post, *model.AppError) {
	const where = "app.handle_incoming_webhook"
	if !a.set.EnableIncomingWebhooks {
		return nil, model.NewAppError(where, "web.incoming_webhook.disabled.app_error", http.StatusNotImplemented,
			"Incoming webhooks have been disabled by the system admin.")
	}
	if req == nil {
		return nil, badRequest(where, "web.incoming_webhook.parse.app_error", "Unable to parse the incoming data.")
	}
	text := slackLink.ReplaceAllString(req.Text, "[${2}](${1})")
	if att := model.RenderAttachments(req.Attachments); att != "" {
		if strings.TrimSpace(text) != "" {
			text += "\n\n"
		}
		text += slackLink.ReplaceAllString(att, "[${2}](${1})")
	}
	if strings.TrimSpace(text) == "" {
		return nil, badRequest(where, "web.incoming_webhook.text.app_error", "No text specified.")
	}
	invalid := badRequest(where, "web.incoming_webhook.invalid.app_error", "Invalid webhook.")
	if !model.IsValidID(hookID) {
		return nil, invalid
	}
	hook, err := a.store.GetIncomingWebhook(ctx, hookID)
	if err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, invalid.Wrap(err)
		}
		return nil, internalErr(where, err)
	}
	creator, err := a.store.GetUser(ctx, hook.UserID)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return nil, internalErr(where, err)
	}
	if err != nil || creator.DeleteAt != 0 {
		return nil, model.NewAppError(where, "web.incoming_webhook.user.app_error", http.StatusForbidden,
			"The webhook's creator cannot post.")
	}
	// The post is the creator's own, with the creator's current roles.
	s := &model.Session{UserID: creator.ID, Roles: creator.Roles, Props: model.StringMap{}}
	ch, appErr := a.webhookTarget(ctx, where, s, hook, req.ChannelName)
	if appErr != nil {
		return nil, appErr
	}

	props := map[string]any{}
	for k, v := range req.Props {
		props[k] = v
	}
	for _, k := range []string{"override_username", "override_icon_url", "override_icon_emoji", "attachments", "webhook_display_name"} {
		delete(props, k)
	}
	trusted := map[string]any{"from_webhook": "true", "webhook_display_name": hook.DisplayName}
	if a.set.EnablePostUsernameOverride {
		trusted["override_username"] = firstNonEmpty(req.Username, hook.Username, model.DefaultWebhookUsername)
	}
	if a.set.EnablePostIconOverride {
		if u := firstNonEmpty(req.IconURL, hook.IconURL); u != "" {
			trusted["override_icon_url"] = u
		}
		if req.IconEmoji != "" {
			trusted["override_icon_emoji"] = req.IconEmoji
		}
	}
	postType := ""
	if strings.HasPrefix(req.Type, "custom_") {
		postType = req.Type
	}
	p, appErr := a.createPost(ctx, s, &model.Post{ChannelID: ch.ID, Message: text, Type: postType, Props: props}, false, trusted)
	if appErr != nil {
		return nil, appErr
	}
	if err := a.store.TouchIncomingWebhook(ctx, hook.ID, a.millis()); err != nil {
		a.log.Warn("record webhook use", "hook_id", hook.ID, "err", err)
	}
	return p, nil
}

// webhookTarget resolves where a webhook payload posts: the hook's
// channel, or the payload's channel override ("town-square",
// "#town-square", or "@username" for a direct message with the creator)
// when the hook is not locked to its channel.
func (a *App) webhookTarget(ctx context.Context, where string, s *model.Session, hook *model.IncomingWebhook, name string) (*model.Channel, *model.AppError) {
	var (
		ch  *model.Channel
		err error
	)
	switch {
	case name == "":
		ch, err = a.store.GetChannel(ctx, hook.ChannelID)
		if err != nil {
			return nil, storeErr(where, err, channelMissing, "channel")
		}
	case strings.HasPrefix(name, "@"):
		if hook.ChannelLocked {
			return nil, channelLocked(where)
		}
		u, err := a.store.GetUserByUsername(ctx, strings.ToLower(name[1:]))
		if err != nil {
			if errors.Is(err, postgres.ErrNotFound) {
				return nil, badRequest(where, "web.incoming_webhook.user.app_error", "Unable to find the user.").Wrap(err)
			}
			return nil, internalErr(where, err)
		}
		return a.CreateDirectChannel(ctx, s, []string{s.UserID, u.ID})
	default:
		ch, err = a.store.GetChannelByName(ctx, hook.TeamID, strings.TrimPrefix(name, "#"), false)
		if err != nil {
			if errors.Is(err, postgres.ErrNotFound) {
				return nil, model.NewAppError(where, "web.incoming_webhook.channel.app_error", http.StatusNotFound,
					"Unable to find the channel.").Wrap(err)
			}
			return nil, internalErr(where, err)
		}
	}
	if hook.ChannelLocked && ch.ID != hook.ChannelID {
		return nil, channelLocked(where)
	}
	if ch.Type != model.ChannelOpen {
		ok, err := a.canRead(ctx, s, accessOf(ch))
		if err != nil {
			return nil, internalErr(where, err)
		}
		if !ok {
			return nil, model.NewAppError(where, "web.incoming_webhook.permissions.app_error", http.StatusForbidden,
				"The webhook's creator may not post to this channel.")
		}
	}
	return ch, nil
}

func channelLocked(where string) *model.AppError {
	return model.NewAppError(where, "web.incoming_webhook.channel_locked.app_error", http.StatusForbidden,
		"This webhook is not permitted to post to the requested channel.")
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
