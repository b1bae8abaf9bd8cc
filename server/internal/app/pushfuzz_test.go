package app

import (
	"testing"

	"github.com/garrison-chat/garrison/server/internal/push"
)

// FuzzCheckDeviceID feeds client-supplied device ids to the check: it
// never panics, and what it accepts is a "<platform>:<token>" that fits
// the column and is not a browser registration.
func FuzzCheckDeviceID(f *testing.F) {
	for _, s := range []string{"android_rn-v2:tok", "apple:deadbeef", "webpush:x", "a:b c", "Z:z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if checkDeviceID("fuzz", id) != nil {
			return
		}
		platform, _, ok := push.SplitDeviceID(id)
		if !ok || len(id) > maxDeviceIDLength || push.BasePlatform(platform) == push.PlatformWebPush {
			t.Fatalf("accepted %q", id)
		}
	})
}
