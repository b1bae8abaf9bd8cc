package model

// User statuses, as Mattermost names them.
const (
	StatusOnline      = "online"
	StatusAway        = "away"
	StatusOffline     = "offline"
	StatusDND         = "dnd"
	StatusOutOfOffice = "ooo"
)

// Status is a user's presence, model.Status on the wire. DNDEndTime is in
// seconds since the epoch (the one timestamp Mattermost does not give in
// milliseconds); 0 means no end. ActiveChannel is never filled in by the
// REST API, as in Mattermost.
type Status struct {
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	Manual         bool   `json:"manual"`
	LastActivityAt int64  `json:"last_activity_at"`
	ActiveChannel  string `json:"active_channel,omitempty"`
	DNDEndTime     int64  `json:"dnd_end_time"`

	// PrevStatus and PrevManual are what a timed DND returns to; never sent.
	PrevStatus string `json:"-"`
	PrevManual bool   `json:"-"`
}

// IsValidStatus reports whether s is a status Mattermost knows.
func IsValidStatus(s string) bool {
	switch s {
	case StatusOnline, StatusAway, StatusOffline, StatusDND, StatusOutOfOffice:
		return true
	}
	return false
}
