package proxy

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/garrison-chat/garrison/internal/pushwire"
)

// PushNotification is the body of POST /api/v1/send_push: Mattermost's
// model.PushNotification (pushwire.PushNotification, shared with garrison),
// so a stock Mattermost server and Garrison's own send the same bytes.
type PushNotification = pushwire.PushNotification

// PushNotificationAck is the body of POST /api/v1/ack (pushwire.PushNotificationAck).
type PushNotificationAck = pushwire.PushNotificationAck

// PushResponse is the answer to send_push and ack: Mattermost's
// model.PushResponse, a map encoded with sorted keys.
type PushResponse map[string]string

// PushResponse statuses, notification types and the Web Push platform,
// from pushwire.
const (
	StatusOK     = pushwire.StatusOK
	StatusFail   = pushwire.StatusFail
	StatusRemove = pushwire.StatusRemove

	TypeMessage     = pushwire.TypeMessage
	TypeClear       = pushwire.TypeClear
	TypeUpdateBadge = pushwire.TypeUpdateBadge
	TypeSession     = pushwire.TypeSession
	TypeTest        = pushwire.TypeTest

	PlatformWebPush = pushwire.PlatformWebPush
)

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
