package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds one request to the proxy when HTTPOptions.Timeout
// is 0. The proxy answers send_push as soon as the notification is in its
// durable outbox, so a healthy proxy answers in milliseconds.
const DefaultTimeout = 10 * time.Second

// maxResponseBytes bounds what is read of a proxy's answer: every answer
// of the protocol is a small JSON object.
const maxResponseBytes = 64 << 10

// HTTPOptions configure an HTTP sender.
type HTTPOptions struct {
	// URL is the proxy's base URL (EmailSettings.PushNotificationServer),
	// e.g. https://garrison:SECRET@push.internal:8066. The password of its
	// user information, if any, is the proxy's sender secret; it is sent
	// as HTTP basic auth and never appears in errors.
	URL string
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Transport replaces the default transport (a clone of
	// http.DefaultTransport) when set.
	Transport http.RoundTripper
}

// HTTP is the Sender that talks to a proxy over HTTP.
type HTTP struct {
	base     string // scheme://host[:port][/path], no user information, no trailing slash
	redacted string // the configured URL with the password redacted, for errors
	user     string
	password string
	hasAuth  bool
	client   *http.Client
}

var _ Sender = (*HTTP)(nil)

// NewHTTP returns a sender for the proxy at o.URL. The URL must be an
// absolute http or https URL with a host; the error never quotes it, as
// it may hold the secret.
func NewHTTP(o HTTPOptions) (*HTTP, error) {
	u, err := url.Parse(o.URL)
	if err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("push: the proxy URL must be an absolute http or https URL with a host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("push: the proxy URL must not have a query or a fragment")
	}
	h := &HTTP{redacted: u.Redacted()}
	if u.User != nil {
		h.user = u.User.Username()
		h.password, h.hasAuth = u.User.Password()
		if !h.hasAuth {
			// Not quoted: the user name may be the secret, written in
			// the wrong place.
			return nil, errors.New("push: the proxy URL carries a user name but no password; the sender secret goes in the password (https://garrison:SECRET@host)")
		}
	}
	clean := *u
	clean.User = nil
	h.base = strings.TrimRight(clean.String(), "/")

	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rt := o.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32 // the push workers share a few keep-alive connections
		t.ResponseHeaderTimeout = timeout
		rt = t
	}
	h.client = &http.Client{
		Transport: rt,
		Timeout:   timeout,
		// The protocol has no redirects; following one would carry the
		// secret to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return h, nil
}

// URL returns the proxy's URL with the secret redacted, for logs.
func (h *HTTP) URL() string { return h.redacted }

// Send implements Sender.
func (h *HTTP) Send(ctx context.Context, n *Notification) (Response, error) {
	const op = "send_push"
	var r Response
	status, body, err := h.do(ctx, op, http.MethodPost, "/api/v1/send_push", n)
	if err != nil {
		// A proxy may refuse a malformed notification with a 4xx that
		// still carries a PushResponse: that is an answer, not a failure
		// to reach it.
		var pe *Error
		if errors.As(err, &pe) && pe.Kind == ErrRejected && decodeResponse(body, &r) == nil {
			return r, nil
		}
		return r, err
	}
	if err := decodeResponse(body, &r); err != nil {
		return r, h.fail(op, ErrUnavailable, status, "", err)
	}
	return r, nil
}

// decodeResponse decodes a PushResponse and checks its status.
func decodeResponse(body []byte, r *Response) error {
	if err := json.Unmarshal(body, r); err != nil {
		return errors.New("malformed response")
	}
	switch r.Status {
	case StatusOK, StatusFail, StatusRemove:
		return nil
	}
	return fmt.Errorf("unknown response status %q", truncate(r.Status, 32))
}

// Ack implements Sender.
func (h *HTTP) Ack(ctx context.Context, a *Ack) error {
	_, _, err := h.do(ctx, "ack", http.MethodPost, "/api/v1/ack", a)
	return err
}

// VAPIDPublicKey implements Sender; the key is checked to be a P-256
// point before it is given to browsers.
func (h *HTTP) VAPIDPublicKey(ctx context.Context) (string, error) {
	const op = "vapid_public_key"
	status, body, err := h.do(ctx, op, http.MethodGet, "/api/v1/webpush/vapid_public_key", nil)
	if err != nil {
		return "", err
	}
	var out struct {
		Key string `json:"vapid_public_key"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", h.fail(op, ErrUnavailable, status, "", errors.New("malformed response"))
	}
	if _, err := DecodeP256dh(out.Key); err != nil {
		return "", h.fail(op, ErrUnavailable, status, "", fmt.Errorf("malformed VAPID public key: %w", err))
	}
	return out.Key, nil
}

// Register implements Sender.
func (h *HTTP) Register(ctx context.Context, s Subscription) (string, error) {
	const op = "register"
	status, body, err := h.do(ctx, op, http.MethodPost, "/api/v1/webpush/registrations", s)
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", h.fail(op, ErrUnavailable, status, "", errors.New("malformed response"))
	}
	if !ValidRegistrationID(out.ID) {
		return "", h.fail(op, ErrUnavailable, status, "", errors.New("the proxy returned an invalid registration id"))
	}
	return out.ID, nil
}

// Unregister implements Sender. A registration the proxy no longer knows
// (404, 410) is already gone, which is what was asked.
func (h *HTTP) Unregister(ctx context.Context, id string) error {
	const op = "unregister"
	if !ValidRegistrationID(id) {
		return h.fail(op, ErrRejected, 0, "invalid registration id", nil)
	}
	_, _, err := h.do(ctx, op, http.MethodDelete, "/api/v1/webpush/registrations/"+url.PathEscape(id), nil)
	var pe *Error
	if errors.As(err, &pe) && (pe.Status == http.StatusNotFound || pe.Status == http.StatusGone) {
		return nil
	}
	return err
}

// do sends one request and returns the status and the (bounded) body of
// a 2xx answer; any other outcome is an *Error (or the context's error),
// with the body for the caller that can still use it.
func (h *HTTP) do(ctx context.Context, op, method, path string, in any) (int, []byte, error) {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, h.fail(op, ErrRejected, 0, "", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return 0, nil, h.fail(op, ErrUnavailable, 0, "", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.hasAuth {
		req.SetBasicAuth(h.user, h.password)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, nil, fmt.Errorf("push: %s at %s: %w", op, h.redacted, ctxErr)
		}
		return 0, nil, h.fail(op, ErrUnavailable, 0, "", unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return resp.StatusCode, nil, h.fail(op, ErrUnavailable, resp.StatusCode, "", fmt.Errorf("read response: %w", unwrapURLError(err)))
	}
	if len(body) > maxResponseBytes {
		return resp.StatusCode, nil, h.fail(op, ErrUnavailable, resp.StatusCode, "", fmt.Errorf("response larger than %d bytes", maxResponseBytes))
	}
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return code, body, nil
	}
	msg := proxyMessage(body)
	var e *Error
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e = h.fail(op, ErrUnauthorized, code, msg, nil)
	case code == http.StatusTooManyRequests:
		e = h.fail(op, ErrThrottled, code, msg, nil)
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case code >= 500:
		e = h.fail(op, ErrUnavailable, code, msg, nil)
	default:
		e = h.fail(op, ErrRejected, code, msg, nil)
	}
	return code, body, e
}

func (h *HTTP) fail(op string, kind error, status int, msg string, err error) *Error {
	return &Error{Op: op, URL: h.redacted, Kind: kind, Status: status, Msg: msg, Err: err}
}

// unwrapURLError drops net/url's wrapper, whose text repeats the method
// and the URL the Error already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// proxyMessage is the explanation in an error body: the "error" (or
// "message") of a JSON object, else nothing. Plain-text bodies are not
// echoed: they may be an HTML page from something that is not the proxy.
func proxyMessage(body []byte) string {
	var m struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if m.Error != "" {
		return truncate(m.Error, 200)
	}
	return truncate(m.Message, 200)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, time.Hour)
		}
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
