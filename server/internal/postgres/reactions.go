package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// ErrTooManyReactions is returned by SaveReaction when the post already
// carries the maximum number of distinct emojis.
var ErrTooManyReactions = errors.New("too many distinct reactions")

const reactionColumns = `r.user_id, r.post_id, r.emoji_name, r.create_at, r.channel_id`

func scanReaction(row pgx.Row) (*model.Reaction, error) {
	r := &model.Reaction{}
	if err := row.Scan(&r.UserID, &r.PostID, &r.EmojiName, &r.CreateAt, &r.ChannelID); err != nil {
		return nil, mapErr(err)
	}
	// Reactions are removed, not soft-deleted, so a stored one was last
	// changed when it was made.
	r.UpdateAt = r.CreateAt
	return r, nil
}

// SaveReaction stores r (CreateAt and ChannelID set) and marks its post as
// having reactions, in one transaction. Saving a reaction that exists
// changes nothing: r is filled from the stored one and created is false.
// A new emoji on a post that already has maxEmojis distinct ones fails
// with ErrTooManyReactions.
func (s *Store) SaveReaction(ctx context.Context, r *model.Reaction, maxEmojis int) (created bool, err error) {
	const insert = `INSERT INTO reactions (post_id, user_id, emoji_name, channel_id, create_at)
	SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint
	WHERE EXISTS (SELECT 1 FROM reactions e WHERE e.post_id = $1 AND e.emoji_name = $3)
		OR (SELECT count(DISTINCT e.emoji_name) FROM reactions e WHERE e.post_id = $1) < $6
	ON CONFLICT (post_id, user_id, emoji_name) DO NOTHING
	RETURNING create_at`
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		var at int64
		err := tx.QueryRow(ctx, insert, r.PostID, r.UserID, r.EmojiName, r.ChannelID, r.CreateAt, maxEmojis).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			prev, err := scanReaction(tx.QueryRow(ctx, `SELECT `+reactionColumns+` FROM reactions r
				WHERE r.post_id = $1 AND r.user_id = $2 AND r.emoji_name = $3`, r.PostID, r.UserID, r.EmojiName))
			if errors.Is(err, ErrNotFound) {
				return ErrTooManyReactions
			}
			if err != nil {
				return err
			}
			*r = *prev
			return nil
		}
		if err != nil {
			return err
		}
		created = true
		if _, err := tx.Exec(ctx, `UPDATE posts SET has_reactions = true, update_at = GREATEST(update_at, $2) WHERE id = $1`,
			r.PostID, r.CreateAt); err != nil {
			return err
		}
		return bumpPostVersion(ctx, tx, r.ChannelID)
	})
	if err != nil {
		return false, fmt.Errorf("reactions: save: %w", mapErr(err))
	}
	r.UpdateAt = r.CreateAt
	return created, nil
}

// DeleteReaction removes a reaction and updates its post's has_reactions,
// in one transaction. It reports whether there was such a reaction; r is
// filled from the removed one.
func (s *Store) DeleteReaction(ctx context.Context, r *model.Reaction, now int64) (deleted bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		prev, err := scanReaction(tx.QueryRow(ctx, `DELETE FROM reactions r
			WHERE r.post_id = $1 AND r.user_id = $2 AND r.emoji_name = $3 RETURNING `+reactionColumns,
			r.PostID, r.UserID, r.EmojiName))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		*r = *prev
		deleted = true
		if _, err := tx.Exec(ctx, `UPDATE posts SET update_at = GREATEST(update_at, $2),
			has_reactions = EXISTS (SELECT 1 FROM reactions e WHERE e.post_id = $1) WHERE id = $1`, r.PostID, now); err != nil {
			return err
		}
		return bumpPostVersion(ctx, tx, r.ChannelID)
	})
	if err != nil {
		return false, fmt.Errorf("reactions: delete: %w", mapErr(err))
	}
	return deleted, nil
}

// ReactionsForPosts returns the reactions to the given posts, oldest
// first, keyed by post id; posts without reactions have no key.
func (s *Store) ReactionsForPosts(ctx context.Context, postIDs []string) (map[string][]*model.Reaction, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reactionColumns+` FROM reactions r
		WHERE r.post_id = ANY($1) ORDER BY r.create_at, r.user_id, r.emoji_name`, postIDs)
	if err != nil {
		return nil, fmt.Errorf("reactions: for posts: %w", mapErr(err))
	}
	defer rows.Close()
	out := map[string][]*model.Reaction{}
	for rows.Next() {
		r, err := scanReaction(rows)
		if err != nil {
			return nil, fmt.Errorf("reactions: for posts: %w", err)
		}
		out[r.PostID] = append(out[r.PostID], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reactions: for posts: %w", mapErr(err))
	}
	return out, nil
}
