package pushservice

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The parsers of untrusted input: device frames and VAPID headers.

func FuzzParseClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `,
		`{"messageType":"hello","broadcasts":{},"use_webpush":true}`,
		`{"messageType":"hello","uaid":"cf09d2543f7b4f61be5a9e4e1c3e9590","broadcasts":{},"use_webpush":true}`,
		`{"messageType":"register","channelID":"98ce5371-3e9e-455a-9573-4a990687a1f7","key":"BOQKvt1HvI_tFtro3K7Z70u_cSgnDabeylBRRTBwC2FCoHxvSoPzvk2r_LE16AQzsplLtbJOiibjkqL4bQIgd38="}`,
		`{"messageType":"unregister","channelID":"98ce5371","code":200}`,
		`{"messageType":"ack","updates":[{"channelID":"a","version":"AAAAAAAAAAAAAAAAAAAAAA","code":100}]}`,
		`{"messageType":"nack","version":"x","code":301}`,
		`{"messageType":"broadcast_subscribe","broadcasts":{"remote-settings/monitor_changes":"\"0\""}}`,
		`{"messageType":"ack","updates":null}`, `{"messageType":7}`, `{"messageType":"hello","uaid":5}`,
		`[]`, `null`, `"x"`, `{"a":1} {}`, `{"messageType":"ack","updates":[{"code":"100"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := parseClientFrame(data)
		if err != nil {
			require.Equal(t, clientFrame{}, fr)
			return
		}
		// Whatever parses is an object: a ping, or a frame with a type.
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(data, &obj))
		require.Equal(t, len(obj) == 0, fr.Type == typePing)
		require.LessOrEqual(t, len(fr.Updates), maxAckUpdates)
		if fr.Type != typeAck {
			require.Empty(t, fr.Updates)
		}
	})
}

func TestParseClientFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want clientFrame
		err  bool
	}{
		{`{}`, clientFrame{Type: typePing}, false},
		{`{"messageType":"hello","uaid":"abc","use_webpush":true}`, clientFrame{Type: typeHello, UAID: "abc"}, false},
		{`{"messageType":"hello","uaid":null}`, clientFrame{Type: typeHello}, false},
		{`{"messageType":"register","channelID":"c","key":"k"}`, clientFrame{Type: typeRegister, ChannelID: "c", Key: "k"}, false},
		{`{"messageType":"unregister","channelID":"c","code":202}`, clientFrame{Type: typeUnregister, ChannelID: "c", Code: 202}, false},
		{`{"messageType":"nack","version":"v","code":303}`, clientFrame{Type: typeNack, Version: "v", Code: 303}, false},
		{`{"messageType":"ack","updates":[{"channelID":"c","version":"v","code":101}]}`,
			clientFrame{Type: typeAck, Updates: []ackUpdate{{ChannelID: "c", Version: "v", Code: 101}}}, false},
		{`{"messageType":"future","anything":[1]}`, clientFrame{Type: "future"}, false},
		{`{"uaid":"x"}`, clientFrame{}, true},
		{`{"messageType":""}`, clientFrame{}, true},
		{`{"messageType":"hello","uaid":1}`, clientFrame{}, true},
		{`{"messageType":"ack","updates":{}}`, clientFrame{}, true},
		{`{} {}`, clientFrame{}, true},
		{`{`, clientFrame{}, true},
		{`[{}]`, clientFrame{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseClientFrame([]byte(tc.in))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// signedToken makes an ES256 JWT for the VAPID tests.
func signedToken(t testing.TB, priv *ecdsa.PrivateKey, claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"ES256"}`))
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	signing := h + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	require.NoError(t, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func FuzzVAPIDHeader(f *testing.F) {
	// A fixed key: the seeds are made in one process and run in others
	// (the fuzzing workers).
	scalar := sha256.Sum256([]byte("FuzzVAPIDHeader"))
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar[:])
	require.NoError(f, err)
	pub, err := priv.PublicKey.Bytes()
	require.NoError(f, err)
	k := base64.RawURLEncoding.EncodeToString(pub)
	const origin = "https://push.example.org"
	now := time.Unix(1_800_000_000, 0)
	tok := signedToken(f, priv, map[string]any{"aud": origin, "exp": now.Add(time.Hour).Unix(), "sub": "mailto:a@example.org"})
	for _, seed := range []string{
		"vapid t=" + tok + ", k=" + k,
		"vapid k=" + k + ",t=" + tok,
		`Vapid t="` + tok + `", k="` + k + `"`,
		"vapid t=" + tok,
		"vapid t=a.b.c, k=" + k,
		"WebPush " + tok,
		"vapid", "vapid ", "vapid t=, k=", "vapid t=x, t=y, k=z", "vapid ,,,", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseVAPIDHeader(h)
		if err != nil {
			return
		}
		require.Len(t, a.key, 65)
		if verifyVAPID(a, origin, now) == nil {
			// Only a token signed by the key passes; the fuzzer can reorder
			// and requote the seeds, not forge a signature.
			require.Equal(t, pub, a.key)
			require.True(t, utf8.ValidString(a.token))
		}
	})
}

func TestParseVAPIDHeader(t *testing.T) {
	t.Parallel()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := priv.PublicKey.Bytes()
	require.NoError(t, err)
	k := base64.RawURLEncoding.EncodeToString(pub)
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"RFC 8292 form", "vapid t=tok, k=" + k, nil},
		{"reversed, no space", "vapid k=" + k + ",t=tok", nil},
		{"quoted", `vapid t="tok", k="` + k + `"`, nil},
		{"scheme in capitals, extra param", "VAPID t=tok, k=" + k + ", x=1", nil},
		{"padded key", "vapid t=tok, k=" + base64.URLEncoding.EncodeToString(pub), nil},
		{"empty", "", errNoVAPID},
		{"other scheme", "Bearer tok", errBadVAPID},
		{"no params", "vapid", errBadVAPID},
		{"no t", "vapid k=" + k, errBadVAPID},
		{"two t", "vapid t=a, t=b, k=" + k, errBadVAPID},
		{"param without value", "vapid t, k=" + k, errBadVAPID},
		{"short key", "vapid t=tok, k=AAAA", errVAPIDKey},
		{"compressed key", "vapid t=tok, k=" + base64.RawURLEncoding.EncodeToString(append([]byte{2}, pub[1:33]...)), errVAPIDKey},
		{"too long", "vapid t=" + string(make([]byte, maxAuthorization)) + ", k=" + k, errBadVAPID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := parseVAPIDHeader(tc.in)
			require.ErrorIs(t, err, tc.err)
			if tc.err == nil {
				require.Equal(t, "tok", a.token)
				require.Equal(t, pub, a.key)
			}
		})
	}
}

func TestVerifyVAPID(t *testing.T) {
	t.Parallel()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := priv.PublicKey.Bytes()
	require.NoError(t, err)
	const origin = "https://push.example.org"
	now := time.Unix(1_800_000_000, 0)
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"aud": origin, "exp": now.Add(12 * time.Hour).Unix(), "sub": "https://chat.example.org"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name   string
		claims map[string]any
		err    error
	}{
		{"valid", claims(nil), nil},
		{"exp exactly 24 h ahead", claims(func(c map[string]any) { c["exp"] = now.Add(24 * time.Hour).Unix() }), nil},
		{"exp as a fraction", claims(func(c map[string]any) { c["exp"] = float64(now.Unix()) + 60.5 }), nil},
		{"aud with default port", claims(func(c map[string]any) { c["aud"] = "https://PUSH.example.org:443" }), nil},
		{"exp 25 h ahead", claims(func(c map[string]any) { c["exp"] = now.Add(25 * time.Hour).Unix() }), errVAPIDTooLong},
		{"expired", claims(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), errVAPIDExpired},
		{"exp a string", claims(func(c map[string]any) { c["exp"] = "tomorrow" }), errVAPIDToken},
		{"aud http", claims(func(c map[string]any) { c["aud"] = "http://push.example.org" }), errVAPIDAud},
		{"aud other port", claims(func(c map[string]any) { c["aud"] = "https://push.example.org:8443" }), errVAPIDAud},
		{"aud a list", claims(func(c map[string]any) { c["aud"] = []string{origin} }), errVAPIDAud},
		{"sub empty", claims(func(c map[string]any) { c["sub"] = " " }), errVAPIDSub},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := verifyVAPID(vapidAuth{token: signedToken(t, priv, tc.claims), key: pub}, origin, now)
			require.ErrorIs(t, err, tc.err)
		})
	}
}

func TestParseTTL(t *testing.T) {
	t.Parallel()
	const max = 28 * 24 * time.Hour
	tests := []struct {
		in   []string
		want time.Duration
		ok   bool
	}{
		{[]string{"0"}, 0, true},
		{[]string{"60"}, time.Minute, true},
		{[]string{" 60 "}, time.Minute, true},
		{[]string{"2419201"}, max, true},
		{[]string{"18446744073709551616"}, max, true},
		{[]string{""}, 0, false},
		{[]string{"-1"}, 0, false},
		{[]string{"1e3"}, 0, false},
		{[]string{"60", "60"}, 0, false},
		{nil, 0, false},
	}
	for _, tc := range tests {
		got, ok := parseTTL(tc.in, max)
		require.Equal(t, tc.ok, ok, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

// TestSlowSocket checks that a frame offered to a socket whose queue is
// full closes the socket instead of waiting.
func TestSlowSocket(t *testing.T) {
	t.Parallel()
	c := newConn(nil)
	for range outQueue {
		require.True(t, c.send([]byte("{}")))
	}
	require.False(t, c.send([]byte("{}")))
	select {
	case <-c.kill:
	default:
		t.Fatal("the socket was not ended")
	}
	require.Equal(t, closeSlow, c.killCode)
	require.False(t, c.send([]byte("{}")), "an ended socket takes nothing")
}
