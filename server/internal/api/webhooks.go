package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// Incoming webhooks: management under /api/v4/hooks/incoming, and the
// public POST /hooks/{hook_id} whose secret is the hook's id.

func (a *API) createIncomingHook(w http.ResponseWriter, r *http.Request) error {
	var in model.IncomingWebhook
	if err := decodeBody(r, &in, "incoming_webhook"); err != nil {
		return err
	}
	h, appErr := a.app.CreateIncomingWebhook(r.Context(), sessionFrom(r), &in)
	return reply(w, http.StatusCreated, h, appErr)
}

func (a *API) getIncomingHooks(w http.ResponseWriter, r *http.Request) error {
	teamID := r.URL.Query().Get("team_id")
	if teamID != "" && !model.IsValidID(teamID) {
		return model.ErrInvalidURLParam("api.get_incoming_hooks", "team_id")
	}
	p := paging(r)
	withCount := boolQuery(r, "include_total_count")
	hooks, total, appErr := a.app.IncomingWebhooks(r.Context(), sessionFrom(r), teamID, p.offset(), p.PerPage, withCount)
	if appErr != nil {
		return appErr
	}
	if withCount {
		return ok(w, model.IncomingWebhooksWithCount{Webhooks: hooks, TotalCount: total})
	}
	return ok(w, hooks)
}

func (a *API) getIncomingHook(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "hook_id")
	if err != nil {
		return err
	}
	h, appErr := a.app.IncomingWebhook(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, h, appErr)
}

// updateIncomingHook answers 201, as Mattermost does.
func (a *API) updateIncomingHook(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "hook_id")
	if err != nil {
		return err
	}
	var in model.IncomingWebhook
	if err := decodeBody(r, &in, "incoming_webhook"); err != nil {
		return err
	}
	h, appErr := a.app.UpdateIncomingWebhook(r.Context(), sessionFrom(r), id, &in)
	return reply(w, http.StatusCreated, h, appErr)
}

func (a *API) deleteIncomingHook(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "hook_id")
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.DeleteIncomingWebhook(r.Context(), sessionFrom(r), id))
}

// Each hook may post this often: a steady rate and a burst. A misbehaving
// script then cannot flood a channel, nor the database.
const (
	hookPostsPerSec = 10
	hookBurst       = 30
	hookLimiterKeys = 10000
)

// incomingWebhook returns the handler of POST /hooks/{hook_id}, with a
// token bucket per hook. The body is JSON, a form with the JSON in its
// payload field, or a multipart form with the payload's fields, bounded
// by MaximumPayloadSizeBytes; success is a text/plain "ok", as from
// Mattermost.
func (a *API) incomingWebhook() handlerFunc {
	limit := newKeyedLimiter(hookPostsPerSec, hookBurst, hookLimiterKeys)
	return func(w http.ResponseWriter, r *http.Request) error {
		const where = "api.incoming_webhook"
		id := chi.URLParam(r, "hook_id")
		if model.IsValidID(id) && !limit.allow(id) {
			w.Header().Set("Retry-After", "1")
			return model.NewAppError(where, "api.context.rate_limit.app_error", http.StatusTooManyRequests,
				"Too many requests to this webhook; slow down.")
		}
		req, err := a.webhookPayload(r)
		if err != nil {
			return err
		}
		if _, appErr := a.app.HandleIncomingWebhook(r.Context(), id, req); appErr != nil {
			return appErr
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, err = w.Write([]byte("ok"))
		return err
	}
}

// webhookPayload decodes the body of a webhook call.
func (a *API) webhookPayload(r *http.Request) (*model.IncomingWebhookRequest, error) {
	const where = "api.incoming_webhook"
	var mediaType string
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		mediaType, _, err = mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return nil, model.NewAppError(where, "api.webhook.incoming.error", http.StatusBadRequest,
				"Could not decode the multipart data of the incoming webhook.").Wrap(err)
		}
	}
	switch mediaType {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyError(where, err)
		}
		return decodeWebhookJSON(where, []byte(r.PostForm.Get("payload")))
	case "multipart/form-data":
		if err := r.ParseMultipartForm(a.o.MaxPayload); err != nil {
			return nil, bodyError(where, err)
		}
		f := r.MultipartForm
		defer func() { _ = f.RemoveAll() }()
		if p := r.PostForm.Get("payload"); p != "" {
			return decodeWebhookJSON(where, []byte(p))
		}
		return &model.IncomingWebhookRequest{
			Text: r.PostForm.Get("text"), Username: r.PostForm.Get("username"), IconURL: r.PostForm.Get("icon_url"),
			ChannelName: r.PostForm.Get("channel"), Type: r.PostForm.Get("type"), IconEmoji: r.PostForm.Get("icon_emoji"),
		}, nil
	default:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(where, err)
		}
		return decodeWebhookJSON(where, body)
	}
}

// bodyError is the error for a body that could not be read: 413 when it
// is over MaximumPayloadSizeBytes.
func bodyError(where string, err error) *model.AppError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return model.NewAppError(where, "api.context.request_body_too_large.app_error", http.StatusRequestEntityTooLarge,
			"The request body is too large.").Detail("limit %d bytes", mbe.Limit)
	}
	return model.NewAppError(where, "api.webhook.incoming.error", http.StatusBadRequest,
		"Could not decode the incoming webhook's body.").Wrap(err)
}

// decodeWebhookJSON decodes a payload. Like Mattermost it forgives raw
// newlines and tabs inside strings, which scripts that paste text into a
// JSON template often send.
func decodeWebhookJSON(where string, body []byte) (*model.IncomingWebhookRequest, error) {
	var req model.IncomingWebhookRequest
	err := json.Unmarshal(body, &req)
	if err != nil {
		req = model.IncomingWebhookRequest{}
		if fixed, changed := escapeControlChars(body); changed {
			err = json.Unmarshal(fixed, &req)
		}
	}
	if err != nil {
		return nil, model.NewAppError(where, "model.incoming_hook.parse_data.app_error", http.StatusBadRequest,
			"Unable to parse the incoming data.").Wrap(err)
	}
	return &req, nil
}

// escapeControlChars escapes the control characters inside the JSON
// strings of b, which JSON forbids raw. It reports whether it changed
// anything.
func escapeControlChars(b []byte) ([]byte, bool) {
	var out bytes.Buffer
	inString, escaped, changed := false, false, false
	for _, c := range b {
		switch {
		case !inString:
			inString = c == '"'
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inString = false
		case c < 0x20:
			changed = true
			switch c {
			case '\n':
				out.WriteString(`\n`)
			case '\t':
				out.WriteString(`\t`)
			case '\r':
				out.WriteString(`\r`)
			default:
				out.WriteString(`\u00`)
				out.WriteString(strconv.FormatInt(int64(c)>>4, 16))
				out.WriteString(strconv.FormatInt(int64(c)&0xf, 16))
			}
			continue
		}
		out.WriteByte(c)
	}
	return out.Bytes(), changed
}
