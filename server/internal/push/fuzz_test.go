package push_test

import (
	"encoding/json"
	"testing"

	"github.com/garrison-chat/garrison/server/internal/push"
)

// FuzzSubscription feeds browser-supplied subscription JSON to Validate:
// it never panics, and what it accepts has a usable key.
func FuzzSubscription(f *testing.F) {
	f.Add(`{"endpoint":"https://push.site.example/push/abc","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4CCXg"}}`)
	f.Add(`{"endpoint":"ftp://x","keys":{"p256dh":"","auth":""}}`)
	f.Add(`{"endpoint":"https://u:p@h/","expirationTime":null,"keys":{"p256dh":"AAAA====","auth":"=="}}`)
	f.Fuzz(func(t *testing.T, body string) {
		var s push.Subscription
		if json.Unmarshal([]byte(body), &s) != nil {
			return
		}
		if s.Validate() == nil {
			if _, err := push.DecodeP256dh(s.Keys.P256dh); err != nil {
				t.Fatalf("accepted a subscription whose key does not decode: %v", err)
			}
		}
	})
}

// FuzzDeviceID splits device ids as sessions store them.
func FuzzDeviceID(f *testing.F) {
	for _, s := range []string{"android_rn-v2:tok", "webpush:reg", ":", "a:", ":b", "apple-v:x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		platform, token, ok := push.SplitDeviceID(id)
		if ok && (platform == "" || token == "" || platform+":"+token != id) {
			t.Fatalf("split %q into %q and %q", id, platform, token)
		}
		_ = push.IsLegacyPlatform(push.BasePlatform(platform))
	})
}
