package api

import (
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/push"
)

// Push notifications (issue 5): Mattermost's attachDeviceId and
// pushNotificationAck (api4/user.go, api4/system.go), and Garrison's
// Web Push registration for browsers.

// attachDevice answers PUT /users/sessions/device {"device_id": "<platform>:<token>"}.
func (a *API) attachDevice(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		DeviceID string `json:"device_id"`
	}
	if err := decodeBody(r, &body, "device_id"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.AttachDevice(r.Context(), sessionFrom(r), body.DeviceID))
}

// getWebPushKey answers GET /notifications/webpush with the push proxy's
// VAPID public key, the applicationServerKey a browser subscribes with.
func (a *API) getWebPushKey(w http.ResponseWriter, r *http.Request) error {
	key, appErr := a.app.WebPushKey(r.Context())
	return reply(w, http.StatusOK, map[string]string{"vapid_public_key": key}, appErr)
}

// registerWebPush answers POST /notifications/webpush with a browser's
// PushSubscription (as JSON.stringify gives it).
func (a *API) registerWebPush(w http.ResponseWriter, r *http.Request) error {
	var sub push.Subscription
	if err := decodeBody(r, &sub, "subscription"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.RegisterWebPush(r.Context(), sessionFrom(r), sub))
}

// unregisterWebPush answers DELETE /notifications/webpush.
func (a *API) unregisterWebPush(w http.ResponseWriter, r *http.Request) error {
	return replyStatusOK(w, a.app.UnregisterWebPush(r.Context(), sessionFrom(r)))
}

// pushAck answers POST /notifications/ack: {"status":"OK"}, or for an
// id-loaded message push the full notification.
func (a *API) pushAck(w http.ResponseWriter, r *http.Request) error {
	var ack push.Ack
	if err := decodeBody(r, &ack, "ack"); err != nil {
		return err
	}
	n, appErr := a.app.PushAck(r.Context(), sessionFrom(r), &ack)
	if appErr != nil {
		return appErr
	}
	if n == nil {
		return statusOK(w)
	}
	return ok(w, n)
}
