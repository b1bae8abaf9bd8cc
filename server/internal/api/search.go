package api

import (
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// searchPostsInTeam is POST /teams/{team_id}/posts/search.
func (a *API) searchPostsInTeam(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	return a.searchPosts(w, r, teamID)
}

// searchPostsAllTeams is POST /posts/search.
func (a *API) searchPostsAllTeams(w http.ResponseWriter, r *http.Request) error {
	return a.searchPosts(w, r, "")
}

func (a *API) searchPosts(w http.ResponseWriter, r *http.Request, teamID string) error {
	o, err := searchOptions(r, teamID, "api.search_posts")
	if err != nil {
		return err
	}
	res, appErr := a.app.SearchPosts(r.Context(), sessionFrom(r), o)
	if appErr != nil {
		return appErr
	}
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	return ok(w, res)
}

// searchFilesInTeam is POST /teams/{team_id}/files/search.
func (a *API) searchFilesInTeam(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	return a.searchFiles(w, r, teamID)
}

// searchFilesAllTeams is POST /files/search.
func (a *API) searchFilesAllTeams(w http.ResponseWriter, r *http.Request) error {
	return a.searchFiles(w, r, "")
}

func (a *API) searchFiles(w http.ResponseWriter, r *http.Request, teamID string) error {
	o, err := searchOptions(r, teamID, "api.search_files")
	if err != nil {
		return err
	}
	res, appErr := a.app.SearchFiles(r.Context(), sessionFrom(r), o)
	if appErr != nil {
		return appErr
	}
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	return ok(w, res)
}

// searchOptions reads the body of a post or file search (Mattermost's
// SearchParameter); per_page defaults to 60 and is clamped to 200.
func searchOptions(r *http.Request, teamID, where string) (app.SearchOptions, error) {
	var p model.SearchParameter
	if err := decodeBody(r, &p, "search"); err != nil {
		return app.SearchOptions{}, err
	}
	if p.Terms == nil {
		return app.SearchOptions{}, model.ErrInvalidBody(where, "terms")
	}
	o := app.SearchOptions{TeamID: teamID, Terms: *p.Terms, PerPage: defaultPerPage}
	if p.IsOrSearch != nil {
		o.IsOrSearch = *p.IsOrSearch
	}
	if p.TimeZoneOffset != nil {
		o.TimeZoneOffset = *p.TimeZoneOffset
	}
	if p.IncludeDeletedChannels != nil {
		o.IncludeDeletedChannels = *p.IncludeDeletedChannels
	}
	if p.Page != nil {
		o.Page = *p.Page
	}
	if p.PerPage != nil {
		o.PerPage = min(*p.PerPage, maxPerPage)
	}
	return o, nil
}

// searchUsers is POST /users/search.
func (a *API) searchUsers(w http.ResponseWriter, r *http.Request) error {
	var in model.UserSearch
	if err := decodeBody(r, &in, "user_search"); err != nil {
		return err
	}
	users, appErr := a.app.SearchUsers(r.Context(), sessionFrom(r), in)
	return reply(w, http.StatusOK, users, appErr)
}

// searchChannels is POST /teams/{team_id}/channels/search.
func (a *API) searchChannels(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	var in model.ChannelSearch
	if err := decodeBody(r, &in, "channel_search"); err != nil {
		return err
	}
	return a.channelSearch(w, r, teamID, in.Term, app.ChannelSearchPublic)
}

// autocompleteChannels is GET /teams/{team_id}/channels/autocomplete.
func (a *API) autocompleteChannels(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	return a.channelSearch(w, r, teamID, r.URL.Query().Get("name"), app.ChannelAutocomplete)
}

// searchAutocompleteChannels is GET
// /teams/{team_id}/channels/search_autocomplete.
func (a *API) searchAutocompleteChannels(w http.ResponseWriter, r *http.Request) error {
	teamID, err := idParam(r, "team_id")
	if err != nil {
		return err
	}
	return a.channelSearch(w, r, teamID, r.URL.Query().Get("name"), app.ChannelSearchAutocomplete)
}

func (a *API) channelSearch(w http.ResponseWriter, r *http.Request, teamID, term string, kind app.ChannelSearchKind) error {
	cs, appErr := a.app.SearchChannels(r.Context(), sessionFrom(r), teamID, term, kind)
	return reply(w, http.StatusOK, cs, appErr)
}
