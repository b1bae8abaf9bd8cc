package app

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/push"
)

// Push notifications (issue 5): what clients call. Mobile apps attach a
// device to their session (PUT /users/sessions/device); browsers
// register a Web Push subscription through the server, which keeps the
// proxy's registration id as the session's device; devices acknowledge
// pushes and, in id-loaded mode, fetch the content they were not sent.

// maxDeviceIDLength is Mattermost's Sessions.DeviceId column size.
const maxDeviceIDLength = 512

// devicePlatform is what precedes the token in a device id: Mattermost's
// platforms (apple, android_rn, apple_rnbeta...) with an optional
// app-version suffix ("-v2").
var devicePlatform = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}(-v[0-9]{1,4})?$`)

// errPushDisabled answers the push routes when push notifications are off.
func errPushDisabled(where string) *model.AppError {
	return model.NewAppError(where, "api.push_notification.disabled.app_error", http.StatusNotImplemented,
		"Push notifications are not enabled on this server (EmailSettings.SendPushNotifications and PushNotificationServer).")
}

// checkDeviceID validates a device id a mobile app attaches.
func checkDeviceID(where, deviceID string) *model.AppError {
	bad := func(detail string) *model.AppError {
		return model.ErrInvalidBody(where, "device_id").Detail("%s", detail)
	}
	if deviceID == "" {
		return bad("device_id is required")
	}
	if len(deviceID) > maxDeviceIDLength {
		return bad("longer than 512 bytes")
	}
	platform, token, ok := push.SplitDeviceID(deviceID)
	if !ok {
		return bad(`must be "<platform>:<token>"`)
	}
	if !devicePlatform.MatchString(platform) {
		return bad("unknown platform format")
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] > '~' {
			return bad("the token must be printable ASCII")
		}
	}
	if push.BasePlatform(platform) == push.PlatformWebPush {
		return badRequest(where, "api.push_notification.device.webpush.app_error",
			"Browsers register for push notifications with POST /api/v4/notifications/webpush.")
	}
	return nil
}

// refuseTokenSession refuses device changes on a personal access token's
// session: it has no stored session to hold a device.
func refuseTokenSession(where string, s *model.Session) *model.AppError {
	if s.IsUserAccessToken() {
		return badRequest(where, "api.push_notification.device.access_token.app_error",
			"A personal access token's session cannot receive push notifications; log in to register a device.")
	}
	return nil
}

// AttachDevice is PUT /users/sessions/device: the caller's session gets
// the device id (a mobile app's "<platform>:<token>") and the mobile
// session length; the user's other sessions on that device are revoked,
// as in Mattermost.
func (a *App) AttachDevice(ctx context.Context, s *model.Session, deviceID string) *model.AppError {
	const where = "app.attach_device"
	if appErr := checkDeviceID(where, deviceID); appErr != nil {
		return appErr
	}
	if appErr := refuseTokenSession(where, s); appErr != nil {
		return appErr
	}
	expires := a.millis() + a.set.SessionLengthMobile.Milliseconds()
	return a.attachDevice(ctx, where, s, deviceID, expires)
}

// attachDevice sets the session's device (expiresAt > 0 also its expiry),
// ends the user's other sessions on that device and drops a browser
// registration the session had before.
func (a *App) attachDevice(ctx context.Context, where string, s *model.Session, deviceID string, expiresAt int64) *model.AppError {
	prev, revoked, detached, err := a.store.AttachDeviceID(ctx, s.ID, s.UserID, deviceID, expiresAt)
	if errors.Is(err, postgres.ErrNotFound) {
		return model.ErrSessionExpired(where).Detail("session revoked")
	}
	if err != nil {
		return internalErr(where, err)
	}
	// Every node forgets the user's cached sessions (they hold the old
	// device and expiry) and ends the revoked ones' sockets.
	// Users whose session on the same browser lost the registration
	// too.
	a.invalidate(ctx, invalidation{Users: append([]string{s.UserID}, detached...), Sessions: revoked})
	if prev != deviceID {
		a.queueUnregister(prev)
	}
	return nil
}

// vapidCache holds the proxy's VAPID key for vapidKeyTTL.
type vapidCache struct {
	mu  sync.Mutex // guards the fields below
	key string
	at  time.Time
}

// WebPushKey is GET /notifications/webpush: the proxy's VAPID public key,
// which browsers subscribe with.
func (a *App) WebPushKey(ctx context.Context) (string, *model.AppError) {
	const where = "app.web_push_key"
	if !a.pushOn() {
		return "", errPushDisabled(where)
	}
	now := a.now()
	a.vapid.mu.Lock()
	key, at := a.vapid.key, a.vapid.at
	a.vapid.mu.Unlock()
	if key != "" && now.Sub(at) < vapidKeyTTL {
		return key, nil
	}
	ctx, cancel := context.WithTimeout(ctx, pushCallTimeout)
	defer cancel()
	key, err := a.pushq.sender.VAPIDPublicKey(ctx)
	if err != nil {
		return "", proxyErr(where, err)
	}
	a.vapid.mu.Lock()
	a.vapid.key, a.vapid.at = key, now
	a.vapid.mu.Unlock()
	return key, nil
}

// RegisterWebPush is POST /notifications/webpush: the browser's
// subscription is registered with the proxy and the registration becomes
// the caller's session's device ("webpush:<id>"), replacing (and
// unregistering) any the session had.
func (a *App) RegisterWebPush(ctx context.Context, s *model.Session, sub push.Subscription) *model.AppError {
	const where = "app.register_web_push"
	if !a.pushOn() {
		return errPushDisabled(where)
	}
	if appErr := refuseTokenSession(where, s); appErr != nil {
		return appErr
	}
	if err := sub.Validate(); err != nil {
		return badRequest(where, "api.push_notification.webpush.invalid_subscription.app_error",
			"Invalid push subscription: "+err.Error()+".")
	}
	cctx, cancel := context.WithTimeout(ctx, pushCallTimeout)
	defer cancel()
	id, err := a.pushq.sender.Register(cctx, sub)
	if err != nil {
		return proxyErr(where, err)
	}
	if appErr := a.attachDevice(ctx, where, s, webPushPrefix+id, 0); appErr != nil {
		// Nothing points at the new registration: drop it.
		a.queueUnregister(webPushPrefix + id)
		return appErr
	}
	return nil
}

// UnregisterWebPush is DELETE /notifications/webpush: the caller's
// session's browser registration is dropped at the proxy, then from the
// session. A session without one has nothing to drop.
func (a *App) UnregisterWebPush(ctx context.Context, s *model.Session) *model.AppError {
	const where = "app.unregister_web_push"
	if !a.pushOn() {
		return errPushDisabled(where)
	}
	// The stored session, not a cached copy: the device may have changed.
	cur, err := a.store.GetSession(ctx, s.ID)
	if errors.Is(err, postgres.ErrNotFound) {
		return model.ErrSessionExpired(where).Detail("session revoked")
	}
	if err != nil {
		return internalErr(where, err)
	}
	id, ok := webPushRegistration(cur.DeviceID)
	if !ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, pushCallTimeout)
	defer cancel()
	// The proxy first: if it fails, the session keeps the device and the
	// client can try again.
	if err := a.pushq.sender.Unregister(cctx, id); err != nil {
		return proxyErr(where, err)
	}
	if _, err := a.store.ClearDeviceID(ctx, s.ID, cur.DeviceID); err != nil {
		return internalErr(where, err)
	}
	a.invalidate(ctx, invalidation{Users: []string{s.UserID}})
	return nil
}

// proxyErr renders a push proxy failure for the client: the proxy's
// refusal of a subscription is the client's 400, the rest are the
// server's.
func proxyErr(where string, err error) *model.AppError {
	var pe *push.Error
	errors.As(err, &pe)
	switch {
	case errors.Is(err, push.ErrRejected):
		msg := "The push service refused the subscription."
		if pe != nil && pe.Msg != "" {
			msg = "The push service refused the subscription: " + pe.Msg + "."
		}
		return badRequest(where, "api.push_notification.webpush.rejected.app_error", msg).Wrap(err)
	case errors.Is(err, push.ErrThrottled):
		return model.NewAppError(where, "api.push_notification.proxy_throttled.app_error", http.StatusServiceUnavailable,
			"The push service is busy. Please try again.").Wrap(err)
	case errors.Is(err, push.ErrUnauthorized):
		return model.NewAppError(where, "api.push_notification.proxy_auth.app_error", http.StatusBadGateway,
			"The push service refused this server's credentials; an administrator must check EmailSettings.PushNotificationServer.").Wrap(err)
	}
	return model.NewAppError(where, "api.push_notification.proxy_unavailable.app_error", http.StatusBadGateway,
		"The push service is unavailable. Please try again later.").Wrap(err)
}

// Bounds on an acknowledgement's fields.
const (
	maxAckIDLength       = 128
	maxAckPlatformLength = 64
)

// PushAck is POST /notifications/ack: the receipt is forwarded to the
// proxy without waiting, and for an id-loaded message push the full
// notification is returned, if the caller may read the post (Mattermost's
// pushNotificationAck and GetNotificationMessage). A nil notification
// means a plain OK.
func (a *App) PushAck(ctx context.Context, s *model.Session, ack *push.Ack) (*push.Notification, *model.AppError) {
	const where = "app.push_ack"
	if !a.pushOn() {
		return nil, errPushDisabled(where)
	}
	switch {
	case ack.ID == "" || len(ack.ID) > maxAckIDLength:
		return nil, model.ErrInvalidBody(where, "id")
	case ack.Platform == "" || len(ack.Platform) > maxAckPlatformLength:
		return nil, model.ErrInvalidBody(where, "platform")
	case !validPushType(ack.Type):
		return nil, model.ErrInvalidBody(where, "type")
	case ack.PostID != "" && !model.IsValidID(ack.PostID):
		return nil, model.ErrInvalidBody(where, "post_id")
	}
	fwd := *ack
	a.pushq.enqueue(pushJob{kind: jobAck, ack: &fwd, userID: s.UserID})
	if !ack.IsIDLoaded || ack.PostID == "" || ack.Type != push.TypeMessage {
		return nil, nil
	}
	post, appErr := a.GetPost(ctx, s, ack.PostID, false)
	if appErr != nil {
		return nil, appErr
	}
	n, err := a.fullPush(ctx, post, s.UserID)
	if err != nil {
		return nil, internalErr(where, err)
	}
	n.AckID = ack.ID
	return n, nil
}

// validPushType reports whether t is a notification type.
func validPushType(t string) bool {
	switch t {
	case push.TypeMessage, push.TypeClear, push.TypeUpdateBadge, push.TypeSession, push.TypeTest:
		return true
	}
	return false
}

// fullPush builds the full-content message push of post for userID, what
// an id-loaded push leaves out.
func (a *App) fullPush(ctx context.Context, post *model.Post, userID string) (*push.Notification, error) {
	ch, err := a.store.GetChannel(ctx, post.ChannelID)
	if err != nil {
		return nil, err
	}
	sender, err := a.store.GetUser(ctx, post.UserID)
	if err != nil {
		return nil, err
	}
	badges, err := a.store.BadgeCounts(ctx, []string{userID})
	if err != nil {
		return nil, err
	}
	var groupNames map[string]string
	if ch.Type == model.ChannelGroup {
		if groupNames, err = a.store.ChannelMemberUsernames(ctx, ch.ID); err != nil {
			return nil, err
		}
	}
	fromWebhook, _ := post.Props["from_webhook"].(string)
	overrideName, _ := post.Props["override_username"].(string)
	overrideIcon, _ := post.Props["override_icon_url"].(string)
	p := &postForPush{
		ID: post.ID, ChannelID: post.ChannelID, RootID: post.RootID, UserID: post.UserID, Type: post.Type,
		Message: post.Message + attachmentText(post.Props), HasFiles: len(post.FileIDs) > 0,
		FromWebhook: fromWebhook == "true", OverrideUsername: overrideName, OverrideIconURL: overrideIcon,
		SenderUsername: sender.Username, ChannelType: ch.Type, ChannelDisplayName: ch.DisplayName, TeamID: ch.TeamID,
	}
	set := a.pushSettings()
	set.contents = pushContentsFull
	n := buildPostPush(set, p, mentionNone, pushChannelName(p, userID, groupNames), badges[userID])
	n.ServerID = a.serverID
	return n, nil
}

// isWebPushDevice reports whether a session's device is a browser
// registration.
func isWebPushDevice(deviceID string) bool { return strings.HasPrefix(deviceID, webPushPrefix) }
