package proxy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func decodePayload(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var m map[string]string
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestBuildPayload(t *testing.T) {
	t.Parallel()
	n := message("rid", "ack1")
	n.RootID = "root5e8h3zxyrcbtjzdqz4cbto"
	n.SubType = "calls"

	t.Run("id_only drops content", func(t *testing.T) {
		t.Parallel()
		b, err := buildPayload(&n, ContentIDOnly)
		require.NoError(t, err)
		require.Equal(t, map[string]string{
			"ack_id": "ack1", "type": "message", "sub_type": "calls", "version": "v2",
			"server_id": n.ServerID, "team_id": n.TeamID, "channel_id": n.ChannelID, "post_id": n.PostID,
			"root_id": n.RootID, "sender_id": n.SenderID, "is_crt_enabled": "true", "id_loaded": "true",
			"badge": "3", "category": "CAN_REPLY", "signature": "c2lnbmF0dXJl",
		}, decodePayload(t, b))
	})
	t.Run("full keeps content", func(t *testing.T) {
		t.Parallel()
		b, err := buildPayload(&n, ContentFull)
		require.NoError(t, err)
		m := decodePayload(t, b)
		require.Equal(t, "the launch code is 0000", m["message"])
		require.Equal(t, "Alice Example", m["sender_name"])
		require.Equal(t, "Secret Plans", m["channel_name"])
		require.Equal(t, "bot-alias", m["override_username"])
		require.Equal(t, "https://example.org/i.png", m["override_icon_url"])
		require.Equal(t, "true", m["from_webhook"])
		require.NotContains(t, m, "id_loaded", "full content, nothing to fetch")
	})
	t.Run("badge -1 and no signature", func(t *testing.T) {
		t.Parallel()
		m := n
		m.Badge, m.Signature, m.IsCRTEnabled = -1, "", false
		b, err := buildPayload(&m, ContentIDOnly)
		require.NoError(t, err)
		p := decodePayload(t, b)
		require.NotContains(t, p, "badge")
		require.Equal(t, "NO_SIGNATURE", p["signature"])
		require.Equal(t, "false", p["is_crt_enabled"])
	})
	t.Run("badge 0 is sent", func(t *testing.T) {
		t.Parallel()
		m := n
		m.Badge = 0
		b, err := buildPayload(&m, ContentIDOnly)
		require.NoError(t, err)
		require.Equal(t, "0", decodePayload(t, b)["badge"])
	})
	t.Run("clear is not id-loaded", func(t *testing.T) {
		t.Parallel()
		m := n
		m.Type = TypeClear
		b, err := buildPayload(&m, ContentIDOnly)
		require.NoError(t, err)
		require.NotContains(t, decodePayload(t, b), "id_loaded")
	})
}

// TestIDOnlyRefusesTextInIDs: a misconfigured server cannot smuggle text
// through an id field.
func TestIDOnlyRefusesTextInIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		set   func(n *PushNotification)
		field string
	}{
		{"post_id with spaces", func(n *PushNotification) { n.PostID = "the launch code" }, "post_id"},
		{"long channel_id", func(n *PushNotification) { n.ChannelID = strings.Repeat("a", 65) }, "channel_id"},
		{"ack_id with quotes", func(n *PushNotification) { n.AckID = `a"b` }, "ack_id"},
		{"type with a newline", func(n *PushNotification) { n.Type = "message\n" }, "type"},
		{"signature with spaces", func(n *PushNotification) { n.Signature = "hello world" }, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := message("rid", "ack1")
			tt.set(&n)
			_, err := buildPayload(&n, ContentIDOnly)
			require.ErrorIs(t, err, errPayload)
			require.ErrorContains(t, err, tt.field)
			_, err = buildPayload(&n, ContentFull)
			require.NoError(t, err, "full passes content through anyway")
		})
	}
}

func TestPayloadCap(t *testing.T) {
	t.Parallel()
	n := message("rid", "ack1")
	// Three-byte runes and characters JSON escapes: the cut must land on a
	// rune boundary and count escaped bytes.
	n.Message = strings.Repeat("€\"", 3000)
	n.ChannelName = strings.Repeat("é", 100)
	b, err := buildPayload(&n, ContentFull)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), maxPayload)
	m := decodePayload(t, b)
	require.True(t, utf8.ValidString(m["message"]))
	require.NotEmpty(t, m["message"])
	require.LessOrEqual(t, len(m["message"]), maxMessage)
	require.LessOrEqual(t, len(m["channel_name"]), maxChannelName)
	require.Equal(t, strings.Repeat("é", 32), m["channel_name"])

	// Huge other fields shrink too once the message is gone.
	n.Message = "hi"
	n.OverrideIconURL = "https://example.org/" + strings.Repeat("x", 5000)
	b, err = buildPayload(&n, ContentFull)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), maxPayload)
	m = decodePayload(t, b)
	require.Empty(t, m["message"], "the message is cut first")
	require.NotContains(t, m, "override_icon_url", "a cut URL is useless: dropped")
	require.Equal(t, "Alice Example", m["sender_name"])

	// Only ids left and still too large: refused.
	big := message("rid", "ack1")
	big.Signature = strings.Repeat("A", 4000)
	_, err = buildPayload(&big, ContentFull)
	require.ErrorIs(t, err, errPayload)
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
		{"€", 2, ""},
		{"", 0, ""},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, truncate(tt.in, tt.n), "%q/%d", tt.in, tt.n)
	}
}

func TestDeliveryParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, channel string
		ttl          time.Duration
		urgency      string
		topic        string
	}{
		{TypeMessage, "c1", 24 * time.Hour, "high", ""},
		{TypeSession, "c1", 24 * time.Hour, "high", ""},
		{"", "c1", 24 * time.Hour, "high", ""},
		{"something_new", "c1", 24 * time.Hour, "high", ""},
		{TypeClear, "chan7k8sx3ynxcgm5qdamrs9yh", time.Hour, "normal", "cchan7k8sx3ynxcgm5qdamrs9yh"},
		{TypeClear, "", time.Hour, "normal", ""},
		{TypeClear, "not/a topic", time.Hour, "normal", channelTopic("not/a topic")},
		{TypeUpdateBadge, "c1", time.Hour, "normal", "badge"},
		{TypeTest, "c1", 60 * time.Second, "normal", ""},
	}
	for _, tt := range tests {
		ttl, urgency, topic := deliveryParams(&PushNotification{Type: tt.typ, ChannelID: tt.channel})
		require.Equal(t, tt.ttl, ttl, tt.typ)
		require.Equal(t, tt.urgency, urgency, tt.typ)
		require.Equal(t, tt.topic, topic, tt.typ)
		require.LessOrEqual(t, len(topic), 32)
		require.True(t, isBase64URL(topic), topic)
	}
	long := channelTopic(strings.Repeat("x", 40))
	require.Len(t, long, 32)
	require.True(t, isBase64URL(long))
	require.NotEqual(t, long, channelTopic(strings.Repeat("x", 41)))
}

func TestSplitPlatform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		platform string
		version  int
	}{
		{"webpush", "webpush", 1},
		{"webpush-v2", "webpush", 2},
		{"apple_rnbeta-v3", "apple_rnbeta", 3},
		{"android-vx", "android", 1},
		{"", "", 1},
		{"-v", "", 1},
	}
	for _, tt := range tests {
		p, v := splitPlatform(tt.in)
		require.Equal(t, tt.platform, p, tt.in)
		require.Equal(t, tt.version, v, tt.in)
	}
	for _, p := range []string{"apple", "apple_rn", "apple_rnbeta", "android", "android_rn", "android_rnbeta", "ios"} {
		require.True(t, legacyPlatform(p), p)
	}
	for _, p := range []string{"webpush", "", "unifiedpush"} {
		require.False(t, legacyPlatform(p), p)
	}
}

// FuzzSendPushBody feeds arbitrary bodies through everything send_push
// does before storing: parse, route and build both payloads.
func FuzzSendPushBody(f *testing.F) {
	n := message("AAAAAAAAAAAAAAAAAAAAAA", "ack1")
	f.Add(mustJSONF(f, n))
	n.Message = strings.Repeat("€", 2000)
	n.Type = TypeClear
	f.Add(mustJSONF(f, n))
	f.Add(`{"platform":"apple_rn-v2","server_id":"s","device_id":"d","badge":-1}`)
	f.Add(`{"badge":1e99}`)
	f.Add(`null`)
	f.Add(`{"message":"\ud800","channel_id":"\u2028"}`)
	f.Fuzz(func(t *testing.T, body string) {
		n, err := parseNotification([]byte(body))
		if err != nil {
			return
		}
		splitPlatform(n.Platform)
		for _, policy := range []ContentPolicy{ContentIDOnly, ContentFull} {
			b, err := buildPayload(&n, policy)
			if err != nil {
				continue
			}
			if len(b) > maxPayload {
				t.Fatalf("%s payload of %d bytes", policy, len(b))
			}
			if !json.Valid(b) {
				t.Fatalf("%s payload is not JSON: %q", policy, b)
			}
		}
		ttl, _, topic := deliveryParams(&n)
		if ttl <= 0 || len(topic) > 32 || !isBase64URL(topic) {
			t.Fatalf("params %s %q", ttl, topic)
		}
	})
}

func mustJSONF(f *testing.F, v any) string {
	b, err := json.Marshal(v)
	require.NoError(f, err)
	return string(b)
}
