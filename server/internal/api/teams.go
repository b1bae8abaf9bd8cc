package api

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// maxAddMembersBatch bounds POST /teams/{id}/members/batch (Mattermost's
// MaxAddMembersBatch).
const maxAddMembersBatch = 256

// teamNameParam returns the {team_name} URL parameter, which must have the
// shape of a team name.
func teamNameParam(r *http.Request) (string, error) {
	name := chi.URLParam(r, "team_name")
	if !app.ValidTeamName(name) {
		return "", model.ErrInvalidURLParam("api.team_name_param", "team_name")
	}
	return name, nil
}

func (a *API) createTeam(w http.ResponseWriter, r *http.Request) error {
	var in model.Team
	if err := decodeBody(r, &in, "team"); err != nil {
		return err
	}
	t, appErr := a.app.CreateTeam(r.Context(), sessionFrom(r), &in)
	return reply(w, http.StatusCreated, t, appErr)
}

func (a *API) getTeams(w http.ResponseWriter, r *http.Request) error {
	p := paging(r)
	if boolQuery(r, "include_total_count") {
		res, appErr := a.app.ListTeamsWithCount(r.Context(), sessionFrom(r), p.offset(), p.PerPage)
		if appErr != nil {
			return appErr
		}
		return ok(w, res)
	}
	teams, appErr := a.app.ListTeams(r.Context(), sessionFrom(r), p.offset(), p.PerPage)
	return reply(w, http.StatusOK, teams, appErr)
}

func (a *API) getTeam(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	t, appErr := a.app.GetTeam(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, t, appErr)
}

func (a *API) getTeamByName(w http.ResponseWriter, r *http.Request) error {
	name, err := teamNameParam(r)
	if err != nil {
		return err
	}
	t, appErr := a.app.GetTeamByName(r.Context(), sessionFrom(r), name)
	return reply(w, http.StatusOK, t, appErr)
}

func (a *API) teamExists(w http.ResponseWriter, r *http.Request) error {
	name, err := teamNameParam(r)
	if err != nil {
		return err
	}
	exists, appErr := a.app.TeamExists(r.Context(), sessionFrom(r), name)
	if appErr != nil {
		return appErr
	}
	return ok(w, map[string]bool{"exists": exists})
}

func (a *API) patchTeam(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	var p model.TeamPatch
	if err := decodeBody(r, &p, "team"); err != nil {
		return err
	}
	t, appErr := a.app.PatchTeam(r.Context(), sessionFrom(r), id, &p)
	return reply(w, http.StatusOK, t, appErr)
}

func (a *API) addTeamMember(w http.ResponseWriter, r *http.Request) error {
	const where = "api.add_team_member"
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	var m model.TeamMember
	if err := decodeBody(r, &m, "team_member"); err != nil {
		var ae *model.AppError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest {
			// Mattermost has its own id for this body.
			return model.NewAppError(where, "api.team.add_team_member.invalid_body.app_error", http.StatusBadRequest,
				"Unable to parse team member from request body.").Wrap(err)
		}
		return err
	}
	if m.TeamID != teamID {
		return model.ErrInvalidBody(where, "team_id")
	}
	if !model.IsValidID(m.UserID) {
		return model.ErrInvalidBody(where, "user_id")
	}
	tm, appErr := a.app.AddTeamMember(r.Context(), sessionFrom(r), teamID, m.UserID)
	return reply(w, http.StatusCreated, tm, appErr)
}

func (a *API) addTeamMembers(w http.ResponseWriter, r *http.Request) error {
	const where = "api.add_team_members"
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	graceful := r.URL.Query().Get("graceful") != ""
	var members []model.TeamMember
	if err := decodeBody(r, &members, "members"); err != nil {
		return err
	}
	if len(members) == 0 || len(members) > maxAddMembersBatch {
		return model.ErrInvalidBody(where, "members").Detail("between 1 and %d members", maxAddMembersBatch)
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		if m.TeamID != teamID {
			return model.ErrInvalidBody(where, "team_id for member with user_id="+m.UserID)
		}
		if !model.IsValidID(m.UserID) {
			return model.ErrInvalidBody(where, "user_id")
		}
		ids = append(ids, m.UserID)
	}
	res, appErr := a.app.AddTeamMembers(r.Context(), sessionFrom(r), teamID, ids, graceful)
	if appErr != nil {
		return appErr
	}
	if graceful {
		return created(w, res)
	}
	out := make([]*model.TeamMember, 0, len(res))
	for _, m := range res {
		out = append(out, m.Member)
	}
	return created(w, out)
}

func (a *API) addTeamMemberFromInvite(w http.ResponseWriter, r *http.Request) error {
	const where = "api.add_team_member_from_invite"
	q := r.URL.Query()
	switch {
	case q.Get("token") != "":
		// Garrison sends no email invitations, so no token can be valid.
		return model.NewAppError(where, "api.user.create_user.signup_link_invalid.app_error", http.StatusBadRequest,
			"The signup link does not appear to be valid.")
	case q.Get("invite_id") == "":
		return model.NewAppError(where, "api.team.add_user_to_team.missing_parameter.app_error", http.StatusBadRequest,
			"Parameter required to add user to team.")
	}
	tm, appErr := a.app.AddTeamMemberByInvite(r.Context(), sessionFrom(r), q.Get("invite_id"))
	return reply(w, http.StatusCreated, tm, appErr)
}

func (a *API) getTeamMembers(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	p := paging(r)
	f := postgres.TeamMemberFilter{
		ByUsername:          r.URL.Query().Get("sort") == "Username",
		ExcludeDeletedUsers: boolQuery(r, "exclude_deleted_users"),
		Offset:              p.offset(), Limit: p.PerPage,
	}
	ms, appErr := a.app.ListTeamMembers(r.Context(), sessionFrom(r), teamID, f)
	return reply(w, http.StatusOK, ms, appErr)
}

func (a *API) getTeamMembersByIDs(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	ids, err := decodeIDs(r, "user_ids", maxIDsPerRequest)
	if err != nil {
		return err
	}
	ms, appErr := a.app.TeamMembersByIDs(r.Context(), sessionFrom(r), teamID, ids)
	return reply(w, http.StatusOK, ms, appErr)
}

func (a *API) getTeamMember(w http.ResponseWriter, r *http.Request) error {
	teamID, userID, err := memberParams(r, "team_id")
	if err != nil {
		return err
	}
	m, appErr := a.app.TeamMember(r.Context(), sessionFrom(r), teamID, userID)
	return reply(w, http.StatusOK, m, appErr)
}

func (a *API) removeTeamMember(w http.ResponseWriter, r *http.Request) error {
	teamID, userID, err := memberParams(r, "team_id")
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.RemoveTeamMember(r.Context(), sessionFrom(r), teamID, userID))
}

func (a *API) getTeamsForUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	teams, appErr := a.app.TeamsForUser(r.Context(), sessionFrom(r), userID)
	return reply(w, http.StatusOK, teams, appErr)
}

func (a *API) getTeamMembersForUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	ms, appErr := a.app.TeamMembersForUser(r.Context(), sessionFrom(r), userID)
	return reply(w, http.StatusOK, ms, appErr)
}

func (a *API) getTeamsUnread(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	exclude, err := optionalID(r, "exclude_team")
	if err != nil {
		return err
	}
	us, appErr := a.app.TeamsUnread(r.Context(), sessionFrom(r), userID, exclude)
	return reply(w, http.StatusOK, us, appErr)
}

func (a *API) getTeamUnread(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	u, appErr := a.app.TeamUnread(r.Context(), sessionFrom(r), teamID, userID)
	return reply(w, http.StatusOK, u, appErr)
}
