// Package pushtest is the conformance suite every push.Sender passes: the
// in-process fake, and the HTTP sender talking to a real
// garrison-pushproxy. Its assertions are about behaviour a garrison
// server relies on, not about how an implementation gets there.
package pushtest

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/push"
)

// Env is one implementation under test, shared by the suite's subtests.
type Env struct {
	// Sender talks to the proxy with the right secret.
	Sender push.Sender
	// WithSecret returns a Sender for the same proxy presenting another
	// secret; nil when the proxy under test requires none.
	WithSecret func(secret string) push.Sender
	// Endpoint returns a fresh Web Push endpoint URL on a host the proxy
	// accepts registrations for.
	Endpoint func() string
	// ForeignEndpoint is an endpoint on a host the proxy refuses.
	ForeignEndpoint string
}

// Factory makes the implementation under test; it is called once.
type Factory func(t *testing.T) Env

// Deadline bounds each call of the suite.
const Deadline = 30 * time.Second

// serverID is the server_id the suite sends, a Mattermost-shaped id.
const serverID = "garrisonpushtestserver0001"

// Subscription returns a subscription to endpoint with fresh, valid keys.
func Subscription(t testing.TB, endpoint string) push.Subscription {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	auth := make([]byte, 16)
	_, err = rand.Read(auth)
	require.NoError(t, err)
	return push.Subscription{Endpoint: endpoint, Keys: push.SubscriptionKeys{
		P256dh: base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		Auth:   base64.RawURLEncoding.EncodeToString(auth),
	}}
}

func message(platform, device string) *push.Notification {
	return &push.Notification{
		AckID: randomID(), Platform: platform, ServerID: serverID, DeviceID: device,
		PostID: randomID(), ChannelID: randomID(), TeamID: randomID(), Category: push.CategoryCanReply,
		Type: push.TypeMessage, Version: push.MessageV2, IsIDLoaded: true, SenderID: randomID(),
		Message: "You've received a new message.", Badge: 1,
	}
}

// randomID is a 26-character Mattermost-style id.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return strings.ToLower(base64.RawURLEncoding.EncodeToString(b))[:22] + "0000"
}

// Run runs the suite against the implementation factory makes.
func Run(t *testing.T, factory Factory) {
	env := factory(t)
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), Deadline)
		t.Cleanup(cancel)
		return c
	}
	register := func(t *testing.T) string {
		t.Helper()
		id, err := env.Sender.Register(ctx(t), Subscription(t, env.Endpoint()))
		require.NoError(t, err)
		require.True(t, push.ValidRegistrationID(id), "registration id %q", id)
		return id
	}

	t.Run("VAPIDKeyIsAP256Point", func(t *testing.T) {
		t.Parallel()
		key, err := env.Sender.VAPIDPublicKey(ctx(t))
		require.NoError(t, err)
		require.NotContains(t, key, "=", "base64url without padding, as applicationServerKey")
		b, err := base64.RawURLEncoding.DecodeString(key)
		require.NoError(t, err, "base64url")
		require.Len(t, b, 65)
		require.Equal(t, byte(4), b[0], "uncompressed point")
		_, err = ecdh.P256().NewPublicKey(b)
		require.NoError(t, err, "on the curve")

		again, err := env.Sender.VAPIDPublicKey(ctx(t))
		require.NoError(t, err)
		require.Equal(t, key, again, "the key is stable")
	})

	t.Run("RegisteredSubscriptionAcceptsMessages", func(t *testing.T) {
		t.Parallel()
		id := register(t)
		for _, typ := range []string{push.TypeMessage, push.TypeClear, push.TypeUpdateBadge} {
			n := message(push.PlatformWebPush, id)
			n.Type = typ
			r, err := env.Sender.Send(ctx(t), n)
			require.NoError(t, err)
			require.Equal(t, push.Response{Status: push.StatusOK}, r, typ)
		}
		// The -v<N> app-version suffix is part of the protocol.
		r, err := env.Sender.Send(ctx(t), message(push.PlatformWebPush+"-v2", id))
		require.NoError(t, err)
		require.Equal(t, push.StatusOK, r.Status)
	})

	t.Run("TwoRegistrationsAreDistinct", func(t *testing.T) {
		t.Parallel()
		require.NotEqual(t, register(t), register(t))
	})

	t.Run("ReRegisteringAnEndpointKeepsItsID", func(t *testing.T) {
		t.Parallel()
		endpoint := env.Endpoint()
		first, err := env.Sender.Register(ctx(t), Subscription(t, endpoint))
		require.NoError(t, err)
		// The same browser subscribing again (new keys): one registration,
		// so the server can tell which sessions share a browser.
		again, err := env.Sender.Register(ctx(t), Subscription(t, endpoint))
		require.NoError(t, err)
		require.Equal(t, first, again)
	})

	t.Run("UnknownRegistrationIsRemoved", func(t *testing.T) {
		t.Parallel()
		r, err := env.Sender.Send(ctx(t), message(push.PlatformWebPush, "unknown"+randomID()))
		require.NoError(t, err)
		require.Equal(t, push.StatusRemove, r.Status)
	})

	t.Run("UnregisteredRegistrationIsRemoved", func(t *testing.T) {
		t.Parallel()
		id := register(t)
		require.NoError(t, env.Sender.Unregister(ctx(t), id))
		r, err := env.Sender.Send(ctx(t), message(push.PlatformWebPush, id))
		require.NoError(t, err)
		require.Equal(t, push.StatusRemove, r.Status)
		require.NoError(t, env.Sender.Unregister(ctx(t), id), "unregistering twice is not an error")
		require.NoError(t, env.Sender.Unregister(ctx(t), "never"+randomID()), "nor is an unknown id")
	})

	t.Run("LegacyPlatformsFail", func(t *testing.T) {
		t.Parallel()
		for _, platform := range []string{"apple", "apple_rn", "android", "android_rn", "apple_rnbeta-v2", "android_rn-v2"} {
			r, err := env.Sender.Send(ctx(t), message(platform, "token"+randomID()))
			require.NoError(t, err, platform)
			// FAIL, not REMOVE: the device is not dead, the network just
			// has no route to Apple or Google.
			require.Equal(t, push.StatusFail, r.Status, platform)
			require.Contains(t, r.Error, "not available", platform)
		}
	})

	t.Run("IncompleteNotificationsFail", func(t *testing.T) {
		t.Parallel()
		id := register(t)
		noServer := message(push.PlatformWebPush, id)
		noServer.ServerID = ""
		noDevice := message(push.PlatformWebPush, "")
		for name, n := range map[string]*push.Notification{"no server_id": noServer, "no device_id": noDevice} {
			r, err := env.Sender.Send(ctx(t), n)
			require.NoError(t, err, name)
			require.Equal(t, push.StatusFail, r.Status, name)
			require.NotEmpty(t, r.Error, name)
		}
	})

	t.Run("BadSubscriptionsAreRejected", func(t *testing.T) {
		t.Parallel()
		good := Subscription(t, env.Endpoint())
		tests := map[string]func(s *push.Subscription){
			"p256dh not base64url": func(s *push.Subscription) { s.Keys.P256dh = "not base64!" },
			"p256dh too short":     func(s *push.Subscription) { s.Keys.P256dh = s.Keys.P256dh[:40] },
			"p256dh off the curve": func(s *push.Subscription) {
				b := make([]byte, 65)
				b[0] = 4
				b[64] = 1
				s.Keys.P256dh = base64.RawURLEncoding.EncodeToString(b)
			},
			"auth too short":    func(s *push.Subscription) { s.Keys.Auth = base64.RawURLEncoding.EncodeToString([]byte("short")) },
			"no auth":           func(s *push.Subscription) { s.Keys.Auth = "" },
			"no endpoint":       func(s *push.Subscription) { s.Endpoint = "" },
			"relative endpoint": func(s *push.Subscription) { s.Endpoint = "/push/abc" },
			"ftp endpoint":      func(s *push.Subscription) { s.Endpoint = "ftp://push.example/abc" },
			"push host refused": func(s *push.Subscription) { s.Endpoint = env.ForeignEndpoint },
		}
		for name, modify := range tests {
			s := good
			modify(&s)
			id, err := env.Sender.Register(ctx(t), s)
			require.ErrorIs(t, err, push.ErrRejected, "%s: got id %q", name, id)
			var pe *push.Error
			require.ErrorAs(t, err, &pe, name)
			require.NotEmpty(t, pe.Msg, "%s: the proxy names the problem", name)
		}
	})

	t.Run("AcksAreAccepted", func(t *testing.T) {
		t.Parallel()
		err := env.Sender.Ack(ctx(t), &push.Ack{ID: randomID(), ReceivedAt: time.Now().UnixMilli(),
			Platform: "android", Type: push.TypeMessage, PostID: randomID(), IsIDLoaded: true})
		require.NoError(t, err)
	})

	t.Run("WrongSecretIsRefused", func(t *testing.T) {
		t.Parallel()
		if env.WithSecret == nil {
			t.Skip("the proxy under test requires no secret")
		}
		const wrong = "wrong-secret-0123456789"
		s := env.WithSecret(wrong)
		id := register(t)
		calls := map[string]error{}
		_, calls["send"] = s.Send(ctx(t), message(push.PlatformWebPush, id))
		_, calls["vapid"] = s.VAPIDPublicKey(ctx(t))
		_, calls["register"] = s.Register(ctx(t), Subscription(t, env.Endpoint()))
		calls["ack"] = s.Ack(ctx(t), &push.Ack{ID: randomID(), Platform: "android", Type: push.TypeMessage})
		calls["unregister"] = s.Unregister(ctx(t), id)
		for name, err := range calls {
			require.ErrorIs(t, err, push.ErrUnauthorized, name)
			require.NotContains(t, err.Error(), wrong, "%s: the secret never appears in an error", name)
		}
		require.NoError(t, env.Sender.Unregister(ctx(t), id))
	})

	t.Run("CancelledContextStops", func(t *testing.T) {
		t.Parallel()
		c, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := env.Sender.Send(c, message(push.PlatformWebPush, "x"))
		require.ErrorIs(t, err, context.Canceled)
		_, err = env.Sender.Register(c, Subscription(t, env.Endpoint()))
		require.True(t, errors.Is(err, context.Canceled), "register: %v", err)
	})
}
