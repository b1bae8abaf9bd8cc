package push_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/push"
	"github.com/garrison-chat/garrison/server/internal/push/pushtest"
)

// endpoints hands out distinct endpoint URLs on one host.
func endpoints(base string) func() string {
	var n atomic.Int64
	return func() string { return base + "/push/cap" + strconv.FormatInt(n.Add(1), 10) }
}

func TestFakeConformance(t *testing.T) {
	t.Parallel()
	pushtest.Run(t, func(t *testing.T) pushtest.Env {
		f := push.NewFake(push.FakeOptions{Secret: "fake-secret", AllowedHosts: []string{"push.site.example"}})
		return pushtest.Env{
			Sender: f, WithSecret: f.WithSecret,
			Endpoint:        endpoints("https://push.site.example"),
			ForeignEndpoint: "https://fcm.googleapis.com/fcm/send/abc",
		}
	})
}

func TestFakeAnswersAndRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := push.NewFake(push.FakeOptions{})
	changed := f.Changed()
	f.Answer("tok", push.Response{Status: push.StatusRemove})
	r, err := f.Send(ctx, &push.Notification{Platform: "android_rn-v2", DeviceID: "tok", ServerID: "s"})
	require.NoError(t, err)
	require.Equal(t, push.StatusRemove, r.Status, "a scripted answer wins over the platform rule")
	<-changed // closed by the send
	require.Len(t, f.Sent(), 1)

	boom := &push.Error{Op: "send_push", URL: "fake", Kind: push.ErrUnavailable}
	f.FailWith(boom)
	_, err = f.Send(ctx, &push.Notification{Platform: "webpush", DeviceID: "x", ServerID: "s"})
	require.ErrorIs(t, err, push.ErrUnavailable)
	f.FailWith(nil)
	require.Len(t, f.Sent(), 1, "a failed call records nothing")
}

func TestSplitDeviceID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in              string
		platform, token string
		ok              bool
	}{
		{"android_rn-v2:abc:def", "android_rn-v2", "abc:def", true},
		{"webpush:reg1", "webpush", "reg1", true},
		{"nocolon", "", "", false},
		{":token", "", "", false},
		{"platform:", "", "", false},
	}
	for _, tt := range tests {
		p, tok, ok := push.SplitDeviceID(tt.in)
		require.Equal(t, tt.ok, ok, tt.in)
		require.Equal(t, tt.platform, p, tt.in)
		require.Equal(t, tt.token, tok, tt.in)
	}
	require.Equal(t, "android_rn", push.BasePlatform("android_rn-v2"))
	require.Equal(t, "apple-vx", push.BasePlatform("apple-vx"))
	require.True(t, push.IsLegacyPlatform("apple_rnbeta-v2"))
	require.False(t, push.IsLegacyPlatform("webpush"))
	require.Equal(t, "abcdefgh…", push.Redact("abcdefghijk"))
}
