package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSendPushAnswers checks every send_push answer byte for byte.
func TestSendPushAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, _, rid := e.register(t)
	unknown, err := newRegistrationID()
	require.NoError(t, err)

	with := func(f func(n *PushNotification)) string {
		n := message(rid, "ack1")
		f(&n)
		return mustJSON(t, n)
	}
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"delivered", with(func(*PushNotification) {}), 200, okBody},
		{"app version suffix", with(func(n *PushNotification) { n.Platform = "webpush-v2" }), 200, okBody},
		{"unknown registration", with(func(n *PushNotification) { n.DeviceID = unknown }), 200, removeBody},
		{"malformed registration id", with(func(n *PushNotification) { n.DeviceID = "not a registration" }), 200, removeBody},
		{"missing server id", with(func(n *PushNotification) { n.ServerID = "" }), 200, failBody("Failed because of missing server Id")},
		{"missing device id", with(func(n *PushNotification) { n.DeviceID = "" }), 200,
			failBody("Failed because of missing device Id serverId=srv6qc4xbjdmdyyqdq4ks1wkqe")},
		{"apple", with(func(n *PushNotification) { n.Platform = "apple" }), 200, failBody("platform not available on this network")},
		{"apple_rn-v2", with(func(n *PushNotification) { n.Platform = "apple_rn-v2" }), 200, failBody("platform not available on this network")},
		{"apple_rnbeta-v2", with(func(n *PushNotification) { n.Platform = "apple_rnbeta-v2" }), 200, failBody("platform not available on this network")},
		{"android", with(func(n *PushNotification) { n.Platform = "android" }), 200, failBody("platform not available on this network")},
		{"android_rn-v2", with(func(n *PushNotification) { n.Platform = "android_rn-v2" }), 200, failBody("platform not available on this network")},
		{"unknown platform", with(func(n *PushNotification) { n.Platform = "carrier_pigeon-v3" }), 200,
			failBody("Did not send message because of missing platform property type=carrier_pigeon serverId=srv6qc4xbjdmdyyqdq4ks1wkqe")},
		{"unknown fields tolerated", strings.Replace(with(func(*PushNotification) {}), "{", `{"future_field":{"x":[1,2]},`, 1), 200, okBody},
		{"not JSON", "{", 400, failBody("Failed to read message body: unexpected end of JSON input")},
		{"wrong type", `{"badge":"three"}`, 400,
			failBody("Failed to read message body: json: cannot unmarshal string into Go struct field PushNotification.badge of type int")},
		{"too large", `{"message":"` + strings.Repeat("x", maxPushBody) + `"}`, 413, failBody("request body is larger than 262144 bytes")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(e.h, http.MethodPost, "/api/v1/send_push", tt.body)
			require.Equal(t, tt.status, w.Code)
			require.Equal(t, tt.want, w.Body.String())
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		})
	}
	for _, pl := range []string{"apple", "apple_rn", "apple_rnbeta", "android", "android_rn"} {
		require.Equal(t, 1.0, metric(t, e.reg, "service_failure_with_reason_total",
			"platform", pl, "type", "message", "reason", "platform_unavailable"), pl)
	}
	require.Equal(t, 6.0, metric(t, e.reg, "service_bad_request_total")) // missing ids, unknown platform, 3 bodies
	require.Equal(t, 3.0, metric(t, e.reg, "service_success_total", "platform", "webpush", "type", "message"))
	require.Equal(t, 2.0, metric(t, e.reg, "service_removal_total", "platform", "webpush", "reason", "unknown_registration"))
}

func TestAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"ok", `{"id":"ack1","received_at":1732190000000,"platform":"android","type":"message","post_id":"p1","is_id_loaded":true}`, 200, okBody},
		{"webpush, unknown fields", `{"id":"ack2","platform":"webpush","type":"clear","extra":1}`, 200, okBody},
		{"missing id", `{"platform":"ios","type":"message"}`, 200, failBody("Failed because of missing ack Id")},
		{"missing platform", `{"id":"ack3","type":"message"}`, 200, failBody("Failed because of missing ack platform")},
		{"missing type", `{"id":"ack4","platform":"ios"}`, 200, failBody("Failed because of missing ack type")},
		{"not JSON", `[`, 400, failBody("Failed to read ack body: unexpected end of JSON input")},
		{"too large", `{"id":"` + strings.Repeat("a", maxAckBody) + `"}`, 413, failBody("request body is larger than 16384 bytes")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(e.h, http.MethodPost, "/api/v1/ack", tt.body)
			require.Equal(t, tt.status, w.Code)
			require.Equal(t, tt.want, w.Body.String())
		})
	}
	// service_delivered_total is exported (upstream forgot to register it).
	require.Equal(t, 1.0, metric(t, e.reg, "service_delivered_total", "platform", "android", "type", "message"))
	require.Equal(t, 1.0, metric(t, e.reg, "service_delivered_total", "platform", "webpush", "type", "clear"))
}

func TestRootAndVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.SenderSecret = "s3cret" })
	w := do(e.h, http.MethodGet, "/", "")
	require.Equal(t, 200, w.Code)
	require.Equal(t, "<html><body>Garrison Push Proxy</body></html>", w.Body.String())

	w = do(e.h, http.MethodGet, "/version", "")
	require.Equal(t, 200, w.Code)
	require.Equal(t, `{"hash":"abc1234","version":"1.2.3"}`+"\n", w.Body.String())

	w = do(e.h, http.MethodGet, "/nowhere", "")
	require.Equal(t, 404, w.Code)
	require.Equal(t, failBody("no such route"), w.Body.String())
	w = do(e.h, http.MethodGet, "/api/v1/send_push", "", "Authorization", "Bearer s3cret")
	require.Equal(t, 405, w.Code)
}

func TestVAPIDPublicKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := do(e.h, http.MethodGet, "/api/v1/webpush/vapid_public_key", "")
	require.Equal(t, 200, w.Code)
	require.Equal(t, `{"vapid_public_key":"`+e.keys.PublicKey+`"}`+"\n", w.Body.String())
	require.Equal(t, e.keys.PublicKey, e.p.VAPIDPublicKey())
}

func TestSenderSecret(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	const secret = "correct horse battery staple"
	e := newEnv(t, func(o *Options) {
		o.SenderSecret = secret
		o.Logger = slogTo(logs)
	})
	ackBody := `{"id":"a","platform":"ios","type":"message"}`
	unauthorized := failBody("unauthorized: missing or wrong sender secret")

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		status int
	}{
		{"no credentials", "POST", "/api/v1/ack", ackBody, nil, 401},
		{"bearer", "POST", "/api/v1/ack", ackBody, []string{"Authorization", "Bearer " + secret}, 200},
		{"bearer lower case", "POST", "/api/v1/ack", ackBody, []string{"Authorization", "bearer " + secret}, 200},
		{"wrong bearer", "POST", "/api/v1/ack", ackBody, []string{"Authorization", "Bearer " + secret + "x"}, 401},
		{"prefix of the secret", "POST", "/api/v1/ack", ackBody, []string{"Authorization", "Bearer correct"}, 401},
		{"basic password", "POST", "/api/v1/ack", ackBody, []string{"Authorization", basic("mattermost", secret)}, 200},
		{"basic without user", "POST", "/api/v1/ack", ackBody, []string{"Authorization", basic("", secret)}, 200},
		{"basic secret as user", "POST", "/api/v1/ack", ackBody, []string{"Authorization", basic(secret, "")}, 401},
		{"send_push", "POST", "/api/v1/send_push", `{}`, nil, 401},
		{"vapid key", "GET", "/api/v1/webpush/vapid_public_key", "", nil, 401},
		{"register", "POST", "/api/v1/webpush/registrations", `{}`, nil, 401},
		{"unregister", "DELETE", "/api/v1/webpush/registrations/AAAAAAAAAAAAAAAAAAAAAA", "", nil, 401},
		{"vapid key with secret", "GET", "/api/v1/webpush/vapid_public_key", "", []string{"Authorization", "Bearer " + secret}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(e.h, tt.method, tt.path, tt.body, tt.hdr...)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			if tt.status == 401 {
				require.Equal(t, unauthorized, w.Body.String())
				require.Contains(t, w.Header().Get("WWW-Authenticate"), "Basic")
			}
		})
	}

	// A Mattermost server carries the secret in PushNotificationServer's
	// userinfo; Go's client turns that into basic auth.
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Post(strings.Replace(srv.URL, "http://", "http://mattermost:"+strings.ReplaceAll(secret, " ", "%20")+"@", 1)+"/api/v1/ack",
		"application/json", strings.NewReader(ackBody))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 200, resp.StatusCode)

	require.Contains(t, logs.String(), "sender secret")
	require.NotContains(t, logs.String(), "horse")
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	trusted := netip.MustParsePrefix("10.0.0.0/8")
	e := newEnv(t, func(o *Options) {
		o.ThrottlePerSec, o.ThrottleBurst = 1, 2
		o.TrustedProxies = []netip.Prefix{trusted}
	})
	ack := `{"id":"a","platform":"ios","type":"message"}`
	from := func(remote string, xff ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/api/v1/ack", strings.NewReader(ack))
		r.RemoteAddr = remote
		for _, h := range xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}

	// Burst of 2, then 429 with a JSON FAIL body and Retry-After.
	require.Equal(t, 200, from("192.0.2.7:1000").Code)
	require.Equal(t, 200, from("192.0.2.7:1001").Code)
	w := from("192.0.2.7:1002")
	require.Equal(t, 429, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Equal(t, failBody("rate limited: retry after 1 s"), w.Body.String())

	// Another sender has its own bucket; an untrusted sender's
	// X-Forwarded-For is not believed.
	require.Equal(t, 200, from("192.0.2.8:1000").Code)
	require.Equal(t, 429, from("192.0.2.7:1003", "198.51.100.1").Code)

	// Behind a trusted proxy, each client has its own bucket.
	for range 2 {
		require.Equal(t, 200, from("10.1.1.1:5000", "198.51.100.9").Code)
	}
	require.Equal(t, 429, from("10.1.1.1:5000", "198.51.100.9").Code)
	require.Equal(t, 200, from("10.1.1.1:5000", "203.0.113.5, 10.2.2.2").Code, "nearest untrusted hop")

	// Time refills the bucket.
	e.clock.Advance(time.Second)
	require.Equal(t, 200, from("192.0.2.7:1004").Code)
}

func TestSenderKey(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct", "192.0.2.1:80", nil, "192.0.2.1"},
		{"direct ignores xff", "192.0.2.1:80", []string{"198.51.100.1"}, "192.0.2.1"},
		{"trusted without xff", "10.0.0.1:80", nil, "10.0.0.1"},
		{"trusted proxy", "10.0.0.1:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left hop ignored", "10.0.0.1:80", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted", "10.0.0.1:80", []string{"198.51.100.1, 10.0.0.2", "10.0.0.3"}, "198.51.100.1"},
		{"all trusted", "10.0.0.1:80", []string{"10.0.0.2"}, "10.0.0.2"},
		{"garbage hop", "10.0.0.1:80", []string{"nonsense"}, "10.0.0.1"},
		{"v6 loopback proxy", "[::1]:80", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"mapped v4", "[::ffff:192.0.2.9]:80", nil, "192.0.2.9"},
		{"unparseable remote", "@", nil, "remote:@"},
		{"empty remote", "", nil, "remote:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, h := range tt.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			require.Equal(t, tt.want, senderKey(r, trusted))
		})
	}
}

func TestRegistrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) {
		o.AllowedPushHosts = append(o.AllowedPushHosts, "push.example.org", "push2.example.org:8443")
	})
	sub, endpoint := e.ps.subscribe(t)
	good := func(f func(m map[string]any)) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sub.Subscription(endpoint), &m))
		f(m)
		return mustJSON(t, m)
	}
	setKey := func(k, v string) func(m map[string]any) {
		return func(m map[string]any) { m["keys"].(map[string]any)[k] = v }
	}
	setEndpoint := func(v string) func(m map[string]any) { return func(m map[string]any) { m["endpoint"] = v } }
	offCurve := "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	future := float64(e.clock.Now().Add(time.Hour).UnixMilli())
	past := float64(e.clock.Now().Add(-time.Hour).UnixMilli())

	tests := []struct {
		name    string
		body    string
		status  int
		errorID string
		msg     string
	}{
		{"valid", good(func(map[string]any) {}), 201, "", ""},
		{"again: same id", good(func(map[string]any) {}), 200, "", ""},
		{"allowed name, https", good(setEndpoint("https://PUSH.example.org./push/x")), 201, "", ""},
		{"allowed name and port", good(setEndpoint("https://push2.example.org:8443/push/x")), 201, "", ""},
		{"with expiry", good(func(m map[string]any) { m["endpoint"] = "https://push.example.org/e"; m["expirationTime"] = future }), 201, "", ""},
		{"other host", good(setEndpoint("https://evil.example.net/push/x")), 400, "pushproxy.registration.host_not_allowed",
			`push endpoint host "evil.example.net" is not in AllowedPushHosts`},
		{"allowed host, other port", good(setEndpoint("https://push2.example.org/push/x")), 400, "pushproxy.registration.host_not_allowed",
			`push endpoint host "push2.example.org" is not in AllowedPushHosts`},
		{"suffix is not the host", good(setEndpoint("https://push.example.org.evil.net/x")), 400, "pushproxy.registration.host_not_allowed", ""},
		{"userinfo", good(setEndpoint("https://user@push.example.org/x")), 400, "pushproxy.registration.endpoint_invalid", "endpoint must not carry credentials"},
		{"ftp", good(setEndpoint("ftp://push.example.org/x")), 400, "pushproxy.registration.endpoint_invalid", "endpoint must be an http or https URL"},
		{"relative", good(setEndpoint("/push/x")), 400, "pushproxy.registration.endpoint_invalid", ""},
		{"missing endpoint", good(func(m map[string]any) { delete(m, "endpoint") }), 400, "pushproxy.registration.endpoint_invalid", "endpoint is required"},
		{"huge endpoint", good(setEndpoint("https://push.example.org/" + strings.Repeat("x", maxEndpointLen))), 400, "pushproxy.registration.endpoint_invalid", ""},
		{"p256dh short", good(setKey("p256dh", "BAAA")), 400, "pushproxy.registration.p256dh_invalid", ""},
		{"p256dh off the curve", good(setKey("p256dh", offCurve)), 400, "pushproxy.registration.p256dh_invalid", "keys.p256dh is not a point on P-256"},
		{"p256dh compressed", good(setKey("p256dh", "A"+sub.P256dh()[1:44])), 400, "pushproxy.registration.p256dh_invalid", ""},
		{"p256dh not base64", good(setKey("p256dh", "!!!")), 400, "pushproxy.registration.p256dh_invalid", ""},
		{"auth 15 bytes", good(setKey("auth", "AAAAAAAAAAAAAAAAAAAA")), 400, "pushproxy.registration.auth_invalid", "keys.auth must be exactly 16 bytes, base64url"},
		{"auth missing", good(func(m map[string]any) { delete(m["keys"].(map[string]any), "auth") }), 400, "pushproxy.registration.auth_invalid", ""},
		{"expired", good(func(m map[string]any) { m["expirationTime"] = past }), 400, "pushproxy.registration.expired", ""},
		{"not JSON", "endpoint=x", 400, "pushproxy.registration.invalid_json", ""},
		{"too large", `{"endpoint":"` + strings.Repeat("x", maxRegistrationBody) + `"}`, 413, "pushproxy.body_too_large", ""},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(e.h, http.MethodPost, "/api/v1/webpush/registrations", tt.body)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			var out map[string]string
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
			if tt.status < 300 {
				require.Len(t, out["id"], 22)
				require.True(t, validRegistrationID(out["id"]))
				ids[out["id"]] = true
				return
			}
			require.Equal(t, "FAIL", out["status"])
			require.Equal(t, tt.errorID, out["error_id"])
			if tt.msg != "" {
				require.Equal(t, tt.msg, out["error"])
			}
		})
	}
	require.Len(t, ids, 4, "re-registering an endpoint keeps its id")
}

func TestUnregister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ps.answer(503, nil) // keep a notification queued
	_, _, rid := e.register(t)
	code, body := e.send(t, e.h, message(rid, "ack1"))
	require.Equal(t, 200, code)
	require.Equal(t, okBody, body)
	require.Equal(t, 1, e.outboxCount(t))

	w := do(e.h, http.MethodDelete, "/api/v1/webpush/registrations/"+rid, "")
	require.Equal(t, 204, w.Code)
	require.Equal(t, 0, e.outboxCount(t), "pending notifications go with the registration")

	w = do(e.h, http.MethodDelete, "/api/v1/webpush/registrations/"+rid, "")
	require.Equal(t, 404, w.Code)
	require.JSONEq(t, `{"status":"FAIL","error":"no such registration","error_id":"pushproxy.registration.not_found"}`, w.Body.String())
	w = do(e.h, http.MethodDelete, "/api/v1/webpush/registrations/short", "")
	require.Equal(t, 404, w.Code)

	code, body = e.send(t, e.h, message(rid, "ack2"))
	require.Equal(t, 200, code)
	require.Equal(t, removeBody, body)
}

func TestExpiredRegistrationIsRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sub, endpoint := e.ps.subscribe(t)
	var m map[string]any
	require.NoError(t, json.Unmarshal(sub.Subscription(endpoint), &m))
	m["expirationTime"] = e.clock.Now().Add(time.Minute).UnixMilli()
	w := do(e.h, http.MethodPost, "/api/v1/webpush/registrations", mustJSON(t, m))
	require.Equal(t, 201, w.Code)
	var out struct{ ID string }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))

	e.clock.Advance(2 * time.Minute)
	_, body := e.send(t, e.h, message(out.ID, "ack1"))
	require.Equal(t, removeBody, body)
	require.False(t, e.registrationExists(t, out.ID))
	require.Zero(t, e.ps.count())
}
