package app

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestMentions(t *testing.T) {
	t.Parallel()
	users := map[string]string{"bob": "B", "bob.smith": "BS", "al_x": "AX", "joe-": "J-", "joe": "J", "a": "A1"}
	cases := []struct {
		msg      string
		ids      []string
		everyone bool
	}{
		{"hello", nil, false},
		{"@bob hi", []string{"B"}, false},
		{"hi @BOB.", []string{"B"}, false},
		{"@bob.smith and @bob", []string{"BS", "B"}, false},
		{"@bob.smith.", []string{"BS"}, false},
		{"@bob.smithers", nil, false},
		{"(@bob)", []string{"B"}, false},
		{"@bob, @bob! @bob?", []string{"B"}, false},
		{"email bob@bob.com", nil, false},
		{"x.@bob", []string{"B"}, false},
		{"_@al_x", []string{"AX"}, false},
		{"@joe- wins", []string{"J-"}, false},
		{"@joe-- wins", []string{"J-"}, false},
		{"@joe: hi", []string{"J"}, false},
		{"@bobé", nil, false},
		{":@bob:", nil, false},
		{"`@bob` inline", nil, false},
		{"```\n@bob\n```\nafter @joe", []string{"J"}, false},
		{"@channel", nil, true},
		{"@ALL.", nil, true},
		{"hey @here, @bob", []string{"B"}, true},
		{"@channels", nil, false},
		{"@", nil, false},
		{"@@bob", nil, false},
		{"@a", []string{"A1"}, false},
		{"@nobody", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.msg, func(t *testing.T) {
			words := mentionWords(tc.msg)
			ids, everyone := resolveMentions(words, users)
			require.Equal(t, tc.ids, ids)
			require.Equal(t, tc.everyone, everyone)
		})
	}
}

func TestMentionLookupsSkipKeywords(t *testing.T) {
	t.Parallel()
	require.Empty(t, mentionLookups(mentionWords("@channel @all @here")))
	require.Equal(t, []string{"bob.", "bob"}, mentionLookups(mentionWords("@bob. @bob")))
}

func TestParseHashtags(t *testing.T) {
	t.Parallel()
	require.Equal(t, "#go #rust-lang", parseHashtags("I like #go, and (#rust-lang)! #1 # ##"))
	require.Equal(t, "#dup", parseHashtags("###dup"))
	long := strings.Repeat("#abcdefghi ", 200)
	got := parseHashtags(long)
	require.LessOrEqual(t, len(got), postHashtagsMaxRunes)
	require.False(t, strings.HasSuffix(got, " "))
}

func FuzzParseMentions(f *testing.F) {
	for _, s := range []string{"@bob hi", "@channel.", "x.@a-b_c.", "```\n@x\n```", "`@y`", ":@z:", "@@", "@é", "a@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		words := mentionWords(msg)
		require.LessOrEqual(t, len(words), maxMentionWords)
		for _, names := range words {
			require.NotEmpty(t, names)
			for i, n := range names {
				require.True(t, validMentionName(n), "%q", n)
				require.True(t, utf8.ValidString(n))
				// Candidates are the word with trailing characters removed.
				if i > 0 {
					require.True(t, strings.HasPrefix(names[i-1], n), "%q then %q", names[i-1], n)
				}
			}
		}
		lookups := mentionLookups(words)
		users := map[string]string{}
		for _, n := range lookups {
			require.False(t, channelWideMentions[n])
			users[n] = "id-" + n
		}
		ids, _ := resolveMentions(words, users)
		seen := map[string]bool{}
		for _, id := range ids {
			require.False(t, seen[id], "duplicate %s", id)
			seen[id] = true
			require.Contains(t, users, strings.TrimPrefix(id, "id-"))
		}
		// Without '@' nothing is mentioned.
		if !strings.Contains(msg, "@") {
			require.Empty(t, words)
		}
		_ = parseHashtags(msg)
	})
}
