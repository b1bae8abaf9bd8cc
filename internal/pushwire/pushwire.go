// Package pushwire is the Mattermost push-proxy protocol on the wire:
// the bodies of POST /api/v1/send_push and /api/v1/ack with the JSON
// names and field order of Mattermost's model.PushNotification and
// model.PushNotificationAck (server/public v0.4.2), and the values they
// carry. garrison sends them (server/internal/push) and
// garrison-pushproxy receives them (pushproxy/internal/proxy); both use
// these types, so the two ends cannot drift apart. The product does not
// import Mattermost's model package; test/compat checks these types
// against it.
package pushwire

import "strings"

// Notification types (Mattermost's model.PushType*).
const (
	TypeMessage     = "message"
	TypeClear       = "clear"
	TypeUpdateBadge = "update_badge"
	TypeSession     = "session"
	TypeTest        = "test"
)

// Response statuses (Mattermost's model.PushStatus*).
const (
	StatusOK     = "OK"
	StatusFail   = "FAIL"
	StatusRemove = "REMOVE"
)

// Values of Notification fields Mattermost servers send.
const (
	// CategoryCanReply lets a device offer a reply action.
	CategoryCanReply = "CAN_REPLY"
	// MessageV2 is the payload version of current Mattermost servers.
	MessageV2 = "v2"
	// PlatformWebPush is the platform of a Web Push registration at the
	// proxy; its device id is the registration id, and a garrison
	// session's device id is "webpush:<registration id>".
	PlatformWebPush = "webpush"
)

// PushNotification is Mattermost's model.PushNotification on the wire,
// fields in the same order. Unknown fields are ignored when decoding.
type PushNotification struct {
	AckID            string `json:"ack_id"`
	Platform         string `json:"platform"`
	ServerID         string `json:"server_id"`
	DeviceID         string `json:"device_id"`
	PostID           string `json:"post_id"`
	Category         string `json:"category,omitempty"`
	Sound            string `json:"sound,omitempty"`
	Message          string `json:"message,omitempty"`
	Badge            int    `json:"badge,omitempty"`
	ContentAvailable int    `json:"cont_ava,omitempty"`
	TeamID           string `json:"team_id,omitempty"`
	ChannelID        string `json:"channel_id,omitempty"`
	RootID           string `json:"root_id,omitempty"`
	ChannelName      string `json:"channel_name,omitempty"`
	Type             string `json:"type,omitempty"`
	SubType          string `json:"sub_type,omitempty"`
	Transport        string `json:"transport,omitempty"`
	SenderID         string `json:"sender_id,omitempty"`
	SenderName       string `json:"sender_name,omitempty"`
	OverrideUsername string `json:"override_username,omitempty"`
	OverrideIconURL  string `json:"override_icon_url,omitempty"`
	FromWebhook      string `json:"from_webhook,omitempty"`
	Version          string `json:"version,omitempty"`
	IsCRTEnabled     bool   `json:"is_crt_enabled"`
	IsIDLoaded       bool   `json:"is_id_loaded"`
	Signature        string `json:"signature"`
}

// SetDevice splits a session's device id ("<platform>:<token>") into
// Platform and DeviceID at the first colon, as Mattermost's
// SetDeviceIdAndPlatform does. It reports false, changing nothing, when
// deviceID has no platform or no token.
func (n *PushNotification) SetDevice(deviceID string) bool {
	platform, token, ok := SplitDeviceID(deviceID)
	if !ok {
		return false
	}
	n.Platform, n.DeviceID = platform, token
	return true
}

// SplitDeviceID splits "<platform>:<token>" at the first colon; ok is
// false when either part is empty.
func SplitDeviceID(deviceID string) (platform, token string, ok bool) {
	platform, token, found := strings.Cut(deviceID, ":")
	if !found || platform == "" || token == "" {
		return "", "", false
	}
	return platform, token, true
}

// PushNotificationAck is Mattermost's model.PushNotificationAck: a
// device reporting that a notification arrived.
type PushNotificationAck struct {
	ID         string `json:"id"`
	ReceivedAt int64  `json:"received_at"`
	Platform   string `json:"platform"`
	Type       string `json:"type"`
	PostID     string `json:"post_id,omitempty"`
	IsIDLoaded bool   `json:"is_id_loaded"`
}
