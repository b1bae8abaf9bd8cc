package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// KeywordMember is a channel member whose notify_props ask for mentions
// by keyword (mention_keys) or by first name.
type KeywordMember struct {
	UserID      string
	FirstName   string
	NotifyProps model.StringMap
}

// The keyword test is spelled as in the partial index
// users_mention_keywords_idx, so the planner can start from the few users
// who have keywords rather than from every member of a large channel.
const keywordMembersSQL = `SELECT u.id, u.first_name, u.notify_props FROM users u
	JOIN channel_members cm ON cm.user_id = u.id AND cm.channel_id = $1
	WHERE u.delete_at = 0 AND u.id <> $2
		AND (u.notify_props->>'mention_keys' <> '' OR (u.notify_props->>'first_name' = 'true' AND u.first_name <> ''))`

// MentionCandidates returns, in one round trip, what parsing a post's
// mentions needs: the ids of the active users among names (lower-case
// usernames), and the members of the channel other than the sender who
// have mention keywords.
func (s *Store) MentionCandidates(ctx context.Context, channelID, senderID string, names []string) (map[string]string, []KeywordMember, error) {
	b := &pgx.Batch{}
	b.Queue(keywordMembersSQL, channelID, senderID)
	if len(names) > 0 {
		b.Queue(`SELECT username, id FROM users WHERE username = ANY($1) AND delete_at = 0`, names)
	}
	users := map[string]string{}
	var members []KeywordMember
	err := func() error {
		br := s.pool.SendBatch(ctx, b)
		defer br.Close()
		rows, err := br.Query()
		if err != nil {
			return err
		}
		members, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeywordMember, error) {
			var m KeywordMember
			err := r.Scan(&m.UserID, &m.FirstName, &m.NotifyProps)
			return m, err
		})
		if err != nil {
			return err
		}
		if len(names) > 0 {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				var name, id string
				if err := rows.Scan(&name, &id); err != nil {
					rows.Close()
					return err
				}
				users[name] = id
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		return nil, nil, fmt.Errorf("posts: mention candidates: %w", mapErr(err))
	}
	return users, members, nil
}
