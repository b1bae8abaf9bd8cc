package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
)

// result is how one delivery attempt ended.
type result int

const (
	resultSent     result = iota // 2xx: the push service has it
	resultGone                   // 404/410: the subscription is dead; registration deleted
	resultRejected               // 400/401/403/413 and other 4xx: refused for good; row dropped
	resultRetry                  // 429, 5xx, timeout, network: rescheduled
	resultExpired                // past its TTL: dropped
	resultReleased               // cancelled by Stop: claim released, row due again
	resultUnknown                // our bookkeeping failed: the lease will run out
)

// outcome is the result of an attempt and what send_push answers for it.
type outcome struct {
	result result
	status int // HTTP status, 0 when there was none
	reason string
}

func (o outcome) response() PushResponse {
	switch o.result {
	case resultGone:
		return removeResponse()
	case resultRejected:
		return failResponse(o.reason)
	default: // sent, or queued for a later attempt
		return okResponse()
	}
}

// Backoff of transient failures: full jitter over 1s·2^n, capped.
const (
	backoffBase      = time.Second
	backoffCap       = 5 * time.Minute
	retryAfterLimit  = 24 * time.Hour
	defaultRetryWait = 30 * time.Second
)

// backoff returns the delay before the attempt after the n-th failure
// (n ≥ 1): uniform in [0, min(cap, base·2^(n-1))].
func backoff(n int) time.Duration {
	ceiling := backoffCap
	if n < 20 {
		ceiling = min(backoffCap, backoffBase<<max(n-1, 0))
	}
	return rand.N(ceiling + 1)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return defaultRetryWait
	}
	if s, err := strconv.Atoi(h); err == nil {
		return min(max(time.Duration(s)*time.Second, time.Second), retryAfterLimit)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), time.Second), retryAfterLimit)
	}
	return defaultRetryWait
}

// attemptContext bounds one attempt by SendTimeout and ends it early when
// Stop gives up waiting.
func (p *Proxy) attemptContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), p.sendTimeout)
	done := make(chan struct{})
	go func() {
		select {
		case <-p.abort:
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		cancel()
	}
}

func (p *Proxy) aborted() bool {
	select {
	case <-p.abort:
		return true
	default:
		return false
	}
}

// deliver makes one attempt at j and records its outcome in the outbox.
func (p *Proxy) deliver(j job) outcome {
	ctx, cancel := p.attemptContext()
	defer cancel()
	log := p.log.With("ack_id", j.AckID, "registration", redact(j.Reg.ID), "type", j.Type, "attempt", j.Attempts+1)

	now := p.now()
	if !now.Before(j.ExpiresAt) {
		return p.expire(j, log, 0)
	}
	if j.Reg.ExpiresAt != nil && !now.Before(*j.Reg.ExpiresAt) {
		return p.gone(j, log, 0, "registration_expired")
	}
	ttl := int(math.Ceil(j.ExpiresAt.Sub(now).Seconds()))

	req, err := p.request(ctx, j, ttl)
	if err != nil {
		if p.aborted() {
			return p.release(j, log)
		}
		// The keys were validated at registration, so this is a bug or a
		// corrupt row: it would fail the same way every time.
		log.Error("cannot encrypt the notification; dropping it", "err", err)
		return p.reject(j, log, 0, "encrypt", "cannot encrypt for this registration")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if p.aborted() {
			return p.release(j, log)
		}
		p.m.responses.WithLabelValues(codeLabel(0)).Inc()
		reason := "network"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "timeout"
		}
		return p.retry(j, log, 0, reason, backoff(j.Attempts+1), err)
	}
	// Always drain (a little) and close, so the connection is reused and
	// never leaked.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	status := resp.StatusCode
	p.m.responses.WithLabelValues(codeLabel(status)).Inc()

	switch {
	case status >= 200 && status < 300:
		// Metrics before the row changes, here and below: whoever sees the
		// outbox change sees the counters too.
		p.m.success.WithLabelValues(PlatformWebPush, typeLabel(j.Type), "").Inc()
		p.observe(j)
		if err := p.remove(j); err != nil {
			log.Error("sent, but the outbox row stays; it will be sent again", "err", err)
		}
		log.Debug("push sent", "status", status)
		return outcome{result: resultSent, status: status}
	case status == http.StatusNotFound || status == http.StatusGone:
		return p.gone(j, log, status, "gone")
	case status == http.StatusTooManyRequests:
		return p.retry(j, log, status, "throttled", retryAfter(resp.Header.Get("Retry-After"), now), nil)
	case status == http.StatusRequestTimeout || status >= 500:
		return p.retry(j, log, status, "server_error", backoff(j.Attempts+1), nil)
	default:
		reason := map[int]string{400: "bad_request", 401: "unauthorized", 403: "forbidden", 413: "too_large"}[status]
		if reason == "" {
			reason = "rejected"
		}
		// A config problem (VAPID keys or subject, payload size), never a
		// dead device: keep the registration, tell the operator.
		log.Error("push service refused the notification; check the VAPID keys and subject",
			"status", status, "push_host", hostOf(j.Reg.Endpoint),
			"vapid_key_matches", j.Reg.VAPIDKey == p.keys.PublicKey)
		return p.reject(j, log, status, reason, fmt.Sprintf("push service refused the notification: HTTP %d", status))
	}
}

// request builds the HTTP request of an attempt: encrypted now (id_only),
// or the stored ciphertext with freshly signed headers (full).
func (p *Proxy) request(ctx context.Context, j job, ttl int) (*http.Request, error) {
	if j.Ciphertext == nil {
		return p.seal(ctx, j.Reg, j.Payload, ttl, j.Urgency, j.Topic)
	}
	// Seal an empty message to have webpush-go sign the VAPID header and
	// set TTL, Urgency, Topic and the content headers, then send the
	// stored body in its place: the header does not depend on the body.
	req, err := p.seal(ctx, j.Reg, nil, ttl, j.Urgency, j.Topic)
	if err != nil {
		return nil, err
	}
	body := j.Ciphertext
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	return req, nil
}

// seal has webpush-go encrypt payload for reg and sign the request, and
// returns that request unsent.
func (p *Proxy) seal(ctx context.Context, reg registration, payload []byte, ttl int, urgency, topic string) (*http.Request, error) {
	var rec recorder
	resp, err := webpush.SendNotificationWithContext(ctx,
		// A full slice expression: v1.4.0 appends padding into spare
		// capacity of the caller's slice, a data race when one payload
		// goes out twice at once.
		payload[:len(payload):len(payload)],
		&webpush.Subscription{Endpoint: reg.Endpoint, Keys: webpush.Keys{P256dh: reg.P256dh, Auth: reg.Auth}},
		&webpush.Options{
			HTTPClient:      &rec,
			Subscriber:      p.subject,
			TTL:             ttl,
			Urgency:         webpush.Urgency(urgency),
			Topic:           topic,
			VAPIDPublicKey:  p.keys.PublicKey,
			VAPIDPrivateKey: p.keys.PrivateKey,
			// VapidExpiration is ignored by v1.4.0 (the JWT always
			// lives 12 h); every attempt signs anew instead.
		})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return rec.req, nil
}

// sealBody encrypts payload for reg and returns only the ciphertext, for a
// row stored under the full policy.
func (p *Proxy) sealBody(ctx context.Context, reg registration, payload []byte, ttl int, urgency, topic string) ([]byte, error) {
	req, err := p.seal(ctx, reg, payload, ttl, urgency, topic)
	if err != nil {
		return nil, err
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// recorder is the HTTPClient webpush-go sends to: it keeps the request
// instead of sending it, so the proxy sends it itself.
type recorder struct{ req *http.Request }

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.req = req
	return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

func (p *Proxy) gone(j job, log *slog.Logger, status int, reason string) outcome {
	p.m.removal.WithLabelValues(PlatformWebPush, "", reason).Inc()
	p.observe(j)
	ctx, cancel := dbContext()
	defer cancel()
	if err := p.deleteRegistration(ctx, j.Reg.ID); err != nil && !errors.Is(err, errNotFound) {
		log.Error("cannot delete the dead registration", "err", err)
	}
	log.Info("subscription is gone; registration removed", "status", status, "reason", reason)
	return outcome{result: resultGone, status: status}
}

func (p *Proxy) reject(j job, log *slog.Logger, status int, reason, msg string) outcome {
	p.failed(j, reason)
	if err := p.remove(j); err != nil {
		log.Error("cannot drop the refused notification", "err", err)
	}
	return outcome{result: resultRejected, status: status, reason: msg}
}

func (p *Proxy) expire(j job, log *slog.Logger, status int) outcome {
	p.m.expired.Inc()
	p.failed(j, "expired")
	if err := p.remove(j); err != nil {
		log.Error("cannot drop the expired notification", "err", err)
	}
	log.Warn("notification expired undelivered", "attempts", j.Attempts, "age", p.now().Sub(j.CreatedAt).Round(time.Second).String())
	return outcome{result: resultExpired, status: status}
}

func (p *Proxy) retry(j job, log *slog.Logger, status int, reason string, wait time.Duration, cause error) outcome {
	next := p.now().Add(wait)
	if !next.Before(j.ExpiresAt) {
		return p.expire(j, log, status)
	}
	p.m.retries.WithLabelValues(reason).Inc()
	if err := p.reschedule(j, next, true, status); err != nil {
		log.Error("cannot reschedule; the lease will run out instead", "err", err)
		return outcome{result: resultUnknown, status: status}
	}
	args := []any{"status", status, "reason", reason, "retry_in", wait.Round(time.Millisecond).String()}
	if cause != nil {
		args = append(args, "err", redactURLError(cause))
	}
	log.Warn("push not delivered; will retry", args...)
	return outcome{result: resultRetry, status: status}
}

func (p *Proxy) release(j job, log *slog.Logger) outcome {
	if err := p.reschedule(j, p.now(), false, 0); err != nil {
		log.Error("cannot release the claim; the lease will run out instead", "err", err)
		return outcome{result: resultUnknown}
	}
	return outcome{result: resultReleased}
}

func (p *Proxy) failed(j job, reason string) {
	p.m.failure.WithLabelValues(PlatformWebPush, typeLabel(j.Type), "").Inc()
	p.m.failureReason.WithLabelValues(PlatformWebPush, typeLabel(j.Type), "", reason).Inc()
	p.observe(j)
}

func (p *Proxy) observe(j job) {
	p.m.notificationDuration.WithLabelValues(PlatformWebPush).Observe(max(p.now().Sub(j.CreatedAt).Seconds(), 0))
}

// hostOf is the host of an endpoint: the capability is in the path, so the
// host is safe to log.
func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Host
}

// redactURLError drops the URL (and so the capability) from a client
// error.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + hostOf(ue.URL) + ": " + ue.Err.Error()
	}
	return err.Error()
}
