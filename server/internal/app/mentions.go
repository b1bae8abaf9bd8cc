package app

import (
	"regexp"
	"strings"
	"unicode"
)

// Mention parsing follows Mattermost's standard mention parser
// (server/channels/app/mention_parser_standard.go): code is removed, the
// message is split into words of letters, digits and ":.-_@", and a word
// mentions @username when, after trimming leading ":.-_", it is
// "@username" itself, or becomes it once trailing ".-:_" characters are
// stripped one at a time. A word that does not start with '@' but holds
// '.', '-' or ':' is split on them and each part is checked whole.
// Matching ignores case.

// channelWideMentions are the words that mention every member.
var channelWideMentions = map[string]bool{"channel": true, "all": true, "here": true}

// maxMentionWords bounds the work one message can cause.
const maxMentionWords = 500

var (
	codeBlockPattern  = regexp.MustCompile("(?m)^[^\\S\n]*[`~]{3}.*$[\\s\\S]+?(^[^\\S\n]*[`~]{3}$|\\z)")
	inlineCodePattern = regexp.MustCompile("(?m)`+(?s).+?`+")
)

// mentionWords returns the @-words of msg: for each, the names it may
// mention (lower case, without '@'), most specific first. A name is a
// username or one of channel, all, here.
func mentionWords(msg string) [][]string {
	if !strings.Contains(msg, "@") {
		return nil
	}
	if strings.ContainsAny(msg, "`~") {
		msg = codeBlockPattern.ReplaceAllString(msg, " ")
		msg = inlineCodePattern.ReplaceAllString(msg, " ")
	}
	var out [][]string
	for _, word := range strings.FieldsFunc(msg, notWordRune) {
		if len(out) >= maxMentionWords {
			break
		}
		if !strings.Contains(word, "@") {
			continue
		}
		// ":smile:" is an emoji.
		if len(word) > 1 && word[0] == ':' && word[len(word)-1] == ':' {
			continue
		}
		word = strings.TrimLeft(word, ":.-_")
		if strings.HasPrefix(word, "@") {
			var names []string
			for w := word; len(w) > 1; w = w[:len(w)-1] {
				if name := strings.ToLower(w[1:]); validMentionName(name) {
					names = append(names, name)
				}
				if !strings.ContainsRune(".-:_", rune(w[len(w)-1])) {
					break
				}
			}
			if len(names) > 0 {
				out = append(out, names)
			}
			continue
		}
		if !strings.ContainsAny(word, ".-:") {
			continue
		}
		for _, part := range strings.FieldsFunc(word, func(r rune) bool { return r == '.' || r == '-' || r == ':' }) {
			if len(part) > 1 && part[0] == '@' {
				if name := strings.ToLower(part[1:]); validMentionName(name) {
					out = append(out, []string{name})
				}
			}
		}
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

// mentionLookups returns the distinct usernames the words may mention, to
// look up; channel-wide keywords are not included.
func mentionLookups(words [][]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, names := range words {
		for _, n := range names {
			if !channelWideMentions[n] && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// resolveMentions applies the lookup result (username → user id) to the
// words: each word mentions its most specific name that is a known user or
// a channel-wide keyword. It returns the mentioned user ids, without
// duplicates, and whether the message mentions everyone.
func resolveMentions(words [][]string, users map[string]string) (ids []string, everyone bool) {
	seen := map[string]bool{}
	for _, names := range words {
		for _, n := range names {
			if channelWideMentions[n] {
				everyone = true
				break
			}
			if id, ok := users[n]; ok {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
				break
			}
		}
	}
	return ids, everyone
}
