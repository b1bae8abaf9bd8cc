package model

// Team types.
const (
	TeamOpen   = "O"
	TeamInvite = "I"
)

// Team is a Mattermost team.
type Team struct {
	ID                 string `json:"id"`
	CreateAt           int64  `json:"create_at"`
	UpdateAt           int64  `json:"update_at"`
	DeleteAt           int64  `json:"delete_at"`
	DisplayName        string `json:"display_name"`
	Name               string `json:"name"`
	Description        string `json:"description"`
	Email              string `json:"email"`
	Type               string `json:"type"`
	CompanyName        string `json:"company_name"`
	AllowedDomains     string `json:"allowed_domains"`
	InviteID           string `json:"invite_id"`
	AllowOpenInvite    bool   `json:"allow_open_invite"`
	LastTeamIconUpdate int64  `json:"last_team_icon_update,omitempty"`
	SchemeID           string `json:"scheme_id"`
	GroupConstrained   bool   `json:"group_constrained"`
	PolicyID           string `json:"policy_id"`
	CloudLimitsArchive bool   `json:"cloud_limits_archived"`
}

// Sanitize hides fields only team admins see.
func (t *Team) Sanitize() {
	t.Email = ""
	t.InviteID = ""
}

// TeamPatch is the body of PUT /teams/{id}/patch.
type TeamPatch struct {
	DisplayName     *string `json:"display_name"`
	Description     *string `json:"description"`
	CompanyName     *string `json:"company_name"`
	AllowedDomains  *string `json:"allowed_domains"`
	AllowOpenInvite *bool   `json:"allow_open_invite"`
}

// TeamMember is a user's membership of a team.
type TeamMember struct {
	TeamID        string `json:"team_id"`
	UserID        string `json:"user_id"`
	Roles         string `json:"roles"`
	DeleteAt      int64  `json:"delete_at"`
	SchemeGuest   bool   `json:"scheme_guest"`
	SchemeUser    bool   `json:"scheme_user"`
	SchemeAdmin   bool   `json:"scheme_admin"`
	ExplicitRoles string `json:"explicit_roles"`
	CreateAt      int64  `json:"create_at"`
}

// IsAdmin reports whether the member is a team admin.
func (m *TeamMember) IsAdmin() bool { return m.SchemeAdmin }

// TeamUnread is a user's unread summary for a team.
type TeamUnread struct {
	TeamID                   string `json:"team_id"`
	MsgCount                 int64  `json:"msg_count"`
	MentionCount             int64  `json:"mention_count"`
	MentionCountRoot         int64  `json:"mention_count_root"`
	MsgCountRoot             int64  `json:"msg_count_root"`
	ThreadCount              int64  `json:"thread_count"`
	ThreadMentionCount       int64  `json:"thread_mention_count"`
	ThreadUrgentMentionCount int64  `json:"thread_urgent_mention_count"`
}
