package app

import (
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// Limits of a search string. Past them the search is refused with a 400
// rather than turned into a query whose cost grows with the input.
const (
	// MaxSearchTermsLength is the longest search string, in bytes.
	MaxSearchTermsLength = 1024
	// maxSearchParts bounds the words, phrases and flags of one search.
	maxSearchParts = 32
	// maxTimeZoneOffset bounds time_zone_offset (seconds) to a day.
	maxTimeZoneOffset = 24 * 60 * 60
)

// searchQuery is a parsed search string (Mattermost's search syntax):
// plain words, "quoted phrases", trailing-* prefixes and #hashtags, each
// possibly excluded with a leading -, and the flags from:, in: (also
// channel:), before:, after:, on: and ext:, also excludable.
type searchQuery struct {
	Terms, ExcludedTerms         []postgres.SearchTerm
	Hashtags, ExcludedHashtags   []string // lower-case, with the #
	FromUsers, ExcludedUsers     []string // lower-case usernames, without @
	InChannels, ExcludedChannels []string // lower-case names, without ~
	// Within must all hold; Outside must all fail.
	Within, Outside []postgres.TimeRange
	// Extensions filter file search, lower-case without the dot; post
	// search ignores them, as Mattermost's does.
	Extensions, ExcludedExtensions []string
}

// empty reports whether q has neither terms nor filters that apply to
// what is searched (ext: applies only to files): such a search finds
// nothing, as in Mattermost (one cannot list every post by searching for
// "*").
func (q *searchQuery) empty(files bool) bool {
	n := len(q.Terms) + len(q.ExcludedTerms) + len(q.Hashtags) + len(q.ExcludedHashtags) +
		len(q.FromUsers) + len(q.ExcludedUsers) + len(q.InChannels) + len(q.ExcludedChannels) +
		len(q.Within) + len(q.Outside)
	if files {
		n += len(q.Extensions) + len(q.ExcludedExtensions)
	}
	return n == 0
}

// The word clean-up of Mattermost's model.ParseSearchParams: surrounding
// punctuation goes (a trailing * stays, for prefixes), and repeated #s
// become one.
var (
	searchPuncStart   = regexp.MustCompile(`^[^\pL\pN\s#"]+`)
	searchPuncEnd     = regexp.MustCompile(`[^\pL\pM\pN\s*"]+$`)
	searchHashStart   = regexp.MustCompile(`^#{2,}`)
	searchValidHashRE = regexp.MustCompile(`^(#\pL[\pL\pN\-_.]*[\pL\pN])$`)
)

var searchFlagNames = map[string]string{
	"from": "from", "in": "in", "channel": "in", "before": "before", "after": "after", "on": "on", "ext": "ext",
}

func errSearch(id, msg string) *model.AppError {
	return model.NewAppError("app.parse_search", id, http.StatusBadRequest, msg)
}

// hasWordChar reports whether s holds a letter or digit: the text search
// parser makes no lexeme of anything else, and an empty text query
// matches nothing.
func hasWordChar(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
}

// splitSearchWords splits text into words and "quoted phrases" (a - just
// before the opening quote stays with the phrase). An unclosed quote runs
// to the end.
func splitSearchWords(text string) []string {
	var out []string
	for {
		i := strings.IndexByte(text, '"')
		if i < 0 {
			return append(out, strings.Fields(text)...)
		}
		start := i
		if i > 0 && text[i-1] == '-' && (i == 1 || isSpaceByte(text[i-2])) {
			start = i - 1
		}
		out = append(out, strings.Fields(text[:start])...)
		end := strings.IndexByte(text[i+1:], '"')
		if end < 0 {
			return append(out, text[start:])
		}
		out = append(out, text[start:i+1+end+1])
		text = text[i+1+end+1:]
	}
}

func isSpaceByte(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v'
}

// parseSearchDate reads a YYYY-MM-DD date (single-digit month and day
// allowed, as Mattermost pads them).
func parseSearchDate(v string) (time.Time, bool) {
	parts := strings.Split(v, "-")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	for i, p := range parts {
		if len(p) == 1 {
			parts[i] = "0" + p
		}
	}
	d, err := time.Parse("2006-01-02", strings.Join(parts, "-"))
	return d, err == nil
}

// dayBounds returns the first and last millisecond of day d in the zone
// offset seconds east of UTC.
func dayBounds(d time.Time, offset int) (start, end int64) {
	z := time.FixedZone("search", offset)
	s := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, z)
	return s.UnixMilli(), s.AddDate(0, 0, 1).UnixMilli() - 1
}

// parseSearch parses a search string. tzOffset is the searcher's time
// zone in seconds east of UTC; dates are days in that zone. It returns a
// 400 for input it cannot turn into a query.
func parseSearch(text string, tzOffset int) (*searchQuery, *model.AppError) {
	if len(text) > MaxSearchTermsLength {
		return nil, errSearch("api.post.search_posts.terms_too_long.app_error",
			"The search is too long.").Detail("at most %d bytes", MaxSearchTermsLength)
	}
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return nil, errSearch("api.post.search_posts.invalid_terms.app_error", "The search is not valid UTF-8 text.")
	}
	if tzOffset < -maxTimeZoneOffset || tzOffset > maxTimeZoneOffset {
		return nil, model.ErrInvalidBody("app.parse_search", "time_zone_offset")
	}
	words := splitSearchWords(strings.TrimSpace(text))
	if len(words) > maxSearchParts {
		return nil, errSearch("api.post.search_posts.terms_too_long.app_error",
			"The search has too many words.").Detail("at most %d words and flags", maxSearchParts)
	}
	q := &searchQuery{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		exclude := strings.HasPrefix(w, "-")
		body := strings.TrimPrefix(w, "-")
		if strings.HasPrefix(body, `"`) {
			q.addPhrase(body, exclude)
			continue
		}
		if colon := strings.IndexByte(body, ':'); colon > 0 {
			if name, ok := searchFlagNames[strings.ToLower(body[:colon])]; ok {
				value := body[colon+1:]
				if value == "" && i+1 < len(words) {
					i++
					value = words[i]
				}
				if value != "" {
					if err := q.addFlag(name, value, exclude, tzOffset); err != nil {
						return nil, err
					}
					continue
				}
			}
		}
		q.addWord(w, exclude)
	}
	return q, nil
}

func (q *searchQuery) addPhrase(body string, exclude bool) {
	text := strings.TrimSpace(strings.Trim(body, `"`))
	if !hasWordChar(text) {
		return
	}
	t := postgres.SearchTerm{Kind: postgres.TermPhrase, Text: strings.ToLower(text)}
	if len(strings.Fields(text)) == 1 {
		t.Kind = postgres.TermWord
	}
	if exclude {
		q.ExcludedTerms = append(q.ExcludedTerms, t)
	} else {
		q.Terms = append(q.Terms, t)
	}
}

func (q *searchQuery) addWord(w string, exclude bool) {
	w = searchPuncStart.ReplaceAllString(w, "")
	w = searchPuncEnd.ReplaceAllString(w, "")
	w = strings.Trim(w, `"`)
	w = searchHashStart.ReplaceAllString(w, "#")
	w = strings.ToLower(w)
	if searchValidHashRE.MatchString(w) {
		if exclude {
			q.ExcludedHashtags = append(q.ExcludedHashtags, w)
		} else {
			q.Hashtags = append(q.Hashtags, w)
		}
		return
	}
	t := postgres.SearchTerm{Kind: postgres.TermWord, Text: w}
	if strings.HasSuffix(w, "*") {
		// Only letters, digits and marks make a prefix: the rest would
		// split the word into several lexemes anyway.
		t.Kind = postgres.TermPrefix
		t.Text = strings.Map(func(r rune) rune {
			if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
				return r
			}
			return ' '
		}, w)
		t.Text = strings.Join(strings.Fields(t.Text), " ")
	}
	if !hasWordChar(t.Text) {
		return
	}
	if exclude {
		q.ExcludedTerms = append(q.ExcludedTerms, t)
	} else {
		q.Terms = append(q.Terms, t)
	}
}

func (q *searchQuery) addFlag(name, value string, exclude bool, tzOffset int) *model.AppError {
	value = strings.ToLower(strings.Trim(value, `"`))
	switch name {
	case "from":
		value = strings.TrimPrefix(value, "@")
		if exclude {
			q.ExcludedUsers = append(q.ExcludedUsers, value)
		} else {
			q.FromUsers = append(q.FromUsers, value)
		}
	case "in":
		value = strings.TrimPrefix(value, "~")
		if exclude {
			q.ExcludedChannels = append(q.ExcludedChannels, value)
		} else {
			q.InChannels = append(q.InChannels, value)
		}
	case "ext":
		value = strings.TrimLeft(value, ".")
		if value == "" {
			break
		}
		if exclude {
			q.ExcludedExtensions = append(q.ExcludedExtensions, value)
		} else {
			q.Extensions = append(q.Extensions, value)
		}
	default:
		d, ok := parseSearchDate(value)
		if !ok {
			return errSearch("api.post.search_posts.invalid_date.app_error",
				"Dates in a search are written YYYY-MM-DD.").Detail("%s:%s", name, value)
		}
		start, end := dayBounds(d, tzOffset)
		var r postgres.TimeRange
		switch name {
		case "after": // strictly after the day, as in Mattermost
			r.From = end + 1
		case "before": // strictly before the day
			r.To = start - 1
		case "on":
			r.From, r.To = start, end
		}
		if exclude {
			q.Outside = append(q.Outside, r)
		} else {
			q.Within = append(q.Within, r)
		}
	}
	return nil
}

// searchMatches returns the words of message that the search terms and
// hashtags of q match, in message order and without repeats, for clients
// to highlight (PostSearchResults.matches).
func searchMatches(q *searchQuery, message string) []string {
	words := strings.FieldsFunc(message, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '#' || r == '_' || r == '-')
	})
	want := map[string]bool{}
	var prefixes []string
	for _, t := range q.Terms {
		for _, f := range strings.FieldsFunc(t.Text, func(r rune) bool {
			return !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r))
		}) {
			if t.Kind == postgres.TermPrefix {
				prefixes = append(prefixes, f)
			} else {
				want[f] = true
			}
		}
	}
	for _, h := range q.Hashtags {
		want[h] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, w := range words {
		lw := strings.ToLower(w)
		match := want[lw] || want[strings.Trim(lw, "#-_")]
		for _, p := range prefixes {
			if match {
				break
			}
			match = strings.HasPrefix(strings.TrimLeft(lw, "#-_"), p)
		}
		if match && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}
