package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// maxListSize bounds the user ids added to a channel at once (Mattermost's
// maxListSize).
const maxListSize = 1000

// channelNameParam returns the {channel_name} URL parameter, which must be
// a valid channel name.
func channelNameParam(r *http.Request) (string, error) {
	name := chi.URLParam(r, "channel_name")
	if !app.ValidChannelName(name) {
		return "", model.ErrInvalidURLParam("api.channel_name_param", "channel_name")
	}
	return name, nil
}

func (a *API) createChannel(w http.ResponseWriter, r *http.Request) error {
	const where = "api.create_channel"
	var in model.Channel
	if err := decodeBody(r, &in, "channel"); err != nil {
		return err
	}
	if !model.IsValidID(in.TeamID) {
		return model.ErrInvalidBody(where, "team_id")
	}
	if in.DisplayName == "" {
		return model.ErrInvalidBody(where, "display_name")
	}
	c, appErr := a.app.CreateChannel(r.Context(), sessionFrom(r), &in)
	return reply(w, http.StatusCreated, c, appErr)
}

func (a *API) createDirectChannel(w http.ResponseWriter, r *http.Request) error {
	var ids []string
	if err := decodeBody(r, &ids, "user_ids"); err != nil {
		return err
	}
	c, appErr := a.app.CreateDirectChannel(r.Context(), sessionFrom(r), ids)
	return reply(w, http.StatusCreated, c, appErr)
}

func (a *API) createGroupChannel(w http.ResponseWriter, r *http.Request) error {
	var ids []string
	if err := decodeBody(r, &ids, "user_ids"); err != nil {
		return err
	}
	c, appErr := a.app.CreateGroupChannel(r.Context(), sessionFrom(r), ids)
	return reply(w, http.StatusCreated, c, appErr)
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	c, appErr := a.app.GetChannel(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, c, appErr)
}

func (a *API) updateChannel(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	var in model.Channel
	if err := decodeBody(r, &in, "channel"); err != nil {
		return err
	}
	if in.ID != id {
		return model.ErrInvalidBody("api.update_channel", "channel_id")
	}
	c, appErr := a.app.UpdateChannel(r.Context(), sessionFrom(r), &in)
	return reply(w, http.StatusOK, c, appErr)
}

func (a *API) patchChannel(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	var p model.ChannelPatch
	if err := decodeBody(r, &p, "channel"); err != nil {
		return err
	}
	c, appErr := a.app.PatchChannel(r.Context(), sessionFrom(r), id, &p)
	return reply(w, http.StatusOK, c, appErr)
}

func (a *API) deleteChannel(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.DeleteChannel(r.Context(), sessionFrom(r), id, boolQuery(r, "permanent")))
}

func (a *API) getChannelStats(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	st, appErr := a.app.GetChannelStats(r.Context(), sessionFrom(r), id, boolQuery(r, "exclude_files_count"))
	return reply(w, http.StatusOK, st, appErr)
}

func (a *API) getPublicChannels(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	p := paging(r)
	cs, appErr := a.app.PublicChannels(r.Context(), sessionFrom(r), teamID, p.offset(), p.PerPage)
	return reply(w, http.StatusOK, cs, appErr)
}

func (a *API) getChannelByName(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	name, err := channelNameParam(r)
	if err != nil {
		return err
	}
	c, appErr := a.app.ChannelByName(r.Context(), sessionFrom(r), teamID, name, boolQuery(r, "include_deleted"))
	return reply(w, http.StatusOK, c, appErr)
}

func (a *API) getChannelByNameForTeamName(w http.ResponseWriter, r *http.Request) error {
	teamName, err := teamNameParam(r)
	if err != nil {
		return err
	}
	name, err := channelNameParam(r)
	if err != nil {
		return err
	}
	c, appErr := a.app.ChannelByTeamName(r.Context(), sessionFrom(r), teamName, name, boolQuery(r, "include_deleted"))
	return reply(w, http.StatusOK, c, appErr)
}

func (a *API) getChannelsForUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	lastDeleteAt, err := int64Query(r, "last_delete_at")
	if err != nil {
		return err
	}
	cs, appErr := a.app.ChannelsForUser(r.Context(), sessionFrom(r), userID, teamID, boolQuery(r, "include_deleted"), lastDeleteAt)
	return reply(w, http.StatusOK, cs, appErr)
}

func (a *API) getChannelMembersForUser(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	ms, appErr := a.app.ChannelMembersForUser(r.Context(), sessionFrom(r), userID, teamID)
	return reply(w, http.StatusOK, ms, appErr)
}

// addChannelMember takes {"user_id"} and answers one ChannelMember, or
// {"user_ids"} and answers a list, as Mattermost does.
func (a *API) addChannelMember(w http.ResponseWriter, r *http.Request) error {
	const where = "api.add_channel_member"
	channelID, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	var body struct {
		UserID     string   `json:"user_id"`
		UserIDs    []string `json:"user_ids"`
		PostRootID string   `json:"post_root_id"`
	}
	if err := decodeBody(r, &body, "user_id or user_ids"); err != nil {
		return err
	}
	ids := body.UserIDs
	if ids != nil {
		if len(ids) > maxListSize {
			return model.ErrInvalidBody(where, "user_ids")
		}
		for _, id := range ids {
			if !model.IsValidID(id) {
				return model.ErrInvalidBody(where, "user_id in user_ids")
			}
		}
	} else {
		if !model.IsValidID(body.UserID) {
			return model.ErrInvalidBody(where, "user_id or user_ids")
		}
		ids = []string{body.UserID}
	}
	if body.PostRootID != "" && !model.IsValidID(body.PostRootID) {
		return model.ErrInvalidBody(where, "post_root_id")
	}
	ms, appErr := a.app.AddChannelMembers(r.Context(), sessionFrom(r), channelID, ids)
	if appErr != nil {
		return appErr
	}
	if body.UserID != "" && len(ms) == 1 && ms[0].UserID == body.UserID {
		return created(w, ms[0])
	}
	return created(w, ms)
}

func (a *API) getChannelMembers(w http.ResponseWriter, r *http.Request) error {
	channelID, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	p := paging(r)
	ms, appErr := a.app.ListChannelMembers(r.Context(), sessionFrom(r), channelID, p.offset(), p.PerPage)
	return reply(w, http.StatusOK, ms, appErr)
}

func (a *API) getChannelMembersByIDs(w http.ResponseWriter, r *http.Request) error {
	channelID, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	ids, err := decodeIDs(r, "user_ids", maxIDsPerRequest)
	if err != nil {
		return err
	}
	ms, appErr := a.app.ChannelMembersByIDs(r.Context(), sessionFrom(r), channelID, ids)
	return reply(w, http.StatusOK, ms, appErr)
}

func (a *API) getChannelMember(w http.ResponseWriter, r *http.Request) error {
	channelID, userID, err := memberParams(r, "channel_id")
	if err != nil {
		return err
	}
	m, appErr := a.app.ChannelMember(r.Context(), sessionFrom(r), channelID, userID)
	return reply(w, http.StatusOK, m, appErr)
}

func (a *API) removeChannelMember(w http.ResponseWriter, r *http.Request) error {
	channelID, userID, err := memberParams(r, "channel_id")
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.RemoveChannelMember(r.Context(), sessionFrom(r), channelID, userID))
}

func (a *API) updateChannelNotifyProps(w http.ResponseWriter, r *http.Request) error {
	channelID, userID, err := memberParams(r, "channel_id")
	if err != nil {
		return err
	}
	var props model.StringMap
	if err := decodeBody(r, &props, "notify_props"); err != nil {
		return err
	}
	if props == nil {
		return model.ErrInvalidBody("api.update_channel_notify_props", "notify_props")
	}
	return replyStatusOK(w, a.app.UpdateChannelNotifyProps(r.Context(), sessionFrom(r), channelID, userID, props))
}

func (a *API) viewChannel(w http.ResponseWriter, r *http.Request) error {
	const where = "api.view_channel"
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	var v model.ChannelView
	if err := decodeBody(r, &v, "channel_view"); err != nil {
		return err
	}
	// Blank ids mean focus loss or a first view.
	if v.ChannelID != "" && !model.IsValidID(v.ChannelID) {
		return model.ErrInvalidBody(where, "channel_view.channel_id")
	}
	if v.PrevChannelID != "" && !model.IsValidID(v.PrevChannelID) {
		return model.ErrInvalidBody(where, "channel_view.prev_channel_id")
	}
	times, appErr := a.app.ViewChannel(r.Context(), sessionFrom(r), userID, &v)
	if appErr != nil {
		return appErr
	}
	return ok(w, model.ChannelViewResponse{Status: "OK", LastViewedAtTimes: times})
}

func (a *API) getChannelUnread(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	channelID, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	u, appErr := a.app.ChannelUnread(r.Context(), sessionFrom(r), userID, channelID)
	return reply(w, http.StatusOK, u, appErr)
}

func (a *API) userTyping(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	var body struct {
		ChannelID string `json:"channel_id"`
		ParentID  string `json:"parent_id"`
	}
	if err := decodeBody(r, &body, "typing_request"); err != nil {
		return err
	}
	if !model.IsValidID(body.ChannelID) {
		return model.ErrInvalidBody("api.user_typing", "channel_id")
	}
	return replyStatusOK(w, a.app.UserTyping(r.Context(), sessionFrom(r), userID, body.ChannelID, body.ParentID))
}
