// Package api is Garrison's HTTP edge: the Mattermost API v4 routes, the
// handler adapter that renders errors as AppError JSON, authentication,
// CSRF, body limits and pagination. Rules live in package app.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// Options configure the API.
type Options struct {
	App    *app.App
	Logger *slog.Logger
	// WebSocket serves /api/v4/websocket (the ws hub).
	WebSocket http.Handler
	// SiteURL is ServiceSettings.SiteURL; it sets the cookie path and
	// whether cookies are Secure.
	SiteURL string
	// MaxPayload is MaximumPayloadSizeBytes.
	MaxPayload int64
	// StrictCSRF is ExperimentalStrictCSRFEnforcement.
	StrictCSRF bool
	// Developer is EnableDeveloper: detailed errors reach clients.
	Developer bool
	// Gzip compresses responses (WebserverMode "gzip").
	Gzip bool
	// Version is the Garrison version; MattermostVersion the API level
	// Garrison reports to clients.
	Version           string
	MattermostVersion string
	ConfigHash        string
	// ClientConfig is served by GET /config/client.
	ClientConfig map[string]string
	// RateLimit applies RateLimitSettings; nil disables it.
	RateLimit *RateLimitOptions
	// LoginFailuresPerMinute bounds failed logins per client address.
	LoginFailuresPerMinute int
	// RequestTimeout bounds each request (not WebSocket upgrades), so a
	// request waiting on a dead database ends; 0 means no bound.
	RequestTimeout time.Duration
	// TrustedProxyIPHeader lists headers holding the client address.
	TrustedProxyIPHeader []string
}

// API serves the routes.
type API struct {
	app        *app.App
	log        *slog.Logger
	o          Options
	cookiePath string
	secure     bool
	versionID  string
	loginLimit *keyedLimiter
	rateLimit  *keyedLimiter
	rateOpts   *RateLimitOptions
	postPages  *postPageCache
}

// handlerFunc is the shape of every handler: errors are returned, and the
// adapter renders them.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// New returns the API handler.
func New(o Options) http.Handler {
	a := &API{app: o.App, log: o.Logger, o: o, cookiePath: "/", postPages: newPostPageCache(postPageCacheBytes)}
	if u, err := parseSiteURL(o.SiteURL); err == nil && u != nil {
		if p := strings.TrimSuffix(u.Path, "/"); p != "" {
			a.cookiePath = p
		}
		a.secure = u.Scheme == "https"
	}
	a.versionID = o.MattermostVersion + "." + o.Version + "." + o.ConfigHash + ".false"
	if o.LoginFailuresPerMinute > 0 {
		a.loginLimit = newKeyedLimiter(float64(o.LoginFailuresPerMinute)/60, o.LoginFailuresPerMinute, 100000)
	}
	if o.RateLimit != nil {
		a.rateOpts = o.RateLimit
		a.rateLimit = newKeyedLimiter(float64(o.RateLimit.PerSec), o.RateLimit.MaxBurst, o.RateLimit.MemoryStoreSize)
	}
	return a.routes()
}

type ctxKey int

const (
	sessionKey ctxKey = iota
	requestIDKey
)

func sessionFrom(r *http.Request) *model.Session {
	s, _ := r.Context().Value(sessionKey).(*model.Session)
	return s
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// handle adapts a handlerFunc: it renders a returned error.
func (a *API) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			a.renderError(w, r, err)
		}
	}
}

// session wraps fn so it runs only with a valid session; csrf says
// whether cookie-authenticated writes must pass the CSRF check.
func (a *API) session(fn handlerFunc, csrf bool) http.HandlerFunc {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		token, fromCookie, err := tokenFromRequest(r)
		if err != nil {
			return err
		}
		if token == "" {
			return model.ErrSessionExpired("api.session").Detail("no token")
		}
		s, appErr := a.app.Session(r.Context(), token)
		if appErr != nil {
			if fromCookie {
				a.clearCookies(w)
			}
			return appErr
		}
		if csrf && fromCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := a.checkCSRF(r, s); err != nil {
				return err
			}
		}
		ctx := context.WithValue(r.Context(), sessionKey, s)
		w, ctx, noted := a.noteWrites(ctx, w, s.UserID) // Database (issue 4): read-your-writes
		err = fn(w, r.WithContext(ctx))
		noted()
		return err
	})
}

// optionalSession is the session of a route where one is optional
// (Mattermost's APIHandler): nil when the request carries no token, or one
// that is not a live session, which is treated as anonymous. A session
// from the cookie must pass the CSRF check on anything but GET and HEAD,
// so a forged cross-site request cannot borrow a browser's (or an
// admin's) session.
func (a *API) optionalSession(r *http.Request) (*model.Session, error) {
	token, fromCookie, err := tokenFromRequest(r)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, nil
	}
	s, appErr := a.app.Session(r.Context(), token)
	if appErr != nil {
		if appErr.StatusCode >= http.StatusInternalServerError {
			return nil, appErr
		}
		return nil, nil
	}
	if fromCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := a.checkCSRF(r, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// auth requires a session and CSRF (APISessionRequired). Mattermost's
// TrustRequester variants (no CSRF) arrive with file downloads.
func (a *API) auth(fn handlerFunc) http.HandlerFunc { return a.session(fn, true) }

// authTrust requires a session but no CSRF token
// (APISessionRequiredTrustRequester): for GETs a browser makes from
// <img> and download links, which cannot carry the header.
func (a *API) authTrust(fn handlerFunc) http.HandlerFunc { return a.session(fn, false) }

// checkCSRF applies Mattermost's rule: the X-CSRF-Token header must equal
// the session's token; the legacy X-Requested-With: XMLHttpRequest header
// passes unless strict enforcement is on.
func (a *API) checkCSRF(r *http.Request, s *model.Session) error {
	const where = "api.check_csrf"
	if h := r.Header.Get("X-CSRF-Token"); h != "" {
		if s.CSRF != "" && h == s.CSRF {
			return nil
		}
		return model.ErrSessionExpired(where).Detail("csrf token mismatch")
	}
	if r.Header.Get("X-Requested-With") == "XMLHttpRequest" && !a.o.StrictCSRF {
		a.log.Debug("csrf check passed on X-Requested-With", "request_id", requestID(r), "user_id", s.UserID)
		return nil
	}
	return model.ErrSessionExpired(where).Detail("missing csrf token")
}

// tokenFromRequest finds the session token: the MMAUTHTOKEN cookie wins,
// then Authorization: Bearer/Token. A query access_token is refused: it is
// only for OAuth sessions, which Garrison does not issue.
func tokenFromRequest(r *http.Request) (token string, fromCookie bool, err error) {
	if c, err := r.Cookie("MMAUTHTOKEN"); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:]), false, nil
		}
		if len(h) > 6 && strings.EqualFold(h[:6], "token ") {
			return strings.TrimSpace(h[6:]), false, nil
		}
	}
	if r.URL.Query().Get("access_token") != "" {
		return "", false, model.NewAppError("api.token", "api.context.token_provided.app_error",
			http.StatusUnauthorized, "Session is not OAuth but token was provided in the query string.")
	}
	return "", false, nil
}

// WSToken is tokenFromRequest for the WebSocket hub.
func WSToken(r *http.Request) (string, bool) {
	t, c, _ := tokenFromRequest(r)
	return t, c
}

// renderError writes err as AppError JSON and logs it.
func (a *API) renderError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *model.AppError
	if !errors.As(err, &ae) {
		ae = model.NewAppError("api", "app.internal_error", http.StatusInternalServerError, "An internal error occurred.").Wrap(err)
	}
	out := *ae
	if out.StatusCode == 0 {
		out.StatusCode = http.StatusInternalServerError
	}
	out.RequestID = requestID(r)
	attrs := []any{"request_id", out.RequestID, "method", r.Method, "path", r.URL.Path,
		"status", out.StatusCode, "error_id", out.ID, "where", out.Where}
	if s := sessionFrom(r); s != nil {
		attrs = append(attrs, "user_id", s.UserID)
	}
	if ae.DetailedError != "" {
		attrs = append(attrs, "detail", ae.DetailedError)
	}
	if ae.Err != nil {
		attrs = append(attrs, "err", ae.Err.Error())
	}
	// 501 says a feature is off or absent (push notifications when no
	// proxy is configured): a client probing for it is no failure.
	if out.StatusCode >= 500 && out.StatusCode != http.StatusNotImplemented {
		a.log.Error("request failed", attrs...)
	} else {
		a.log.Debug("request refused", attrs...)
	}
	if !a.o.Developer {
		out.DetailedError = ""
	}
	if out.StatusCode == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, out.StatusCode, &out)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

func ok(w http.ResponseWriter, v any) error { return writeJSON(w, http.StatusOK, v) }

// reply renders the result of an app call: its error, or v with status.
// appErr is typed, so a nil *AppError is never taken for an error.
func reply(w http.ResponseWriter, status int, v any, appErr *model.AppError) error {
	if appErr != nil {
		return appErr
	}
	return writeJSON(w, status, v)
}

// replyStatusOK renders the result of an app call that returns nothing:
// its error, or Mattermost's {"status":"OK"}.
func replyStatusOK(w http.ResponseWriter, appErr *model.AppError) error {
	if appErr != nil {
		return appErr
	}
	return statusOK(w)
}

func created(w http.ResponseWriter, v any) error { return writeJSON(w, http.StatusCreated, v) }

func statusOK(w http.ResponseWriter) error { return ok(w, model.StatusOK{Status: "OK"}) }

// decodeBody decodes the JSON body into v. what names the body for the
// error ("user", "post"...). The body is already bounded by
// MaximumPayloadSizeBytes.
func decodeBody(r *http.Request, v any, what string) error {
	const where = "api.decode_body"
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return model.NewAppError(where, "api.context.request_body_too_large.app_error", http.StatusRequestEntityTooLarge,
				"The request body is too large.").Detail("limit %d bytes", mbe.Limit)
		}
		return model.ErrInvalidBody(where, what).Wrap(err)
	}
	if len(body) == 0 {
		return model.ErrInvalidBody(where, what).Detail("empty body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		e := model.ErrInvalidBody(where, what)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			e = model.ErrInvalidBody(where, te.Field)
			e = e.Detail("%s: want %s", te.Field, te.Type)
		} else {
			e = e.Detail("%v", err)
		}
		return e
	}
	return nil
}

// idParam returns the URL parameter name, which must be a valid id.
func idParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if !model.IsValidID(v) {
		return "", model.ErrInvalidURLParam("api.id_param", name)
	}
	return v, nil
}

// userParam is like idParam but also accepts "me".
func userParam(r *http.Request) (string, error) {
	if chi.URLParam(r, "user_id") == "me" {
		return sessionFrom(r).UserID, nil
	}
	return idParam(r, "user_id")
}

// memberParams reads the two ids of a membership route: the team or
// channel named by scope, and {user_id} (which may be "me").
func memberParams(r *http.Request, scope string) (scopeID, userID string, err error) {
	if scopeID, err = idParam(r, scope); err != nil {
		return "", "", err
	}
	if userID, err = userParam(r); err != nil {
		return "", "", err
	}
	return scopeID, userID, nil
}

// Paging is Mattermost's page/per_page: per_page defaults to 60, is
// clamped to 200, and a bad value becomes the default.
type Paging struct{ Page, PerPage int }

const (
	defaultPerPage = 60
	maxPerPage     = 200
)

func paging(r *http.Request) Paging {
	q := r.URL.Query()
	p := Paging{PerPage: defaultPerPage}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v >= 0 {
		p.Page = v
	}
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v >= 0 {
		p.PerPage = min(v, maxPerPage)
	}
	// Cap the offset so a huge page number cannot overflow.
	p.Page = min(p.Page, 1<<20)
	return p
}

func (p Paging) offset() int { return p.Page * p.PerPage }

// boolQuery parses a boolean query parameter; absent or bad is false.
func boolQuery(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

// int64Query parses an optional integer query parameter.
func int64Query(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, model.ErrInvalidURLParam("api.int_query", name)
	}
	return n, nil
}

// decodeIDs decodes a JSON array of ids, each of which must be valid.
func decodeIDs(r *http.Request, what string, max int) ([]string, error) {
	var ids []string
	if err := decodeBody(r, &ids, what); err != nil {
		return nil, err
	}
	if len(ids) == 0 || len(ids) > max {
		return nil, model.ErrInvalidBody("api.decode_ids", what).Detail("between 1 and %d ids", max)
	}
	for _, id := range ids {
		if !model.IsValidID(id) {
			return nil, model.ErrInvalidBody("api.decode_ids", what).Detail("invalid id %q", id)
		}
	}
	return ids, nil
}
