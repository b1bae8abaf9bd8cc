package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
)

// corpusSpec is the shape of the generated chat.
type corpusSpec struct {
	Posts, Channels, Users, Vocab int
	// MinMember and MaxMember bound each user's channel memberships;
	// SearcherChannels is the searcher's.
	MinMember, MaxMember, SearcherChannels int
	Seed                                   uint64
}

// corpus is what the generator made, for building queries.
type corpus struct {
	teamID, teamName string
	users            []string // ids; users[0] is the searcher
	usernames        []string
	channels         []string // ids
	channelNames     []string
	members          [][]int // channel index -> user indexes
	searcherChans    []int
	vocab            []string // by Zipf rank, most common first
	samples          []string // a few generated messages of the searcher's channels
}

const (
	searcherName     = "searcher"
	searcherPassword = "searchbench-password"
	idAlphabet       = "abcdefghijkmnopqrstuwxyz13456789"
)

func newID(r *rand.Rand) string {
	var b [26]byte
	for i := range b {
		b[i] = idAlphabet[r.IntN(len(idAlphabet))]
	}
	return string(b[:])
}

// makeVocab returns n distinct pronounceable words; shorter words get the
// common ranks, as in real language.
func makeVocab(r *rand.Rand, n int) []string {
	cons := []string{"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "ch", "sh", "th", "st", "tr"}
	vows := []string{"a", "e", "i", "o", "u", "ai", "ea", "ou"}
	seen := map[string]bool{}
	out := make([]string, 0, n)
	for len(out) < n {
		syll := 1 + min(len(out)/2000, 3) + r.IntN(2)
		var b strings.Builder
		for range syll {
			b.WriteString(cons[r.IntN(len(cons))])
			b.WriteString(vows[r.IntN(len(vows))])
		}
		if r.IntN(3) == 0 {
			b.WriteString(cons[r.IntN(len(cons))])
		}
		w := b.String()
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	slices.SortStableFunc(out[:min(len(out), 200)], func(a, b string) int { return len(a) - len(b) })
	return out
}

// generate fills an empty, migrated database with the corpus by COPY;
// with a nil conn it only rebuilds the corpus (same spec, same corpus).
// Posts are spread over the last year, oldest first; a message is 3 to 30
// words drawn from a Zipf distribution (s = 1.1) over the vocabulary, and
// one in 40 carries a hashtag.
func generate(ctx context.Context, conn *pgx.Conn, spec corpusSpec, logf func(string, ...any)) (*corpus, error) {
	r := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x5eed))
	c := &corpus{vocab: makeVocab(r, spec.Vocab)}
	now := time.Now().UnixMilli()
	start := now - 365*24*3600*1000

	c.teamID, c.teamName = newID(r), "benchteam"
	hash, err := bcrypt.GenerateFromPassword([]byte(searcherPassword), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	var userRows, teamMemberRows [][]any
	for i := range spec.Users {
		id, name := newID(r), fmt.Sprintf("user%04d", i)
		pw := ""
		if i == 0 {
			name, pw = searcherName, string(hash)
		}
		c.users, c.usernames = append(c.users, id), append(c.usernames, name)
		userRows = append(userRows, []any{id, start, start, name, pw, name + "@example.com"})
		teamMemberRows = append(teamMemberRows, []any{c.teamID, id, start})
	}
	var chanRows [][]any
	for i := range spec.Channels {
		id, name := newID(r), fmt.Sprintf("chan-%03d-%s", i, c.vocab[r.IntN(2000)])
		typ := "O"
		if i%5 == 4 {
			typ = "P"
		}
		c.channels, c.channelNames = append(c.channels, id), append(c.channelNames, name)
		chanRows = append(chanRows, []any{id, start, start, c.teamID, typ, "Channel " + name, name})
	}
	c.members = make([][]int, spec.Channels)
	var memberRows [][]any
	for u := range spec.Users {
		n := spec.MinMember + r.IntN(spec.MaxMember-spec.MinMember+1)
		if u == 0 {
			n = spec.SearcherChannels
		}
		for _, ch := range r.Perm(spec.Channels)[:n] {
			c.members[ch] = append(c.members[ch], u)
			memberRows = append(memberRows, []any{c.channels[ch], c.users[u], start})
			if u == 0 {
				c.searcherChans = append(c.searcherChans, ch)
			}
		}
	}
	for ch := range c.members {
		if len(c.members[ch]) == 0 { // every channel has someone to post
			u := 1 + r.IntN(spec.Users-1)
			c.members[ch] = append(c.members[ch], u)
			memberRows = append(memberRows, []any{c.channels[ch], c.users[u], start})
		}
	}
	for _, t := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", []string{"id", "create_at", "update_at", "username", "password_hash", "email"}, userRows},
		{"teams", []string{"id", "create_at", "update_at", "display_name", "name", "type", "invite_id", "allow_open_invite"},
			[][]any{{c.teamID, start, start, "Bench", c.teamName, "O", newID(r), true}}},
		{"team_members", []string{"team_id", "user_id", "create_at"}, teamMemberRows},
		{"channels", []string{"id", "create_at", "update_at", "team_id", "type", "display_name", "name"}, chanRows},
		{"channel_members", []string{"channel_id", "user_id", "last_update_at"}, memberRows},
	} {
		if conn == nil {
			continue
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
			return nil, fmt.Errorf("copy %s: %w", t.table, err)
		}
	}
	logf("users %d, channels %d, memberships %d", spec.Users, spec.Channels, len(memberRows))

	// Channel activity is itself skewed: a few busy channels, a long tail.
	chanZipf := rand.NewZipf(r, 1.05, 8, uint64(spec.Channels-1))
	chanOrder := r.Perm(spec.Channels)
	wordZipf := rand.NewZipf(r, 1.1, 1, uint64(spec.Vocab-1))
	searcherChan := map[int]bool{}
	for _, ch := range c.searcherChans {
		searcherChan[ch] = true
	}
	step := float64(now-start) / float64(spec.Posts)
	var msg strings.Builder
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= spec.Posts {
			return nil, nil
		}
		ch := chanOrder[chanZipf.Uint64()]
		u := c.members[ch][r.IntN(len(c.members[ch]))]
		msg.Reset()
		n := 3 + r.IntN(28)
		for w := range n {
			if w > 0 {
				msg.WriteByte(' ')
			}
			msg.WriteString(c.vocab[wordZipf.Uint64()])
		}
		tags := ""
		if r.IntN(40) == 0 {
			tags = "#" + c.vocab[100+r.IntN(400)]
			msg.WriteString(" " + tags)
		}
		at := start + int64(float64(i)*step)
		if searcherChan[ch] && len(c.samples) < 2000 && r.IntN(50) == 0 {
			c.samples = append(c.samples, msg.String())
		}
		i++
		if i%200000 == 0 {
			logf("posts %d", i)
		}
		return []any{newID(r), at, at, c.users[u], c.channels[ch], msg.String(), tags}, nil
	})
	if conn == nil {
		for src.Next() {
		}
		return c, src.Err()
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"posts"},
		[]string{"id", "create_at", "update_at", "user_id", "channel_id", "message", "hashtags"}, src); err != nil {
		return nil, fmt.Errorf("copy posts: %w", err)
	}
	return c, nil
}
