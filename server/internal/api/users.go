package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	// A session is optional here: an admin creating a user is not an
	// anonymous sign-up, and so must pass the CSRF check like any write.
	s, err := a.optionalSession(r)
	if err != nil {
		return err
	}
	var in model.User
	if err := decodeBody(r, &in, "user"); err != nil {
		return err
	}
	u, appErr := a.app.CreateUser(r.Context(), s, &in)
	return reply(w, http.StatusCreated, u, appErr)
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	const where = "api.login"
	ip := a.clientIP(r)
	if a.loginLimit != nil && !a.loginLimit.available(ip) {
		w.Header().Set("Retry-After", "60")
		return model.NewAppError(where, "api.user.login.rate_limited.app_error", http.StatusTooManyRequests,
			"Too many failed login attempts from this address; try again in a minute.")
	}
	var req model.LoginRequest
	if err := decodeBody(r, &req, "login"); err != nil {
		return err
	}
	props := model.StringMap{"platform": "", "os": "", "browser": "", "is_guest": "false", "isMobile": strconv.FormatBool(req.DeviceID != "")}
	res, err := a.app.Login(r.Context(), req, props)
	if err != nil {
		if a.loginLimit != nil && err.StatusCode == http.StatusUnauthorized {
			a.loginLimit.allow(ip) // count the failure
		}
		return err
	}
	w.Header().Set("Token", res.Session.Token)
	if r.Header.Get("X-Requested-With") == "XMLHttpRequest" {
		a.setCookies(w, res.Session)
	}
	return ok(w, res.User)
}

// setCookies gives a browser its session: MMAUTHTOKEN (HttpOnly), MMUSERID
// and MMCSRF, as Mattermost does.
func (a *API) setCookies(w http.ResponseWriter, s *model.Session) {
	maxAge := int((s.ExpiresAt - s.CreateAt) / 1000)
	for _, c := range []*http.Cookie{
		{Name: "MMAUTHTOKEN", Value: s.Token, HttpOnly: true},
		{Name: "MMUSERID", Value: s.UserID},
		{Name: "MMCSRF", Value: s.CSRF},
	} {
		c.Path, c.MaxAge, c.Secure, c.SameSite = a.cookiePath, maxAge, a.secure, http.SameSiteLaxMode
		http.SetCookie(w, c)
	}
}

func (a *API) clearCookies(w http.ResponseWriter) {
	for _, n := range []string{"MMAUTHTOKEN", "MMUSERID", "MMCSRF"} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: a.cookiePath, MaxAge: -1, Secure: a.secure})
	}
}

// logout ends the caller's session, if any, and clears the cookies. A
// cookie session must pass the CSRF check: logging a browser out is a
// write a forged cross-site request must not make.
func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	s, err := a.optionalSession(r)
	if err != nil {
		return err
	}
	if s != nil {
		if err := a.app.Logout(r.Context(), s); err != nil {
			return err
		}
	}
	a.clearCookies(w)
	return statusOK(w)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	u, appErr := a.app.GetUser(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, u, appErr)
}

func (a *API) getUserByUsername(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "username")
	if name == "" || len(name) > 64 {
		return model.ErrInvalidURLParam("api.get_user_by_username", "username")
	}
	u, err := a.app.GetUserByUsername(r.Context(), sessionFrom(r), name)
	if err != nil {
		return err
	}
	return ok(w, u)
}

func (a *API) getUserByEmail(w http.ResponseWriter, r *http.Request) error {
	email := chi.URLParam(r, "email")
	if email == "" || len(email) > 128 {
		return model.ErrInvalidURLParam("api.get_user_by_email", "email")
	}
	u, err := a.app.GetUserByEmail(r.Context(), sessionFrom(r), email)
	if err != nil {
		return err
	}
	return ok(w, u)
}

const maxIDsPerRequest = 1000

func (a *API) getUsersByIDs(w http.ResponseWriter, r *http.Request) error {
	since, err := int64Query(r, "since")
	if err != nil {
		return err
	}
	ids, err := decodeIDs(r, "user_ids", maxIDsPerRequest)
	if err != nil {
		return err
	}
	users, appErr := a.app.GetUsersByIDs(r.Context(), sessionFrom(r), ids, since)
	return reply(w, http.StatusOK, users, appErr)
}

func (a *API) getUsersByUsernames(w http.ResponseWriter, r *http.Request) error {
	var names []string
	if err := decodeBody(r, &names, "usernames"); err != nil {
		return err
	}
	if len(names) == 0 || len(names) > maxIDsPerRequest {
		return model.ErrInvalidBody("api.get_users_by_usernames", "usernames")
	}
	users, err := a.app.GetUsersByUsernames(r.Context(), sessionFrom(r), names)
	if err != nil {
		return err
	}
	return ok(w, users)
}

// optionalID reads an optional id query parameter.
func optionalID(r *http.Request, name string) (string, error) {
	v := r.URL.Query().Get(name)
	if v != "" && !model.IsValidID(v) {
		return "", model.ErrInvalidURLParam("api.optional_id", name)
	}
	return v, nil
}

func (a *API) getUsers(w http.ResponseWriter, r *http.Request) error {
	p := paging(r)
	f := postgres.UserFilter{Offset: p.offset(), Limit: p.PerPage, Sort: r.URL.Query().Get("sort")}
	var err error
	for name, dst := range map[string]*string{"in_team": &f.InTeam, "not_in_team": &f.NotInTeam,
		"in_channel": &f.InChannel, "not_in_channel": &f.NotInChannel} {
		if *dst, err = optionalID(r, name); err != nil {
			return err
		}
	}
	f.Active, f.Inactive = boolQuery(r, "active"), boolQuery(r, "inactive")
	if f.Active && f.Inactive {
		return model.ErrInvalidURLParam("api.get_users", "active")
	}
	f.Role = r.URL.Query().Get("role")
	users, appErr := a.app.ListUsers(r.Context(), sessionFrom(r), f)
	return reply(w, http.StatusOK, users, appErr)
}

func (a *API) autocompleteUsers(w http.ResponseWriter, r *http.Request) error {
	teamID, err := optionalID(r, "in_team")
	if err != nil {
		return err
	}
	channelID, err := optionalID(r, "in_channel")
	if err != nil {
		return err
	}
	limit := 100
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
		limit = min(v, 100)
	}
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "@")
	if len(name) > 64 {
		return model.ErrInvalidURLParam("api.autocomplete_users", "name")
	}
	res, appErr := a.app.Autocomplete(r.Context(), sessionFrom(r), teamID, channelID, name, limit)
	return reply(w, http.StatusOK, res, appErr)
}

func (a *API) patchUser(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	var p model.UserPatch
	if err := decodeBody(r, &p, "user"); err != nil {
		return err
	}
	u, appErr := a.app.PatchUser(r.Context(), sessionFrom(r), id, &p)
	return reply(w, http.StatusOK, u, appErr)
}

// updateUser is PUT /users/{id}: a full user body, applied as a patch of
// the profile fields (roles, password and ids are not changed this way).
func (a *API) updateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	var in model.User
	if err := decodeBody(r, &in, "user"); err != nil {
		return err
	}
	if in.ID != id {
		return model.ErrInvalidBody("api.update_user", "id")
	}
	p := model.UserPatch{Username: &in.Username, Nickname: &in.Nickname, FirstName: &in.FirstName,
		LastName: &in.LastName, Position: &in.Position, Email: &in.Email, Locale: &in.Locale}
	if in.Password != "" {
		p.Password = &in.Password
	}
	if in.Props != nil {
		p.Props = &in.Props
	}
	if in.NotifyProps != nil {
		p.NotifyProps = &in.NotifyProps
	}
	if in.Timezone != nil {
		p.Timezone = &in.Timezone
	}
	u, appErr := a.app.PatchUser(r.Context(), sessionFrom(r), id, &p)
	return reply(w, http.StatusOK, u, appErr)
}

func (a *API) updatePassword(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	var req model.PasswordUpdate
	if err := decodeBody(r, &req, "password"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.UpdatePassword(r.Context(), sessionFrom(r), id, req))
}

func (a *API) getSessions(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	ss, appErr := a.app.Sessions(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, ss, appErr)
}

func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	var body struct {
		SessionID string `json:"session_id"`
	}
	if err := decodeBody(r, &body, "session_id"); err != nil {
		return err
	}
	if !model.IsValidID(body.SessionID) {
		return model.ErrInvalidBody("api.revoke_session", "session_id")
	}
	return replyStatusOK(w, a.app.RevokeSession(r.Context(), sessionFrom(r), id, body.SessionID))
}

func (a *API) revokeAllSessions(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.RevokeAllSessions(r.Context(), sessionFrom(r), id))
}
