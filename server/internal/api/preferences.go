package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// preferenceParam returns a category or name from the URL: Mattermost's
// RequireCategory / RequirePreferenceName accept letters, digits, '_',
// '-' and '+'.
func preferenceParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if v == "" || len(v) > model.PreferenceCategoryMaxLength {
		return "", model.ErrInvalidURLParam("api.preference_param", name)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '+') {
			return "", model.ErrInvalidURLParam("api.preference_param", name)
		}
	}
	return v, nil
}

func (a *API) getPreferences(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	ps, appErr := a.app.GetPreferences(r.Context(), sessionFrom(r), userID, "")
	return reply(w, http.StatusOK, ps, appErr)
}

func (a *API) getPreferencesByCategory(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	category, err := preferenceParam(r, "category")
	if err != nil {
		return err
	}
	ps, appErr := a.app.GetPreferences(r.Context(), sessionFrom(r), userID, category)
	return reply(w, http.StatusOK, ps, appErr)
}

func (a *API) getPreference(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	category, err := preferenceParam(r, "category")
	if err != nil {
		return err
	}
	name, err := preferenceParam(r, "preference_name")
	if err != nil {
		return err
	}
	p, appErr := a.app.GetPreference(r.Context(), sessionFrom(r), userID, category, name)
	return reply(w, http.StatusOK, p, appErr)
}

func (a *API) updatePreferences(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	var ps []*model.Preference
	if err := decodeBody(r, &ps, "preferences"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.UpdatePreferences(r.Context(), sessionFrom(r), userID, ps))
}

func (a *API) deletePreferences(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	var ps []*model.Preference
	if err := decodeBody(r, &ps, "preferences"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.DeletePreferences(r.Context(), sessionFrom(r), userID, ps))
}
