package api

import (
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// updateUserActive is PUT /users/{user_id}/active {"active": bool}.
func (a *API) updateUserActive(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	var body struct {
		Active *bool `json:"active"`
	}
	if err := decodeBody(r, &body, "active"); err != nil {
		return err
	}
	if body.Active == nil {
		return model.ErrInvalidBody("api.update_user_active", "active")
	}
	return replyStatusOK(w, a.app.UpdateUserActive(r.Context(), sessionFrom(r), id, *body.Active))
}

// rolesBody is the body of the three roles endpoints, {"roles": "..."}.
// A missing field is an empty role list, which the rules refuse.
type rolesBody struct {
	Roles string `json:"roles"`
}

// updateUserRoles is PUT /users/{user_id}/roles.
func (a *API) updateUserRoles(w http.ResponseWriter, r *http.Request) error {
	id, err := userParam(r)
	if err != nil {
		return err
	}
	var body rolesBody
	if err := decodeBody(r, &body, "roles"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.UpdateUserRoles(r.Context(), sessionFrom(r), id, body.Roles))
}

// updateTeamMemberRoles is PUT /teams/{team_id}/members/{user_id}/roles.
func (a *API) updateTeamMemberRoles(w http.ResponseWriter, r *http.Request) error {
	teamID, userID, err := memberParams(r, "team_id")
	if err != nil {
		return err
	}
	var body rolesBody
	if err := decodeBody(r, &body, "team_member_roles"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.UpdateTeamMemberRoles(r.Context(), sessionFrom(r), teamID, userID, body.Roles))
}

// updateChannelMemberRoles is PUT /channels/{channel_id}/members/{user_id}/roles.
func (a *API) updateChannelMemberRoles(w http.ResponseWriter, r *http.Request) error {
	channelID, userID, err := memberParams(r, "channel_id")
	if err != nil {
		return err
	}
	var body rolesBody
	if err := decodeBody(r, &body, "roles"); err != nil {
		return err
	}
	return replyStatusOK(w, a.app.UpdateChannelMemberRoles(r.Context(), sessionFrom(r), channelID, userID, body.Roles))
}
