package app

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"unicode"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// Mention parsing follows Mattermost's standard mention parser
// (server/channels/app/mention_parser_standard.go): code is removed, the
// message is split into words of letters, digits and ":.-_@", and each
// word, after trimming leading ":.-_", is checked whole, then with
// trailing ".-:_" characters stripped one at a time, until one of those
// forms mentions someone. A word that does not start with '@' but holds
// '.', '-' or ':' and matched nothing is split on them and each part is
// checked whole. A form mentions:
//   - a user, as "@username" (any case);
//   - every member, as "@channel" or "@all", and the members who are
//     online, as "@here" (any case);
//   - the members who chose it as a keyword: a mention key (notify_props
//     mention_keys, any case) or, with notify_props first_name "true",
//     their first name (exact case, or any case if it is lower case).

// wideMention is how much of a channel a message mentions as a whole.
type wideMention int

const (
	wideNone wideMention = iota
	// wideHere ("@here") mentions the members who are online.
	wideHere
	// wideAll ("@channel", "@all") mentions every member.
	wideAll
)

// channelWideMentions are the words that mention the channel as a whole.
var channelWideMentions = map[string]wideMention{"channel": wideAll, "all": wideAll, "here": wideHere}

// Bounds on the work one message can cause: the words holding '@' (each
// may cost a username lookup), and all words.
const (
	maxMentionWords  = 500
	maxMentionTokens = 50000
)

var (
	codeBlockPattern  = regexp.MustCompile("(?m)^[^\\S\n]*[`~]{3}.*$[\\s\\S]+?(^[^\\S\n]*[`~]{3}$|\\z)")
	inlineCodePattern = regexp.MustCompile("(?m)`+(?s).+?`+")
)

// mentionToken is one word of a message as the parser checks it.
type mentionToken struct {
	// alts are the word and then the word with trailing ".-:_" stripped
	// one at a time, in the message's case; the first that mentions
	// someone wins.
	alts []string
	// parts are the pieces of a word that does not start with '@' split on
	// '.', '-' and ':', each checked alone when no alt mentions anyone.
	parts []string
}

// mentionTokens splits msg into the words that may mention someone. With
// withKeywords false only words holding '@' are returned: nobody in the
// channel has a keyword, so no other word can mention anyone.
func mentionTokens(msg string, withKeywords bool) []mentionToken {
	if !withKeywords && !strings.Contains(msg, "@") {
		return nil
	}
	if strings.ContainsAny(msg, "`~") {
		msg = codeBlockPattern.ReplaceAllString(msg, " ")
		msg = inlineCodePattern.ReplaceAllString(msg, " ")
	}
	var out []mentionToken
	ats := 0
	for _, word := range strings.FieldsFunc(msg, notWordRune) {
		if len(out) >= maxMentionTokens || ats >= maxMentionWords {
			break
		}
		hasAt := strings.Contains(word, "@")
		if !withKeywords && !hasAt {
			continue
		}
		// ":smile:" is an emoji.
		if word[0] == ':' && word[len(word)-1] == ':' {
			continue
		}
		word = strings.TrimLeft(word, ":.-_")
		if word == "" {
			continue
		}
		if hasAt {
			ats++
		}
		t := mentionToken{alts: []string{word}}
		for w := word; len(w) > 1 && strings.ContainsRune(".-:_", rune(w[len(w)-1])); {
			w = w[:len(w)-1]
			t.alts = append(t.alts, w)
		}
		if word[0] != '@' && strings.ContainsAny(word, ".-:") {
			t.parts = strings.FieldsFunc(word, func(r rune) bool { return r == '.' || r == '-' || r == ':' })
		}
		out = append(out, t)
	}
	return out
}

// notWordRune reports whether r separates words.
func notWordRune(r rune) bool {
	return !(r == ':' || r == '.' || r == '-' || r == '_' || r == '@' || unicode.IsLetter(r) || unicode.IsNumber(r))
}

// validMentionName reports whether s could be a username (or a
// channel-wide keyword): lower-case ASCII letters, digits, '.', '-', '_'.
func validMentionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// atName returns the lower-case name an "@name" form may mention, or ""
// if the form cannot be a mention of a user or of the channel.
func atName(w string) string {
	if len(w) < 2 || w[0] != '@' {
		return ""
	}
	name := strings.ToLower(w[1:])
	if !validMentionName(name) {
		return ""
	}
	return name
}

// mentionLookups returns the distinct usernames the tokens may mention,
// to look up; channel-wide keywords are not included.
func mentionLookups(tokens []mentionToken) []string {
	seen := map[string]bool{}
	var out []string
	add := func(w string) {
		if n := atName(w); n != "" && channelWideMentions[n] == wideNone && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, t := range tokens {
		for _, w := range t.alts {
			add(w)
		}
		for _, w := range t.parts {
			add(w)
		}
	}
	return out
}

// mentionKeywords maps the keywords of a channel's members to their ids:
// mention keys in lower case, first names as written.
type mentionKeywords map[string][]string

// add records the keywords a user's notify_props ask for, as Mattermost's
// MentionKeywords.AddUser does.
func (k mentionKeywords) add(userID, firstName string, notify model.StringMap) {
	for _, key := range strings.Split(notify["mention_keys"], ",") {
		if key = strings.ToLower(strings.TrimSpace(key)); key != "" {
			k[key] = append(k[key], userID)
		}
	}
	if notify["first_name"] == "true" && firstName != "" {
		k[firstName] = append(k[firstName], userID)
	}
}

// resolveMentions applies the username lookup (lower-case username →
// user id) and the members' keywords to the tokens. It returns the
// mentioned user ids, without duplicates, and the widest channel-wide
// mention the message makes.
func resolveMentions(tokens []mentionToken, users map[string]string, kw mentionKeywords) (ids []string, wide wideMention) {
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	check := func(w string) bool {
		found := false
		if n := atName(w); n != "" {
			if w := channelWideMentions[n]; w != wideNone {
				wide, found = max(wide, w), true
			} else if id, ok := users[n]; ok {
				add(id)
				found = true
			}
		}
		if len(kw) > 0 {
			kid, ok := kw[strings.ToLower(w)]
			if !ok {
				kid, ok = kw[w] // a first name with capitals
			}
			for _, id := range kid {
				add(id)
			}
			found = found || ok
		}
		return found
	}
	for _, t := range tokens {
		matched := false
		for _, w := range t.alts {
			if check(w) {
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		for _, w := range t.parts {
			check(w)
		}
	}
	return ids, wide
}

// findMentions works out whom a new post in a channel that is not a
// direct message mentions, with one database round trip.
func (a *App) findMentions(ctx context.Context, channelID, senderID, msg string) (postgres.PostMentions, error) {
	var m postgres.PostMentions
	if strings.TrimSpace(msg) == "" {
		return m, nil
	}
	names := mentionLookups(mentionTokens(msg, false))
	users, members, err := a.store.MentionCandidates(ctx, channelID, senderID, names)
	if err != nil {
		return m, err
	}
	var kw mentionKeywords
	if len(members) > 0 {
		kw = mentionKeywords{}
		for _, u := range members {
			kw.add(u.UserID, u.FirstName, u.NotifyProps)
		}
	}
	var wide wideMention
	m.UserIDs, wide = resolveMentions(mentionTokens(msg, len(kw) > 0), users, kw)
	m.ChannelWide, m.Here = wide == wideAll, wide == wideHere
	return m, nil
}

// publishPosted sends the posted event. Each mentioned member gets a copy
// of their own whose mentions list only them, as Mattermost's per-
// connection broadcast hook gives; everyone else in the channel gets the
// common copy, without mentions, encoded once for all of them. Nobody
// learns whom else a post mentioned (a keyword mention would otherwise
// reveal another member's private mention keys).
func (a *App) publishPosted(ctx context.Context, channelID string, data map[string]any, mentioned []string) {
	var omit map[string]bool
	if len(mentioned) > 0 {
		omit = make(map[string]bool, len(mentioned))
	}
	for _, id := range mentioned {
		own := maps.Clone(data)
		b, _ := json.Marshal([]string{id})
		own["mentions"] = string(b)
		a.publish(ctx, &ws.Event{Name: "posted", Data: own, Broadcast: ws.Broadcast{UserID: id, ChannelID: channelID}})
		omit[id] = true
	}
	a.publish(ctx, &ws.Event{Name: "posted", Data: data, Broadcast: ws.Broadcast{ChannelID: channelID, OmitUsers: omit}})
}
