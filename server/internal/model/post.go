package model

// Post is a message in a channel.
type Post struct {
	ID            string         `json:"id"`
	CreateAt      int64          `json:"create_at"`
	UpdateAt      int64          `json:"update_at"`
	EditAt        int64          `json:"edit_at"`
	DeleteAt      int64          `json:"delete_at"`
	IsPinned      bool           `json:"is_pinned"`
	UserID        string         `json:"user_id"`
	ChannelID     string         `json:"channel_id"`
	RootID        string         `json:"root_id"`
	OriginalID    string         `json:"original_id"`
	Message       string         `json:"message"`
	Type          string         `json:"type"`
	Props         map[string]any `json:"props"`
	Hashtags      string         `json:"hashtags"`
	FileIDs       []string       `json:"file_ids,omitempty"`
	PendingPostID string         `json:"pending_post_id"`
	HasReactions  bool           `json:"has_reactions,omitempty"`
	ReplyCount    int64          `json:"reply_count"`
	LastReplyAt   int64          `json:"last_reply_at"`
	Participants  []*User        `json:"participants"`
	Metadata      *PostMetadata  `json:"metadata,omitempty"`
}

// PostMetadata carries data derived from a post.
type PostMetadata struct {
	Embeds    []any       `json:"embeds,omitempty"`
	Emojis    []any       `json:"emojis,omitempty"`
	Files     []any       `json:"files,omitempty"`
	Images    any         `json:"images,omitempty"`
	Reactions []*Reaction `json:"reactions,omitempty"`
}

// PostPatch is the body of PUT /posts/{id}/patch.
type PostPatch struct {
	IsPinned     *bool           `json:"is_pinned"`
	Message      *string         `json:"message"`
	Props        *map[string]any `json:"props"`
	FileIDs      *[]string       `json:"file_ids"`
	HasReactions *bool           `json:"has_reactions"`
}

// PostList is a page of posts: Order lists ids newest first; Posts also
// holds the roots of replies in the page.
type PostList struct {
	Order                     []string         `json:"order"`
	Posts                     map[string]*Post `json:"posts"`
	NextPostID                string           `json:"next_post_id"`
	PrevPostID                string           `json:"prev_post_id"`
	HasNext                   bool             `json:"has_next,omitempty"`
	FirstInaccessiblePostTime int64            `json:"first_inaccessible_post_time"`
}

// NewPostList returns an empty list that encodes as Mattermost does.
func NewPostList() *PostList {
	return &PostList{Order: []string{}, Posts: map[string]*Post{}}
}

// Reaction is an emoji reaction by a user to a post.
type Reaction struct {
	UserID    string `json:"user_id"`
	PostID    string `json:"post_id"`
	EmojiName string `json:"emoji_name"`
	CreateAt  int64  `json:"create_at"`
	UpdateAt  int64  `json:"update_at"`
	DeleteAt  int64  `json:"delete_at"`
	RemoteID  string `json:"remote_id"`
	ChannelID string `json:"channel_id"`
}
