package api

import (
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// notImplemented answers the routes of Mattermost features Garrison does
// not have yet with 501 and an AppError naming the feature, so a client
// can tell "not built" from a wrong URL (404). Mattermost itself answers
// 501 for several of them when they are switched off (plugins, custom
// emoji). No session is needed: nothing is read or written, so the
// answer is written here directly.
func notImplemented(feature string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := model.NewAppError("api.not_implemented", "api.garrison.not_implemented.app_error", http.StatusNotImplemented,
			feature+" is not implemented by Garrison yet.")
		e.RequestID = requestID(r)
		_ = writeJSON(w, e.StatusCode, e)
	}
}
