package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// searchEnv is a team where alice and bob share a public channel and a
// direct message; alice alone is in a private channel, and bob has left
// another channel. Posts are named by what they are.
type searchEnv struct {
	ts                      *testServer
	admin, alice, bob       *client
	team                    *model.Team
	pub, priv, left, dm     *model.Channel
	fox, release, thinking  *model.Post
	secret, question, notes *model.Post
}

func newSearchEnv(t *testing.T, mutate ...func(*app.Settings, *api.Options)) *searchEnv {
	t.Helper()
	ts := newTestServer(t, mutate...)
	e := &searchEnv{ts: ts, admin: ts.newUser(), alice: ts.newUser(), bob: ts.newUser()}
	e.team = e.admin.createTeam(true)
	e.admin.addToTeam(e.team.ID, e.alice)
	e.admin.addToTeam(e.team.ID, e.bob)
	e.pub = e.namedChannel(uniq("general-talk"), "General Talk", model.ChannelOpen, e.alice, e.bob)
	e.priv = e.namedChannel(uniq("secret-room"), "Secret Room", model.ChannelPrivate, e.alice)
	e.left = e.namedChannel(uniq("old-project"), "Old Project", model.ChannelOpen, e.alice, e.bob)
	e.alice.mustDo("POST", "/channels/direct", []string{e.alice.User.ID, e.bob.User.ID}, http.StatusCreated, &e.dm)

	e.fox = e.alice.post(e.pub.ID, "The quick brown fox jumps over the lazy dog")
	e.release = e.alice.post(e.pub.ID, "Deploying the release #Release1 tonight")
	e.thinking = e.bob.post(e.pub.ID, "quick thinking saves the day")
	e.secret = e.alice.post(e.priv.ID, "secret quick plan")
	e.question = e.alice.post(e.dm.ID, "quick question about the deployment")
	e.notes = e.alice.post(e.left.ID, "quick sync notes")
	gone := e.alice.post(e.pub.ID, "quick words soon deleted")
	e.alice.mustDo("DELETE", "/posts/"+gone.ID, nil, http.StatusOK, nil)
	e.bob.mustDo("DELETE", "/channels/"+e.left.ID+"/members/"+e.bob.User.ID, nil, http.StatusOK, nil)
	return e
}

// namedChannel has the admin create a channel with members.
func (e *searchEnv) namedChannel(name, display, typ string, members ...*client) *model.Channel {
	e.ts.t.Helper()
	var ch model.Channel
	e.admin.mustDo("POST", "/channels", map[string]any{"team_id": e.team.ID, "name": name, "display_name": display, "type": typ},
		http.StatusCreated, &ch)
	for _, m := range members {
		e.admin.addToChannel(ch.ID, m)
	}
	return &ch
}

type searchResults struct {
	model.PostList
	Matches map[string][]string `json:"matches"`
}

// search runs a post search (in the env's team unless allTeams) and
// returns the results.
func (c *client) search(teamID string, body map[string]any) *searchResults {
	c.ts.t.Helper()
	path := "/posts/search"
	if teamID != "" {
		path = "/teams/" + teamID + "/posts/search"
	}
	resp, b := c.do("POST", path, body)
	require.Equal(c.ts.t, http.StatusOK, resp.StatusCode, string(b))
	require.Equal(c.ts.t, "no-cache, no-store, must-revalidate", resp.Header.Get("Cache-Control"))
	var out searchResults
	require.NoError(c.ts.t, json.Unmarshal(b, &out), string(b))
	require.Len(c.ts.t, out.Posts, len(out.Order))
	for i := 1; i < len(out.Order); i++ {
		require.GreaterOrEqual(c.ts.t, out.Posts[out.Order[i-1]].CreateAt, out.Posts[out.Order[i]].CreateAt, "newest first")
	}
	return &out
}

func TestSearchPostsOperators(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)
	pubName := e.pub.Name
	created := time.UnixMilli(e.fox.CreateAt).UTC()
	today := created.Format("2006-01-02")
	yesterday := created.AddDate(0, 0, -1).Format("2006-01-02")
	// In a zone 13 hours ahead the posts fall on another date for most of
	// the day; on: must use the searcher's day.
	const ahead = 13 * 3600
	aheadDay := time.UnixMilli(e.fox.CreateAt).In(time.FixedZone("", ahead)).Format("2006-01-02")
	cases := []struct {
		terms  string
		or     bool
		offset int
		want   []*model.Post
	}{
		{terms: "quick", want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: "QUICK", want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: "quick brown", want: []*model.Post{e.fox}},
		{terms: "quick brown", or: true, want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: `"brown fox"`, want: []*model.Post{e.fox}},
		{terms: `"fox brown"`},
		{terms: "quick -thinking", want: []*model.Post{e.fox, e.question}},
		{terms: `quick -"lazy dog"`, want: []*model.Post{e.thinking, e.question}},
		{terms: "deploy*", want: []*model.Post{e.release, e.question}},
		{terms: "#release1", want: []*model.Post{e.release}},
		{terms: "#Release1 tonight", want: []*model.Post{e.release}},
		{terms: "#release"},
		{terms: "quick -#release1", want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: "from:" + e.bob.User.Username, want: []*model.Post{e.thinking}},
		{terms: "from:@" + e.alice.User.Username + " quick", want: []*model.Post{e.fox, e.question}},
		{terms: "from:" + e.alice.User.Username + " from:" + e.bob.User.Username + " quick", want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: "-from:" + e.alice.User.Username + " quick", want: []*model.Post{e.thinking}},
		{terms: "from:nosuchuser quick"},
		{terms: "in:" + pubName + " quick", want: []*model.Post{e.fox, e.thinking}},
		{terms: "in:~" + pubName + " quick", want: []*model.Post{e.fox, e.thinking}},
		{terms: "channel: " + pubName + " quick", want: []*model.Post{e.fox, e.thinking}},
		{terms: "in:@" + e.alice.User.Username + " quick", want: []*model.Post{e.question}},
		{terms: "-in:" + pubName + " quick", want: []*model.Post{e.question}},
		{terms: "in:" + e.priv.Name + " quick"},
		{terms: "in:" + e.left.Name + " quick"},
		{terms: "in:nosuchchannel"},
		{terms: "quick on:" + today, want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: "quick on:" + aheadDay, offset: ahead, want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: "quick after:" + yesterday, want: []*model.Post{e.fox, e.thinking, e.question}},
		{terms: "quick after:" + today},
		{terms: "quick before:" + today},
		{terms: "quick -on:" + today},
		{terms: "*"},
		{terms: "secret"},
		{terms: "sync notes"},
		{terms: "words soon deleted"},
	}
	for _, c := range cases {
		t.Run(c.terms, func(t *testing.T) {
			t.Parallel()
			for _, team := range []string{e.team.ID, ""} {
				res := e.bob.search(team, map[string]any{"terms": c.terms, "is_or_search": c.or, "time_zone_offset": c.offset})
				require.ElementsMatch(t, ids(c.want...), res.Order, "team %q", team)
				for _, p := range c.want {
					require.Equal(t, p.Message, res.Posts[p.ID].Message)
				}
			}
		})
	}
}

func TestSearchPostsMatchesAndPaging(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)
	res := e.bob.search(e.team.ID, map[string]any{"terms": "Quick brown"})
	require.Equal(t, map[string][]string{e.fox.ID: {"quick", "brown"}}, res.Matches)

	var pages [][]string
	for page := 0; ; page++ {
		res := e.bob.search(e.team.ID, map[string]any{"terms": "quick", "page": page, "per_page": 1})
		if len(res.Order) == 0 {
			require.False(t, res.HasNext)
			break
		}
		pages = append(pages, res.Order)
		require.Equal(t, page < 2, res.HasNext, "page %d", page)
	}
	require.Equal(t, [][]string{{e.question.ID}, {e.thinking.ID}, {e.fox.ID}}, pages)

	// per_page is clamped to 200 rather than refused.
	res = e.bob.search("", map[string]any{"terms": "quick", "per_page": 1000})
	require.Len(t, res.Order, 3)
}

func TestSearchPostsPermissions(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)

	// Alice sees her private channel and the channel bob left.
	res := e.alice.search(e.team.ID, map[string]any{"terms": "quick"})
	require.ElementsMatch(t, ids(e.fox, e.thinking, e.secret, e.question, e.notes), res.Order)

	// A team member in no channel finds nothing.
	loner := e.ts.newUser()
	e.admin.addToTeam(e.team.ID, loner)
	require.Empty(t, loner.search(e.team.ID, map[string]any{"terms": "quick"}).Order)
	require.Empty(t, loner.search("", map[string]any{"terms": "quick"}).Order)

	// Someone outside the team may not search it, and finds nothing of it
	// across teams.
	stranger := e.ts.newUser()
	stranger.requireAppError("POST", "/teams/"+e.team.ID+"/posts/search", map[string]any{"terms": "quick"},
		http.StatusForbidden, "api.context.permissions.app_error")
	require.Empty(t, stranger.search("", map[string]any{"terms": "quick"}).Order)

	// Once alice leaves the private channel its posts are gone from her
	// results, even named with in:.
	e.alice.mustDo("DELETE", "/channels/"+e.priv.ID+"/members/"+e.alice.User.ID, nil, http.StatusOK, nil)
	require.NotContains(t, e.alice.search(e.team.ID, map[string]any{"terms": "secret"}).Order, e.secret.ID)
	require.Empty(t, e.alice.search("", map[string]any{"terms": "in:" + e.priv.Name}).Order)

	// Anonymous requests are refused.
	e.ts.anon().requireAppError("POST", "/posts/search", map[string]any{"terms": "quick"},
		http.StatusUnauthorized, "api.context.session_expired.app_error")
}

func TestSearchPostsArchivedChannel(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)
	e.admin.mustDo("DELETE", "/channels/"+e.pub.ID, nil, http.StatusOK, nil)
	require.ElementsMatch(t, ids(e.question), e.bob.search(e.team.ID, map[string]any{"terms": "quick"}).Order)
	res := e.bob.search(e.team.ID, map[string]any{"terms": "quick", "include_deleted_channels": true})
	require.ElementsMatch(t, ids(e.fox, e.thinking, e.question), res.Order)
}

// requireSearchBadInput sends malformed, oversize and out-of-range
// searches to the team and cross-team routes of kind ("posts" or
// "files"), which share the query parser and paging rules: each gets 400
// with the AppError id a client can branch on.
func requireSearchBadInput(t *testing.T, e *searchEnv, kind string) {
	t.Helper()
	const invalid = "api.context.invalid_body_param.app_error"
	const tooLong = "api.post.search_posts.terms_too_long.app_error"
	team := "/teams/" + e.team.ID + "/" + kind + "/search"
	all := "/" + kind + "/search"
	cases := []struct {
		name   string
		path   string
		body   any
		status int
		id     string
	}{
		{"no terms", team, map[string]any{"is_or_search": true}, 400, invalid},
		{"empty terms", team, map[string]any{"terms": "  "}, 400, invalid},
		{"terms not a string", team, map[string]any{"terms": 5}, 400, invalid},
		{"no body", team, nil, 400, invalid},
		{"bad json", team, "{", 400, invalid},
		{"bad json across teams", all, "{", 400, invalid},
		{"oversize terms", team, map[string]any{"terms": strings.Repeat("word ", 300)}, 400, tooLong},
		{"too many words", team, map[string]any{"terms": strings.Repeat("a ", 40)}, 400, tooLong},
		{"too many flags", team, map[string]any{"terms": strings.Repeat("ext:a ", 40)}, 400, tooLong},
		{"bad date on", team, map[string]any{"terms": "on:2024-02-31"}, 400, "api.post.search_posts.invalid_date.app_error"},
		{"bad date before", team, map[string]any{"terms": "before:2024-02-31"}, 400, "api.post.search_posts.invalid_date.app_error"},
		{"NUL", team, map[string]any{"terms": "quick\x00"}, 400, "api.post.search_posts.invalid_terms.app_error"},
		{"negative page", team, map[string]any{"terms": "quick", "page": -1}, 400, invalid},
		{"negative per_page", team, map[string]any{"terms": "quick", "per_page": -1}, 400, invalid},
		{"deep page", team, map[string]any{"terms": "quick", "page": 1 << 20}, 400, invalid},
		{"deep page across teams", all, map[string]any{"terms": "quick", "page": 1 << 20}, 400, invalid},
		{"bad zone", team, map[string]any{"terms": "quick", "time_zone_offset": 1 << 30}, 400, invalid},
		{"bad team id", "/teams/nope/" + kind + "/search", map[string]any{"terms": "quick"}, 400, "api.context.invalid_url_param.app_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e.bob.requireAppError("POST", c.path, c.body, c.status, c.id)
		})
	}
}

func TestSearchPostsBadInput(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)
	requireSearchBadInput(t, e, "posts")
	// SQL and text-search syntax in the terms is only ever text.
	for _, terms := range []string{`'; DROP TABLE posts; --`, `quick:* | !brown & (fox)`, `\' \\ ''`} {
		res := e.bob.search(e.team.ID, map[string]any{"terms": terms})
		require.NotNil(t, res.Order)
	}
}

func TestSearchUsers(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t, func(s *app.Settings, _ *api.Options) { s.ShowEmailAddress = false })
	var got []*model.User
	e.bob.mustDo("POST", "/users/search", map[string]any{"term": e.alice.User.Username, "team_id": e.team.ID}, http.StatusOK, &got)
	require.Equal(t, []string{e.alice.User.ID}, searchUserIDs(got))
	require.Empty(t, got[0].Email, "emails are hidden by PrivacySettings")

	// A term matching only the hidden email finds nothing for bob, and the
	// user for a system admin.
	emailTerm := e.alice.User.Username + "@ex"
	e.bob.mustDo("POST", "/users/search", map[string]any{"term": emailTerm}, http.StatusOK, &got)
	require.Empty(t, got)
	e.admin.mustDo("POST", "/users/search", map[string]any{"term": emailTerm}, http.StatusOK, &got)
	require.Equal(t, []string{e.alice.User.ID}, searchUserIDs(got))

	// Channel constraints.
	e.bob.mustDo("POST", "/users/search", map[string]any{"term": "@" + e.bob.User.Username, "in_channel_id": e.pub.ID}, http.StatusOK, &got)
	require.Equal(t, []string{e.bob.User.ID}, searchUserIDs(got))
	e.bob.mustDo("POST", "/users/search", map[string]any{"term": e.bob.User.Username, "team_id": e.team.ID,
		"not_in_channel_id": e.left.ID}, http.StatusOK, &got)
	require.Equal(t, []string{e.bob.User.ID}, searchUserIDs(got))

	const invalid = "api.context.invalid_body_param.app_error"
	for name, c := range map[string]struct {
		body   map[string]any
		status int
		id     string
	}{
		"no term":                  {map[string]any{"team_id": e.team.ID}, 400, invalid},
		"long term":                {map[string]any{"term": strings.Repeat("a", 65)}, 400, invalid},
		"not in channel sans team": {map[string]any{"term": "a", "not_in_channel_id": e.pub.ID}, 400, invalid},
		"bad limit":                {map[string]any{"term": "a", "limit": 1001}, 400, invalid},
		"bad id":                   {map[string]any{"term": "a", "team_id": "x"}, 400, invalid},
		"private channel":          {map[string]any{"term": "a", "in_channel_id": e.priv.ID}, 403, "api.context.permissions.app_error"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e.bob.requireAppError("POST", "/users/search", c.body, c.status, c.id)
		})
	}
}

func searchUserIDs(users []*model.User) []string {
	out := []string{}
	for _, u := range users {
		out = append(out, u.ID)
	}
	return out
}

func searchChannelNames(cs []*model.Channel) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

func TestSearchChannels(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)
	var got []*model.Channel
	base := "/teams/" + e.team.ID + "/channels/"

	// Search: public channels only, by name, display name or a word of it.
	for _, term := range []string{"general-talk", "General", "talk", "~general"} {
		e.alice.mustDo("POST", base+"search", map[string]any{"term": term}, http.StatusOK, &got)
		require.Equal(t, []string{e.pub.Name}, searchChannelNames(got), term)
	}
	e.alice.mustDo("POST", base+"search", map[string]any{"term": "secret"}, http.StatusOK, &got)
	require.Empty(t, got)

	// Autocomplete: public channels and the caller's private ones.
	e.alice.mustDo("GET", base+"autocomplete?name=secret", nil, http.StatusOK, &got)
	require.Equal(t, []string{e.priv.Name}, searchChannelNames(got))
	e.bob.mustDo("GET", base+"autocomplete?name=secret", nil, http.StatusOK, &got)
	require.Empty(t, got)
	e.bob.mustDo("GET", base+"autocomplete?name=old", nil, http.StatusOK, &got)
	require.Equal(t, []string{e.left.Name}, searchChannelNames(got))

	// Search autocomplete: only the caller's channels.
	e.bob.mustDo("GET", base+"search_autocomplete?name=old", nil, http.StatusOK, &got)
	require.Empty(t, got)
	e.alice.mustDo("GET", base+"search_autocomplete?name=old", nil, http.StatusOK, &got)
	require.Equal(t, []string{e.left.Name}, searchChannelNames(got))
	e.bob.mustDo("GET", base+"search_autocomplete?name=", nil, http.StatusOK, &got)
	require.Contains(t, searchChannelNames(got), e.pub.Name)
	require.NotContains(t, searchChannelNames(got), e.priv.Name)

	// Outsiders are refused; bad input is a 400.
	stranger := e.ts.newUser()
	stranger.requireAppError("POST", base+"search", map[string]any{"term": "g"}, http.StatusForbidden, "api.context.permissions.app_error")
	stranger.requireAppError("GET", base+"autocomplete?name=g", nil, http.StatusForbidden, "api.context.permissions.app_error")
	stranger.requireAppError("GET", base+"search_autocomplete?name=g", nil, http.StatusForbidden, "api.context.permissions.app_error")
	e.bob.requireAppError("POST", base+"search", map[string]any{"term": strings.Repeat("a", 65)}, http.StatusBadRequest,
		"api.context.invalid_body_param.app_error")
	e.bob.requireAppError("POST", base+"search", "[", http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	e.bob.requireAppError("GET", "/teams/x/channels/autocomplete?name=a", nil, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
	// LIKE wildcards in the term are literal.
	e.bob.mustDo("GET", base+"autocomplete?name=%25", nil, http.StatusOK, &got)
	require.Empty(t, got)
}

// TestSearchPostsPhrasePages pages through a phrase search one post at a
// time: full pages come from the newest posts, the last from the text
// index, and neither shows posts of channels the searcher is not in,
// deleted posts or the words in another order.
func TestSearchPostsPhrasePages(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)
	var want []string
	for _, m := range []string{"an amber falcon", "Amber Falcon at dawn", "the amber falcon, again"} {
		want = append([]string{e.alice.post(e.pub.ID, m).ID}, want...)
		e.alice.post(e.priv.ID, m)
		e.alice.post(e.left.ID, m)
		e.alice.post(e.pub.ID, "falcon amber")
	}
	gone := e.alice.post(e.pub.ID, "amber falcon deleted")
	e.alice.mustDo("DELETE", "/posts/"+gone.ID, nil, http.StatusOK, nil)

	var got []string
	for page := 0; page < 4; page++ {
		res := e.bob.search(e.team.ID, map[string]any{"terms": `"amber falcon"`, "page": page, "per_page": 1})
		require.Equal(t, page < 2, res.HasNext, "page %d", page)
		got = append(got, res.Order...)
	}
	require.Equal(t, want, got)
	res := e.alice.search(e.team.ID, map[string]any{"terms": `"amber falcon"`, "per_page": 60})
	require.Len(t, res.Order, 9, "alice is in the private and the left channel")
}
