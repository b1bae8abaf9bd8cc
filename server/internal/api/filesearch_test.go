package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// fileSearchEnv is a searchEnv with files attached to posts in each of its
// channels, and files that no search may find. Files are named by what
// they are; each is uploaded a millisecond after the one before.
type fileSearchEnv struct {
	*searchEnv
	report, photo, draft, dmNotes *model.FileInfo // bob sees these
	secret, leftover              *model.FileInfo // alice alone sees these
}

func newFileSearchEnv(t *testing.T) *fileSearchEnv {
	t.Helper()
	e := &fileSearchEnv{searchEnv: newSearchEnv(t, func(s *app.Settings, _ *api.Options) {
		s.EnableFileAttachments, s.MaxFileSize = true, 1<<20
	})}
	// attached uploads a file to a channel and attaches it to a post.
	attached := func(c *client, channelID, name string, data []byte) (*model.FileInfo, *model.Post) {
		e.ts.advance(time.Millisecond)
		f := c.mustUpload(t, channelID, name, data)
		p := c.post(channelID, "a file", map[string]any{"file_ids": []string{f.ID}})
		require.Equal(t, []string{f.ID}, p.FileIDs)
		return f, p
	}
	e.report, _ = attached(e.alice, e.pub.ID, "Quarterly_Report-2024.pdf", []byte("%PDF-1.4 report"))
	e.photo, _ = attached(e.bob, e.pub.ID, "holiday photo.png", testPNG(t, 4, 4, false))
	e.draft, _ = attached(e.alice, e.pub.ID, "report-draft.txt", []byte("draft"))
	e.dmNotes, _ = attached(e.alice, e.dm.ID, "notes for the report.txt", []byte("notes"))
	e.secret, _ = attached(e.alice, e.priv.ID, "secret report.pdf", []byte("%PDF-1.4 secret"))
	// Alice's file in the channel bob has left.
	e.leftover, _ = attached(e.alice, e.left.ID, "leftover report.pdf", []byte("%PDF-1.4 leftover"))

	// Never found: a file never attached, the file of a deleted post, and
	// a file an edit removed from its post.
	e.alice.mustUpload(t, e.pub.ID, "unattached report.pdf", []byte("%PDF-1.4 unattached"))
	_, gone := attached(e.alice, e.pub.ID, "deleted report.pdf", []byte("%PDF-1.4 deleted"))
	e.alice.mustDo("DELETE", "/posts/"+gone.ID, nil, http.StatusOK, nil)
	_, edited := attached(e.alice, e.pub.ID, "dropped report.pdf", []byte("%PDF-1.4 dropped"))
	var patched model.Post
	e.alice.mustDo("PUT", "/posts/"+edited.ID+"/patch", map[string]any{"file_ids": []string{}}, http.StatusOK, &patched)
	require.Empty(t, patched.FileIDs)
	return e
}

// searchFiles runs a file search (in a team unless teamID is "") and
// returns the results, checking what every answer must be.
func (c *client) searchFiles(teamID string, body map[string]any) *model.FileInfoList {
	c.ts.t.Helper()
	path := "/files/search"
	if teamID != "" {
		path = "/teams/" + teamID + "/files/search"
	}
	resp, b := c.do("POST", path, body)
	require.Equal(c.ts.t, http.StatusOK, resp.StatusCode, string(b))
	require.Equal(c.ts.t, "no-cache, no-store, must-revalidate", resp.Header.Get("Cache-Control"))
	var raw map[string]json.RawMessage
	require.NoError(c.ts.t, json.Unmarshal(b, &raw), string(b))
	for _, k := range []string{"order", "file_infos", "next_file_info_id", "prev_file_info_id", "first_inaccessible_file_time"} {
		require.Contains(c.ts.t, raw, k, "Mattermost's FileInfoList fields")
	}
	require.NotContains(c.ts.t, string(b), "path", "storage keys are never sent")
	var out model.FileInfoList
	require.NoError(c.ts.t, json.Unmarshal(b, &out), string(b))
	require.Len(c.ts.t, out.FileInfos, len(out.Order))
	for i, id := range out.Order {
		f := out.FileInfos[id]
		require.NotNil(c.ts.t, f, id)
		require.NotEmpty(c.ts.t, f.PostID, "files carry their post")
		require.NotEmpty(c.ts.t, f.ChannelID, "files carry their channel")
		if i > 0 {
			require.GreaterOrEqual(c.ts.t, out.FileInfos[out.Order[i-1]].CreateAt, f.CreateAt, "newest first")
		}
	}
	return &out
}

func fileIDs(files ...*model.FileInfo) []string {
	out := []string{}
	for _, f := range files {
		out = append(out, f.ID)
	}
	return out
}

func TestSearchFilesOperators(t *testing.T) {
	t.Parallel()
	e := newFileSearchEnv(t)
	created := time.UnixMilli(e.photo.CreateAt).UTC()
	today := created.Format("2006-01-02")
	yesterday := created.AddDate(0, 0, -1).Format("2006-01-02")
	alice, bob := e.alice.User.Username, e.bob.User.Username
	cases := []struct {
		terms string
		or    bool
		want  []*model.FileInfo
	}{
		{terms: "report", want: []*model.FileInfo{e.report, e.draft, e.dmNotes}},
		{terms: "REPORT", want: []*model.FileInfo{e.report, e.draft, e.dmNotes}},
		{terms: "quarterly", want: []*model.FileInfo{e.report}},
		{terms: "2024", want: []*model.FileInfo{e.report}},
		{terms: "pdf", want: []*model.FileInfo{e.report}},
		{terms: "Quarterly_Report", want: []*model.FileInfo{e.report}},
		{terms: "report-2024.pdf", want: []*model.FileInfo{e.report}},
		{terms: "report.pdf"},
		{terms: "holiday.png"},
		{terms: "photo.png", want: []*model.FileInfo{e.photo}},
		{terms: `"holiday photo"`, want: []*model.FileInfo{e.photo}},
		{terms: `"photo holiday"`},
		{terms: "report draft", want: []*model.FileInfo{e.draft}},
		{terms: "holiday draft", or: true, want: []*model.FileInfo{e.photo, e.draft}},
		{terms: "rep*", want: []*model.FileInfo{e.report, e.draft, e.dmNotes}},
		{terms: "#holiday", want: []*model.FileInfo{e.photo}},
		{terms: "report -draft", want: []*model.FileInfo{e.report, e.dmNotes}},
		{terms: `report -"for the"`, want: []*model.FileInfo{e.report, e.draft}},
		{terms: "ext:pdf", want: []*model.FileInfo{e.report}},
		{terms: "ext:.PDF", want: []*model.FileInfo{e.report}},
		{terms: "ext:txt report", want: []*model.FileInfo{e.draft, e.dmNotes}},
		{terms: "ext:txt ext:png", want: []*model.FileInfo{e.photo, e.draft, e.dmNotes}},
		{terms: "-ext:pdf report", want: []*model.FileInfo{e.draft, e.dmNotes}},
		{terms: "ext:docx"},
		{terms: "from:" + bob, want: []*model.FileInfo{e.photo}},
		{terms: "from:@" + alice + " report", want: []*model.FileInfo{e.report, e.draft, e.dmNotes}},
		{terms: "-from:" + alice, want: []*model.FileInfo{e.photo}},
		{terms: "from:nosuchuser"},
		{terms: "in:" + e.pub.Name, want: []*model.FileInfo{e.report, e.photo, e.draft}},
		{terms: "in:" + e.pub.Name + " ext:txt", want: []*model.FileInfo{e.draft}},
		{terms: "in:@" + alice, want: []*model.FileInfo{e.dmNotes}},
		{terms: "-in:" + e.pub.Name + " report", want: []*model.FileInfo{e.dmNotes}},
		{terms: "in:" + e.priv.Name},
		{terms: "in:" + e.left.Name},
		{terms: "on:" + today + " ext:png", want: []*model.FileInfo{e.photo}},
		{terms: "after:" + yesterday + " photo", want: []*model.FileInfo{e.photo}},
		{terms: "before:" + today + " photo"},
		{terms: "-on:" + today + " photo"},
		{terms: "*"},
		{terms: "secret"},
		{terms: "leftover"},
		{terms: "unattached"},
		{terms: "deleted"},
		{terms: "dropped"},
	}
	for _, c := range cases {
		t.Run(c.terms, func(t *testing.T) {
			t.Parallel()
			for _, team := range []string{e.team.ID, ""} {
				res := e.bob.searchFiles(team, map[string]any{"terms": c.terms, "is_or_search": c.or})
				require.ElementsMatch(t, fileIDs(c.want...), res.Order, "team %q", team)
				for _, f := range c.want {
					require.Equal(t, f.Name, res.FileInfos[f.ID].Name)
				}
			}
		})
	}
}

func TestSearchFilesResults(t *testing.T) {
	t.Parallel()
	e := newFileSearchEnv(t)

	// Each file carries its post and channel; the post is the one that
	// lists it.
	res := e.bob.searchFiles(e.team.ID, map[string]any{"terms": "holiday"})
	require.Equal(t, []string{e.photo.ID}, res.Order)
	got := res.FileInfos[e.photo.ID]
	require.Equal(t, e.pub.ID, got.ChannelID)
	require.Equal(t, "png", got.Extension)
	require.Equal(t, e.bob.User.ID, got.CreatorID)
	var p model.Post
	e.bob.mustDo("GET", "/posts/"+got.PostID, nil, http.StatusOK, &p)
	require.Equal(t, []string{e.photo.ID}, p.FileIDs)

	// Pages of one, newest first, then an empty page.
	var pages [][]string
	for page := 0; page < 4; page++ {
		res := e.bob.searchFiles(e.team.ID, map[string]any{"terms": "report", "page": page, "per_page": 1})
		pages = append(pages, res.Order)
	}
	require.Equal(t, [][]string{{e.dmNotes.ID}, {e.draft.ID}, {e.report.ID}, {}}, pages)
	require.Empty(t, e.bob.searchFiles(e.team.ID, map[string]any{"terms": "report", "per_page": 0}).Order)
	// per_page is clamped to 200 rather than refused.
	require.Len(t, e.bob.searchFiles("", map[string]any{"terms": "report", "per_page": 1000}).Order, 3)
}

func TestSearchFilesPermissions(t *testing.T) {
	t.Parallel()
	e := newFileSearchEnv(t)

	// Alice sees her private channel and the channel bob left, and still
	// not the files no search finds.
	res := e.alice.searchFiles(e.team.ID, map[string]any{"terms": "report"})
	require.ElementsMatch(t, fileIDs(e.report, e.draft, e.dmNotes, e.secret, e.leftover), res.Order)
	res = e.alice.searchFiles(e.team.ID, map[string]any{"terms": "in:" + e.priv.Name})
	require.Equal(t, fileIDs(e.secret), res.Order)

	// A team member in no channel finds nothing.
	loner := e.ts.newUser()
	e.admin.addToTeam(e.team.ID, loner)
	require.Empty(t, loner.searchFiles(e.team.ID, map[string]any{"terms": "report"}).Order)
	require.Empty(t, loner.searchFiles("", map[string]any{"terms": "ext:pdf"}).Order)

	// Someone outside the team may not search it, and finds nothing of it
	// across teams.
	stranger := e.ts.newUser()
	stranger.requireAppError("POST", "/teams/"+e.team.ID+"/files/search", map[string]any{"terms": "report"},
		http.StatusForbidden, "api.context.permissions.app_error")
	require.Empty(t, stranger.searchFiles("", map[string]any{"terms": "report"}).Order)

	// Once alice leaves the private channel its files are gone from her
	// results.
	e.alice.mustDo("DELETE", "/channels/"+e.priv.ID+"/members/"+e.alice.User.ID, nil, http.StatusOK, nil)
	require.NotContains(t, e.alice.searchFiles("", map[string]any{"terms": "secret"}).Order, e.secret.ID)

	// An archived channel is searched only when asked.
	e.admin.mustDo("DELETE", "/channels/"+e.pub.ID, nil, http.StatusOK, nil)
	require.Equal(t, fileIDs(e.dmNotes), e.bob.searchFiles(e.team.ID, map[string]any{"terms": "report"}).Order)
	res = e.bob.searchFiles(e.team.ID, map[string]any{"terms": "report", "include_deleted_channels": true})
	require.ElementsMatch(t, fileIDs(e.report, e.draft, e.dmNotes), res.Order)

	// Anonymous requests are refused.
	for _, path := range []string{"/files/search", "/teams/" + e.team.ID + "/files/search"} {
		e.ts.anon().requireAppError("POST", path, map[string]any{"terms": "report"},
			http.StatusUnauthorized, "api.context.session_expired.app_error")
	}
}

func TestSearchFilesBadInput(t *testing.T) {
	t.Parallel()
	e := newSearchEnv(t)
	requireSearchBadInput(t, e, "files")
	// SQL, text-search syntax and translate()'s punctuation in the terms
	// are only ever text.
	for _, terms := range []string{`'; DROP TABLE file_infos; --`, `report:* | !pdf & (x)`, `\' \\ ''`, `ext:'pdf' -ext:%`, `.,-_@:`} {
		require.NotNil(t, e.bob.searchFiles(e.team.ID, map[string]any{"terms": terms}).Order)
	}
}
