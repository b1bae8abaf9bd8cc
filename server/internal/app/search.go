package app

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// SearchOptions are a post or file search request.
type SearchOptions struct {
	// TeamID limits the search to one team's channels (and the searcher's
	// direct and group messages); "" searches every team.
	TeamID                 string
	Terms                  string
	IsOrSearch             bool
	TimeZoneOffset         int
	IncludeDeletedChannels bool
	Page, PerPage          int
}

// Search result limits, as for the other post lists.
const (
	searchMaxPerPage = 200
	// maxSearchOffset bounds how deep paging may go: deeper pages cost a
	// scan of every earlier match.
	maxSearchOffset = 10000
	// channelSearchLimit and channelAutocompleteLimit are Mattermost's.
	channelSearchLimit       = 100
	channelAutocompleteLimit = 50
	maxChannelSearchTerm     = 64
	maxUserSearchTerm        = 64
	userSearchDefaultLimit   = 100
	userSearchMaxLimit       = 1000
)

// startSearch checks a post or file search request and parses its terms:
// the terms must be given and the page within bounds, and a team search
// needs a member of the team.
func (a *App) startSearch(ctx context.Context, s *model.Session, o SearchOptions, where string) (*searchQuery, *model.AppError) {
	if strings.TrimSpace(o.Terms) == "" {
		return nil, model.ErrInvalidBody(where, "terms")
	}
	if o.Page < 0 || o.PerPage < 0 || o.PerPage > searchMaxPerPage || o.Page*o.PerPage > maxSearchOffset {
		return nil, model.ErrInvalidBody(where, "page")
	}
	if o.TeamID != "" {
		if err := a.requireTeamMember(ctx, s, o.TeamID, "view_team"); err != nil {
			return nil, err
		}
	}
	return parseSearch(o.Terms, o.TimeZoneOffset)
}

// SearchPosts runs a post search for the caller. As in Mattermost it
// searches only the channels the caller is a member of (system admins
// included), never deleted posts or system messages, newest first.
func (a *App) SearchPosts(ctx context.Context, s *model.Session, o SearchOptions) (*model.PostSearchResults, *model.AppError) {
	const where = "app.search_posts"
	q, appErr := a.startSearch(ctx, s, o, where)
	if appErr != nil {
		return nil, appErr
	}
	res := &model.PostSearchResults{PostList: model.NewPostList(), Matches: map[string][]string{}}
	if q.empty(false) || o.PerPage == 0 {
		return res, nil
	}
	f, ok, err := a.resolveSearch(ctx, s, o, q)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if !ok {
		return res, nil
	}
	// One more than a page tells whether another follows.
	f.Offset, f.Limit = o.Page*o.PerPage, o.PerPage+1
	posts, err := fromSearchReplica(ctx, a, s.UserID, func(st *postgres.Store) ([]*model.Post, error) {
		return st.SearchPosts(ctx, postgres.PostSearch{SearchFilter: f,
			Hashtags: q.Hashtags, ExcludedHashtags: q.ExcludedHashtags})
	})
	if err != nil {
		return nil, internalErr(where, err)
	}
	if len(posts) > o.PerPage {
		res.HasNext = true
		posts = posts[:o.PerPage]
	}
	if err := a.fillPostList(ctx, res.PostList, posts, false, false); err != nil {
		return nil, internalErr(where, err)
	}
	for _, p := range posts {
		if m := searchMatches(q, p.Message); len(m) > 0 {
			res.Matches[p.ID] = m
		}
	}
	return res, nil
}

// resolveSearch turns the names of q into ids: the channels to search
// (the caller's, narrowed by in: and -in:) and the authors of from: and
// -from:, and returns the filter of q without its page. ok is false when
// the search can match nothing, such as a from: naming no user or an in:
// naming no channel of the caller's.
func (a *App) resolveSearch(ctx context.Context, s *model.Session, o SearchOptions, q *searchQuery) (f postgres.SearchFilter, ok bool, err error) {
	var names []string
	names = append(names, q.FromUsers...)
	names = append(names, q.ExcludedUsers...)
	for _, c := range append(q.InChannels[:len(q.InChannels):len(q.InChannels)], q.ExcludedChannels...) {
		if n, isDM := strings.CutPrefix(c, "@"); isDM {
			names = append(names, n)
		}
	}
	users := map[string]string{}
	if len(names) > 0 {
		if users, err = a.store.UserIDsForSearch(ctx, names); err != nil {
			return f, false, err
		}
	}
	chans, err := a.store.SearchableChannels(ctx, s.UserID, o.TeamID, o.IncludeDeletedChannels)
	if err != nil {
		return f, false, err
	}
	// byName finds the caller's channels a name of in: means: a channel
	// name, or @username for the direct message with that user.
	byName := func(name string) []string {
		if n, isDM := strings.CutPrefix(name, "@"); isDM {
			id, found := users[n]
			if !found {
				return nil
			}
			name = directChannelName(s.UserID, id)
		}
		var ids []string
		for _, c := range chans {
			if c.Name == name {
				ids = append(ids, c.ID)
			}
		}
		return ids
	}
	allowed := make(map[string]bool, len(chans))
	if len(q.InChannels) > 0 {
		for _, n := range q.InChannels {
			for _, id := range byName(n) {
				allowed[id] = true
			}
		}
	} else {
		for _, c := range chans {
			allowed[c.ID] = true
		}
	}
	for _, n := range q.ExcludedChannels {
		for _, id := range byName(n) {
			delete(allowed, id)
		}
	}
	for id := range allowed {
		f.ChannelIDs = append(f.ChannelIDs, id)
	}
	if len(f.ChannelIDs) == 0 {
		return f, false, nil
	}
	for _, n := range q.FromUsers {
		if id, found := users[n]; found {
			f.FromUserIDs = append(f.FromUserIDs, id)
		}
	}
	if len(q.FromUsers) > 0 && len(f.FromUserIDs) == 0 {
		return f, false, nil
	}
	for _, n := range q.ExcludedUsers {
		if id, found := users[n]; found {
			f.ExcludedUserIDs = append(f.ExcludedUserIDs, id)
		}
	}
	f.Terms, f.ExcludedTerms = q.Terms, q.ExcludedTerms
	f.Within, f.Outside = q.Within, q.Outside
	f.OrTerms = o.IsOrSearch
	return f, true, nil
}

// SearchUsers finds users whose username or nickname (and full name and
// email, where PrivacySettings let the caller see them) starts with the
// term, within the team and channel constraints given: ListUsers' rules
// and permission checks.
func (a *App) SearchUsers(ctx context.Context, s *model.Session, in model.UserSearch) ([]*model.User, *model.AppError) {
	const where = "app.search_users"
	term := strings.TrimPrefix(strings.TrimSpace(in.Term), "@")
	if term == "" || len(term) > maxUserSearchTerm || !validSearchText(term) {
		return nil, model.ErrInvalidBody(where, "term")
	}
	if in.NotInChannelID != "" && in.TeamID == "" {
		return nil, model.ErrInvalidBody(where, "team_id")
	}
	for field, id := range map[string]string{"team_id": in.TeamID, "not_in_team_id": in.NotInTeamID,
		"in_channel_id": in.InChannelID, "not_in_channel_id": in.NotInChannelID} {
		if id != "" && !model.IsValidID(id) {
			return nil, model.ErrInvalidBody(where, field)
		}
	}
	limit := in.Limit
	if limit == 0 {
		limit = userSearchDefaultLimit
	}
	if limit < 0 || limit > userSearchMaxLimit {
		return nil, model.ErrInvalidBody(where, "limit")
	}
	return a.ListUsers(ctx, s, postgres.UserFilter{
		InTeam: in.TeamID, NotInTeam: in.NotInTeamID, InChannel: in.InChannelID, NotInChannel: in.NotInChannelID,
		Active: !in.AllowInactive, Term: term, Limit: limit,
	})
}

// validSearchText reports whether s can be a query parameter: UTF-8
// without NUL, which Postgres text cannot hold.
func validSearchText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// ChannelSearchKind says which channels a channel search covers.
type ChannelSearchKind int

// The channel searches of a team.
const (
	// ChannelSearchPublic is POST /teams/{id}/channels/search: the team's
	// public channels.
	ChannelSearchPublic ChannelSearchKind = iota
	// ChannelAutocomplete is /channels/autocomplete: public channels and
	// the caller's private ones.
	ChannelAutocomplete
	// ChannelSearchAutocomplete is /channels/search_autocomplete: the
	// caller's channels, for in: in the search box.
	ChannelSearchAutocomplete
)

// SearchChannels finds a team's unarchived channels whose name or display
// name starts with term. The caller must belong to the team.
func (a *App) SearchChannels(ctx context.Context, s *model.Session, teamID, term string, kind ChannelSearchKind) ([]*model.Channel, *model.AppError) {
	const where = "app.search_channels"
	term = strings.TrimPrefix(strings.TrimSpace(term), "~")
	if len(term) > maxChannelSearchTerm || !validSearchText(term) {
		return nil, model.ErrInvalidBody(where, "term")
	}
	if err := a.requireTeamMember(ctx, s, teamID, "list_team_channels"); err != nil {
		return nil, err
	}
	f := postgres.ChannelSearch{TeamID: teamID, UserID: s.UserID, Term: term, Limit: channelAutocompleteLimit}
	switch kind {
	case ChannelSearchPublic:
		f.Public, f.Limit = true, channelSearchLimit
	case ChannelAutocomplete:
		f.Public, f.Member = true, true
	case ChannelSearchAutocomplete:
		f.Member = true
	}
	cs, err := fromReplica(ctx, a, s.UserID, func(st *postgres.Store) ([]*model.Channel, error) {
		return st.SearchChannels(ctx, f)
	})
	if err != nil {
		return nil, internalErr(where, err)
	}
	return cs, nil
}
