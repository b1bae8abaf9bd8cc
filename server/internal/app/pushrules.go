package app

import (
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/push"
)

// Push rules (issue 5), as Mattermost decides them in notification.go and
// notification_push.go (SendNotifications, ShouldSendPushNotification,
// doesNotifyPropsAllowPushNotification, doesStatusAllowPushNotification,
// getPushNotificationMessage). These are pure functions of what the push
// worker loads, so a table test covers them.

// Push contents (EmailSettings.PushNotificationContents).
const (
	pushContentsIDLoaded         = "id_loaded"
	pushContentsGenericNoChannel = "generic_no_channel"
	pushContentsGeneric          = "generic"
	pushContentsFull             = "full"
)

// activeChannelWindow is Mattermost's StatusChannelTimeout: a user whose
// active channel is the post's, and who was active this recently, is
// reading it and gets no push.
const activeChannelWindow = 20 * time.Second

// Bounds the proxy applies (mattermost-push-proxy truncates bytes); cut
// here on a character boundary instead.
const (
	pushMessageMaxBytes     = 2046
	pushChannelNameMaxBytes = 64
)

// The English texts of Mattermost's en.json the pushes carry.
const (
	pushTextIDLoaded       = "You've received a new message."
	pushTextImageOnly      = " attached a file."
	pushTextDirect         = "sent you a message."
	pushTextChannelMention = " notified the channel."
	pushTextMention        = " mentioned you."
	pushTextCommentOnPost  = " commented on your post."
	pushTextCommentThread  = " commented on a thread you participated in."
	pushTextGeneral        = " posted a message."
)

// mentionKind is why a post concerns a recipient; the order is
// Mattermost's MentionType, and a stronger kind wins.
type mentionKind int

const (
	mentionNone mentionKind = iota
	// mentionGM: every member of a group message.
	mentionGM
	// mentionThread: a reply in a thread the user posted in, with
	// notify_props comments "any".
	mentionThread
	// mentionComment: a reply to the user's root post, with comments
	// "root" or "any".
	mentionComment
	// mentionChannel: @channel, @all or @here.
	mentionChannel
	// mentionDM: the other member of a direct message.
	mentionDM
	// mentionKeyword: @username, a mention key or the first name.
	mentionKeyword
)

// explicit reports whether the kind counts as "mentioned" for the
// message text (Mattermost's explicitMention).
func (k mentionKind) explicit() bool {
	return k == mentionKeyword || k == mentionChannel || k == mentionDM
}

// postForPush is what the pushes of a new post need to know of it,
// copied when the post is queued.
type postForPush struct {
	ID, ChannelID, RootID, UserID, Type string
	Message                             string // with the fallback texts of attachments
	HasFiles                            bool
	FromWebhook                         bool
	OverrideUsername, OverrideIconURL   string
	SenderUsername                      string
	ChannelType, ChannelDisplayName     string
	TeamID                              string
	// Explicit are the users the message mentions by name or keyword;
	// Mentioned those whose mention count it raised (the other member of
	// a DM, explicit mentions, channel-wide mentions that reached them).
	Explicit, Mentioned []string
	// ChannelWide is set for @channel, @all and @here.
	ChannelWide bool
	CreateAt    int64
}

// isSystem reports whether the post is a system message, which never
// pushes.
func (p *postForPush) isSystem() bool { return strings.HasPrefix(p.Type, "system_") }

// threadPosters is who wrote a thread's root and who replied in it.
type threadPosters struct {
	author   string
	repliers []string
}

// pushDecision is the rules' answer for one recipient.
type pushDecision struct {
	send bool
	kind mentionKind
	// reason says why not, as Mattermost's NotificationReason does.
	reason string
}

// mentionKindOf works out why p concerns r (Mattermost's mention
// collection in SendNotifications). The sender is concerned only by a
// webhook's post.
func mentionKindOf(p *postForPush, th threadPosters, r *postgres.PushRecipient) mentionKind {
	uid := r.UserID
	if uid == p.UserID && !p.FromWebhook {
		return mentionNone
	}
	if p.ChannelType == model.ChannelDirect {
		return mentionDM
	}
	kind := mentionNone
	switch {
	case slices.Contains(p.Explicit, uid):
		kind = mentionKeyword
	case p.ChannelWide && slices.Contains(p.Mentioned, uid):
		kind = mentionChannel
	}
	if p.ChannelType == model.ChannelGroup {
		kind = max(kind, mentionGM)
	}
	if p.RootID != "" {
		switch comments := r.UserNotify["comments"]; {
		case th.author == uid && (comments == "root" || comments == "any"):
			kind = max(kind, mentionComment)
		case comments == "any" && slices.Contains(th.repliers, uid):
			kind = max(kind, mentionThread)
		}
	}
	return kind
}

// decidePush applies the rules to one recipient at now (ms).
func decidePush(p *postForPush, th threadPosters, r *postgres.PushRecipient, now int64) pushDecision {
	kind := mentionKindOf(p, th, r)
	userPush := r.UserNotify["push"]
	if userPush == "" {
		userPush = "mention" // Mattermost's default for a user
	}
	memberPush := r.MemberNotify["push"]
	if memberPush == "" {
		memberPush = "default"
	}
	// Level "all" asks for every post, except one's own (a webhook's post
	// is not quite one's own).
	allActivity := (userPush == "all" || memberPush == "all") && (r.UserID != p.UserID || p.FromWebhook)
	if kind == mentionNone && !allActivity {
		return pushDecision{kind: kind, reason: "not_mentioned"}
	}
	isGM := p.ChannelType == model.ChannelGroup
	if reason := notifyPropsReason(userPush, memberPush, r.MemberNotify["mark_unread"], p.isSystem(), kind > mentionGM, isGM); reason != "" {
		return pushDecision{kind: kind, reason: reason}
	}
	if reason := statusReason(r, p.ChannelID, now); reason != "" {
		return pushDecision{kind: kind, reason: reason}
	}
	return pushDecision{send: true, kind: kind}
}

// notifyPropsReason is Mattermost's doesNotifyPropsAllowPushNotification:
// "" when the user's and the channel's notify props allow the push.
func notifyPropsReason(userPush, memberPush, markUnread string, system, mentioned, isGM bool) string {
	notify := memberPush
	if notify == "default" {
		notify = userPush
		if isGM && userPush == "mention" {
			notify = "all"
		}
	}
	switch {
	case markUnread == "mention":
		return "channel_muted"
	case system:
		return "system_message"
	case notify == "none":
		return "level_none"
	case notify == "mention" && !mentioned:
		return "not_mentioned"
	}
	return ""
}

// statusReason is Mattermost's doesStatusAllowPushNotification: "" when
// the recipient's status and push_status allow the push. Being active in
// the post's channel within activeChannelWindow counts as reading it.
func statusReason(r *postgres.PushRecipient, channelID string, now int64) string {
	switch r.Status {
	case model.StatusDND:
		return "dnd"
	case model.StatusOutOfOffice:
		return "out_of_office"
	}
	pushStatus := r.UserNotify["push_status"]
	lastActive := max(r.LastActivityAt, r.ActiveChannelAt)
	reading := r.ActiveChannel == channelID && now-lastActive <= activeChannelWindow.Milliseconds()
	switch {
	case (pushStatus == model.StatusOnline || pushStatus == "") && !reading:
		return ""
	case pushStatus == model.StatusAway && (r.Status == model.StatusAway || r.Status == model.StatusOffline):
		return ""
	case pushStatus == model.StatusOffline && r.Status == model.StatusOffline:
		return ""
	}
	return "user_active"
}

// pushChannelName is what a push calls the channel for the recipient
// (Mattermost's PostNotification.GetChannelName with usernames shown):
// the sender of a DM, the other members of a group message, or the
// channel's display name.
func pushChannelName(p *postForPush, recipientID string, groupNames map[string]string) string {
	switch p.ChannelType {
	case model.ChannelDirect:
		return "@" + p.SenderUsername
	case model.ChannelGroup:
		names := make([]string, 0, len(groupNames))
		for id, name := range groupNames {
			if id != recipientID {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		return strings.Join(names, ", ")
	}
	return p.ChannelDisplayName
}

// pushSettings are the settings building a push depends on.
type pushSettings struct {
	contents                       string
	overrideUsername, overrideIcon bool
}

// buildPostPush is the message push of p for one recipient, before the
// per-session fields (Mattermost's buildIdLoadedPushNotificationMessage
// and buildFullPushNotificationMessage).
func buildPostPush(set pushSettings, p *postForPush, kind mentionKind, channelName string, badge int) *push.Notification {
	n := &push.Notification{
		PostID: p.ID, ChannelID: p.ChannelID, RootID: p.RootID, TeamID: p.TeamID,
		Category: push.CategoryCanReply, Version: push.MessageV2, Type: push.TypeMessage,
		// Mattermost's id-loaded message names the recipient here, which
		// reads as a slip: the sender's id is what a device shows.
		SenderID: p.UserID, Badge: badge,
	}
	if set.contents == pushContentsIDLoaded {
		n.IsIDLoaded = true
		n.Message = pushTextIDLoaded
		return n
	}
	if set.contents != pushContentsGenericNoChannel || p.ChannelType == model.ChannelDirect {
		n.ChannelName = truncateUTF8(channelName, pushChannelNameMaxBytes)
	}
	n.SenderName = "@" + p.SenderUsername
	if set.overrideUsername && p.OverrideUsername != "" {
		n.OverrideUsername, n.SenderName = p.OverrideUsername, p.OverrideUsername
	}
	if set.overrideIcon && p.OverrideIconURL != "" {
		n.OverrideIconURL = p.OverrideIconURL
	}
	if p.FromWebhook {
		n.FromWebhook = "true"
	}
	n.Message = truncateUTF8(pushText(set.contents, p.Message, kind, p.HasFiles, n.SenderName, p.ChannelType), pushMessageMaxBytes)
	return n
}

// pushText is Mattermost's getPushNotificationMessage without collapsed
// threads.
func pushText(contents, msg string, kind mentionKind, hasFiles bool, sender, channelType string) string {
	direct := channelType == model.ChannelDirect
	switch {
	case msg == "" && hasFiles:
		if direct {
			return strings.TrimSpace(pushTextImageOnly)
		}
		return sender + pushTextImageOnly
	case contents == pushContentsFull:
		if direct {
			return msg
		}
		return sender + ": " + msg
	case direct:
		return pushTextDirect
	case kind == mentionChannel:
		return sender + pushTextChannelMention
	case kind.explicit():
		return sender + pushTextMention
	case kind == mentionComment:
		return sender + pushTextCommentOnPost
	case kind == mentionThread:
		return sender + pushTextCommentThread
	}
	return sender + pushTextGeneral
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// attachmentText is the fallback text of a post's message attachments,
// which Mattermost appends to a full push's message.
func attachmentText(props map[string]any) string {
	list, _ := props["attachments"].([]any)
	var b strings.Builder
	for _, a := range list {
		m, _ := a.(map[string]any)
		if fb, _ := m["fallback"].(string); fb != "" {
			b.WriteString("\n" + fb)
		}
	}
	return b.String()
}

// shouldClear reports whether viewing a channel should clear its pushes
// from the user's devices: only when there was something to clear, as
// Mattermost's MarkChannelsAsViewed decides (unread posts for push level
// all, direct and group messages; unread mentions for level mention;
// nothing was pushed for level none). Garrison counts no mentions for
// group messages, so their unread posts stand in.
func shouldClear(v postgres.ViewedChannel) bool {
	switch {
	case v.Push == "all" || v.Type == model.ChannelDirect || v.Type == model.ChannelGroup:
		return v.UnreadBefore > 0 || v.MentionsBefore > 0
	case v.Push == "none":
		return false
	}
	return v.MentionsBefore > 0
}
