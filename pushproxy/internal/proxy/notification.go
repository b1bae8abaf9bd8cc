package proxy

import (
	"encoding/json"
	"strconv"
	"strings"
)

// PushNotification is the body of POST /api/v1/send_push. It mirrors
// Mattermost's model.PushNotification (server/public v0.4.2) by JSON name,
// so a stock Mattermost server and Garrison's own send the same bytes.
// Unknown fields are ignored.
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

// PushNotificationAck is the body of POST /api/v1/ack, mirroring
// Mattermost's model.PushNotificationAck.
type PushNotificationAck struct {
	ID               string `json:"id"`
	ClientReceivedAt int64  `json:"received_at"`
	ClientPlatform   string `json:"platform"`
	NotificationType string `json:"type"`
	PostID           string `json:"post_id,omitempty"`
	IsIDLoaded       bool   `json:"is_id_loaded"`
}

// PushResponse is the answer to send_push and ack: Mattermost's
// model.PushResponse, a map encoded with sorted keys.
type PushResponse map[string]string

// PushResponse statuses.
const (
	StatusOK     = "OK"
	StatusFail   = "FAIL"
	StatusRemove = "REMOVE"
)

// Notification types Mattermost sends.
const (
	TypeMessage     = "message"
	TypeClear       = "clear"
	TypeUpdateBadge = "update_badge"
	TypeSession     = "session"
	TypeTest        = "test"
)

// PlatformWebPush is the platform whose device id is a registration id of
// this proxy; a garrison session's device id is "webpush:<registration id>".
const PlatformWebPush = "webpush"

func okResponse() PushResponse     { return PushResponse{"status": StatusOK} }
func removeResponse() PushResponse { return PushResponse{"status": StatusRemove} }
func failResponse(msg string) PushResponse {
	return PushResponse{"status": StatusFail, "error": msg}
}

// Error messages that mirror mattermost-push-proxy's, byte for byte.
const (
	errMissingServerID = "Failed because of missing server Id"
	errMissingAckID    = "Failed because of missing ack Id"
	errMissingAckPlat  = "Failed because of missing ack platform"
	errMissingAckType  = "Failed because of missing ack type"
	// errLegacyPlatform answers APNs and FCM platforms: not REMOVE, the
	// device is alive, it is only unreachable from a disconnected site.
	errLegacyPlatform = "platform not available on this network"
)

func errMissingDeviceID(serverID string) string {
	return "Failed because of missing device Id serverId=" + serverID
}

func errUnknownPlatform(platform, serverID string) string {
	return "Did not send message because of missing platform property type=" + platform + " serverId=" + serverID
}

// parseNotification decodes a send_push body.
func parseNotification(body []byte) (PushNotification, error) {
	var n PushNotification
	err := json.Unmarshal(body, &n)
	return n, err
}

// splitPlatform separates the "-v<N>" app version suffix from a platform
// as mattermost-push-proxy does: at the first "-v", version 1 when absent
// or not a number.
func splitPlatform(p string) (platform string, appVersion int) {
	i := strings.Index(p, "-v")
	if i < 0 {
		return p, 1
	}
	v, err := strconv.Atoi(p[i+2:])
	if err != nil {
		v = 1
	}
	return p[:i], v
}

// legacyPlatform reports a platform whose devices are reached through
// Apple or Google (apple, apple_rn, android_rnbeta, …).
func legacyPlatform(p string) bool {
	for _, prefix := range []string{"apple", "android", "ios"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}
