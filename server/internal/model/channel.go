package model

// Channel types.
const (
	ChannelOpen    = "O"
	ChannelPrivate = "P"
	ChannelDirect  = "D"
	ChannelGroup   = "G"
)

// DefaultChannelName is the channel every team member belongs to.
const DefaultChannelName = "town-square"

// Channel is a Mattermost channel.
type Channel struct {
	ID                string         `json:"id"`
	CreateAt          int64          `json:"create_at"`
	UpdateAt          int64          `json:"update_at"`
	DeleteAt          int64          `json:"delete_at"`
	TeamID            string         `json:"team_id"`
	Type              string         `json:"type"`
	DisplayName       string         `json:"display_name"`
	Name              string         `json:"name"`
	Header            string         `json:"header"`
	Purpose           string         `json:"purpose"`
	LastPostAt        int64          `json:"last_post_at"`
	TotalMsgCount     int64          `json:"total_msg_count"`
	ExtraUpdateAt     int64          `json:"extra_update_at"`
	CreatorID         string         `json:"creator_id"`
	SchemeID          *string        `json:"scheme_id"`
	Props             map[string]any `json:"props"`
	GroupConstrained  *bool          `json:"group_constrained"`
	Shared            *bool          `json:"shared"`
	TotalMsgCountRoot int64          `json:"total_msg_count_root"`
	PolicyID          *string        `json:"policy_id"`
	LastRootPostAt    int64          `json:"last_root_post_at"`
}

// IsGroupOrDirect reports whether the channel is a DM or group message.
func (c *Channel) IsGroupOrDirect() bool {
	return c.Type == ChannelDirect || c.Type == ChannelGroup
}

// ChannelPatch is the body of PUT /channels/{id}/patch.
type ChannelPatch struct {
	DisplayName *string `json:"display_name"`
	Name        *string `json:"name"`
	Header      *string `json:"header"`
	Purpose     *string `json:"purpose"`
}

// ChannelMember is a user's membership of a channel, with read state.
type ChannelMember struct {
	ChannelID          string    `json:"channel_id"`
	UserID             string    `json:"user_id"`
	Roles              string    `json:"roles"`
	LastViewedAt       int64     `json:"last_viewed_at"`
	MsgCount           int64     `json:"msg_count"`
	MentionCount       int64     `json:"mention_count"`
	MentionCountRoot   int64     `json:"mention_count_root"`
	UrgentMentionCount int64     `json:"urgent_mention_count"`
	MsgCountRoot       int64     `json:"msg_count_root"`
	NotifyProps        StringMap `json:"notify_props"`
	LastUpdateAt       int64     `json:"last_update_at"`
	SchemeGuest        bool      `json:"scheme_guest"`
	SchemeUser         bool      `json:"scheme_user"`
	SchemeAdmin        bool      `json:"scheme_admin"`
	ExplicitRoles      string    `json:"explicit_roles"`
}

// DefaultChannelNotifyProps returns Mattermost's default channel member
// notify_props.
func DefaultChannelNotifyProps() StringMap {
	return StringMap{
		"desktop": "default", "push": "default", "email": "default", "mark_unread": "all",
		"ignore_channel_mentions": "default", "channel_auto_follow_threads": "off",
	}
}

// ChannelView is the body of POST /channels/members/{user_id}/view.
type ChannelView struct {
	ChannelID                 string `json:"channel_id"`
	PrevChannelID             string `json:"prev_channel_id"`
	CollapsedThreadsSupported bool   `json:"collapsed_threads_supported"`
}

// ChannelViewResponse is the reply to a channel view.
type ChannelViewResponse struct {
	Status            string           `json:"status"`
	LastViewedAtTimes map[string]int64 `json:"last_viewed_at_times"`
}

// ChannelUnread is a user's unread summary for one channel.
type ChannelUnread struct {
	TeamID             string    `json:"team_id"`
	ChannelID          string    `json:"channel_id"`
	MsgCount           int64     `json:"msg_count"`
	MentionCount       int64     `json:"mention_count"`
	MentionCountRoot   int64     `json:"mention_count_root"`
	UrgentMentionCount int64     `json:"urgent_mention_count"`
	MsgCountRoot       int64     `json:"msg_count_root"`
	NotifyProps        StringMap `json:"deprecated_notify_props"`
}
