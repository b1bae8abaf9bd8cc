package app

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func TestMentions(t *testing.T) {
	t.Parallel()
	users := map[string]string{"bob": "B", "bob.smith": "BS", "al_x": "AX", "joe-": "J-", "joe": "J", "a": "A1"}
	cases := []struct {
		msg      string
		ids      []string
		everyone wideMention
	}{
		{"hello", nil, wideNone},
		{"@bob hi", []string{"B"}, wideNone},
		{"hi @BOB.", []string{"B"}, wideNone},
		{"@bob.smith and @bob", []string{"BS", "B"}, wideNone},
		{"@bob.smith.", []string{"BS"}, wideNone},
		{"@bob.smithers", nil, wideNone},
		{"(@bob)", []string{"B"}, wideNone},
		{"@bob, @bob! @bob?", []string{"B"}, wideNone},
		{"email bob@bob.com", nil, wideNone},
		{"x.@bob", []string{"B"}, wideNone},
		{"_@al_x", []string{"AX"}, wideNone},
		{"@joe- wins", []string{"J-"}, wideNone},
		{"@joe-- wins", []string{"J-"}, wideNone},
		{"@joe: hi", []string{"J"}, wideNone},
		{"@bobé", nil, wideNone},
		{":@bob:", nil, wideNone},
		{"`@bob` inline", nil, wideNone},
		{"```\n@bob\n```\nafter @joe", []string{"J"}, wideNone},
		{"@channel", nil, wideAll},
		{"@ALL.", nil, wideAll},
		{"hey @here, @bob", []string{"B"}, wideHere},
		{"@here and @channel", nil, wideAll},
		{"@channels", nil, wideNone},
		{"@", nil, wideNone},
		{"@@bob", nil, wideNone},
		{"@a", []string{"A1"}, wideNone},
		{"@nobody", nil, wideNone},
	}
	for _, tc := range cases {
		t.Run(tc.msg, func(t *testing.T) {
			for _, withKeywords := range []bool{false, true} {
				tokens := mentionTokens(tc.msg, withKeywords)
				ids, everyone := resolveMentions(tokens, users, nil)
				require.Equal(t, tc.ids, ids)
				require.Equal(t, tc.everyone, everyone)
			}
		})
	}
}

func TestMentionKeywords(t *testing.T) {
	t.Parallel()
	kw := mentionKeywords{}
	kw.add("K1", "Alice", model.StringMap{"mention_keys": " Deploy , ops-team,,@oncall", "first_name": "true"})
	kw.add("K2", "Bob", model.StringMap{"mention_keys": "deploy", "first_name": "false"})
	kw.add("K3", "carol", model.StringMap{"first_name": "true"})
	kw.add("K4", "", model.StringMap{"first_name": "true", "mention_keys": ""})
	users := map[string]string{"dave": "D"}
	cases := []struct {
		msg string
		ids []string
	}{
		{"nothing here", nil},
		{"DEPLOY now", []string{"K1", "K2"}},
		{"we deploy.", []string{"K1", "K2"}},
		{"pre-deploy: check", []string{"K1", "K2"}},
		{"deployment", nil},
		{"ping ops-team", []string{"K1"}},
		{"ping @oncall and @dave", []string{"K1", "D"}},
		{"Alice?", []string{"K1"}},
		{"alice", nil}, // a capitalised first name matches exactly
		{"Bob", nil},   // first_name is off
		{"CAROL and carol", []string{"K3"}},
		{"`deploy` is code", nil},
		{":deploy: is an emoji", nil},
	}
	for _, tc := range cases {
		t.Run(tc.msg, func(t *testing.T) {
			ids, _ := resolveMentions(mentionTokens(tc.msg, true), users, kw)
			require.Equal(t, tc.ids, ids)
		})
	}
	// Without keywords only words holding '@' are looked at.
	require.Empty(t, mentionTokens("deploy now", false))
}

func TestMentionLookupsSkipKeywords(t *testing.T) {
	t.Parallel()
	require.Empty(t, mentionLookups(mentionTokens("@channel @all @here", false)))
	require.Equal(t, []string{"bob.", "bob"}, mentionLookups(mentionTokens("@bob. @bob", false)))
	require.Equal(t, []string{"bob"}, mentionLookups(mentionTokens("deploy @bob", true)))
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
	for _, s := range []string{"@bob hi", "@channel.", "x.@a-b_c.", "```\n@x\n```", "`@y`", ":@z:", "@@", "@é", "a@b.c",
		"Deploy now", "pre-deploy: Alice", "ops-team!", "ÉCLAIR éclair"} {
		f.Add(s, "deploy,ops-team, @oncall,éclair", "Alice")
	}
	f.Fuzz(func(t *testing.T, msg, keys, firstName string) {
		kw := mentionKeywords{}
		kw.add("kw-1", firstName, model.StringMap{"mention_keys": keys, "first_name": "true"})
		for k, ids := range kw {
			require.NotEmpty(t, k)
			require.Equal(t, []string{"kw-1"}, slices.Compact(slices.Clone(ids)))
		}
		atTokens := mentionTokens(msg, false)
		tokens := mentionTokens(msg, true)
		require.LessOrEqual(t, len(tokens), maxMentionTokens)
		require.LessOrEqual(t, len(atTokens), len(tokens))
		for _, tok := range tokens {
			require.NotEmpty(t, tok.alts)
			for i, w := range tok.alts {
				require.NotEmpty(t, w)
				require.True(t, utf8.ValidString(w) || !utf8.ValidString(msg))
				require.True(t, strings.Contains(msg, w) || strings.ContainsAny(msg, "`~"), "%q", w)
				// Alternatives are the word with trailing characters removed.
				if i > 0 {
					require.True(t, strings.HasPrefix(tok.alts[i-1], w), "%q then %q", tok.alts[i-1], w)
				}
			}
			for _, w := range tok.parts {
				require.NotEmpty(t, w)
			}
		}
		// The usernames to look up are the same with or without keywords,
		// valid, and never a channel-wide word.
		lookups := mentionLookups(tokens)
		require.Equal(t, mentionLookups(atTokens), lookups)
		users := map[string]string{}
		for _, n := range lookups {
			require.True(t, validMentionName(n), "%q", n)
			require.Equal(t, wideNone, channelWideMentions[n])
			users[n] = "id-" + n
		}
		ids, everyone := resolveMentions(tokens, users, kw)
		seen := map[string]bool{}
		for _, id := range ids {
			require.False(t, seen[id], "duplicate %s", id)
			seen[id] = true
			if id != "kw-1" {
				require.Contains(t, users, strings.TrimPrefix(id, "id-"))
			}
		}
		// Keywords only add mentions: the @-mentions stay the same.
		atIDs, atEveryone := resolveMentions(atTokens, users, nil)
		require.Equal(t, atEveryone, everyone)
		for _, id := range atIDs {
			require.True(t, seen[id], "%s lost with keywords", id)
		}
		// Without '@' nothing but keywords is mentioned.
		if !strings.Contains(msg, "@") {
			require.Empty(t, atTokens)
			require.Equal(t, wideNone, everyone)
			for _, id := range ids {
				require.Equal(t, "kw-1", id)
			}
		}
		_ = parseHashtags(msg)
	})
}
