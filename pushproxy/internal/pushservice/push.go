package pushservice

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// The application-server side: the RFC 8030 push resource and the message
// resource.

// errno values of error bodies. Those up to 113 mean what autopush's do;
// the others are Garrison's.
const (
	errnoInvalidEndpoint = 102 // 404: no such capability or message
	errnoGone            = 103 // 410: the subscription was removed
	errnoTooLarge        = 104 // 413
	errnoAuth            = 109 // 401, 403: VAPID
	errnoEncoding        = 110 // 415: not aes128gcm
	errnoMissingHeader   = 111 // 400: no TTL
	errnoBadTTL          = 112 // 400
	errnoBadTopic        = 113 // 400
	errnoBadUrgency      = 120 // 400
	errnoEmpty           = 121 // 400: empty body
	errnoRateLimited     = 122 // 429
	errnoMailboxFull     = 123 // 507
	errnoUnavailable     = 124 // 503
	errnoInternal        = 999 // 500
)

// apiError is a refusal rendered as an autopush-shaped JSON body:
// {"code":status,"errno":N,"error":"<status text>","message":"…"}.
type apiError struct {
	status     int
	errno      int
	msg        string
	retryAfter int   // seconds; 0: no Retry-After
	cause      error // logged, never sent
}

func (e *apiError) Error() string { return e.msg }

func bad(status, errno int, msg string) *apiError {
	return &apiError{status: status, errno: errno, msg: msg}
}

// handle adapts a handler that returns an error: an *apiError is sent as
// is, anything else is logged and sent as a 500.
func (s *Service) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			s.log.Error("push service request failed", "method", r.Method, "route", chi.RouteContext(r.Context()).RoutePattern(), "err", err)
			ae = &apiError{status: http.StatusInternalServerError, errno: errnoInternal, msg: "internal error"}
		} else if ae.cause != nil {
			s.log.Debug("push request refused", "status", ae.status, "err", ae.cause)
		}
		s.metrics.rejects.WithLabelValues(strconv.Itoa(ae.status)).Inc()
		if ae.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(ae.status)
		_ = json.NewEncoder(w).Encode(struct {
			Code    int    `json:"code"`
			Errno   int    `json:"errno"`
			Error   string `json:"error"`
			Message string `json:"message"`
		}{ae.status, ae.errno, http.StatusText(ae.status), ae.msg})
	}
}

// pushHeaders are the validated RFC 8030 request headers.
type pushHeaders struct {
	ttl     time.Duration // after clamping
	topic   string
	urgency string
}

var urgencies = map[string]bool{"very-low": true, "low": true, "normal": true, "high": true}

// parsePushHeaders validates TTL, Content-Encoding, Topic and Urgency.
func (s *Service) parsePushHeaders(h http.Header) (pushHeaders, error) {
	var p pushHeaders
	ttls := h.Values("TTL")
	if len(ttls) == 0 {
		return p, bad(http.StatusBadRequest, errnoMissingHeader, "missing TTL header")
	}
	ttl, ok := parseTTL(ttls, s.opts.MaxTTL)
	if !ok {
		return p, bad(http.StatusBadRequest, errnoBadTTL, "TTL must be one non-negative integer number of seconds")
	}
	p.ttl = ttl

	if enc := h.Values("Content-Encoding"); len(enc) != 1 || !strings.EqualFold(strings.TrimSpace(enc[0]), "aes128gcm") {
		return p, bad(http.StatusUnsupportedMediaType, errnoEncoding, "Content-Encoding must be aes128gcm (RFC 8291)")
	}

	if topics := h.Values("Topic"); len(topics) > 0 {
		if len(topics) != 1 || !validTopic(topics[0]) {
			return p, bad(http.StatusBadRequest, errnoBadTopic, "Topic must be 1 to 32 characters of the base64url alphabet")
		}
		p.topic = topics[0]
	}

	p.urgency = "normal"
	if us := h.Values("Urgency"); len(us) > 0 {
		u := strings.ToLower(strings.TrimSpace(us[0]))
		if len(us) != 1 || !urgencies[u] {
			return p, bad(http.StatusBadRequest, errnoBadUrgency, "Urgency must be very-low, low, normal or high")
		}
		p.urgency = u
	}
	return p, nil
}

// parseTTL reads one TTL header: decimal digits only. A value beyond max,
// however long, is clamped to max.
func parseTTL(values []string, max time.Duration) (time.Duration, bool) {
	if len(values) != 1 {
		return 0, false
	}
	v := strings.TrimSpace(values[0])
	if v == "" || len(v) > 64 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	maxS := uint64(max / time.Second)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > maxS { // err: digits only, so out of range
		n = maxS
	}
	return time.Duration(n) * time.Second, true
}

// validTopic checks RFC 8030 §5.4: at most 32 characters of the URL- and
// filename-safe base64 alphabet.
func validTopic(t string) bool { return t != "" && len(t) <= 32 && isBase64URL(t) }

// readBody reads 1 to MaxMessageSize bytes, reading at most one byte more.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxMessageSize {
		return nil, bad(http.StatusRequestEntityTooLarge, errnoTooLarge, "the body is larger than 4096 bytes")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxMessageSize+1))
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, errno: errnoEmpty, msg: "could not read the body", cause: err}
	}
	switch {
	case len(body) > MaxMessageSize:
		return nil, bad(http.StatusRequestEntityTooLarge, errnoTooLarge, "the body is larger than 4096 bytes")
	case len(body) == 0:
		return nil, bad(http.StatusBadRequest, errnoEmpty, "the body is empty; a push message carries 1 to 4096 bytes")
	}
	return body, nil
}

// subscriptionFor finds the live subscription cap names, or the 404 or
// 410 to answer.
func (s *Service) subscriptionFor(r *http.Request, capability string) (subscription, error) {
	if !validCap(capability) {
		return subscription{}, bad(http.StatusNotFound, errnoInvalidEndpoint, "no such subscription")
	}
	sub, err := s.lookupSubscription(r.Context(), capability)
	switch {
	case errors.Is(err, errNotFound):
		return subscription{}, bad(http.StatusNotFound, errnoInvalidEndpoint, "no such subscription")
	case err != nil:
		return subscription{}, err
	case sub.removed:
		return subscription{}, bad(http.StatusGone, errnoGone, "the subscription was removed")
	}
	return sub, nil
}

// postPush is POST /push/{cap}: accept a message for a subscription.
func (s *Service) postPush(w http.ResponseWriter, r *http.Request) error {
	now := s.now()
	hdr, err := s.parsePushHeaders(r.Header)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	sub, err := s.subscriptionFor(r, chi.URLParam(r, "cap"))
	if err != nil {
		return err
	}

	// RFC 8292: a subscription bound to a key accepts only requests signed
	// by it; any request that carries a token must carry a valid one.
	authz := r.Header.Get("Authorization")
	var key []byte
	if authz != "" || sub.vapidKey != nil {
		a, err := parseVAPIDHeader(authz)
		if err == nil {
			err = verifyVAPID(a, s.origin, now)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", "vapid")
			return &apiError{status: http.StatusUnauthorized, errno: errnoAuth, msg: err.Error(), cause: err}
		}
		if sub.vapidKey != nil && string(a.key) != string(sub.vapidKey) {
			return bad(http.StatusForbidden, errnoAuth, "the VAPID key is not the one this subscription was created with")
		}
		key = a.key
	}

	// Tokens are taken only from requests that could otherwise succeed,
	// so that nobody spends a sender's budget without its key.
	var undo func()
	if key != nil {
		var wait time.Duration
		if undo, wait = s.keyRate.reserve(string(key), now); undo == nil {
			return &apiError{status: http.StatusTooManyRequests, errno: errnoRateLimited,
				msg: "too many messages from this VAPID key", retryAfter: retryAfter(wait)}
		}
	}
	if _, wait := s.subRate.reserve(sub.cap, now); wait > 0 {
		if undo != nil {
			undo()
		}
		return &apiError{status: http.StatusTooManyRequests, errno: errnoRateLimited,
			msg: "too many messages for this subscription", retryAfter: retryAfter(wait)}
	}

	m := inbound{sub: sub, id: newMsgID(), topic: hdr.topic, urgency: hdr.urgency, ttl: hdr.ttl, received: now, body: body}
	var frame []byte
	if m.ttl == 0 {
		frame = encodeNotification(sub.channelID, m.id, body)
	}
	where, gen, err := s.acceptMessage(r.Context(), m, frame)
	switch {
	case errors.Is(err, errGone):
		return bad(http.StatusGone, errnoGone, "the subscription was removed")
	case errors.Is(err, errMailboxFull):
		return bad(http.StatusInsufficientStorage, errnoMailboxFull, "the subscription's mailbox is full")
	case err != nil:
		return err
	}
	if where == placedLocal {
		if m.ttl == 0 {
			s.hub.deliver(sub.uaid, gen, frame)
		} else {
			s.hub.wake(sub.uaid)
		}
	}
	s.metrics.received.Inc()
	s.log.Debug("push message accepted", "cap", redact(sub.cap), "msg_id", redact(m.id),
		"ttl_s", int(m.ttl/time.Second), "bytes", len(body), "urgency", m.urgency, "topic", m.topic != "")

	w.Header().Set("Location", s.base+"/m/"+m.id)
	w.Header().Set("TTL", strconv.Itoa(int(m.ttl/time.Second)))
	w.WriteHeader(http.StatusCreated)
	return nil
}

// getPush is GET /push/{cap}: UnifiedPush discovery.
func (s *Service) getPush(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.subscriptionFor(r, chi.URLParam(r, "cap")); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"unifiedpush":{"version":1}}`)
	return nil
}

// deleteMessage is DELETE /m/{id}: the application server cancels a
// message the device has not acknowledged yet.
func (s *Service) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if !validMsgID(id) {
		return bad(http.StatusNotFound, errnoInvalidEndpoint, "no such message")
	}
	if err := s.cancelMessage(r.Context(), id); err != nil {
		if errors.Is(err, errNotFound) {
			return bad(http.StatusNotFound, errnoInvalidEndpoint, "no such message")
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
