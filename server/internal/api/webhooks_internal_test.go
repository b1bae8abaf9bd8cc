package api

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEscapeControlChars(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		changed        bool
	}{
		{"valid", "{\"text\": \"a\\nb\"}\n", "{\"text\": \"a\\nb\"}\n", false},
		{"raw newline and tab", "{\"text\":\"a\nb\tc\rd\"}", `{"text":"a\nb\tc\rd"}`, true},
		{"other control char", "{\"text\":\"a\x01\"}", `{"text":"a\u0001"}`, true},
		{"escaped quote", "{\"text\":\"say \\\"hi\n\\\"\"}", `{"text":"say \"hi\n\""}`, true},
		{"whitespace outside strings", "{\n\t\"text\":\n\"x\"\n}", "{\n\t\"text\":\n\"x\"\n}", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, changed := escapeControlChars([]byte(c.in))
			require.Equal(t, c.changed, changed)
			if changed {
				require.Equal(t, c.want, string(got))
				require.True(t, json.Valid(got), string(got))
			}
		})
	}
}

func FuzzDecodeWebhookJSON(f *testing.F) {
	f.Add([]byte(`{"text":"hi","attachments":[{"title":"t","fields":[{"title":"a","value":1}]}],"props":{"k":"v"}}`))
	f.Add([]byte("{\"text\":\"a\nb\"}"))
	f.Add([]byte(`{"text":"\"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Valid JSON holds no raw control character inside a string, so
		// escaping must leave it alone; and decoding never panics.
		if _, changed := escapeControlChars(b); changed && json.Valid(b) {
			t.Fatalf("escaped valid JSON %q", b)
		}
		_, _ = decodeWebhookJSON("fuzz", b)
	})
}
