// Package push is garrison's seam to the push proxy (garrison-pushproxy,
// or any server speaking the Mattermost push-proxy protocol): the
// notification, acknowledgement and response bodies with Mattermost's
// JSON field names, the Sender interface, its HTTP implementation and an
// in-process fake for tests. The pushtest package is the conformance
// suite both pass.
package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/internal/pushwire"
)

// The protocol's types and values, from pushwire (shared with the proxy).
const (
	TypeMessage     = pushwire.TypeMessage
	TypeClear       = pushwire.TypeClear
	TypeUpdateBadge = pushwire.TypeUpdateBadge
	TypeSession     = pushwire.TypeSession
	TypeTest        = pushwire.TypeTest

	StatusOK     = pushwire.StatusOK
	StatusFail   = pushwire.StatusFail
	StatusRemove = pushwire.StatusRemove

	CategoryCanReply = pushwire.CategoryCanReply
	MessageV2        = pushwire.MessageV2
	PlatformWebPush  = pushwire.PlatformWebPush
)

// Notification is the body of send_push (pushwire.PushNotification).
type Notification = pushwire.PushNotification

// Ack is a device's delivery receipt (pushwire.PushNotificationAck).
type Ack = pushwire.PushNotificationAck

// SplitDeviceID splits "<platform>:<token>"; see pushwire.SplitDeviceID.
func SplitDeviceID(deviceID string) (platform, token string, ok bool) {
	return pushwire.SplitDeviceID(deviceID)
}

// Response is Mattermost's model.PushResponse: {"status":"OK"},
// {"status":"REMOVE"} or {"status":"FAIL","error":"..."}.
type Response struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Subscription is a browser's PushSubscription as JSON.stringify gives it
// (the W3C Push API's PushSubscriptionJSON).
type Subscription struct {
	Endpoint       string           `json:"endpoint"`
	ExpirationTime *int64           `json:"expirationTime,omitempty"`
	Keys           SubscriptionKeys `json:"keys"`
}

// SubscriptionKeys are a subscription's keys, base64url: p256dh the
// browser's P-256 public key (65 bytes uncompressed), auth its 16-byte
// authentication secret.
type SubscriptionKeys struct {
	P256dh string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// Sender talks to a push proxy. Implementations are safe for concurrent
// use. Errors other than a context's are *Error, whose kind errors.Is
// finds (ErrUnauthorized, ErrThrottled, ErrRejected, ErrUnavailable).
type Sender interface {
	// Send hands one notification for one device to the proxy. A FAIL or
	// REMOVE answer is a Response, not an error; an error means the
	// proxy did not answer with a Response (unreachable, throttled,
	// refused the secret).
	Send(ctx context.Context, n *Notification) (Response, error)
	// Ack forwards a device's delivery receipt.
	Ack(ctx context.Context, a *Ack) error
	// VAPIDPublicKey returns the proxy's VAPID public key, base64url: the
	// applicationServerKey browsers subscribe with.
	VAPIDPublicKey(ctx context.Context) (string, error)
	// Register records a browser's subscription and returns the
	// registration id (the device id of platform PlatformWebPush). A
	// subscription the proxy refuses (bad keys, a push host it does not
	// allow) is ErrRejected.
	Register(ctx context.Context, s Subscription) (string, error)
	// Unregister removes a registration; an unknown id is not an error.
	Unregister(ctx context.Context, id string) error
}

// Error kinds.
var (
	// ErrUnauthorized: the proxy refused garrison's sender secret.
	ErrUnauthorized = errors.New("the push proxy refused the sender secret")
	// ErrThrottled: the proxy asked garrison to slow down (HTTP 429).
	ErrThrottled = errors.New("the push proxy is throttling this server")
	// ErrRejected: the proxy refused the request itself as invalid.
	ErrRejected = errors.New("the push proxy rejected the request")
	// ErrUnavailable: no usable answer (unreachable, timeout, 5xx, a
	// malformed reply).
	ErrUnavailable = errors.New("the push proxy is unavailable")
)

// Error is a failed call to the proxy.
type Error struct {
	// Op is the proxy operation: send_push, ack, vapid_public_key,
	// register or unregister.
	Op string
	// URL is the proxy's base URL with any secret redacted.
	URL string
	// Kind is one of ErrUnauthorized, ErrThrottled, ErrRejected,
	// ErrUnavailable.
	Kind error
	// Status is the HTTP status, 0 when there was no response.
	Status int
	// Msg is the proxy's own explanation (the "error" of its JSON body),
	// if it gave one.
	Msg string
	// RetryAfter is how long a throttled sender should wait; 0 if unknown.
	RetryAfter time.Duration
	// Err is the underlying cause (a transport error), if any.
	Err error
}

// Error names the operation, the proxy (secret redacted) and the cause.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "push: %s at %s: %v", e.Op, e.URL, e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Msg != "" {
		fmt.Fprintf(&b, ": %s", e.Msg)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Is reports whether target is e's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// RetryAfter returns how long err asks a caller to wait before trying
// again, and whether it is a throttling error at all.
func RetryAfter(err error) (time.Duration, bool) {
	var pe *Error
	if errors.As(err, &pe) && pe.Kind == ErrThrottled {
		return pe.RetryAfter, true
	}
	return 0, false
}

// legacyPlatforms are the platforms of Mattermost's mobile apps, whose
// tokens need Apple's or Google's clouds.
var legacyPlatforms = map[string]bool{
	"apple": true, "apple_rn": true, "apple_rnbeta": true, "apple_voip": true,
	"android": true, "android_rn": true, "android_rnbeta": true,
}

// IsLegacyPlatform reports whether platform (with or without its -v<N>
// suffix) is one of the Apple or Google platforms of Mattermost's apps.
func IsLegacyPlatform(platform string) bool {
	return legacyPlatforms[BasePlatform(platform)]
}

// BasePlatform strips a "-v<N>" app-version suffix: "android_rn-v2" is
// "android_rn".
func BasePlatform(platform string) string {
	if i := strings.LastIndex(platform, "-v"); i > 0 {
		digits := platform[i+2:]
		if digits != "" && strings.Trim(digits, "0123456789") == "" {
			return platform[:i]
		}
	}
	return platform
}

// Redact shortens a token, registration id or device id for logs: its
// first eight characters and an ellipsis.
func Redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
