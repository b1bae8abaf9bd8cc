package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPostMessageRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
		want int // length
	}{
		{"padded to size", 100, 100},
		{"longer than a tiny size", 5, len("1700000000123456789 abcd1234:42 ")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := postMessage(1700000000123456789, "abcd1234", 42, tt.size)
			require.Len(t, msg, tt.want)
			seq, sent, ok := parseMessage(msg, "abcd1234")
			require.True(t, ok)
			require.Equal(t, int64(42), seq)
			require.Equal(t, int64(1700000000123456789), sent)
			_, _, ok = parseMessage(msg, "otherrun")
			require.False(t, ok, "a message of another run")
		})
	}
	for _, bad := range []string{"", "hello world", "12 abcd1234", "x abcd1234:1 y", "12 abcd1234:-1 y", "12 abcd1234:z y"} {
		_, _, ok := parseMessage(bad, "abcd1234")
		require.False(t, ok, bad)
	}
}

func TestParsePosted(t *testing.T) {
	t.Parallel()
	const channelID = "ch1"
	ourMessage := postMessage(1700000000123456789, "abcd1234", 42, 100)
	frame := func(t *testing.T, indent bool, event string, post any) []byte {
		t.Helper()
		if p, ok := post.(map[string]any); ok {
			b, err := json.Marshal(p)
			require.NoError(t, err)
			post = string(b)
		}
		ev := ceilingEvent{Event: event, Data: map[string]any{"post": post, "channel_name": "fanout"},
			Broadcast: map[string]any{"channel_id": channelID}, Seq: 3}
		var b []byte
		var err error
		if indent {
			b, err = json.MarshalIndent(ev, "", "  ")
		} else {
			b, err = json.Marshal(ev)
		}
		require.NoError(t, err)
		return b
	}
	postIn := func(ch, msg string) map[string]any {
		return map[string]any{"id": "p1", "channel_id": ch, "message": msg, "props": map[string]any{}}
	}
	tests := []struct {
		name    string
		indent  bool
		event   string
		post    any
		want    string
		wantOK  bool
		scanned bool // the fast path takes it
	}{
		{"compact", false, "posted", postIn(channelID, ourMessage), ourMessage, true, true},
		{"indented", true, "posted", postIn(channelID, ourMessage), ourMessage, true, false},
		{"escapes in the message", false, "posted", postIn(channelID, `say "hi" \ now`), `say "hi" \ now`, true, false},
		{"embedded post", false, "posted", map[string]any{"channel_id": channelID, "message": "outer",
			"metadata": map[string]any{"embeds": []any{map[string]any{"message": "inner"}}}}, "outer", true, false},
		{"other channel", false, "posted", postIn("ch2", ourMessage), "", false, false},
		{"other event", false, "post_edited", postIn(channelID, ourMessage), "", false, false},
		{"post as an object", false, "posted", []any{1}, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := frame(t, tt.indent, tt.event, tt.post)
			got, ok := parsePosted(f, channelID)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
			_, scanned := scanPosted(f, channelID)
			require.Equal(t, tt.scanned, scanned)
		})
	}
	for _, f := range []string{"{", `{"status":"OK","seq_reply":1}`, `{"event":"posted","data":{}}`} {
		_, ok := parsePosted([]byte(f), channelID)
		require.False(t, ok, f)
	}
}

// BenchmarkParsePosted is the per-delivery cost the load generator adds
// on the machine it shares with the server.
func BenchmarkParsePosted(b *testing.B) {
	postJSON, _ := json.Marshal(ceilingPost{ID: "01234567890123456789012345", ChannelID: "ch1",
		Message: postMessage(1700000000123456789, "abcd1234", 42, 100), Props: map[string]any{}})
	f, _ := json.Marshal(ceilingEvent{Event: "posted", Data: map[string]any{"post": string(postJSON),
		"channel_display_name": "Fan-out", "channel_name": "fanout", "channel_type": "O", "sender_name": "@x", "team_id": ""},
		Broadcast: map[string]any{"omit_users": nil, "user_id": "", "channel_id": "ch1", "team_id": ""}, Seq: 7})
	for _, bb := range []struct {
		name  string
		parse func([]byte, string) (string, bool)
	}{{"scan", parsePosted}, {"decode", decodePosted}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg, ok := bb.parse(f, "ch1")
				if !ok {
					b.Fatal("not parsed")
				}
				if _, _, ok := parseMessage(msg, "abcd1234"); !ok {
					b.Fatal("message not parsed")
				}
			}
		})
	}
}
