package api

import (
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// Statuses (Mattermost's api4/status.go).

// maxStatusIDs bounds POST /users/status/ids.
const maxStatusIDs = 1000

func (a *API) getUserStatus(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	st, appErr := a.app.GetUserStatus(r.Context(), sessionFrom(r), userID)
	return reply(w, http.StatusOK, st, appErr)
}

func (a *API) getUserStatusesByIDs(w http.ResponseWriter, r *http.Request) error {
	ids, err := decodeIDs(r, "user_ids", maxStatusIDs)
	if err != nil {
		return err
	}
	list, appErr := a.app.GetUserStatusesByIDs(r.Context(), sessionFrom(r), ids)
	return reply(w, http.StatusOK, list, appErr)
}

func (a *API) updateUserStatus(w http.ResponseWriter, r *http.Request) error {
	const where = "api.update_user_status"
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	var body model.Status
	if err := decodeBody(r, &body, "status"); err != nil {
		return err
	}
	// The body names the user too, and must name the same one.
	if body.UserID != userID {
		return model.ErrInvalidBody(where, "user_id")
	}
	st, appErr := a.app.UpdateUserStatus(r.Context(), sessionFrom(r), userID, body.Status, body.DNDEndTime)
	return reply(w, http.StatusOK, st, appErr)
}
