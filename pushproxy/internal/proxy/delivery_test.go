package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	then := func(first int, hdr http.Header) func(call int, _ *http.Request) (int, http.Header) {
		return func(call int, _ *http.Request) (int, http.Header) {
			if call == 1 {
				return first, hdr
			}
			return http.StatusCreated, nil
		}
	}
	tests := []struct {
		name      string
		respond   func(call int, _ *http.Request) (int, http.Header)
		want      string
		keepsReg  bool
		retryIn   time.Duration // the row waits this long; -1: jittered backoff of the first failure
		code      string        // pushproxy_webpush_responses_total bucket of the first answer
		retryWhy  string
		failWhy   string
		removeWhy string
	}{
		{name: "201", respond: then(201, nil), want: okBody, keepsReg: true, code: "2xx"},
		{name: "200", respond: then(200, nil), want: okBody, keepsReg: true, code: "2xx"},
		{name: "202", respond: then(202, nil), want: okBody, keepsReg: true, code: "2xx"},
		{name: "404", respond: then(404, nil), want: removeBody, code: "404", removeWhy: "gone"},
		{name: "410", respond: then(410, nil), want: removeBody, code: "410", removeWhy: "gone"},
		{name: "429 with Retry-After", respond: then(429, http.Header{"Retry-After": {"7"}}), want: okBody, keepsReg: true,
			retryIn: 7 * time.Second, code: "429", retryWhy: "throttled"},
		{name: "429 without Retry-After", respond: then(429, nil), want: okBody, keepsReg: true,
			retryIn: 30 * time.Second, code: "429", retryWhy: "throttled"},
		{name: "500 then success", respond: then(500, nil), want: okBody, keepsReg: true, retryIn: -1, code: "5xx", retryWhy: "server_error"},
		{name: "503 then success", respond: then(503, nil), want: okBody, keepsReg: true, retryIn: -1, code: "5xx", retryWhy: "server_error"},
		{name: "408 then success", respond: then(408, nil), want: okBody, keepsReg: true, retryIn: -1, code: "4xx", retryWhy: "server_error"},
		{name: "400", respond: then(400, nil), want: failBody("push service refused the notification: HTTP 400"), keepsReg: true, code: "400", failWhy: "bad_request"},
		{name: "401", respond: then(401, nil), want: failBody("push service refused the notification: HTTP 401"), keepsReg: true, code: "401", failWhy: "unauthorized"},
		{name: "403", respond: then(403, nil), want: failBody("push service refused the notification: HTTP 403"), keepsReg: true, code: "403", failWhy: "forbidden"},
		{name: "413", respond: then(413, nil), want: failBody("push service refused the notification: HTTP 413"), keepsReg: true, code: "413", failWhy: "too_large"},
		{name: "415", respond: then(415, nil), want: failBody("push service refused the notification: HTTP 415"), keepsReg: true, code: "4xx", failWhy: "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.ps.mu.Lock()
			e.ps.respond = tt.respond
			e.ps.mu.Unlock()
			_, _, rid := e.register(t)
			start := e.clock.Now()

			code, body := e.send(t, e.h, message(rid, "ack1"))
			require.Equal(t, 200, code)
			require.Equal(t, tt.want, body)
			require.Equal(t, 1, e.ps.count())
			require.Equal(t, tt.keepsReg, e.registrationExists(t, rid))
			require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_webpush_responses_total", "code", tt.code))
			require.Equal(t, 1.0, metric(t, e.reg, "service_notifications_total", "platform", "webpush", "type", "message"))

			switch {
			case tt.retryWhy != "":
				row := e.onlyRow(t)
				require.Equal(t, 1, row.Attempts)
				require.Empty(t, row.LeaseOwner)
				require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_retries_total", "reason", tt.retryWhy))
				wait := row.NextAttempt.Sub(start)
				if tt.retryIn >= 0 {
					require.Equal(t, tt.retryIn, wait)
				} else {
					require.True(t, wait >= 0 && wait <= backoffBase, "first backoff %s", wait)
				}
				e.clock.Advance(wait)
				e.waitEmpty(t)
				require.Equal(t, 2, e.ps.count())
				require.Equal(t, 1.0, metric(t, e.reg, "service_success_total", "platform", "webpush", "type", "message"))
			case tt.failWhy != "":
				require.Zero(t, e.outboxCount(t))
				require.Equal(t, 1.0, metric(t, e.reg, "service_failure_with_reason_total", "platform", "webpush", "reason", tt.failWhy))
			case tt.removeWhy != "":
				require.Zero(t, e.outboxCount(t))
				require.Equal(t, 1.0, metric(t, e.reg, "service_removal_total", "platform", "webpush", "reason", tt.removeWhy))
				_, body := e.send(t, e.h, message(rid, "ack2"))
				require.Equal(t, removeBody, body, "the registration is gone")
			default:
				require.Zero(t, e.outboxCount(t))
				require.Equal(t, 1.0, metric(t, e.reg, "service_success_total", "platform", "webpush", "type", "message"))
			}
		})
	}
}

func TestNetworkErrorsRetry(t *testing.T) {
	t.Parallel()
	var client switchClient
	client.set(errClient{})
	e := newEnv(t, func(o *Options) { o.HTTPClient = &client })
	_, _, rid := e.register(t)

	_, body := e.send(t, e.h, message(rid, "ack1"))
	require.Equal(t, okBody, body, "unreachable means queued")
	require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_retries_total", "reason", "network"))
	require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_webpush_responses_total", "code", "neterr"))

	// Backoff grows with each failure (full jitter under 1 s·2^n).
	for n := 1; n <= 4; n++ {
		row := e.onlyRow(t)
		require.Equal(t, n, row.Attempts)
		require.LessOrEqual(t, row.NextAttempt.Sub(e.clock.Now()), backoffBase<<(n-1))
		if n == 4 {
			break
		}
		e.clock.Advance(row.NextAttempt.Sub(e.clock.Now()))
		require.Eventually(t, func() bool { return e.onlyRow(t).Attempts == n+1 }, waitFor, 5*time.Millisecond)
	}

	client.set(e.ps.srv.Client())
	e.clock.Advance(time.Hour)
	e.waitEmpty(t)
	require.Equal(t, 1, e.ps.count())
}

func TestTimeoutRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) {
		o.SendTimeout = 50 * time.Millisecond
		o.HTTPClient = blockingClient{}
	})
	_, _, rid := e.register(t)
	_, body := e.send(t, e.h, message(rid, "ack1"))
	require.Equal(t, okBody, body)
	// send_push waits no longer than the attempt may take, so either may
	// finish first: wait for the attempt.
	require.Eventually(t, func() bool { return e.onlyRow(t).Attempts == 1 }, waitFor, 5*time.Millisecond)
	require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_retries_total", "reason", "timeout"))
}

// TestExpiry: a notification that cannot be delivered within its TTL is
// dropped and counted, never retried forever.
func TestExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ps.answer(500, nil)
	_, _, rid := e.register(t)
	n := message(rid, "ack1")
	n.Type = TypeTest // TTL 60 s

	_, body := e.send(t, e.h, n)
	require.Equal(t, okBody, body)
	require.Equal(t, 1, e.outboxCount(t))
	e.clock.Advance(61 * time.Second)
	e.waitEmpty(t)
	require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_expired_total"))
	require.Equal(t, 1.0, metric(t, e.reg, "service_failure_with_reason_total", "type", "test", "reason", "expired"))
	require.True(t, e.registrationExists(t, rid))

	// A Retry-After beyond the TTL expires the notification at once.
	e.ps.answer(429, http.Header{"Retry-After": {"3600"}})
	_, body = e.send(t, e.h, n)
	require.Equal(t, okBody, body)
	require.Zero(t, e.outboxCount(t))
	require.Equal(t, 2.0, metric(t, e.reg, "pushproxy_expired_total"))
}

// TestDeviceRequest checks what reaches the push service: headers per
// type, the payload under id_only, and the VAPID JWT.
func TestDeviceRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sub, _, rid := e.register(t)

	tests := []struct {
		name    string
		typ     string
		ttl     string
		urgency string
		topic   string
	}{
		{"message", TypeMessage, "86400", "high", ""},
		{"session", TypeSession, "86400", "high", ""},
		{"clear", TypeClear, "3600", "normal", "cchan7k8sx3ynxcgm5qdamrs9yh"},
		{"update_badge", TypeUpdateBadge, "3600", "normal", "badge"},
		{"test", TypeTest, "60", "normal", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := message(rid, fmt.Sprintf("ack%d", i))
			n.Type = tt.typ
			_, body := e.send(t, e.h, n)
			require.Equal(t, okBody, body)
			reqs := e.ps.requests()
			got := reqs[len(reqs)-1]
			require.Equal(t, tt.ttl, got.Header.Get("TTL"))
			require.Equal(t, tt.urgency, got.Header.Get("Urgency"))
			require.Equal(t, tt.topic, got.Header.Get("Topic"))
			require.Equal(t, "aes128gcm", got.Header.Get("Content-Encoding"))
			require.Len(t, got.Body, 4096, "padded to the record size: length hides content")

			// id_only: ids reach the device, content does not, even
			// though the server sent it.
			p := got.Payload(t)
			require.Equal(t, map[string]string{
				"ack_id": n.AckID, "type": tt.typ, "version": "v2", "server_id": n.ServerID, "team_id": n.TeamID,
				"channel_id": n.ChannelID, "post_id": n.PostID, "sender_id": n.SenderID, "is_crt_enabled": "true",
				"badge": "3", "category": "CAN_REPLY", "signature": "c2lnbmF0dXJl",
			}, without(p, "id_loaded"))
			if tt.typ == TypeMessage || tt.typ == TypeSession {
				require.Equal(t, "true", p["id_loaded"], "the device must fetch the content")
			}
			require.NotContains(t, string(got.Plaintext), "launch code")
			require.NotContains(t, string(got.Plaintext), "Alice")
			require.NotContains(t, string(got.Plaintext), "Secret Plans")
			require.NotContains(t, string(got.Plaintext), "bot-alias")

			claims := verifyVAPID(t, got.Header.Get("Authorization"), e.keys.PublicKey)
			require.Equal(t, "mailto:ops@example.org", claims.Sub, "no doubled mailto:")
			require.Equal(t, e.ps.srv.URL, claims.Aud)
		})
	}
	require.NotNil(t, sub)
}

func TestVAPIDSubject(t *testing.T) {
	t.Parallel()
	tests := []struct{ subject, sub string }{
		{"mailto:ops@example.org", "mailto:ops@example.org"},
		{"MAILTO:ops@example.org", "mailto:ops@example.org"},
		{"ops@example.org", "mailto:ops@example.org"},
		{"https://push.site.example", "https://push.site.example"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *Options) { o.VAPIDSubject = tt.subject })
			_, _, rid := e.register(t)
			_, body := e.send(t, e.h, message(rid, "ack1"))
			require.Equal(t, okBody, body)
			claims := verifyVAPID(t, e.ps.requests()[0].Header.Get("Authorization"), e.keys.PublicKey)
			require.Equal(t, tt.sub, claims.Sub)
		})
	}
}

// TestFullContent: under full the device gets the content, and the
// database never holds it in plaintext, nor a VAPID token.
func TestFullContent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.ContentPolicy = ContentFull })
	e.ps.answer(503, nil)
	_, _, rid := e.register(t)
	n := message(rid, "ack1")
	_, body := e.send(t, e.h, n)
	require.Equal(t, okBody, body)

	// The row waits for a retry: inspect every byte of both tables.
	secrets := []string{"launch code", "Alice Example", "Secret Plans", "bot-alias", "example.org/i.png"}
	for _, table := range []string{"pushproxy_outbox", "pushproxy_registrations"} {
		rows, err := e.pool.Query(t.Context(), "SELECT t::text FROM "+table+" t")
		require.NoError(t, err)
		for rows.Next() {
			var text string
			require.NoError(t, rows.Scan(&text))
			for _, s := range secrets {
				require.NotContains(t, text, s, table)
				require.NotContains(t, text, fmt.Sprintf("%x", s), table+" (as bytea hex)")
			}
			require.NotContains(t, text, "vapid")
		}
		require.NoError(t, rows.Err())
	}
	var payload, ciphertext []byte
	require.NoError(t, e.pool.QueryRow(t.Context(), "SELECT payload, ciphertext FROM pushproxy_outbox").Scan(&payload, &ciphertext))
	require.Nil(t, payload)
	require.Len(t, ciphertext, 4096)
	for _, s := range secrets {
		require.False(t, bytes.Contains(ciphertext, []byte(s)))
	}

	// A day later (past webpush-go's 12-hour JWT), the stored ciphertext
	// still goes out, with a freshly signed VAPID header.
	e.ps.answer(201, nil)
	e.clock.Advance(23 * time.Hour)
	e.waitEmpty(t)
	reqs := e.ps.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].Body, reqs[1].Body, "the sealed body is replayed, not re-encrypted")
	require.NotEqual(t, reqs[0].Header.Get("Authorization"), reqs[1].Header.Get("Authorization"))
	require.Equal(t, "3600", reqs[1].Header.Get("TTL"), "TTL counts down to the original expiry")
	verifyVAPID(t, reqs[1].Header.Get("Authorization"), e.keys.PublicKey)

	p := reqs[1].Payload(t)
	require.Equal(t, "the launch code is 0000", p["message"])
	require.Equal(t, "Alice Example", p["sender_name"])
	require.Equal(t, "Secret Plans", p["channel_name"])
	require.Equal(t, "bot-alias", p["override_username"])
	require.Equal(t, "https://example.org/i.png", p["override_icon_url"])
	require.Equal(t, "true", p["from_webhook"])
	require.Equal(t, "ack1", p["ack_id"])
}

// TestIDOnlyStorage: under id_only a waiting row holds ids only.
func TestIDOnlyStorage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ps.answer(503, nil)
	_, _, rid := e.register(t)
	_, body := e.send(t, e.h, message(rid, "ack1"))
	require.Equal(t, okBody, body)

	var payload, ciphertext []byte
	require.NoError(t, e.pool.QueryRow(t.Context(), "SELECT payload, ciphertext FROM pushproxy_outbox").Scan(&payload, &ciphertext))
	require.Nil(t, ciphertext)
	var m map[string]string
	require.NoError(t, json.Unmarshal(payload, &m))
	require.Equal(t, "post8pxs3ffz7kxkc9ryqt3xqe", m["post_id"])
	for _, s := range []string{"launch code", "Alice", "Secret Plans", "bot-alias", "i.png"} {
		require.NotContains(t, string(payload), s)
	}

	// Re-encrypted for each attempt.
	e.ps.answer(201, nil)
	e.clock.Advance(time.Minute)
	e.waitEmpty(t)
	reqs := e.ps.requests()
	require.Len(t, reqs, 2)
	require.NotEqual(t, reqs[0].Body, reqs[1].Body)
	require.Equal(t, reqs[0].Plaintext, reqs[1].Plaintext)
}

// TestTopicReplaces: a newer clear of a channel replaces a waiting one.
func TestTopicReplaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ps.answer(503, nil)
	_, _, rid := e.register(t)
	for i, typ := range []string{TypeClear, TypeClear, TypeMessage, TypeMessage, TypeUpdateBadge, TypeUpdateBadge} {
		n := message(rid, fmt.Sprintf("ack%d", i))
		n.Type = typ
		_, body := e.send(t, e.h, n)
		require.Equal(t, okBody, body)
	}
	var acks []string
	rows, err := e.pool.Query(t.Context(), "SELECT ack_id FROM pushproxy_outbox ORDER BY ack_id")
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		acks = append(acks, a)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"ack1", "ack2", "ack3", "ack5"}, acks)
}

// TestTwoProxiesDeliverOnce: two proxies on one database, both taking
// notifications and both claiming, deliver each exactly once.
func TestTwoProxiesDeliverOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b, _ := e.newProxy(t, func(o *Options) { o.FirstAttemptWait = -1 })
	hb := b.Handler()
	const regs, perReg = 3, 20
	var rids []string
	for range regs {
		_, _, rid := e.register(t)
		rids = append(rids, rid)
	}

	var wg sync.WaitGroup
	answers := make([]string, regs*perReg)
	for i := range answers {
		h := e.h
		if i%2 == 1 {
			h = hb
		}
		n := message(rids[i%regs], fmt.Sprintf("ack%03d", i))
		body := mustJSON(t, n)
		wg.Go(func() { answers[i] = do(h, http.MethodPost, "/api/v1/send_push", body).Body.String() })
	}
	wg.Wait()
	for _, a := range answers {
		require.Equal(t, okBody, a)
	}
	e.waitEmpty(t)

	seen := map[string]int{}
	for _, r := range e.ps.requests() {
		seen[r.Payload(t)["ack_id"]]++
	}
	require.Len(t, seen, regs*perReg)
	for ack, n := range seen {
		require.Equal(t, 1, n, ack)
	}
}

// TestDeadWorker: a proxy that dies holding a claim loses nothing: when
// its lease runs out another proxy delivers the row, once.
func TestDeadWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.FirstAttemptWait = -1 })
	_, _, rid := e.register(t)
	require.NoError(t, e.p.Stop(t.Context())) // the proxy under test is "a" below

	// a hangs in its attempt and, on a clock of its own that never moves,
	// never finds anything due again: as good as killed.
	stuck := newStuckClient()
	t.Cleanup(stuck.release)
	frozen := newClock()
	a, _ := e.newProxy(t, func(o *Options) {
		o.HTTPClient, o.InstanceID, o.FirstAttemptWait, o.Now = stuck, "a", -1, frozen.Now
		o.SendTimeout = time.Hour
	})
	_, body := e.send(t, a.Handler(), message(rid, "ack1"))
	require.Equal(t, okBody, body)
	waitClosed(t, stuck.entered) // a holds the claim
	row := e.onlyRow(t)
	require.Equal(t, "a", row.LeaseOwner)
	require.Equal(t, int64(1), row.Claims)

	b, _ := e.newProxy(t, func(o *Options) { o.InstanceID = "b" })
	waitRounds(t, b, 3)
	require.Zero(t, e.ps.count(), "b leaves a live lease alone")

	e.clock.Advance(a.lease + time.Second)
	e.waitEmpty(t)
	require.Equal(t, 1, e.ps.count())

	// a wakes up: its claim is stale and changes nothing.
	stuck.release()
	waitRounds(t, a, 3)
	waitRounds(t, b, 3)
	require.Equal(t, 1, e.ps.count())
	require.Zero(t, e.outboxCount(t))
}

// TestStopReleasesClaims: a proxy stopped mid-attempt hands its rows back
// at once.
func TestStopReleasesClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.FirstAttemptWait = -1 })
	_, _, rid := e.register(t)
	require.NoError(t, e.p.Stop(t.Context()))

	stuck := newStuckClient()
	t.Cleanup(stuck.release)
	a, _ := e.newProxy(t, func(o *Options) {
		// The synchronous first attempt is the one that hangs; send_push
		// gives up waiting for it at once.
		o.HTTPClient, o.InstanceID, o.SendTimeout, o.FirstAttemptWait = stuck, "a", time.Hour, time.Millisecond
	})
	_, body := e.send(t, a.Handler(), message(rid, "ack1"))
	require.Equal(t, okBody, body)
	waitClosed(t, stuck.entered)

	ctx, cancel := context.WithCancel(t.Context())
	cancel() // no patience: cancel the attempt under way
	require.NoError(t, a.Stop(ctx))
	row := e.onlyRow(t)
	require.Empty(t, row.LeaseOwner)
	require.Equal(t, 0, row.Attempts, "a shutdown is not a failed attempt")
	require.False(t, row.NextAttempt.After(e.clock.Now()))

	e.newProxy(t, func(o *Options) { o.InstanceID = "b" })
	e.waitEmpty(t)
	require.Equal(t, 1, e.ps.count())
}

// TestRestartResumes: notifications queued before a restart are delivered
// after it.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ps.answer(503, nil)
	_, _, rid := e.register(t)
	for i := range 3 {
		_, body := e.send(t, e.h, message(rid, fmt.Sprintf("ack%d", i)))
		require.Equal(t, okBody, body)
	}
	require.NoError(t, e.p.Stop(t.Context()))
	require.Equal(t, 3, e.outboxCount(t))

	e.ps.answer(201, nil)
	e.newProxy(t)
	e.clock.Advance(time.Minute)
	e.waitEmpty(t)
	seen := map[string]int{}
	for _, r := range e.ps.requests()[3:] {
		seen[r.Payload(t)["ack_id"]]++
	}
	require.Equal(t, map[string]int{"ack0": 1, "ack1": 1, "ack2": 1}, seen)
}

func TestReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.NoError(t, e.p.Ready(t.Context()))

	idle, err := New(Options{Pool: e.pool, VAPID: e.keys, VAPIDSubject: "ops@example.org", AllowedPushHosts: []string{"x"}})
	require.NoError(t, err)
	require.ErrorContains(t, idle.Ready(t.Context()), "not started")

	e.ps.answer(503, nil)
	_, _, rid := e.register(t)
	_, body := e.send(t, e.h, message(rid, "a"))
	require.Equal(t, okBody, body)
	require.NoError(t, e.p.refreshStats(t.Context()))
	require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_outbox_depth"))
	require.Equal(t, 1.0, metric(t, e.reg, "pushproxy_registrations"))
	e.clock.Advance(90 * time.Second)
	e.ps.answer(503, nil)
	require.NoError(t, e.p.refreshStats(t.Context()))
	require.Equal(t, 90.0, metric(t, e.reg, "pushproxy_outbox_oldest_seconds"))
	require.NoError(t, e.p.Ready(t.Context()), "a backlog alone does not make a proxy unready by default")
	_, body = e.send(t, e.h, message(rid, "b"))
	require.Equal(t, okBody, body)
	require.NoError(t, e.p.refreshStats(t.Context()))
	e.p.maxDepth = 1
	require.ErrorContains(t, e.p.Ready(t.Context()), "the outbox holds 2 notifications, over 1")

	require.NoError(t, e.p.Stop(t.Context()))
	require.ErrorContains(t, e.p.Ready(t.Context()), "stopping")
	require.ErrorContains(t, e.p.Start(t.Context()), "already stopped")
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, _, rid := e.register(t)
	_, body := e.send(t, e.h, message(rid, "a"))
	require.Equal(t, okBody, body)
	do(e.h, "POST", "/api/v1/ack", `{"id":"a","platform":"webpush","type":"message"}`)
	require.NoError(t, e.p.refreshStats(t.Context()))
	require.Subset(t, families(t, e.reg), []string{
		"service_notifications_total", "service_success_total", "service_delivered_total",
		"service_request_duration_seconds", "service_notification_duration_seconds",
		"pushproxy_outbox_depth", "pushproxy_outbox_oldest_seconds", "pushproxy_webpush_responses_total",
		"pushproxy_registrations",
	})
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatal("timed out")
	}
}

// waitRounds waits until p's poller has gone round n more times.
func waitRounds(t *testing.T, p *Proxy, n int) {
	t.Helper()
	for range n {
		last := p.beat.Load()
		require.Eventually(t, func() bool { return p.beat.Load() != last }, waitFor, time.Millisecond)
	}
}

// stuckClient hangs every request until released, ignoring the request's
// context the way a wedged process would, unless Stop aborts it.
type stuckClient struct {
	entered  chan struct{}
	released chan struct{}
	once     sync.Once
	enter    sync.Once
}

func newStuckClient() *stuckClient {
	return &stuckClient{entered: make(chan struct{}), released: make(chan struct{})}
}

func (c *stuckClient) release() { c.once.Do(func() { close(c.released) }) }

func (c *stuckClient) Do(r *http.Request) (*http.Response, error) {
	c.enter.Do(func() { close(c.entered) })
	select {
	case <-c.released:
		return nil, fmt.Errorf("released")
	case <-r.Context().Done(): // Stop's abort; SendTimeout is an hour in these tests
		return nil, r.Context().Err()
	}
}

// blockingClient waits for the request's deadline: a push service that
// never answers.
type blockingClient struct{}

func (blockingClient) Do(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// switchClient forwards to a client a test can swap.
type switchClient struct {
	mu sync.Mutex // guards c
	c  HTTPClient
}

func (s *switchClient) set(c HTTPClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c = c
}

func (s *switchClient) Do(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	return c.Do(r)
}

func without(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

type vapidClaims struct {
	Aud string `json:"aud"`
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

// verifyVAPID checks an RFC 8292 "vapid t=…, k=…" header: k is our key
// and the ES256 signature of t verifies with it.
func verifyVAPID(t *testing.T, header, publicKey string) vapidClaims {
	t.Helper()
	require.True(t, strings.HasPrefix(header, "vapid t="), header)
	tok, k, ok := strings.Cut(strings.TrimPrefix(header, "vapid t="), ", k=")
	require.True(t, ok, header)
	require.Equal(t, publicKey, k)
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	rawPub, err := base64.RawURLEncoding.DecodeString(k)
	require.NoError(t, err)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), rawPub)
	require.NoError(t, err)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	require.Len(t, sig, 64)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	require.True(t, ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])), "VAPID signature")
	claimsJSON, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c vapidClaims
	require.NoError(t, json.Unmarshal(claimsJSON, &c))
	require.Greater(t, c.Exp, time.Now().Unix())
	return c
}

// TestLogsRedact: logs name notifications by ack_id and never carry
// content, whole registration ids or endpoints.
func TestLogsRedact(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	e := newEnv(t, func(o *Options) {
		o.ContentPolicy = ContentFull
		o.Logger = slogTo(logs)
	})
	_, endpoint, rid := e.register(t)
	for _, status := range []int{500, 403, 201, 410} {
		e.ps.answer(status, nil)
		_, body := e.send(t, e.h, message(rid, fmt.Sprintf("ack-%d", status)))
		require.NotEmpty(t, body)
	}
	out := logs.String()
	require.Contains(t, out, `"ack_id":"ack-403"`)
	require.Contains(t, out, `"registration":"`+rid[:8]+`…"`)
	require.Contains(t, out, "check the VAPID keys")
	for _, secret := range []string{rid, endpoint, strings.TrimPrefix(endpoint, e.ps.srv.URL), "launch code", "Alice", "Secret Plans", e.keys.PrivateKey} {
		require.NotContains(t, out, secret)
	}
}
