package api

import (
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// Personal access tokens.

func (a *API) createUserAccessToken(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	var in model.UserAccessToken
	if err := decodeBody(r, &in, "user_access_token"); err != nil {
		return err
	}
	t, appErr := a.app.CreateUserAccessToken(r.Context(), sessionFrom(r), id, in.Description)
	return reply(w, http.StatusOK, t, appErr)
}

func (a *API) getUserAccessTokensForUser(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	p := paging(r)
	out, appErr := a.app.UserAccessTokensForUser(r.Context(), sessionFrom(r), id, p.offset(), p.PerPage)
	return reply(w, http.StatusOK, out, appErr)
}

func (a *API) getUserAccessTokens(w http.ResponseWriter, r *http.Request) error {
	p := paging(r)
	out, appErr := a.app.AllUserAccessTokens(r.Context(), sessionFrom(r), p.offset(), p.PerPage)
	return reply(w, http.StatusOK, out, appErr)
}

func (a *API) getUserAccessToken(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "token_id")
	if err != nil {
		return err
	}
	t, appErr := a.app.UserAccessToken(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, t, appErr)
}

// tokenIDBody reads {"token_id": ...}.
func tokenIDBody(r *http.Request) (string, error) {
	var body struct {
		TokenID string `json:"token_id"`
	}
	if err := decodeBody(r, &body, "token_id"); err != nil {
		return "", err
	}
	if !model.IsValidID(body.TokenID) {
		return "", model.ErrInvalidBody("api.token_id_body", "token_id")
	}
	return body.TokenID, nil
}

func (a *API) revokeUserAccessToken(w http.ResponseWriter, r *http.Request) error {
	id, err := tokenIDBody(r)
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.RevokeUserAccessToken(r.Context(), sessionFrom(r), id))
}

// setUserAccessTokenActive serves /users/tokens/disable and /enable.
func (a *API) setUserAccessTokenActive(active bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := tokenIDBody(r)
		if err != nil {
			return err
		}
		if appErr := a.app.SetUserAccessTokenActive(r.Context(), sessionFrom(r), id, active); appErr != nil {
			return appErr
		}
		return statusOK(w)
	}
}
