package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// SearchTermKind says how a search term matches.
type SearchTermKind int

// The kinds of search term.
const (
	// TermWord matches the words of Text (all of them).
	TermWord SearchTermKind = iota
	// TermPhrase matches the words of Text next to each other, in order.
	TermPhrase
	// TermPrefix matches words that start with Text.
	TermPrefix
)

// SearchTerm is one word, phrase or prefix of a search.
type SearchTerm struct {
	Kind SearchTermKind
	Text string
}

// TimeRange bounds create_at, both ends inclusive; 0 leaves an end open.
type TimeRange struct{ From, To int64 }

// SearchFilter is what post and file searches share: where to look, the
// terms, the authors, the dates and the page. Every value reaches the
// database as a parameter; only the shape of the search (how many terms
// of which kind) shapes the SQL.
type SearchFilter struct {
	// ChannelIDs are the channels to search: the caller has decided the
	// searcher may read them all. Empty finds nothing.
	ChannelIDs []string
	// Terms must all match (any, with OrTerms); ExcludedTerms none.
	Terms, ExcludedTerms []SearchTerm
	OrTerms              bool
	// FromUserIDs, if any, restrict to posts (files) by those users.
	FromUserIDs, ExcludedUserIDs []string
	// Within must all hold, Outside must all fail.
	Within, Outside []TimeRange
	Offset, Limit   int
}

// PostSearch is a full-text search of posts.
type PostSearch struct {
	SearchFilter
	// Hashtags are lower-case, with the #, matched against whole stored
	// hashtags; they combine with Terms like a term.
	Hashtags, ExcludedHashtags []string
}

// searchSource is what a search reads: the columns its filters compare
// and the text its terms match.
type searchSource struct {
	channel, user, createAt string
	// vector is the text search vector of the searched text.
	vector string
	// tsquery is the text search query of term t whose parameter is p.
	tsquery func(t SearchTerm, p string) string
}

var postSource = searchSource{channel: "p.channel_id", user: "p.user_id", createAt: "p.create_at",
	vector: "p.message_tsv", tsquery: tsquerySQL}

// tsquerySQL is the text search query of one term: built by the database
// from a parameter, so no search text is ever part of the SQL.
func tsquerySQL(t SearchTerm, p string) string {
	switch t.Kind {
	case TermPhrase:
		return `phraseto_tsquery('simple', ` + p + `)`
	case TermPrefix:
		return `to_tsquery('simple', ` + p + `)`
	default:
		return `plainto_tsquery('simple', ` + p + `)`
	}
}

// termArg is the parameter of a term: a prefix becomes a quoted lexeme
// with the prefix marker, every quote and backslash escaped, so it is one
// operand of to_tsquery whatever it holds.
func termArg(t SearchTerm) string {
	if t.Kind != TermPrefix {
		return t.Text
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `''`)
	return `'` + r.Replace(t.Text) + `':*`
}

// SearchShape is how a search query reads posts.
type SearchShape int

// The shapes of a search query.
const (
	// ShapePlanned leaves the plan to the database: it walks posts newest
	// first for common words and reads the text index for rare ones.
	ShapePlanned SearchShape = iota
	// ShapeRecent looks only at the newest searchRecentPosts posts,
	// newest first: bounded work whatever the terms.
	ShapeRecent
	// ShapeIndexed finds every match through the indexes (the text
	// index, the channel and author indexes) and sorts them: the OFFSET 0
	// fence keeps the database from walking posts newest first instead.
	ShapeIndexed
)

// searchRecentPosts is how many of the newest posts (of any channel) a
// ShapeRecent query examines: some tens of milliseconds of reading.
const searchRecentPosts = 60000

// searchHedge is how long a phrase search reads the newest posts before
// it also asks the indexes.
const searchHedge = 20 * time.Millisecond

// hasPhrase reports whether s must match a phrase. The text index knows
// words, not their order: the database cannot tell how many posts hold
// the words next to each other, and when it guesses too many it walks
// posts newest first past almost every post of the site looking for a
// page of matches. SearchPosts bounds that walk instead.
func (s PostSearch) hasPhrase() bool {
	for _, t := range s.Terms {
		if t.Kind == TermPhrase {
			return true
		}
	}
	return false
}

// SearchPostsSQL returns the ShapePlanned query for s and its arguments
// (for tests, and EXPLAIN in the search benchmark).
func SearchPostsSQL(s PostSearch) (string, []any) {
	return SearchPostsShapeSQL(s, ShapePlanned)
}

// conds returns the conditions of f on src, with arg adding a
// parameter. alsoMatch are conditions that count as terms: they must
// hold with the terms, or, with OrTerms, one of them or a term must.
func (f SearchFilter) conds(src searchSource, arg func(any) string, alsoMatch ...string) []string {
	where := []string{src.channel + ` = ANY(` + arg(f.ChannelIDs) + `::text[])`}
	var match []string
	if len(f.Terms) > 0 {
		qs := make([]string, len(f.Terms))
		op := ` && `
		if f.OrTerms {
			op = ` || `
		}
		for i, t := range f.Terms {
			qs[i] = src.tsquery(t, arg(termArg(t)))
		}
		match = append(match, src.vector+` @@ (`+strings.Join(qs, op)+`)`)
	}
	match = append(match, alsoMatch...)
	if len(match) > 0 {
		if f.OrTerms {
			where = append(where, `(`+strings.Join(match, ` OR `)+`)`)
		} else {
			where = append(where, match...)
		}
	}
	for _, t := range f.ExcludedTerms {
		where = append(where, `NOT `+src.vector+` @@ `+src.tsquery(t, arg(termArg(t))))
	}
	if len(f.FromUserIDs) > 0 {
		where = append(where, src.user+` = ANY(`+arg(f.FromUserIDs)+`::text[])`)
	}
	if len(f.ExcludedUserIDs) > 0 {
		where = append(where, src.user+` <> ALL(`+arg(f.ExcludedUserIDs)+`::text[])`)
	}
	rangeSQL := func(r TimeRange) string {
		var c []string
		if r.From != 0 {
			c = append(c, src.createAt+` >= `+arg(r.From)+`::bigint`)
		}
		if r.To != 0 {
			c = append(c, src.createAt+` <= `+arg(r.To)+`::bigint`)
		}
		if len(c) == 0 {
			return `true`
		}
		return strings.Join(c, ` AND `)
	}
	for _, r := range f.Within {
		where = append(where, rangeSQL(r))
	}
	for _, r := range f.Outside {
		where = append(where, `NOT (`+rangeSQL(r)+`)`)
	}
	return where
}

// sqlArgs collects the parameters of a query.
type sqlArgs []any

// add adds parameter v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// SearchPostsShapeSQL returns the query of shape shape for s and its
// arguments. Every shape has the same conditions and the same order.
func SearchPostsShapeSQL(s PostSearch, shape SearchShape) (string, []any) {
	var args sqlArgs
	arg := args.add
	var tagMatch []string
	const tags = `string_to_array(lower(p.hashtags), ' ')`
	if len(s.Hashtags) > 0 {
		op := ` @> `
		if s.OrTerms {
			op = ` && `
		}
		tagMatch = append(tagMatch, `(p.hashtags <> '' AND `+tags+op+arg(s.Hashtags)+`::text[])`)
	}
	where := append([]string{`p.delete_at = 0`, `p.type NOT LIKE 'system\_%'`}, s.conds(postSource, arg, tagMatch...)...)
	if len(s.ExcludedHashtags) > 0 {
		where = append(where, `NOT (p.hashtags <> '' AND `+tags+` && `+arg(s.ExcludedHashtags)+`::text[])`)
	}
	cond := strings.Join(where, ` AND `)
	var from string
	switch shape {
	case ShapeRecent:
		from = `(SELECT * FROM posts WHERE delete_at = 0 ORDER BY create_at DESC, id DESC LIMIT ` +
			arg(searchRecentPosts) + `) p WHERE ` + cond
	case ShapeIndexed:
		from = `(SELECT * FROM posts p WHERE ` + cond + ` OFFSET 0) p`
	default:
		from = `posts p WHERE ` + cond
	}
	q := `SELECT ` + postColumns + ` FROM ` + from +
		` ORDER BY p.create_at DESC, p.id DESC LIMIT ` + arg(s.Limit) + ` OFFSET ` + arg(s.Offset)
	return q, args
}

// SearchPosts returns a page of the posts matching s, newest first.
func (s *Store) SearchPosts(ctx context.Context, ps PostSearch) ([]*model.Post, error) {
	if len(ps.ChannelIDs) == 0 || ps.Limit <= 0 {
		return nil, nil
	}
	if !ps.hasPhrase() {
		return s.searchPostsShape(ctx, ps, ShapePlanned)
	}
	// A full page from the newest posts is the answer (they hold the
	// newest matches): a common phrase fills one quickly. When the phrase
	// is too rare to, the indexes find all its matches. That query starts
	// once the first has run for searchHedge (or has ended short of a
	// page), and whichever answers first wins: common phrases cost no
	// second query, rare ones do not wait for the walk to end.
	type result struct {
		posts []*model.Post
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := func(shape SearchShape, out chan<- result) {
		posts, err := s.searchPostsShape(ctx, ps, shape)
		out <- result{posts, err}
	}
	recent, indexed := make(chan result, 1), make(chan result, 1)
	go run(ShapeRecent, recent)
	hedge := time.NewTimer(searchHedge)
	defer hedge.Stop()
	var indexedDone <-chan result // nil until the indexed query starts
	startIndexed := func() {
		if indexedDone == nil {
			go run(ShapeIndexed, indexed)
			indexedDone = indexed
		}
	}
	recentDone := (<-chan result)(recent)
	for {
		select {
		case <-hedge.C:
			startIndexed()
		case r := <-recentDone:
			if r.err == nil && len(r.posts) == ps.Limit {
				return r.posts, nil
			}
			recentDone = nil
			startIndexed()
		case r := <-indexedDone:
			return r.posts, r.err
		}
	}
}

func (s *Store) searchPostsShape(ctx context.Context, ps PostSearch, shape SearchShape) ([]*model.Post, error) {
	sql, args := SearchPostsShapeSQL(ps, shape)
	// An unnamed statement is planned with the actual values: how common
	// a word is decides between reading the text index and walking posts
	// newest first, and a cached generic plan could not tell.
	args = append([]any{pgx.QueryExecModeExec}, args...)
	posts, err := collectPosts(s.pool.Query(ctx, sql, args...))
	if err != nil {
		return nil, fmt.Errorf("posts: search: %w", err)
	}
	return posts, nil
}

// SearchableChannel is a channel a user may search, for resolving in:.
type SearchableChannel struct {
	ID, Name, TeamID string
}

// SearchableChannels returns the channels userID is a member of in team
// teamID and their direct and group messages (every team when teamID is
// ""): Mattermost searches only channels the searcher belongs to.
// Archived channels are included only with includeDeleted.
func (s *Store) SearchableChannels(ctx context.Context, userID, teamID string, includeDeleted bool) ([]SearchableChannel, error) {
	const q = `SELECT c.id, c.name, c.team_id FROM channel_members cm JOIN channels c ON c.id = cm.channel_id
	WHERE cm.user_id = $1 AND ($2 = '' OR c.team_id = $2 OR c.team_id = '') AND ($3 OR c.delete_at = 0)`
	rows, err := s.pool.Query(ctx, q, userID, teamID, includeDeleted)
	if err != nil {
		return nil, fmt.Errorf("posts: searchable channels: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SearchableChannel, error) {
		var c SearchableChannel
		err := r.Scan(&c.ID, &c.Name, &c.TeamID)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("posts: searchable channels: %w", mapErr(err))
	}
	return out, nil
}

// UserIDsForSearch maps usernames to user ids, deactivated users
// included (their posts stay searchable). Unknown names are left out.
func (s *Store) UserIDsForSearch(ctx context.Context, names []string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT username, id FROM users WHERE username = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("posts: search users: %w", mapErr(err))
	}
	defer rows.Close()
	out := make(map[string]string, len(names))
	for rows.Next() {
		var name, id string
		if err := rows.Scan(&name, &id); err != nil {
			return nil, fmt.Errorf("posts: search users: %w", mapErr(err))
		}
		out[name] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("posts: search users: %w", mapErr(err))
	}
	return out, nil
}

// ChannelSearch narrows a channel search or autocomplete within a team.
type ChannelSearch struct {
	TeamID, UserID string
	// Term matches a prefix of the name, of the display name, or of a
	// word of the display name, case-insensitively. "" matches all.
	Term string
	// Public includes the team's public channels; Member includes the
	// channels (any type) UserID belongs to.
	Public, Member bool
	Limit          int
}

// SearchChannels returns the team's unarchived channels matching f, by
// display name.
func (s *Store) SearchChannels(ctx context.Context, f ChannelSearch) ([]*model.Channel, error) {
	const q = `SELECT ` + channelColumns + ` FROM channels c
	WHERE c.team_id = $1 AND c.delete_at = 0
		AND (($2 AND c.type = 'O')
			OR ($3 AND EXISTS (SELECT 1 FROM channel_members cm WHERE cm.channel_id = c.id AND cm.user_id = $4)))
		AND ($5 = '%' OR c.name LIKE $5 OR lower(c.display_name) LIKE $5 OR lower(c.display_name) LIKE '% ' || $5)
	ORDER BY lower(c.display_name), c.name LIMIT $6`
	cs, err := collectChannels(s.pool.Query(ctx, q, f.TeamID, f.Public, f.Member, f.UserID, likePrefix(f.Term), f.Limit))
	if err != nil {
		return nil, fmt.Errorf("channels: search: %w", err)
	}
	return cs, nil
}
