package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// Handler serves every route of the Mattermost-facing front, and only
// those:
//
//	GET    /                                  liveness page (mattermost-push-proxy's shape)
//	GET    /version                           {"hash":…,"version":…}
//	POST   /api/v1/send_push                  PushNotification → PushResponse
//	POST   /api/v1/ack                        PushNotificationAck → PushResponse
//	GET    /api/v1/webpush/vapid_public_key   {"vapid_public_key":…}
//	POST   /api/v1/webpush/registrations      PushSubscription JSON → {"id":…}
//	DELETE /api/v1/webpush/registrations/{id} 204, or 404 when unknown
//
// Every /api/v1 route is throttled per sender, then checked for the sender
// secret when one is configured.
func (p *Proxy) Handler() http.Handler {
	r := chi.NewRouter()
	r.NotFound(p.push(func(http.ResponseWriter, *http.Request) error {
		return &httpError{status: http.StatusNotFound, msg: "no such route"}
	}))
	r.MethodNotAllowed(p.push(func(http.ResponseWriter, *http.Request) error {
		return &httpError{status: http.StatusMethodNotAllowed, msg: "method not allowed"}
	}))
	r.Get("/", p.root)
	r.Get("/version", p.versionInfo)
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(p.throttled, p.authenticated)
		r.Post("/send_push", p.timed(p.push(p.sendPush)))
		r.Post("/ack", p.timed(p.push(p.ack)))
		r.Get("/webpush/vapid_public_key", p.api(p.vapidPublicKey))
		r.Post("/webpush/registrations", p.api(p.register))
		r.Delete("/webpush/registrations/{id}", p.api(p.unregister))
	})
	return r
}

// Body limits. A Mattermost message is at most 16383 characters; the rest
// of a notification is ids.
const (
	maxPushBody         = 256 << 10
	maxAckBody          = 16 << 10
	maxRegistrationBody = 16 << 10
)

// httpError is an error with the status and message to answer with; id,
// when set, is a stable error id the caller can branch on.
type httpError struct {
	status int
	id     string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// push adapts a send_push or ack handler: errors are answered with a bare
// PushResponse FAIL body, which is all a Mattermost server decodes.
func (p *Proxy) push(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			status, _, msg := p.errorStatus(r, err)
			writeJSON(w, status, failResponse(msg))
		}
	}
}

// api adapts a registration handler: errors are answered with a FAIL body
// that also carries an error_id.
func (p *Proxy) api(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			status, id, msg := p.errorStatus(r, err)
			writeJSON(w, status, map[string]string{"status": StatusFail, "error": msg, "error_id": id})
		}
	}
}

// errorStatus maps an error to its answer in one table; anything
// unexpected is logged and answered 500 without its details.
func (p *Proxy) errorStatus(r *http.Request, err error) (status int, id, msg string) {
	var he *httpError
	var re *registrationError
	switch {
	case errors.As(err, &he):
		return he.status, he.id, he.msg
	case errors.As(err, &re):
		return http.StatusBadRequest, re.id, re.msg
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, "pushproxy.not_found", "not found"
	}
	p.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "pushproxy.internal", "internal error; see the push proxy's log"
}

// timed observes service_request_duration_seconds, as upstream does for
// send_push and ack.
func (p *Proxy) timed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h(w, r)
		p.m.requestDuration.Observe(time.Since(start).Seconds())
	}
}

// writeJSON answers v as JSON with a trailing newline, as upstream's
// json.Encoder does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing to do
}

// readBody reads at most limit bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, id: "pushproxy.body_too_large",
			msg: "request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
	}
	if err != nil {
		return nil, &httpError{status: http.StatusBadRequest, id: "pushproxy.body_unreadable", msg: "cannot read the request body"}
	}
	return body, nil
}

func (p *Proxy) root(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<html><body>Garrison Push Proxy</body></html>"))
}

func (p *Proxy) versionInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Hash    string `json:"hash"`
		Version string `json:"version"`
	}{p.hash, p.version})
}

// throttled answers 429 with a FAIL body and Retry-After when the sender's
// bucket is empty.
func (p *Proxy) throttled(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := senderKey(r, p.trusted)
		ok, wait := p.throttle.allow(key, p.now())
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		secs := max(int(math.Ceil(wait.Seconds())), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.logThrottled.Do(func() {
			p.log.Warn("throttled a sender (logged at most every 10 s)", "sender", key, "path", r.URL.Path)
		})
		writeJSON(w, http.StatusTooManyRequests, failResponse("rate limited: retry after "+strconv.Itoa(secs)+" s"))
	})
}

// authenticated requires the sender secret, as a bearer token or as the
// password of basic auth (a stock Mattermost server sends the userinfo of
// PushNotificationServer that way).
func (p *Proxy) authenticated(next http.Handler) http.Handler {
	if !p.hasSecret {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		p.logUnauthorized.Do(func() {
			p.log.Warn("refused a request without the right sender secret (logged at most every 10 s)",
				"path", r.URL.Path, "sender", senderKey(r, p.trusted))
		})
		w.Header().Set("WWW-Authenticate", `Basic realm="garrison-pushproxy", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, failResponse("unauthorized: missing or wrong sender secret"))
	})
}

func (p *Proxy) authorized(r *http.Request) bool {
	var got string
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		got = strings.TrimSpace(h[7:])
	} else if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	} else {
		return false
	}
	// Comparing digests keeps the time independent of the length too.
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], p.secret[:]) == 1
}
