package model

// PostSearchResults is the answer to a post search: a PostList with the
// matched words of each post, for highlighting.
type PostSearchResults struct {
	*PostList
	Matches map[string][]string `json:"matches"`
}

// SearchParameter is the body of POST /posts/search and
// /teams/{id}/posts/search.
type SearchParameter struct {
	Terms                  *string `json:"terms"`
	IsOrSearch             *bool   `json:"is_or_search"`
	TimeZoneOffset         *int    `json:"time_zone_offset"`
	Page                   *int    `json:"page"`
	PerPage                *int    `json:"per_page"`
	IncludeDeletedChannels *bool   `json:"include_deleted_channels"`
}

// UserSearch is the body of POST /users/search.
type UserSearch struct {
	Term           string `json:"term"`
	TeamID         string `json:"team_id"`
	NotInTeamID    string `json:"not_in_team_id"`
	InChannelID    string `json:"in_channel_id"`
	NotInChannelID string `json:"not_in_channel_id"`
	AllowInactive  bool   `json:"allow_inactive"`
	Limit          int    `json:"limit"`
}

// ChannelSearch is the body of POST /teams/{id}/channels/search.
type ChannelSearch struct {
	Term string `json:"term"`
}
