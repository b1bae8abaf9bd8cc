package app

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/push"
)

func TestDecidePush(t *testing.T) {
	t.Parallel()
	const (
		now    = int64(1_800_000_000_000)
		sender = "sender"
		user   = "user"
		chanID = "chan"
	)
	sec := time.Second.Milliseconds()
	// post builds the post; recipient the member, with Mattermost's
	// default props unless changed.
	post := func(typ string, f ...func(p *postForPush)) *postForPush {
		p := &postForPush{ID: "post", ChannelID: chanID, UserID: sender, ChannelType: typ, SenderUsername: "alice", Message: "hi"}
		for _, fn := range f {
			fn(p)
		}
		return p
	}
	recipient := func(f ...func(r *postgres.PushRecipient)) *postgres.PushRecipient {
		r := &postgres.PushRecipient{UserID: user, Status: model.StatusOffline,
			UserNotify:   model.DefaultNotifyProps(""),
			MemberNotify: model.DefaultChannelNotifyProps()}
		for _, fn := range f {
			fn(r)
		}
		return r
	}
	userProp := func(k, v string) func(r *postgres.PushRecipient) {
		return func(r *postgres.PushRecipient) {
			if v == "" {
				delete(r.UserNotify, k)
				return
			}
			r.UserNotify[k] = v
		}
	}
	memberProp := func(k, v string) func(r *postgres.PushRecipient) {
		return func(r *postgres.PushRecipient) { r.MemberNotify[k] = v }
	}
	status := func(st string, lastAgo int64, active string, activeAgo int64) func(r *postgres.PushRecipient) {
		return func(r *postgres.PushRecipient) {
			r.Status, r.LastActivityAt, r.ActiveChannel, r.ActiveChannelAt = st, now-lastAgo, active, now-activeAgo
		}
	}
	explicit := func(p *postForPush) { p.Explicit, p.Mentioned = []string{user}, []string{user} }
	channelWide := func(p *postForPush) { p.ChannelWide, p.Mentioned = true, []string{user} }
	webhook := func(p *postForPush) { p.FromWebhook = true }
	reply := func(p *postForPush) { p.RootID = "root" }
	muted := memberProp("mark_unread", "mention")
	self := func(r *postgres.PushRecipient) { r.UserID = sender }

	tests := []struct {
		name   string
		post   *postForPush
		r      *postgres.PushRecipient
		thread threadPosters
		want   pushDecision
	}{
		// Direct and group messages.
		{"DM", post(model.ChannelDirect), recipient(), threadPosters{}, pushDecision{send: true, kind: mentionDM}},
		{"muted DM", post(model.ChannelDirect), recipient(muted), threadPosters{}, pushDecision{kind: mentionDM, reason: "channel_muted"}},
		{"DM with push none", post(model.ChannelDirect), recipient(userProp("push", "none")), threadPosters{}, pushDecision{kind: mentionDM, reason: "level_none"}},
		{"GM with push mention", post(model.ChannelGroup), recipient(), threadPosters{}, pushDecision{send: true, kind: mentionGM}},
		{"muted GM", post(model.ChannelGroup), recipient(muted), threadPosters{}, pushDecision{kind: mentionGM, reason: "channel_muted"}},
		{"GM set to mentions only", post(model.ChannelGroup), recipient(memberProp("push", "mention")), threadPosters{},
			pushDecision{kind: mentionGM, reason: "not_mentioned"}},
		{"GM mention with channel set to mentions", post(model.ChannelGroup, explicit), recipient(memberProp("push", "mention")), threadPosters{},
			pushDecision{send: true, kind: mentionKeyword}},

		// Channels: mentions and push levels.
		{"no mention", post(model.ChannelOpen), recipient(), threadPosters{}, pushDecision{reason: "not_mentioned"}},
		{"mention", post(model.ChannelOpen, explicit), recipient(), threadPosters{}, pushDecision{send: true, kind: mentionKeyword}},
		{"mention in a private channel", post(model.ChannelPrivate, explicit), recipient(), threadPosters{}, pushDecision{send: true, kind: mentionKeyword}},
		{"channel-wide mention", post(model.ChannelOpen, channelWide), recipient(), threadPosters{}, pushDecision{send: true, kind: mentionChannel}},
		{"channel-wide mention ignored", post(model.ChannelOpen, channelWide, func(p *postForPush) { p.Mentioned = nil }), recipient(),
			threadPosters{}, pushDecision{reason: "not_mentioned"}},
		{"muted channel mention", post(model.ChannelOpen, explicit), recipient(muted), threadPosters{}, pushDecision{kind: mentionKeyword, reason: "channel_muted"}},
		{"user push all", post(model.ChannelOpen), recipient(userProp("push", "all")), threadPosters{}, pushDecision{send: true}},
		{"channel push all over user none", post(model.ChannelOpen), recipient(userProp("push", "none"), memberProp("push", "all")), threadPosters{},
			pushDecision{send: true}},
		{"channel push none over a mention", post(model.ChannelOpen, explicit), recipient(memberProp("push", "none")), threadPosters{},
			pushDecision{kind: mentionKeyword, reason: "level_none"}},
		{"channel push mention over user all", post(model.ChannelOpen), recipient(userProp("push", "all"), memberProp("push", "mention")), threadPosters{},
			pushDecision{reason: "not_mentioned"}},
		{"user push none", post(model.ChannelOpen, explicit), recipient(userProp("push", "none")), threadPosters{},
			pushDecision{kind: mentionKeyword, reason: "level_none"}},
		{"user push missing means mention", post(model.ChannelOpen), recipient(userProp("push", "")), threadPosters{}, pushDecision{reason: "not_mentioned"}},
		{"system message", post(model.ChannelOpen, explicit, func(p *postForPush) { p.Type = "system_join_channel" }), recipient(), threadPosters{},
			pushDecision{kind: mentionKeyword, reason: "system_message"}},

		// The sender, and webhooks (Garrison has no bots: their posts are
		// their owner's, like any user's).
		{"own post with push all", post(model.ChannelOpen), recipient(self, userProp("push", "all")), threadPosters{}, pushDecision{reason: "not_mentioned"}},
		{"own mention", post(model.ChannelOpen, func(p *postForPush) { p.Explicit = []string{sender} }), recipient(self), threadPosters{},
			pushDecision{reason: "not_mentioned"}},
		{"webhook post notifies its creator with push all", post(model.ChannelOpen, webhook), recipient(self, userProp("push", "all")), threadPosters{},
			pushDecision{send: true}},
		{"webhook post mentioning its creator", post(model.ChannelOpen, webhook, func(p *postForPush) { p.Explicit = []string{sender} }), recipient(self),
			threadPosters{}, pushDecision{send: true, kind: mentionKeyword}},
		{"webhook DM notifies its creator", post(model.ChannelDirect, webhook), recipient(self), threadPosters{}, pushDecision{send: true, kind: mentionDM}},

		// Replies (notify_props comments; no collapsed threads).
		{"reply to my post, comments never", post(model.ChannelOpen, reply), recipient(), threadPosters{author: user}, pushDecision{reason: "not_mentioned"}},
		{"reply to my post, comments root", post(model.ChannelOpen, reply), recipient(userProp("comments", "root")), threadPosters{author: user},
			pushDecision{send: true, kind: mentionComment}},
		{"reply in a thread I replied to, comments root", post(model.ChannelOpen, reply), recipient(userProp("comments", "root")),
			threadPosters{author: "x", repliers: []string{user}}, pushDecision{reason: "not_mentioned"}},
		{"reply in a thread I replied to, comments any", post(model.ChannelOpen, reply), recipient(userProp("comments", "any")),
			threadPosters{author: "x", repliers: []string{user, sender}}, pushDecision{send: true, kind: mentionThread}},

		// Status.
		{"dnd", post(model.ChannelDirect), recipient(status(model.StatusDND, 0, "", 0)), threadPosters{}, pushDecision{kind: mentionDM, reason: "dnd"}},
		{"out of office", post(model.ChannelDirect), recipient(status(model.StatusOutOfOffice, 0, "", 0)), threadPosters{},
			pushDecision{kind: mentionDM, reason: "out_of_office"}},
		{"online elsewhere, push_status online", post(model.ChannelDirect), recipient(status(model.StatusOnline, 0, "other", 0)), threadPosters{},
			pushDecision{send: true, kind: mentionDM}},
		{"reading the channel", post(model.ChannelDirect), recipient(status(model.StatusOnline, 5*sec, chanID, 30*sec)), threadPosters{},
			pushDecision{kind: mentionDM, reason: "user_active"}},
		{"viewed the channel just now", post(model.ChannelDirect), recipient(status(model.StatusOnline, 90*sec, chanID, 2*sec)), threadPosters{},
			pushDecision{kind: mentionDM, reason: "user_active"}},
		{"viewed the channel a while ago", post(model.ChannelDirect), recipient(status(model.StatusOnline, 30*sec, chanID, 60*sec)), threadPosters{},
			pushDecision{send: true, kind: mentionDM}},
		{"push_status missing means online", post(model.ChannelDirect), recipient(userProp("push_status", ""), status(model.StatusOnline, 0, "x", 0)),
			threadPosters{}, pushDecision{send: true, kind: mentionDM}},
		{"push_status away, online", post(model.ChannelDirect), recipient(userProp("push_status", "away"), status(model.StatusOnline, 0, "x", 0)),
			threadPosters{}, pushDecision{kind: mentionDM, reason: "user_active"}},
		{"push_status away, away", post(model.ChannelDirect), recipient(userProp("push_status", "away"), status(model.StatusAway, 0, chanID, 0)),
			threadPosters{}, pushDecision{send: true, kind: mentionDM}},
		{"push_status away, offline", post(model.ChannelDirect), recipient(userProp("push_status", "away")), threadPosters{},
			pushDecision{send: true, kind: mentionDM}},
		{"push_status offline, away", post(model.ChannelDirect), recipient(userProp("push_status", "offline"), status(model.StatusAway, 0, "", 0)),
			threadPosters{}, pushDecision{kind: mentionDM, reason: "user_active"}},
		{"push_status offline, offline", post(model.ChannelDirect), recipient(userProp("push_status", "offline")), threadPosters{},
			pushDecision{send: true, kind: mentionDM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, decidePush(tt.post, tt.thread, tt.r, now))
		})
	}
}

func TestPushText(t *testing.T) {
	t.Parallel()
	const s = "@alice"
	tests := []struct {
		contents string
		msg      string
		kind     mentionKind
		files    bool
		chType   string
		want     string
	}{
		{pushContentsFull, "hello", mentionNone, false, model.ChannelOpen, "@alice: hello"},
		{pushContentsFull, "hello", mentionDM, false, model.ChannelDirect, "hello"},
		{pushContentsFull, "", mentionNone, true, model.ChannelOpen, "@alice attached a file."},
		{pushContentsGeneric, "", mentionDM, true, model.ChannelDirect, "attached a file."},
		{pushContentsGeneric, "hello", mentionDM, false, model.ChannelDirect, "sent you a message."},
		{pushContentsGeneric, "hello", mentionChannel, false, model.ChannelOpen, "@alice notified the channel."},
		{pushContentsGeneric, "hello", mentionKeyword, false, model.ChannelPrivate, "@alice mentioned you."},
		{pushContentsGenericNoChannel, "hello", mentionComment, false, model.ChannelOpen, "@alice commented on your post."},
		{pushContentsGeneric, "hello", mentionThread, false, model.ChannelOpen, "@alice commented on a thread you participated in."},
		{pushContentsGeneric, "hello", mentionGM, false, model.ChannelGroup, "@alice posted a message."},
		{pushContentsGeneric, "hello", mentionNone, false, model.ChannelOpen, "@alice posted a message."},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, pushText(tt.contents, tt.msg, tt.kind, tt.files, s, tt.chType), "%+v", tt)
	}
}

func TestBuildPostPush(t *testing.T) {
	t.Parallel()
	p := &postForPush{ID: "post", ChannelID: "chan", RootID: "root", UserID: "sender", TeamID: "team", Message: "secret plans",
		SenderUsername: "alice", ChannelType: model.ChannelOpen, ChannelDisplayName: "Ops", FromWebhook: true,
		OverrideUsername: "deploybot", OverrideIconURL: "https://icons.example/bot.png"}

	// id_loaded: ids and the generic text only; nothing of the content.
	n := buildPostPush(pushSettings{contents: pushContentsIDLoaded, overrideUsername: true}, p, mentionKeyword, "Ops", 3)
	require.Equal(t, &push.Notification{PostID: "post", ChannelID: "chan", RootID: "root", TeamID: "team",
		Category: push.CategoryCanReply, Version: push.MessageV2, Type: push.TypeMessage, SenderID: "sender",
		Badge: 3, IsIDLoaded: true, Message: "You've received a new message."}, n)

	n = buildPostPush(pushSettings{contents: pushContentsFull}, p, mentionKeyword, "Ops", 0)
	require.Equal(t, "Ops", n.ChannelName)
	require.Equal(t, "@alice", n.SenderName, "overrides off")
	require.Empty(t, n.OverrideUsername)
	require.Empty(t, n.OverrideIconURL)
	require.Equal(t, "true", n.FromWebhook)
	require.Equal(t, "@alice: secret plans", n.Message)
	require.False(t, n.IsIDLoaded)

	n = buildPostPush(pushSettings{contents: pushContentsGenericNoChannel, overrideUsername: true, overrideIcon: true}, p, mentionKeyword, "Ops", 0)
	require.Empty(t, n.ChannelName, "generic_no_channel names no channel")
	require.Equal(t, "deploybot", n.SenderName)
	require.Equal(t, "deploybot", n.OverrideUsername)
	require.Equal(t, "https://icons.example/bot.png", n.OverrideIconURL)
	require.Equal(t, "deploybot mentioned you.", n.Message)

	dm := *p
	dm.ChannelType = model.ChannelDirect
	n = buildPostPush(pushSettings{contents: pushContentsGenericNoChannel}, &dm, mentionDM, "@alice", 0)
	require.Equal(t, "@alice", n.ChannelName, "a DM is named after its sender even without channel names")

	long := *p
	long.Message = strings.Repeat("é", 2000) // 4000 bytes
	n = buildPostPush(pushSettings{contents: pushContentsFull}, &long, mentionNone, strings.Repeat("ü", 40), 0)
	require.LessOrEqual(t, len(n.Message), pushMessageMaxBytes)
	require.LessOrEqual(t, len(n.ChannelName), pushChannelNameMaxBytes)
	require.True(t, strings.HasSuffix(n.Message, "é"), "cut between characters")
	require.True(t, strings.HasSuffix(n.ChannelName, "ü"))
}

func TestPushChannelName(t *testing.T) {
	t.Parallel()
	p := &postForPush{SenderUsername: "alice", ChannelDisplayName: "Town Square"}
	p.ChannelType = model.ChannelOpen
	require.Equal(t, "Town Square", pushChannelName(p, "me", nil))
	p.ChannelType = model.ChannelDirect
	require.Equal(t, "@alice", pushChannelName(p, "me", nil))
	p.ChannelType = model.ChannelGroup
	require.Equal(t, "alice, carol", pushChannelName(p, "me", map[string]string{"me": "bob", "a": "alice", "c": "carol"}))
}

func TestAttachmentText(t *testing.T) {
	t.Parallel()
	props := map[string]any{"attachments": []any{
		map[string]any{"fallback": "Build 42 failed", "text": "details"},
		map[string]any{"text": "no fallback"},
		"not an attachment",
	}}
	require.Equal(t, "\nBuild 42 failed", attachmentText(props))
	require.Empty(t, attachmentText(nil))
}

func TestShouldClear(t *testing.T) {
	t.Parallel()
	v := func(typ, push string, mentions, unread int64) postgres.ViewedChannel {
		return postgres.ViewedChannel{Type: typ, Push: push, MentionsBefore: mentions, UnreadBefore: unread}
	}
	tests := []struct {
		v    postgres.ViewedChannel
		want bool
	}{
		{v(model.ChannelOpen, "mention", 0, 5), false},
		{v(model.ChannelOpen, "mention", 1, 5), true},
		{v(model.ChannelOpen, "all", 0, 5), true},
		{v(model.ChannelOpen, "all", 0, 0), false},
		{v(model.ChannelOpen, "none", 2, 5), false},
		{v(model.ChannelDirect, "none", 0, 1), true},
		{v(model.ChannelGroup, "mention", 0, 1), true},
		{v(model.ChannelGroup, "mention", 0, 0), false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, shouldClear(tt.v), "%+v", tt.v)
	}
}

func TestCheckDeviceID(t *testing.T) {
	t.Parallel()
	good := []string{"android_rn-v2:fcm-token_123:APA91b", "apple_rn-v2:abcdef0123", "apple:deadbeef", "apple_rnbeta-v2:x"}
	for _, id := range good {
		require.Nil(t, checkDeviceID("test", id), id)
	}
	bad := map[string]string{
		"":                                    "api.context.invalid_body_param.app_error",
		"no-colon":                            "api.context.invalid_body_param.app_error",
		":token":                              "api.context.invalid_body_param.app_error",
		"android:":                            "api.context.invalid_body_param.app_error",
		"Android:tok":                         "api.context.invalid_body_param.app_error",
		"android:tok en":                      "api.context.invalid_body_param.app_error",
		"android:tok\n":                       "api.context.invalid_body_param.app_error",
		"android:" + strings.Repeat("a", 600): "api.context.invalid_body_param.app_error",
		"webpush:reg":                         "api.push_notification.device.webpush.app_error",
		"webpush-v2:reg":                      "api.push_notification.device.webpush.app_error",
	}
	for id, want := range bad {
		appErr := checkDeviceID("test", id)
		require.NotNil(t, appErr, id)
		require.Equal(t, want, appErr.ID, id)
		require.Equal(t, 400, appErr.StatusCode)
	}
}
