package model

import "strings"

// Role names, as Mattermost spells them.
const (
	RoleSystemUser   = "system_user"
	RoleSystemAdmin  = "system_admin"
	RoleTeamUser     = "team_user"
	RoleTeamAdmin    = "team_admin"
	RoleChannelUser  = "channel_user"
	RoleChannelAdmin = "channel_admin"
)

// StringMap is a JSON object of strings.
type StringMap map[string]string

// User is a Mattermost user as it appears on the wire.
type User struct {
	ID                 string    `json:"id"`
	CreateAt           int64     `json:"create_at,omitempty"`
	UpdateAt           int64     `json:"update_at,omitempty"`
	DeleteAt           int64     `json:"delete_at"`
	Username           string    `json:"username"`
	Password           string    `json:"password,omitempty"`
	AuthService        string    `json:"auth_service"`
	Email              string    `json:"email"`
	EmailVerified      bool      `json:"email_verified,omitempty"`
	Nickname           string    `json:"nickname"`
	FirstName          string    `json:"first_name"`
	LastName           string    `json:"last_name"`
	Position           string    `json:"position"`
	Roles              string    `json:"roles"`
	Props              StringMap `json:"props,omitempty"`
	NotifyProps        StringMap `json:"notify_props,omitempty"`
	LastPasswordUpdate int64     `json:"last_password_update,omitempty"`
	LastPictureUpdate  int64     `json:"last_picture_update,omitempty"`
	FailedAttempts     int       `json:"failed_attempts,omitempty"`
	Locale             string    `json:"locale"`
	Timezone           StringMap `json:"timezone"`
	MfaActive          bool      `json:"mfa_active,omitempty"`
	LastActivityAt     int64     `json:"last_activity_at,omitempty"`
	IsBot              bool      `json:"is_bot,omitempty"`
	DisableWelcome     bool      `json:"disable_welcome_email"`
}

// IsSystemAdmin reports whether the user holds the system admin role.
func (u *User) IsSystemAdmin() bool { return HasRole(u.Roles, RoleSystemAdmin) }

// HasRole reports whether the space-separated role list holds role.
func HasRole(roles, role string) bool {
	for _, r := range strings.Fields(roles) {
		if r == role {
			return true
		}
	}
	return false
}

// SanitizeOptions says which private fields a viewer may see.
type SanitizeOptions struct {
	Email    bool
	FullName bool
}

// Sanitize removes secrets, and private fields the viewer may not see.
func (u *User) Sanitize(o SanitizeOptions) {
	u.Password = ""
	u.FailedAttempts = 0
	if !o.Email {
		u.Email = ""
	}
	if !o.FullName {
		u.FirstName = ""
		u.LastName = ""
	}
}

// SanitizeProfile is Sanitize for a viewer who is neither the user nor a
// system admin (Mattermost's SanitizeProfile): the account's private
// settings and state go too — notify_props (the mention keys say what the
// user watches for), last_password_update, email_verified, failed_attempts
// and auth_service.
func (u *User) SanitizeProfile(o SanitizeOptions) {
	u.Sanitize(o)
	u.NotifyProps = nil
	u.LastPasswordUpdate = 0
	u.EmailVerified = false
	u.AuthService = ""
}

// DefaultNotifyProps returns Mattermost's default user notify_props.
func DefaultNotifyProps(firstName string) StringMap {
	return StringMap{
		"email": "true", "push": "mention", "desktop": "mention", "desktop_sound": "true",
		"mention_keys": "", "channel": "true", "push_status": "online", "comments": "never",
		"first_name": "false", "desktop_threads": "all", "email_threads": "all", "push_threads": "all",
	}
}

// DefaultTimezone returns Mattermost's default timezone object.
func DefaultTimezone() StringMap {
	return StringMap{"useAutomaticTimezone": "true", "automaticTimezone": "", "manualTimezone": ""}
}

// UserPatch is the body of PUT /users/{id}/patch; nil fields are untouched.
type UserPatch struct {
	Username    *string    `json:"username"`
	Password    *string    `json:"password,omitempty"`
	Nickname    *string    `json:"nickname"`
	FirstName   *string    `json:"first_name"`
	LastName    *string    `json:"last_name"`
	Position    *string    `json:"position"`
	Email       *string    `json:"email"`
	Props       *StringMap `json:"props,omitempty"`
	NotifyProps *StringMap `json:"notify_props,omitempty"`
	Locale      *string    `json:"locale"`
	Timezone    *StringMap `json:"timezone"`
}

// Session is a login session. Token is only ever filled in the login
// response path; stored sessions keep only a hash of it.
type Session struct {
	ID             string        `json:"id"`
	Token          string        `json:"token"`
	CreateAt       int64         `json:"create_at"`
	ExpiresAt      int64         `json:"expires_at"`
	LastActivityAt int64         `json:"last_activity_at"`
	UserID         string        `json:"user_id"`
	DeviceID       string        `json:"device_id"`
	Roles          string        `json:"roles"`
	IsOAuth        bool          `json:"is_oauth"`
	ExpiredNotify  bool          `json:"expired_notify"`
	Props          StringMap     `json:"props"`
	TeamMembers    []*TeamMember `json:"team_members"`
	Local          bool          `json:"local"`
	CSRF           string        `json:"-"`
}

// IsExpired reports whether the session has passed its expiry at now (ms).
func (s *Session) IsExpired(now int64) bool { return s.ExpiresAt > 0 && now > s.ExpiresAt }

// IsSystemAdmin reports whether the session's roles include system admin.
func (s *Session) IsSystemAdmin() bool { return HasRole(s.Roles, RoleSystemAdmin) }

// LoginRequest is the body of POST /users/login.
type LoginRequest struct {
	LoginID  string `json:"login_id"`
	Password string `json:"password"`
	Token    string `json:"token"`
	DeviceID string `json:"device_id"`
	LDAPOnly string `json:"ldap_only"`
	ID       string `json:"id"`
}

// PasswordUpdate is the body of PUT /users/{id}/password.
type PasswordUpdate struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// UserAutocomplete is the response of GET /users/autocomplete.
type UserAutocomplete struct {
	Users        []*User `json:"users"`
	OutOfChannel []*User `json:"out_of_channel,omitempty"`
}

// StatusOK is the body of Mattermost's simple success reply.
type StatusOK struct {
	Status string `json:"status"`
}
