package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadOrCreateVAPIDKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "vapid.json")

	k, err := LoadOrCreateVAPIDKeys(path)
	require.NoError(t, err)
	require.NoError(t, k.Validate())
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	again, err := LoadOrCreateVAPIDKeys(path)
	require.NoError(t, err)
	require.Equal(t, k, again, "the second start loads the first key")

	// Secrets never print.
	for _, s := range []string{k.String(), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		require.NotContains(t, s, k.PrivateKey)
		require.Contains(t, s, k.PublicKey[:8])
	}
}

func TestLoadOrCreateVAPIDKeysConcurrently(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vapid.json")
	keys := make([]Keys, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := LoadOrCreateVAPIDKeys(path)
			if err == nil {
				keys[i] = k
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		require.Equal(t, keys[0], k, "every process ends up with the key on disk")
	}
	onDisk, err := LoadOrCreateVAPIDKeys(path)
	require.NoError(t, err)
	require.Equal(t, keys[0], onDisk)
}

func TestLoadVAPIDKeysRefuses(t *testing.T) {
	t.Parallel()
	good, err := GenerateKeys()
	require.NoError(t, err)
	other, err := GenerateKeys()
	require.NoError(t, err)
	write := func(t *testing.T, v any, mode os.FileMode) string {
		path := filepath.Join(t.TempDir(), "vapid.json")
		b, ok := v.([]byte)
		if !ok {
			var err error
			b, err = json.Marshal(v)
			require.NoError(t, err)
		}
		require.NoError(t, os.WriteFile(path, b, 0o600))
		require.NoError(t, os.Chmod(path, mode))
		return path
	}
	tests := []struct {
		name    string
		content any
		mode    os.FileMode
		want    string
	}{
		{"world readable", good, 0o644, "has mode 0644: others may access the private key; run chmod 600"},
		{"world writable", good, 0o602, "has mode 0602"},
		{"not JSON", []byte("-----BEGIN EC PRIVATE KEY-----"), 0o600, "invalid character"},
		{"empty object", map[string]string{}, 0o600, "lacks public_key or private_key"},
		{"mismatched pair", Keys{PublicKey: other.PublicKey, PrivateKey: good.PrivateKey}, 0o600, "does not belong to the private key"},
		{"private key not base64", Keys{PublicKey: good.PublicKey, PrivateKey: "!!"}, 0o600, "private key is not base64url"},
		{"private key zero", Keys{PublicKey: good.PublicKey, PrivateKey: strings.Repeat("A", 43)}, 0o600, "private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := write(t, tt.content, tt.mode)
			_, err := LoadOrCreateVAPIDKeys(path)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), good.PrivateKey)
		})
	}
	t.Run("group readable is fine", func(t *testing.T) {
		t.Parallel()
		path := write(t, good, 0o640)
		k, err := LoadOrCreateVAPIDKeys(path)
		require.NoError(t, err)
		require.Equal(t, good, k)
	})
	t.Run("a directory", func(t *testing.T) {
		t.Parallel()
		_, err := LoadOrCreateVAPIDKeys(t.TempDir())
		require.ErrorContains(t, err, "not a regular file")
	})
	t.Run("no path", func(t *testing.T) {
		t.Parallel()
		_, err := LoadOrCreateVAPIDKeys("")
		require.Error(t, err)
	})
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	good, err := GenerateKeys()
	require.NoError(t, err)
	_, err = New(Options{})
	require.Error(t, err)
	for _, want := range []string{"Pool is required", "VAPID:", "VAPIDSubject: required", "AllowedPushHosts is empty"} {
		require.ErrorContains(t, err, want, "every problem is reported at once")
	}

	_, err = New(Options{
		VAPID: good, VAPIDSubject: "mailto:mailto:x", ContentPolicy: "everything", ThrottlePerSec: -1,
		AllowedPushHosts: []string{"https://push.example.org/"}, TrustedProxies: []netip.Prefix{{}},
		Workers: -1, PollInterval: time.Minute, MaxOutboxDepth: -1, SendTimeout: -1,
	})
	for _, want := range []string{
		`VAPIDSubject: "mailto:mailto:x" is neither`, `ContentPolicy "everything"`, "ThrottlePerSec",
		`AllowedPushHosts entry "https://push.example.org/"`, "TrustedProxies", "Workers", "PollInterval",
		"MaxOutboxDepth", "SendTimeout",
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), good.PrivateKey)
}

func TestVAPIDSubjectValue(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, out, err string }{
		{"mailto:ops@example.org", "ops@example.org", ""},
		{"Mailto:ops@example.org", "ops@example.org", ""},
		{"ops@example.org", "ops@example.org", ""},
		{" https://push.example.org ", "https://push.example.org", ""},
		{"https://", "", "not an https URL"},
		{"http://push.example.org", "", "neither"},
		{"mailto:", "", "neither"},
		{"root", "", "neither"},
		{"", "", "required"},
	}
	for _, tt := range tests {
		got, err := vapidSubject(tt.in)
		if tt.err != "" {
			require.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.out, got)
	}
}

func TestHostRules(t *testing.T) {
	t.Parallel()
	rules, err := parseHostRules([]string{"Push.Example.org", "push2.example.org:8443", "127.0.0.1:8066", "::1", "[2001:db8::1]:443", "push3.example.org."})
	require.NoError(t, err)

	tests := []struct {
		url  string
		want bool
	}{
		{"https://push.example.org/push/x", true},
		{"http://push.example.org:1234/push/x", true},
		{"https://PUSH.EXAMPLE.ORG./x", true},
		{"https://push.example.org.evil.net/x", false},
		{"https://evilpush.example.org/x", false},
		{"https://push2.example.org:8443/x", true},
		{"https://push2.example.org:08443/x", true},
		{"https://push2.example.org/x", false},
		{"http://127.0.0.1:8066/push/x", true},
		{"http://127.0.0.1:8067/push/x", false},
		{"http://127.0.0.1/push/x", false},
		{"http://[::1]:9/x", true},
		{"http://[0:0:0:0:0:0:0:1]:9/x", true},
		{"https://[2001:db8::1]/x", true},
		{"http://[2001:db8::1]/x", false},
		{"https://push3.example.org/x", true},
		{"http://[::ffff:127.0.0.1]:8066/x", true},
		{"http://2130706433:8066/x", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		require.NoError(t, err)
		require.Equal(t, tt.want, allowedHost(rules, u), tt.url)
	}

	for _, bad := range []string{"", "*.example.org", "https://x", "x/y", "user@x", "x:0", "x:70000", "x:port", "-x.org", "fe80::1%eth0"} {
		_, err := parseHostRule(bad)
		require.Error(t, err, bad)
	}
}

func TestBackoffAndRetryAfter(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 30; n++ {
		ceiling := min(backoffCap, backoffBase<<min(n-1, 20))
		for range 50 {
			d := backoff(n)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, ceiling, "attempt %d", n)
		}
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", 30 * time.Second},
		{"7", 7 * time.Second},
		{"0", time.Second},
		{"-5", time.Second},
		{"999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"soon", 30 * time.Second},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, retryAfter(tt.h, now), tt.h)
	}
}
