package model

import (
	"encoding/json"
	"fmt"
	"strings"
)

// IncomingWebhook is a Mattermost incoming webhook: a secret URL that
// posts into a channel as the user who created it.
type IncomingWebhook struct {
	ID            string `json:"id"`
	CreateAt      int64  `json:"create_at"`
	UpdateAt      int64  `json:"update_at"`
	DeleteAt      int64  `json:"delete_at"`
	UserID        string `json:"user_id"`
	ChannelID     string `json:"channel_id"`
	TeamID        string `json:"team_id"`
	DisplayName   string `json:"display_name"`
	Description   string `json:"description"`
	Username      string `json:"username"`
	IconURL       string `json:"icon_url"`
	ChannelLocked bool   `json:"channel_locked"`
	LastUsed      int64  `json:"last_used"`
}

// IncomingWebhooksWithCount is GET /hooks/incoming?include_total_count=true.
type IncomingWebhooksWithCount struct {
	Webhooks   []*IncomingWebhook `json:"incoming_webhooks"`
	TotalCount int64              `json:"total_count"`
}

// Limits of an incoming webhook's fields (Mattermost's IsValid).
const (
	IncomingWebhookDisplayNameMax = 64
	IncomingWebhookDescriptionMax = 500
	IncomingWebhookUsernameMax    = 64
	IncomingWebhookIconURLMax     = 1024
)

// DefaultWebhookUsername is the name shown on a webhook post when
// username overrides are on and neither hook nor payload names one.
const DefaultWebhookUsername = "webhook"

// IncomingWebhookRequest is the payload POSTed to /hooks/{id} (Slack's
// format, as Mattermost accepts it).
type IncomingWebhookRequest struct {
	Text        string               `json:"text"`
	Username    string               `json:"username"`
	IconURL     string               `json:"icon_url"`
	ChannelName string               `json:"channel"`
	Props       map[string]any       `json:"props"`
	Attachments []*MessageAttachment `json:"attachments"`
	Type        string               `json:"type"`
	IconEmoji   string               `json:"icon_emoji"`
}

// MessageAttachment is the part of a Slack attachment Garrison renders.
type MessageAttachment struct {
	Fallback   string                    `json:"fallback"`
	Pretext    string                    `json:"pretext"`
	AuthorName string                    `json:"author_name"`
	Title      string                    `json:"title"`
	TitleLink  string                    `json:"title_link"`
	Text       string                    `json:"text"`
	Fields     []*MessageAttachmentField `json:"fields"`
	Footer     string                    `json:"footer"`
}

// MessageAttachmentField is one "title: value" line of an attachment. The
// value may be any JSON scalar (Slack senders use numbers too).
type MessageAttachmentField struct {
	Title string `json:"title"`
	Value any    `json:"value"`
	Short any    `json:"short"`
}

// RenderAttachments renders attachments as plain Markdown text: each
// attachment's pretext, title (linked when it has a link), author, text
// and "title: value" fields on their own lines, attachments separated by
// a blank line. An attachment with none of these falls back to its
// fallback text.
func RenderAttachments(atts []*MessageAttachment) string {
	var blocks []string
	for _, a := range atts {
		if a == nil {
			continue
		}
		var lines []string
		add := func(s string) {
			if s = strings.TrimSpace(s); s != "" {
				lines = append(lines, s)
			}
		}
		add(a.Pretext)
		add(a.AuthorName)
		if t := strings.TrimSpace(a.Title); t != "" && a.TitleLink != "" {
			add("[" + t + "](" + strings.TrimSpace(a.TitleLink) + ")")
		} else {
			add(a.Title)
		}
		add(a.Text)
		for _, f := range a.Fields {
			if f == nil {
				continue
			}
			v := fieldValue(f.Value)
			switch {
			case f.Title != "" && v != "":
				add(f.Title + ": " + v)
			default:
				add(f.Title + v)
			}
		}
		add(a.Footer)
		if len(lines) == 0 {
			add(a.Fallback)
		}
		if len(lines) > 0 {
			blocks = append(blocks, strings.Join(lines, "\n"))
		}
	}
	return strings.Join(blocks, "\n\n")
}

func fieldValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	case float64, bool, json.Number:
		return fmt.Sprint(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// UserAccessToken is a personal access token. Token is only set in the
// reply to its creation; only a hash of it is stored.
type UserAccessToken struct {
	ID          string `json:"id"`
	Token       string `json:"token,omitempty"`
	UserID      string `json:"user_id"`
	Description string `json:"description"`
	IsActive    bool   `json:"is_active"`
	ExpiresAt   int64  `json:"expires_at"`
}

// UserAccessTokenDescriptionMax bounds a token's description.
const UserAccessTokenDescriptionMax = 255

// Session props of a session built from a personal access token, as
// Mattermost names them.
const (
	SessionPropType              = "type"
	SessionTypeUserAccessToken   = "UserAccessToken"
	SessionPropUserAccessTokenID = "user_access_token_id"
)

// RoleSystemUserAccessToken lets a user who is not a system admin create,
// read and revoke their own personal access tokens.
const RoleSystemUserAccessToken = "system_user_access_token"

// IsUserAccessToken reports whether the session was built from a personal
// access token rather than a login.
func (s *Session) IsUserAccessToken() bool {
	return s.Props[SessionPropType] == SessionTypeUserAccessToken
}
