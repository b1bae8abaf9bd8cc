package pushservice_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/garrison-chat/garrison/pushproxy/internal/pushservice"
)

// noLimits lifts the rate limits, for tests about something else.
func noLimits(o *pushservice.Options) {
	o.SubscriptionRate = rate.Inf
	o.VAPIDKeyRate = rate.Inf
}

// TestPushResource is the push-service table, row by row, plus the
// VAPID cases.
func TestPushResource(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	d := dial(t, e.base)
	d.hello("")
	plain := d.register("0b9f0f5e-0000-4000-8000-000000000001", "")
	k1, k2 := newVAPIDKey(t), newVAPIDKey(t)
	bound := d.register("0b9f0f5e-0000-4000-8000-000000000002", k1.padded())
	gone := d.register("0b9f0f5e-0000-4000-8000-000000000003", "")
	d.send(map[string]any{"messageType": "unregister", "channelID": "0b9f0f5e-0000-4000-8000-000000000003", "code": 200})
	require.EqualValues(t, 200, d.recv()["status"])

	now := time.Now()
	jwtHeader := map[string]string{"typ": "JWT", "alg": "ES256"}
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"aud": e.base, "exp": now.Add(12 * time.Hour).Unix(), "sub": "mailto:ops@example.org"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	vapid := func(signer vapidKey, k string, header any, c map[string]any) string {
		return "vapid t=" + signer.token(t, header, c) + ", k=" + k
	}

	tests := []struct {
		name     string
		endpoint string
		body     []byte
		hdr      map[string]string
		want     int
		wantTTL  string // the TTL echoed on 201
	}{
		{"accepted", plain, body(100, 'a'), pushHeaders(), http.StatusCreated, "60"},
		{"4096 bytes", plain, body(4096, 'b'), pushHeaders(), http.StatusCreated, "60"},
		{"1 byte", plain, body(1, 'c'), pushHeaders(), http.StatusCreated, "60"},
		{"TTL clamped to 28 days", plain, body(10, 'd'), pushHeaders("TTL", "99999999999999999999999"), http.StatusCreated, "2419200"},
		{"TTL 0", plain, body(10, 'e'), pushHeaders("TTL", "0"), http.StatusCreated, "0"},
		{"missing TTL", plain, body(10, 'x'), pushHeaders("TTL", ""), http.StatusBadRequest, ""},
		{"negative TTL", plain, body(10, 'x'), pushHeaders("TTL", "-1"), http.StatusBadRequest, ""},
		{"fractional TTL", plain, body(10, 'x'), pushHeaders("TTL", "1.5"), http.StatusBadRequest, ""},
		{"TTL not a number", plain, body(10, 'x'), pushHeaders("TTL", "soon"), http.StatusBadRequest, ""},
		{"TTL with a sign", plain, body(10, 'x'), pushHeaders("TTL", "+60"), http.StatusBadRequest, ""},
		{"aesgcm", plain, body(10, 'x'), pushHeaders("Content-Encoding", "aesgcm"), http.StatusUnsupportedMediaType, ""},
		{"no Content-Encoding", plain, body(10, 'x'), pushHeaders("Content-Encoding", ""), http.StatusUnsupportedMediaType, ""},
		{"gzip", plain, body(10, 'x'), pushHeaders("Content-Encoding", "gzip"), http.StatusUnsupportedMediaType, ""},
		{"4097 bytes", plain, body(4097, 'x'), pushHeaders(), http.StatusRequestEntityTooLarge, ""},
		{"1 MiB", plain, body(1<<20, 'x'), pushHeaders(), http.StatusRequestEntityTooLarge, ""},
		{"empty body", plain, nil, pushHeaders(), http.StatusBadRequest, ""},
		{"unknown capability", e.base + "/push/AAAAAAAAAAAAAAAAAAAAAAAAAAA", body(10, 'x'), pushHeaders(), http.StatusNotFound, ""},
		{"malformed capability", e.base + "/push/not-a-capability", body(10, 'x'), pushHeaders(), http.StatusNotFound, ""},
		{"removed capability", gone, body(10, 'x'), pushHeaders(), http.StatusGone, ""},
		{"Topic", plain, body(10, 'f'), pushHeaders("Topic", "c0123456789abcdef0123456789_-xyz"), http.StatusCreated, "60"},
		{"Topic of 33 characters", plain, body(10, 'x'), pushHeaders("Topic", strings.Repeat("t", 33)), http.StatusBadRequest, ""},
		{"Topic outside base64url", plain, body(10, 'x'), pushHeaders("Topic", "a+b/c"), http.StatusBadRequest, ""},
		{"Urgency high", plain, body(10, 'g'), pushHeaders("Urgency", "high"), http.StatusCreated, "60"},
		{"Urgency very-low", plain, body(10, 'h'), pushHeaders("Urgency", "very-low"), http.StatusCreated, "60"},
		{"Urgency unknown", plain, body(10, 'x'), pushHeaders("Urgency", "urgent"), http.StatusBadRequest, ""},

		{"VAPID valid", bound, body(10, 'i'), pushHeaders("Authorization", k1.auth(t, e.base)), http.StatusCreated, "60"},
		{"VAPID aud in capitals with a slash", bound, body(10, 'j'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), jwtHeader, claims(func(c map[string]any) { c["aud"] = strings.ToUpper(e.base[:4]) + e.base[4:] + "/" }))),
			http.StatusCreated, "60"},
		{"VAPID k padded", bound, body(10, 'k'), pushHeaders("Authorization", vapid(k1, k1.padded(), jwtHeader, claims(nil))), http.StatusCreated, "60"},
		{"VAPID missing", bound, body(10, 'x'), pushHeaders(), http.StatusUnauthorized, ""},
		{"VAPID other scheme", bound, body(10, 'x'), pushHeaders("Authorization", "WebPush "+k1.token(t, jwtHeader, claims(nil))), http.StatusUnauthorized, ""},
		{"VAPID without k", bound, body(10, 'x'), pushHeaders("Authorization", "vapid t="+k1.token(t, jwtHeader, claims(nil))), http.StatusUnauthorized, ""},
		{"VAPID k not a point", bound, body(10, 'x'), pushHeaders("Authorization", vapid(k1, "AAAA", jwtHeader, claims(nil))), http.StatusUnauthorized, ""},
		{"VAPID signed by another key", bound, body(10, 'x'), pushHeaders("Authorization", vapid(k2, k1.raw(), jwtHeader, claims(nil))), http.StatusUnauthorized, ""},
		{"VAPID tampered token", bound, body(10, 'x'), pushHeaders("Authorization", strings.Replace(k1.auth(t, e.base), "t=ey", "t=ez", 1)), http.StatusUnauthorized, ""},
		{"VAPID expired", bound, body(10, 'x'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), jwtHeader, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }))),
			http.StatusUnauthorized, ""},
		{"VAPID exp more than 24 h ahead", bound, body(10, 'x'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), jwtHeader, claims(func(c map[string]any) { c["exp"] = now.Add(25 * time.Hour).Unix() }))),
			http.StatusUnauthorized, ""},
		{"VAPID without exp", bound, body(10, 'x'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), jwtHeader, claims(func(c map[string]any) { delete(c, "exp") }))),
			http.StatusUnauthorized, ""},
		{"VAPID aud of another origin", bound, body(10, 'x'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), jwtHeader, claims(func(c map[string]any) { c["aud"] = "https://push.example.org" }))),
			http.StatusUnauthorized, ""},
		{"VAPID aud with a path", bound, body(10, 'x'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), jwtHeader, claims(func(c map[string]any) { c["aud"] = e.base + "/push" }))),
			http.StatusUnauthorized, ""},
		{"VAPID without sub", bound, body(10, 'x'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), jwtHeader, claims(func(c map[string]any) { delete(c, "sub") }))),
			http.StatusUnauthorized, ""},
		{"VAPID alg HS256", bound, body(10, 'x'),
			pushHeaders("Authorization", vapid(k1, k1.raw(), map[string]string{"typ": "JWT", "alg": "HS256"}, claims(nil))),
			http.StatusUnauthorized, ""},
		{"VAPID valid for another key", bound, body(10, 'x'), pushHeaders("Authorization", k2.auth(t, e.base)), http.StatusForbidden, ""},
		{"VAPID on an unbound subscription", plain, body(10, 'l'), pushHeaders("Authorization", k2.auth(t, e.base)), http.StatusCreated, "60"},
		{"bad VAPID on an unbound subscription", plain, body(10, 'x'),
			pushHeaders("Authorization", vapid(k2, k1.raw(), jwtHeader, claims(nil))), http.StatusUnauthorized, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := push(t, tc.endpoint, tc.body, tc.hdr)
			require.Equal(t, tc.want, resp.StatusCode)
			if tc.want == http.StatusCreated {
				require.Regexp(t, `^`+e.base+`/m/[A-Za-z0-9_-]{22}$`, resp.Header.Get("Location"))
				require.Equal(t, tc.wantTTL, resp.Header.Get("TTL"))
			}
		})
	}
}

// TestErrorBody checks the autopush-shaped JSON of a refusal.
func TestErrorBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.base+"/push/AAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.NewReader("x"))
	require.NoError(t, err)
	req.Header.Set("TTL", "60")
	req.Header.Set("Content-Encoding", "aes128gcm")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var got struct {
		Code    int    `json:"code"`
		Errno   int    `json:"errno"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Equal(t, 404, got.Code)
	require.Equal(t, 102, got.Errno)
	require.Equal(t, "Not Found", got.Error)
	require.NotEmpty(t, got.Message)
	require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_rejects_total", map[string]string{"code": "404"}))
}

// TestDiscoveryAndCancel covers GET /push/{cap} (UnifiedPush discovery)
// and DELETE /m/{id}.
func TestDiscoveryAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	d := dial(t, e.base)
	d.hello("")
	live := d.register("a1", "")
	gone := d.register("a2", "")
	d.send(map[string]any{"messageType": "unregister", "channelID": "a2"})
	require.EqualValues(t, 200, d.recv()["status"])

	get := func(u string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	del := func(u string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, u, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	code, b := get(live)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"unifiedpush":{"version":1}}`, b)
	code, _ = get(gone)
	require.Equal(t, http.StatusGone, code)
	code, _ = get(e.base + "/push/AAAAAAAAAAAAAAAAAAAAAAAAAAA")
	require.Equal(t, http.StatusNotFound, code)

	// The device is online but reads nothing here: the message waits.
	id := pushOK(t, live, body(10, 'a'), nil)
	require.Equal(t, 1, count(t, e.pool, `SELECT count(*) FROM ps_messages WHERE id = $1`, id))
	require.Equal(t, http.StatusNoContent, del(e.base+"/m/"+id))
	require.Equal(t, 0, count(t, e.pool, `SELECT count(*) FROM ps_messages WHERE id = $1`, id))
	require.Equal(t, http.StatusNotFound, del(e.base+"/m/"+id))
	require.Equal(t, http.StatusNotFound, del(e.base+"/m/AAAAAAAAAAAAAAAAAAAAAA"))
	require.Equal(t, http.StatusNotFound, del(e.base+"/m/short"))
}

// TestTopicReplaces checks that a message with a Topic replaces the
// pending one with the same Topic on that subscription, and no other.
func TestTopicReplaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	d := dial(t, e.base)
	uaid := d.hello("")
	ep1 := d.register("t1", "")
	ep2 := d.register("t2", "")
	require.NoError(t, d.ws.Close())
	offline(t, e.pool, uaid)

	first := pushOK(t, ep1, []byte("first"), pushHeaders("Topic", "badge"))
	other := pushOK(t, ep2, []byte("other subscription"), pushHeaders("Topic", "badge"))
	untopical := pushOK(t, ep1, []byte("no topic"), nil)
	second := pushOK(t, ep1, []byte("second"), pushHeaders("Topic", "badge"))

	// The replaced message is gone: cancelling it finds nothing.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, e.base+"/m/"+first, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	d = dial(t, e.base)
	d.hello(uaid)
	var got []string
	for range 3 {
		n := d.next()
		got = append(got, n.version+":"+string(n.data))
	}
	require.Equal(t, []string{other + ":other subscription", untopical + ":no topic", second + ":second"}, got)
	d.ping() // nothing else was queued
}

// TestTTLZero checks "now or never": an offline device never gets the
// message, an online one gets it, and it is never stored.
func TestTTLZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	d := dial(t, e.base)
	uaid := d.hello("")
	ep := d.register("z1", "")

	// Online: delivered now, not stored.
	id := pushOK(t, ep, []byte("now"), pushHeaders("TTL", "0"))
	n := d.next()
	require.Equal(t, id, n.version)
	require.Equal(t, []byte("now"), n.data)
	require.Equal(t, 0, count(t, e.pool, `SELECT count(*) FROM ps_messages`))
	d.ack(n, 100)

	// Offline: accepted, not stored, not delivered later.
	require.NoError(t, d.ws.Close())
	offline(t, e.pool, uaid)
	resp := push(t, ep, []byte("never"), pushHeaders("TTL", "0"))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "0", resp.Header.Get("TTL"))
	require.Equal(t, 0, count(t, e.pool, `SELECT count(*) FROM ps_messages`))
	sentinel := pushOK(t, ep, []byte("sentinel"), nil)

	d = dial(t, e.base)
	d.hello(uaid)
	n = d.next()
	require.Equal(t, sentinel, n.version, "the TTL 0 message must not be replayed")
}

// TestMailboxFull checks 507 on the per-subscription caps on count and
// bytes, and that a Topic replacement still fits in a full mailbox.
func TestMailboxFull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		maxMsgs  int
		maxBytes int
		size     int
		accepted int
	}{
		{"count", 2, 0, 10, 2},
		{"bytes", 0, 5000, 3000, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *pushservice.Options) {
				noLimits(o)
				o.MaxMessagesPerSubscription, o.MaxBytesPerSubscription = tc.maxMsgs, tc.maxBytes
			})
			d := dial(t, e.base)
			d.hello("")
			ep := d.register("m1", "")
			other := d.register("m2", "")
			// The device does not ack, so the mailbox fills.
			for i := range tc.accepted {
				pushOK(t, ep, body(tc.size, 'a'), pushHeaders("Topic", "t"+strconv.Itoa(i)))
			}
			require.Equal(t, http.StatusInsufficientStorage, push(t, ep, body(tc.size, 'b'), nil).StatusCode)
			// Replacing a pending message does not grow the mailbox.
			pushOK(t, ep, body(tc.size, 'c'), pushHeaders("Topic", "t0"))
			// The cap is per subscription.
			pushOK(t, other, body(tc.size, 'd'), nil)
			require.EqualValues(t, 1, metric(t, e.reg, "pushproxy_ps_rejects_total", map[string]string{"code": "507"}))
		})
	}
}

// TestRateLimits checks 429 + Retry-After per subscription and per VAPID
// key, and that refused requests spend no tokens.
func TestRateLimits(t *testing.T) {
	t.Parallel()

	t.Run("per subscription", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(o *pushservice.Options) {
			o.SubscriptionRate, o.SubscriptionBurst = rate.Every(time.Hour), 2
		})
		d := dial(t, e.base)
		d.hello("")
		ep := d.register("r1", "")
		other := d.register("r2", "")
		pushOK(t, ep, body(10, 'a'), nil)
		pushOK(t, ep, body(10, 'a'), nil)
		resp := push(t, ep, body(10, 'a'), nil)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		require.NoError(t, err)
		require.Positive(t, ra)
		require.LessOrEqual(t, ra, 3600)
		pushOK(t, other, body(10, 'a'), nil) // another subscription has its own bucket
	})

	t.Run("per VAPID key", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(o *pushservice.Options) {
			o.SubscriptionRate = rate.Inf
			o.VAPIDKeyRate, o.VAPIDKeyBurst = rate.Every(time.Hour), 2
		})
		k1, k2 := newVAPIDKey(t), newVAPIDKey(t)
		d := dial(t, e.base)
		d.hello("")
		ep1 := d.register("v1", k1.padded())
		ep2 := d.register("v2", k1.padded())
		ep3 := d.register("v3", k2.padded())
		// Unauthorised requests do not spend the key's tokens.
		for range 3 {
			require.Equal(t, http.StatusUnauthorized, push(t, ep1, body(10, 'a'), nil).StatusCode)
			require.Equal(t, http.StatusForbidden, push(t, ep1, body(10, 'a'), pushHeaders("Authorization", k2.auth(t, e.base))).StatusCode)
		}
		pushOK(t, ep1, body(10, 'a'), pushHeaders("Authorization", k1.auth(t, e.base)))
		pushOK(t, ep2, body(10, 'a'), pushHeaders("Authorization", k1.auth(t, e.base)))
		resp := push(t, ep1, body(10, 'a'), pushHeaders("Authorization", k1.auth(t, e.base)))
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
		// Another key has its own bucket.
		pushOK(t, ep3, body(10, 'a'), pushHeaders("Authorization", k2.auth(t, e.base)))
	})
}
