package app

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/postgres"
)

func sqWord(s string) postgres.SearchTerm {
	return postgres.SearchTerm{Kind: postgres.TermWord, Text: s}
}
func sqPhrase(s string) postgres.SearchTerm {
	return postgres.SearchTerm{Kind: postgres.TermPhrase, Text: s}
}
func sqPrefix(s string) postgres.SearchTerm {
	return postgres.SearchTerm{Kind: postgres.TermPrefix, Text: s}
}

func TestParseSearch(t *testing.T) {
	t.Parallel()
	day := func(y int, m time.Month, d, offset int) (int64, int64) {
		s := time.Date(y, m, d, 0, 0, 0, 0, time.FixedZone("", offset))
		return s.UnixMilli(), s.AddDate(0, 0, 1).UnixMilli() - 1
	}
	s15, e15 := day(2024, 3, 15, 0)
	s15p, e15p := day(2024, 3, 15, 3600)
	cases := []struct {
		in     string
		offset int
		want   searchQuery
	}{
		{in: "hello world", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("hello"), sqWord("world")}}},
		{in: "  Hello,  WORLD! ", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("hello"), sqWord("world")}}},
		{in: `"Quick brown" fox`, want: searchQuery{Terms: []postgres.SearchTerm{sqPhrase("quick brown"), sqWord("fox")}}},
		{in: `"single"`, want: searchQuery{Terms: []postgres.SearchTerm{sqWord("single")}}},
		{in: `"unclosed phrase`, want: searchQuery{Terms: []postgres.SearchTerm{sqPhrase("unclosed phrase")}}},
		{in: `cat -dog -"big bird"`, want: searchQuery{Terms: []postgres.SearchTerm{sqWord("cat")},
			ExcludedTerms: []postgres.SearchTerm{sqWord("dog"), sqPhrase("big bird")}}},
		{in: "deploy*", want: searchQuery{Terms: []postgres.SearchTerm{sqPrefix("deploy")}}},
		{in: "-test* x", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("x")}, ExcludedTerms: []postgres.SearchTerm{sqPrefix("test")}}},
		{in: "#Release ##bug -#wontfix", want: searchQuery{Hashtags: []string{"#release", "#bug"}, ExcludedHashtags: []string{"#wontfix"}}},
		{in: "from:@Alice from:bob -from:carol", want: searchQuery{FromUsers: []string{"alice", "bob"}, ExcludedUsers: []string{"carol"}}},
		{in: "in:town-square channel:~Dev -in:random", want: searchQuery{InChannels: []string{"town-square", "dev"}, ExcludedChannels: []string{"random"}}},
		{in: "in: off-topic word", want: searchQuery{InChannels: []string{"off-topic"}, Terms: []postgres.SearchTerm{sqWord("word")}}},
		{in: "FROM:bob", want: searchQuery{FromUsers: []string{"bob"}}},
		{in: "on:2024-03-15", want: searchQuery{Within: []postgres.TimeRange{{From: s15, To: e15}}}},
		{in: "on:2024-3-15", offset: 3600, want: searchQuery{Within: []postgres.TimeRange{{From: s15p, To: e15p}}}},
		{in: "after:2024-03-15 before:2024-03-15", want: searchQuery{Within: []postgres.TimeRange{{From: e15 + 1}, {To: s15 - 1}}}},
		{in: "-on:2024-03-15", want: searchQuery{Outside: []postgres.TimeRange{{From: s15, To: e15}}}},
		{in: "ext:pdf report", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("report")}, Extensions: []string{"pdf"}}},
		{in: "EXT:.PDF -ext:\"txt\" ext: jpg ext:.", want: searchQuery{Extensions: []string{"pdf", "jpg"}, ExcludedExtensions: []string{"txt"}}},
		{in: "* ** -- !!!", want: searchQuery{}},
		{in: "unknown:flag", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("unknown:flag")}}},
		{in: "from:", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("from")}}},
		{in: "o'neil's", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("o'neil's")}}},
		{in: "ünïcödé ДОБРО", want: searchQuery{Terms: []postgres.SearchTerm{sqWord("ünïcödé"), sqWord("добро")}}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseSearch(c.in, c.offset)
			require.Nil(t, err)
			require.Equal(t, c.want, *got)
		})
	}
}

func TestParseSearchRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in     string
		offset int
		id     string
	}{
		{in: strings.Repeat("a", MaxSearchTermsLength+1), id: "api.post.search_posts.terms_too_long.app_error"},
		{in: strings.Repeat("a ", maxSearchParts+1), id: "api.post.search_posts.terms_too_long.app_error"},
		{in: "on:yesterday", id: "api.post.search_posts.invalid_date.app_error"},
		{in: "before:2024-13-01", id: "api.post.search_posts.invalid_date.app_error"},
		{in: "word\xff", id: "api.post.search_posts.invalid_terms.app_error"},
		{in: "word", offset: 90000, id: "api.context.invalid_body_param.app_error"},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			t.Parallel()
			_, err := parseSearch(c.in, c.offset)
			require.NotNil(t, err)
			require.Equal(t, c.id, err.ID)
			require.Equal(t, 400, err.StatusCode)
		})
	}
}

func TestSearchMatches(t *testing.T) {
	t.Parallel()
	q, err := parseSearch(`deploy* "green light" #Release -broken`, 0)
	require.Nil(t, err)
	got := searchMatches(q, "Deploying now: green LIGHT for #release, deployed; not broken")
	require.Equal(t, []string{"Deploying", "green", "LIGHT", "#release", "deployed"}, got)
}

// placeholder matches the parameters of a query.
var placeholder = regexp.MustCompile(`\$(\d+)`)

// checkSQL requires the SQL of a post and a file search to be
// parameterised: each $n names an argument, and the SQL depends only on
// the shape of the search, never on its text.
func checkSQL(t *testing.T, ps postgres.PostSearch, fs postgres.FileSearch) {
	blank := ps
	blank.Terms, blank.ExcludedTerms = blankTerms(ps.Terms), blankTerms(ps.ExcludedTerms)
	blank.Hashtags, blank.ExcludedHashtags = blankWords(ps.Hashtags), blankWords(ps.ExcludedHashtags)
	for _, shape := range []postgres.SearchShape{postgres.ShapePlanned, postgres.ShapeRecent, postgres.ShapeIndexed} {
		sql, args := postgres.SearchPostsShapeSQL(ps, shape)
		blankSQL, _ := postgres.SearchPostsShapeSQL(blank, shape)
		checkParams(t, sql, args, blankSQL)
	}
	blankFiles := fs
	blankFiles.Terms, blankFiles.ExcludedTerms = blankTerms(fs.Terms), blankTerms(fs.ExcludedTerms)
	blankFiles.Extensions, blankFiles.ExcludedExtensions = blankWords(fs.Extensions), blankWords(fs.ExcludedExtensions)
	sql, args := postgres.SearchFilesSQL(fs)
	blankSQL, _ := postgres.SearchFilesSQL(blankFiles)
	checkParams(t, sql, args, blankSQL)
}

// checkParams requires sql to have a placeholder for each of args and to
// be blankSQL, the SQL of the same search with other text.
func checkParams(t *testing.T, sql string, args []any, blankSQL string) {
	maxN := 0
	for _, m := range placeholder.FindAllStringSubmatch(sql, -1) {
		var n int
		_, _ = fmt.Sscan(m[1], &n)
		maxN = max(maxN, n)
	}
	require.Equal(t, len(args), maxN, sql)
	require.Equal(t, blankSQL, sql, "search text reached the SQL")
}

func blankTerms(ts []postgres.SearchTerm) []postgres.SearchTerm {
	out := make([]postgres.SearchTerm, len(ts))
	for i, t := range ts {
		out[i] = postgres.SearchTerm{Kind: t.Kind, Text: "x"}
	}
	return out
}

func blankWords(ws []string) []string {
	out := make([]string, len(ws))
	for i := range ws {
		out[i] = "x"
	}
	return out
}

func searchFor(q *searchQuery, or bool) (postgres.PostSearch, postgres.FileSearch) {
	f := postgres.SearchFilter{ChannelIDs: []string{"c"}, Terms: q.Terms, ExcludedTerms: q.ExcludedTerms, OrTerms: or,
		FromUserIDs: q.FromUsers, ExcludedUserIDs: q.ExcludedUsers, Within: q.Within, Outside: q.Outside, Limit: 61}
	return postgres.PostSearch{SearchFilter: f, Hashtags: q.Hashtags, ExcludedHashtags: q.ExcludedHashtags},
		postgres.FileSearch{SearchFilter: f, Extensions: q.Extensions, ExcludedExtensions: q.ExcludedExtensions}
}

// FuzzParseSearch: the parser never panics; it refuses with a 400 or
// yields terms that each hold a word character, and a query whose SQL is
// parameterised.
func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{`hello "big world" -x from:a in:b on:2024-1-2 #tag pre*`, `"`, `-"`, `-`, `:`,
		`from: from:`, `in:"a b"`, `ext:pdf -ext:.TXT report.pdf`, `'; DROP TABLE posts; --`, `a:* | !b & (c)`, `\'\\`, "\x00", `##`, `-#-`, `"a" "b`} {
		f.Add(s, 0, false)
	}
	f.Fuzz(func(t *testing.T, in string, offset int, or bool) {
		q, err := parseSearch(in, offset)
		if err != nil {
			require.Equal(t, 400, err.StatusCode)
			return
		}
		for _, ts := range [][]postgres.SearchTerm{q.Terms, q.ExcludedTerms} {
			for _, term := range ts {
				require.True(t, hasWordChar(term.Text), "%q", term.Text)
			}
		}
		ps, fs := searchFor(q, or)
		checkSQL(t, ps, fs)
		searchMatches(q, in)
	})
}
