package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// ErrInvalidRoot is returned by CreatePost when the root_id of a reply is
// not a live root post of the same channel.
var ErrInvalidRoot = errors.New("invalid root post")

// MaxPostsSince caps the posts a `since` query returns, as Mattermost does.
const MaxPostsSince = 1000

// postColumns selects a post as p. A reply reports its thread's reply
// count, kept on the root, as Mattermost's ReplyCount does.
const postColumns = `p.id, p.create_at, p.update_at, p.edit_at, p.delete_at, p.is_pinned, p.user_id, p.channel_id,
	p.root_id, p.original_id, p.message, p.type, p.props, p.hashtags, p.file_ids, p.pending_post_id,
	p.has_reactions,
	CASE WHEN p.root_id = '' THEN p.reply_count
		ELSE COALESCE((SELECT t.reply_count FROM posts t WHERE t.id = p.root_id), 0) END AS reply_count,
	p.last_reply_at`

// scanPost reads one row of postColumns. props and file_ids are scanned as
// raw JSON so the common empty values cost no decoding.
func scanPost(row pgx.Row) (*model.Post, error) {
	p := &model.Post{}
	var props, files []byte
	err := row.Scan(&p.ID, &p.CreateAt, &p.UpdateAt, &p.EditAt, &p.DeleteAt, &p.IsPinned, &p.UserID, &p.ChannelID,
		&p.RootID, &p.OriginalID, &p.Message, &p.Type, &props, &p.Hashtags, &files, &p.PendingPostID,
		&p.HasReactions, &p.ReplyCount, &p.LastReplyAt)
	if err != nil {
		return nil, mapErr(err)
	}
	if p.Props, err = decodeProps(props); err != nil {
		return nil, fmt.Errorf("post %s: props: %w", p.ID, err)
	}
	if p.FileIDs, err = decodeFileIDs(files); err != nil {
		return nil, fmt.Errorf("post %s: file_ids: %w", p.ID, err)
	}
	return p, nil
}

func decodeProps(b []byte) (map[string]any, error) {
	if len(b) == 0 || bytes.Equal(b, []byte("{}")) {
		return map[string]any{}, nil
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeFileIDs(b []byte) ([]string, error) {
	if len(b) == 0 || bytes.Equal(b, []byte("[]")) {
		return nil, nil
	}
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return nil, err
	}
	return ids, nil
}

func collectPosts(rows pgx.Rows, err error) ([]*model.Post, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []*model.Post
	for rows.Next() {
		p, err := scanPost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, mapErr(rows.Err())
}

// propsJSON encodes props for a jsonb column; nil becomes {}.
func propsJSON(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(m)
}

func fileIDsJSON(ids []string) ([]byte, error) {
	if len(ids) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(ids)
}

// PostMentions says whose mention counters a new post raises.
type PostMentions struct {
	// UserIDs are the explicitly mentioned users; those who are not
	// members of the channel are ignored.
	UserIDs []string
	// Everyone mentions every member but the sender (the other member of
	// a direct message).
	Everyone bool
	// ChannelWide mentions every member but the sender (@channel, @all)
	// who has not turned channel mentions off: user notify_props
	// channel "false", channel member notify_props
	// ignore_channel_mentions "on", or a muted channel (mark_unread
	// "mention") whose ignore_channel_mentions is "default".
	ChannelWide bool
	// Here mentions, as ChannelWide does, the members whose status is
	// online when the post is stored (@here), as Mattermost does.
	Here bool
}

// CreatedPost is the outcome of CreatePost.
type CreatedPost struct {
	// Post is the stored post; for a Duplicate it is the earlier post with
	// the same pending_post_id.
	Post *model.Post
	// Duplicate is set when nothing was written because the sender already
	// created a post with this pending_post_id.
	Duplicate bool
	// Mentioned lists the channel members whose mention count was raised.
	Mentioned []string
	// SenderUsername is the sender's username, read in the same round
	// trip.
	SenderUsername string
}

// The statements of CreatePost run as one batch, which Postgres executes as
// one implicit transaction: either all apply or none. Every statement after
// the insert is guarded by the new post's existence, so a duplicate
// pending_post_id or an invalid root turns the whole batch into a no-op.
const (
	insertPostSQL = `INSERT INTO posts (id, create_at, update_at, user_id, channel_id, root_id, message, type,
		props, hashtags, file_ids, pending_post_id)
	SELECT $1::text, $2::bigint, $2::bigint, $3::text, $4::text, $5::text, $6::text, $7::text,
		$8::jsonb, $9::text, $10::jsonb, $11::text
	WHERE $5::text = '' OR EXISTS (SELECT 1 FROM posts r
		WHERE r.id = $5::text AND r.channel_id = $4::text AND r.root_id = '' AND r.delete_at = 0)
	ON CONFLICT (user_id, pending_post_id) WHERE pending_post_id <> '' DO NOTHING
	RETURNING id`

	// The root's update_at moves so that clients syncing with `since` see
	// its new reply count.
	// The replier joins the thread's participants (once, in the order
	// of first reply).
	bumpRootSQL = `UPDATE posts SET reply_count = reply_count + 1,
		last_reply_at = GREATEST(last_reply_at, $2), update_at = GREATEST(update_at, $2),
		participants = CASE WHEN $4::text = ANY(participants) THEN participants
			ELSE array_append(participants, $4::text) END
	WHERE id = $1 AND EXISTS (SELECT 1 FROM posts n WHERE n.id = $3)
	RETURNING reply_count, last_reply_at`

	bumpChannelSQL = `UPDATE channels SET last_post_at = GREATEST(last_post_at, $2),
		total_msg_count = total_msg_count + 1, post_version = post_version + 1,
		last_root_post_at = CASE WHEN $3 THEN GREATEST(last_root_post_at, $2) ELSE last_root_post_at END,
		total_msg_count_root = total_msg_count_root + CASE WHEN $3 THEN 1 ELSE 0 END
	WHERE id = $1 AND EXISTS (SELECT 1 FROM posts n WHERE n.id = $4)`

	// Posting reads the channel: the sender's counters catch up with the
	// channel's, as Mattermost's MarkChannelsAsViewed does.
	markSenderReadSQL = `UPDATE channel_members cm SET msg_count = c.total_msg_count,
		msg_count_root = c.total_msg_count_root, mention_count = 0, mention_count_root = 0,
		urgent_mention_count = 0, last_viewed_at = GREATEST(cm.last_viewed_at, $3), last_update_at = $3
	FROM channels c
	WHERE c.id = $1 AND cm.channel_id = $1 AND cm.user_id = $2 AND EXISTS (SELECT 1 FROM posts n WHERE n.id = $4)`

	bumpMentionsSQL = `UPDATE channel_members cm SET mention_count = cm.mention_count + 1,
		mention_count_root = cm.mention_count_root + CASE WHEN $4 THEN 1 ELSE 0 END, last_update_at = $5
	FROM users u
	WHERE cm.channel_id = $1 AND cm.user_id <> $2 AND u.id = cm.user_id
		AND ($3 OR cm.user_id = ANY($6) OR (($8 OR ($9 AND EXISTS (SELECT 1 FROM status s
				WHERE s.user_id = cm.user_id AND s.status = 'online'))) AND COALESCE(u.notify_props->>'channel', '') <> 'false'
			AND COALESCE(cm.notify_props->>'ignore_channel_mentions', '') <> 'on'
			AND NOT (COALESCE(cm.notify_props->>'mark_unread', '') = 'mention'
				AND COALESCE(cm.notify_props->>'ignore_channel_mentions', '') IN ('', 'default'))))
		AND EXISTS (SELECT 1 FROM posts n WHERE n.id = $7)
	RETURNING cm.user_id`

	senderNameSQL = `SELECT username FROM users WHERE id = $1`

	// attachFilesSQL links the listed files to the new post: only files
	// of its sender, uploaded to its channel and not yet attached to a
	// post (a concurrent post claiming the same file waits on the row lock
	// and then finds it taken). The post keeps the ids that were attached,
	// in the order given; the others are dropped, as Mattermost does.
	attachFilesSQL = `WITH att AS (
		UPDATE file_infos f SET post_id = $1, update_at = $5
		WHERE f.id = ANY($2) AND f.creator_id = $3 AND f.channel_id = $4 AND f.post_id = '' AND f.delete_at = 0
			AND EXISTS (SELECT 1 FROM posts n WHERE n.id = $1)
		RETURNING f.id)
	UPDATE posts SET file_ids = (SELECT COALESCE(jsonb_agg(u.id ORDER BY u.ord), '[]'::jsonb)
		FROM unnest($2::text[]) WITH ORDINALITY AS u(id, ord) WHERE u.id IN (SELECT id FROM att))
	WHERE id = $1
	RETURNING file_ids`
)

// CreatePost stores p (whose ID, CreateAt, UserID and ChannelID are set)
// and, in the same transaction, updates the thread, channel and member
// counters. It returns ErrInvalidRoot when p.RootID is not a live root post
// of the channel. now is the time the sender read the channel.
func (s *Store) CreatePost(ctx context.Context, p *model.Post, m PostMentions, now int64) (*CreatedPost, error) {
	props, err := propsJSON(p.Props)
	if err != nil {
		return nil, fmt.Errorf("posts: create: props: %w", err)
	}
	files, err := fileIDsJSON(p.FileIDs)
	if err != nil {
		return nil, fmt.Errorf("posts: create: file_ids: %w", err)
	}
	isRoot := p.RootID == ""
	b := &pgx.Batch{}
	b.Queue(insertPostSQL, p.ID, p.CreateAt, p.UserID, p.ChannelID, p.RootID, p.Message, p.Type,
		props, p.Hashtags, files, p.PendingPostID)
	if len(p.FileIDs) > 0 {
		b.Queue(attachFilesSQL, p.ID, p.FileIDs, p.UserID, p.ChannelID, p.CreateAt)
	}
	if !isRoot {
		b.Queue(bumpRootSQL, p.RootID, p.CreateAt, p.ID, p.UserID)
	}
	b.Queue(bumpChannelSQL, p.ChannelID, p.CreateAt, isRoot, p.ID)
	b.Queue(markSenderReadSQL, p.ChannelID, p.UserID, now, p.ID)
	mentions := m.Everyone || m.ChannelWide || m.Here || len(m.UserIDs) > 0
	if mentions {
		ids := m.UserIDs
		if ids == nil {
			ids = []string{}
		}
		b.Queue(bumpMentionsSQL, p.ChannelID, p.UserID, m.Everyone, isRoot, now, ids, p.ID, m.ChannelWide, m.Here)
	}
	b.Queue(senderNameSQL, p.UserID)

	res := &CreatedPost{Post: p}
	inserted := true
	err = func() error {
		br := s.pool.SendBatch(ctx, b)
		defer br.Close()
		var id string
		if err := br.QueryRow().Scan(&id); err != nil {
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			inserted = false
		}
		if len(p.FileIDs) > 0 {
			var attached []byte
			if err := br.QueryRow().Scan(&attached); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			} else if err == nil {
				if p.FileIDs, err = decodeFileIDs(attached); err != nil {
					return err
				}
			}
		}
		if !isRoot {
			if err := br.QueryRow().Scan(&p.ReplyCount, &p.LastReplyAt); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if mentions {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			res.Mentioned, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
		}
		if err := br.QueryRow().Scan(&res.SenderUsername); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return br.Close()
	}()
	if err != nil {
		return nil, fmt.Errorf("posts: create: %w", mapErr(err))
	}
	if inserted {
		p.UpdateAt = p.CreateAt
		return res, nil
	}
	if p.PendingPostID != "" {
		prev, err := s.postByPendingID(ctx, p.UserID, p.PendingPostID)
		if err == nil {
			return &CreatedPost{Post: prev, Duplicate: true, SenderUsername: res.SenderUsername}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("posts: create: %w", err)
		}
	}
	return nil, fmt.Errorf("posts: create: %w", ErrInvalidRoot)
}

func (s *Store) postByPendingID(ctx context.Context, userID, pendingID string) (*model.Post, error) {
	return scanPost(s.pool.QueryRow(ctx, `SELECT `+postColumns+` FROM posts p
		WHERE p.user_id = $1 AND p.pending_post_id = $2`, userID, pendingID))
}

// GetPost returns the post with id, deleted or not.
func (s *Store) GetPost(ctx context.Context, id string) (*model.Post, error) {
	p, err := scanPost(s.pool.QueryRow(ctx, `SELECT `+postColumns+` FROM posts p WHERE p.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("posts: get: %w", err)
	}
	return p, nil
}

// GetPostsByIDs returns the posts among ids, newest first; unknown ids are
// skipped, and so are deleted posts unless includeDeleted.
func (s *Store) GetPostsByIDs(ctx context.Context, ids []string, includeDeleted bool) ([]*model.Post, error) {
	posts, err := collectPosts(s.pool.Query(ctx, `SELECT `+postColumns+` FROM posts p
		WHERE p.id = ANY($1) AND ($2 OR p.delete_at = 0) ORDER BY p.create_at DESC, p.id DESC`, ids, includeDeleted))
	if err != nil {
		return nil, fmt.Errorf("posts: get by ids: %w", err)
	}
	return posts, nil
}

// ChannelPostsQuery selects a page of a channel's posts, newest first.
// Before and After are exclusive cursor post ids; at most one is set, and
// one that is not a post of the channel selects nothing. The
// order is (create_at, id), which the index
// posts_channel_id_create_at_idx serves for live posts.
type ChannelPostsQuery struct {
	ChannelID      string
	Before, After  string
	Offset, Limit  int
	IncludeDeleted bool
}

// ChannelPostsPage is a page with its neighbours: Newer is the id of the
// post just newer than the newest of Posts, Older the one just older than
// the oldest ("" when there is none, or when Posts is empty).
type ChannelPostsPage struct {
	Posts        []*model.Post
	Newer, Older string
}

// Pieces of the page queries. The cursor's create_at comes from an init
// plan, so the row comparison is an index condition on
// posts_channel_id_create_at_idx (channel_id, create_at DESC, id DESC)
// WHERE delete_at = 0; the live-only filter is spelled literally for the
// planner to match the partial index. A cursor that is not a post of the
// channel yields NULL, which no row compares with: the page is empty, and
// nothing about another channel's post shows.
const (
	pageSelect   = `SELECT ` + postColumns + ` FROM posts p WHERE p.channel_id = $1`
	pageLive     = ` AND p.delete_at = 0`
	pageCursor   = `(SELECT c.create_at FROM posts c WHERE c.id = $4 AND c.channel_id = $1)`
	pageBefore   = ` AND (p.create_at, p.id) < (` + pageCursor + `, $4)`
	pageAfter    = ` AND (p.create_at, p.id) > (` + pageCursor + `, $4)`
	pageNewFirst = ` ORDER BY p.create_at DESC, p.id DESC LIMIT $2 OFFSET $3`
	pageOldFirst = ` ORDER BY p.create_at ASC, p.id ASC LIMIT $2 OFFSET $3`
)

// pageSQL returns the page query for q; asc reports that it reads oldest
// first (an `after` page).
func pageSQL(q ChannelPostsQuery) (sql string, asc bool) {
	switch {
	case q.After != "" && q.IncludeDeleted:
		return pageSelect + pageAfter + pageOldFirst, true
	case q.After != "":
		return pageSelect + pageLive + pageAfter + pageOldFirst, true
	case q.Before != "" && q.IncludeDeleted:
		return pageSelect + pageBefore + pageNewFirst, false
	case q.Before != "":
		return pageSelect + pageLive + pageBefore + pageNewFirst, false
	case q.IncludeDeleted:
		return pageSelect + pageNewFirst, false
	default:
		return pageSelect + pageLive + pageNewFirst, false
	}
}

// ChannelPosts returns a page of a channel's posts, newest first, with the
// ids of its neighbours. It is one query: it reads one extra row on each
// side of the page (Mattermost's next/prev post ids).
func (s *Store) ChannelPosts(ctx context.Context, q ChannelPostsQuery) (*ChannelPostsPage, error) {
	page := &ChannelPostsPage{}
	if q.Limit <= 0 {
		return page, nil
	}
	off, lim, lead := q.Offset, q.Limit+1, 0
	if off > 0 {
		off, lim, lead = off-1, lim+1, 1
	}
	sql, asc := pageSQL(q)
	args := []any{q.ChannelID, lim, off}
	if q.Before != "" {
		args = append(args, q.Before)
	} else if q.After != "" {
		args = append(args, q.After)
	}
	rows, err := collectPosts(s.pool.Query(ctx, sql, args...))
	if err != nil {
		return nil, fmt.Errorf("posts: channel page: %w", err)
	}
	if len(rows) <= lead {
		return page, nil
	}
	// first and last are the neighbours preceding and following the page
	// in query order.
	var first, last string
	if lead == 1 {
		first = rows[0].ID
	}
	rows = rows[lead:]
	if len(rows) > q.Limit {
		last = rows[q.Limit].ID
		rows = rows[:q.Limit]
	}
	if asc {
		slices.Reverse(rows)
		page.Older, page.Newer = first, last
	} else {
		page.Newer, page.Older = first, last
	}
	page.Posts = rows
	return page, nil
}

// PostsSince returns the channel's posts changed after since (created,
// edited or deleted), newest first, at most MaxPostsSince.
func (s *Store) PostsSince(ctx context.Context, channelID string, since int64) ([]*model.Post, error) {
	posts, err := collectPosts(s.pool.Query(ctx, `SELECT `+postColumns+` FROM posts p
		WHERE p.channel_id = $1 AND p.update_at > $2
		ORDER BY p.create_at DESC, p.id DESC LIMIT $3`, channelID, since, MaxPostsSince))
	if err != nil {
		return nil, fmt.Errorf("posts: since: %w", err)
	}
	return posts, nil
}

// Thread returns a root post and all its replies, newest first. Deleted
// replies are left out unless includeDeleted.
func (s *Store) Thread(ctx context.Context, rootID string, includeDeleted bool) ([]*model.Post, error) {
	posts, err := collectPosts(s.pool.Query(ctx, `SELECT `+postColumns+` FROM posts p
		WHERE (p.id = $1 OR p.root_id = $1) AND ($2 OR p.delete_at = 0)
		ORDER BY p.create_at DESC, p.id DESC`, rootID, includeDeleted))
	if err != nil {
		return nil, fmt.Errorf("posts: thread: %w", err)
	}
	return posts, nil
}

// PinnedPosts returns the channel's live pinned posts, newest first.
func (s *Store) PinnedPosts(ctx context.Context, channelID string) ([]*model.Post, error) {
	posts, err := collectPosts(s.pool.Query(ctx, `SELECT `+postColumns+` FROM posts p
		WHERE p.channel_id = $1 AND p.is_pinned AND p.delete_at = 0
		ORDER BY p.create_at DESC, p.id DESC`, channelID))
	if err != nil {
		return nil, fmt.Errorf("posts: pinned: %w", err)
	}
	return posts, nil
}

// UnreadWindow returns the posts around the first post of the channel
// created after lastViewedAt: that post, up to after-1 newer ones and up to
// before older ones, newest first, plus the ids of the posts just beyond
// each end. The window is empty when nothing was posted after lastViewedAt.
func (s *Store) UnreadWindow(ctx context.Context, channelID string, lastViewedAt int64, before, after int) (*ChannelPostsPage, error) {
	// The posts from the anchor on are exactly those created after
	// lastViewedAt (the anchor is the oldest of them), which is how the
	// two sides are told apart below.
	const q = `WITH anchor AS (
		SELECT p.create_at, p.id FROM posts p
		WHERE p.channel_id = $1 AND p.delete_at = 0 AND p.create_at > $2
		ORDER BY p.create_at ASC, p.id ASC LIMIT 1
	), newer AS (
		SELECT ` + postColumns + ` FROM posts p, anchor f
		WHERE p.channel_id = $1 AND p.delete_at = 0 AND (p.create_at, p.id) >= (f.create_at, f.id)
		ORDER BY p.create_at ASC, p.id ASC LIMIT $4
	), older AS (
		SELECT ` + postColumns + ` FROM posts p, anchor f
		WHERE p.channel_id = $1 AND p.delete_at = 0 AND (p.create_at, p.id) < (f.create_at, f.id)
		ORDER BY p.create_at DESC, p.id DESC LIMIT $3
	)
	SELECT * FROM newer UNION ALL SELECT * FROM older ORDER BY create_at DESC, id DESC`
	// One extra row on each side gives the neighbours.
	posts, err := collectPosts(s.pool.Query(ctx, q, channelID, lastViewedAt, before+1, after+1))
	if err != nil {
		return nil, fmt.Errorf("posts: unread window: %w", err)
	}
	split := len(posts)
	for i, p := range posts {
		if p.CreateAt <= lastViewedAt {
			split = i
			break
		}
	}
	newer, older := posts[:split], posts[split:]
	page := &ChannelPostsPage{}
	if len(newer) > after {
		page.Newer = newer[0].ID
		newer = newer[1:]
	}
	if len(older) > before {
		page.Older = older[before].ID
		older = older[:before]
	}
	page.Posts = slices.Concat(newer, older)
	return page, nil
}

// ErrStale is returned by UpdatePost when the post is not as the caller
// read it: changed since, deleted, or gone. Re-read it and try again.
var ErrStale = errors.New("post changed since read")

// UpdatePost writes the editable fields of p (message, props, file_ids,
// hashtags, is_pinned, edit_at) if the stored post is still live and its
// update_at is readUpdateAt, the value p was read with; otherwise it
// changes nothing and returns ErrStale. It sets p.UpdateAt to now, or past
// the old value if that is not earlier: edits and pins always move
// update_at, so it is a version that no two of them share and the check
// cannot miss a change made in the same millisecond.
//
// When p.FileIDs differs from the stored list, the files are reconciled
// in the same transaction: files the post no longer lists are deleted,
// and new ids are attached under the rules of attachFilesSQL (the post
// author's unattached uploads to its channel); p.FileIDs becomes the ids
// the post really holds, in the order given.
func (s *Store) UpdatePost(ctx context.Context, p *model.Post, readUpdateAt, now int64) error {
	props, err := propsJSON(p.Props)
	if err != nil {
		return fmt.Errorf("posts: update: props: %w", err)
	}
	files, err := fileIDsJSON(p.FileIDs)
	if err != nil {
		return fmt.Errorf("posts: update: file_ids: %w", err)
	}
	// The post and its channel's version change together; the row is
	// locked first so that the old file_ids are those being replaced.
	const q = `WITH u AS (UPDATE posts p SET message = $2, props = $3, file_ids = $4, hashtags = $5,
			is_pinned = $6, edit_at = $7, update_at = GREATEST($8::bigint, p.update_at + 1)
		WHERE p.id = $1 AND p.delete_at = 0 AND p.update_at = $9 RETURNING p.channel_id, p.update_at)
	UPDATE channels c SET post_version = c.post_version + 1 FROM u WHERE c.id = u.channel_id RETURNING u.update_at`
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		var old []byte
		if err := tx.QueryRow(ctx, `SELECT file_ids FROM posts WHERE id = $1 FOR UPDATE`, p.ID).Scan(&old); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, q, p.ID, p.Message, props, files, p.Hashtags, p.IsPinned, p.EditAt, now,
			readUpdateAt).Scan(&p.UpdateAt); err != nil {
			return err
		}
		was, err := decodeFileIDs(old)
		if err != nil {
			return err
		}
		changed := !slices.Equal(was, p.FileIDs)
		if !changed {
			return nil
		}
		ids := p.FileIDs
		if ids == nil {
			ids = []string{}
		}
		if _, err := tx.Exec(ctx, `UPDATE file_infos SET delete_at = $3, update_at = $3
			WHERE post_id = $1 AND delete_at = 0 AND NOT (id = ANY($2))`, p.ID, ids, now); err != nil {
			return err
		}
		var held []byte
		err = tx.QueryRow(ctx, `WITH att AS (
				UPDATE file_infos f SET post_id = $1, update_at = $5
				WHERE f.id = ANY($2) AND f.creator_id = $3 AND f.channel_id = $4 AND f.post_id = '' AND f.delete_at = 0
				RETURNING f.id),
			keep AS (SELECT f.id FROM file_infos f WHERE f.post_id = $1 AND f.delete_at = 0 AND f.id = ANY($2))
			UPDATE posts SET file_ids = (SELECT COALESCE(jsonb_agg(u.id ORDER BY u.ord), '[]'::jsonb)
				FROM unnest($2::text[]) WITH ORDINALITY AS u(id, ord)
				WHERE u.id IN (SELECT id FROM att UNION SELECT id FROM keep))
			WHERE id = $1
			RETURNING file_ids`, p.ID, ids, p.UserID, p.ChannelID, now).Scan(&held)
		if err != nil {
			return err
		}
		p.FileIDs, err = decodeFileIDs(held)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("posts: update: %w", ErrStale)
	}
	if err != nil {
		return fmt.Errorf("posts: update: %w", mapErr(err))
	}
	return nil
}

// SetPostPinned sets is_pinned of a live post, and nothing else but
// update_at, so it cannot undo a concurrent edit of other fields. It
// returns the post as stored; ErrNotFound if it is missing or deleted.
func (s *Store) SetPostPinned(ctx context.Context, id string, pinned bool, now int64) (*model.Post, error) {
	const q = `WITH u AS (UPDATE posts p SET is_pinned = $2, update_at = GREATEST($3::bigint, p.update_at + 1)
		WHERE p.id = $1 AND p.delete_at = 0 RETURNING ` + postColumns + `),
	v AS (UPDATE channels c SET post_version = c.post_version + 1 FROM u WHERE c.id = u.channel_id)
	SELECT * FROM u`
	p, err := scanPost(s.pool.QueryRow(ctx, q, id, pinned, now))
	if err != nil {
		return nil, fmt.Errorf("posts: set pinned: %w", err)
	}
	return p, nil
}

// dropReplySQL updates a root ($1) at $2 for the removal of a live reply
// by $3: one reply fewer, and the author leaves the participants unless
// they have another live reply in the thread.
const dropReplySQL = `UPDATE posts SET reply_count = GREATEST(reply_count - 1, 0), update_at = $2,
	participants = CASE WHEN EXISTS (SELECT 1 FROM posts r WHERE r.root_id = $1 AND r.user_id = $3 AND r.delete_at = 0)
		THEN participants ELSE array_remove(participants, $3::text) END
	WHERE id = $1`

// DeletePost soft-deletes a post, and the replies of a root, at now, and
// records who deleted it in its props (deleteBy). Deleting a reply lowers
// its root's reply count.
func (s *Store) DeletePost(ctx context.Context, p *model.Post, deleteBy string, now int64) error {
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE posts SET delete_at = $2, update_at = $2,
			props = CASE WHEN id = $1 THEN props || jsonb_build_object('deleteBy', $3::text) ELSE props END
			WHERE (id = $1 OR root_id = $1) AND delete_at = 0`, p.ID, now, deleteBy)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if p.RootID != "" {
			if _, err := tx.Exec(ctx, dropReplySQL, p.RootID, now, p.UserID); err != nil {
				return err
			}
		}
		return bumpPostVersion(ctx, tx, p.ChannelID)
	})
	if err != nil {
		return fmt.Errorf("posts: delete: %w", mapErr(err))
	}
	return nil
}

// PermanentDeletePost removes a post, the replies of a root, and their
// reactions. Removing a live reply lowers its root's reply count.
func (s *Store) PermanentDeletePost(ctx context.Context, p *model.Post, now int64) error {
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM reactions WHERE post_id IN
			(SELECT id FROM posts WHERE id = $1 OR root_id = $1)`, p.ID); err != nil {
			return err
		}
		var live bool
		err := tx.QueryRow(ctx, `WITH d AS (DELETE FROM posts WHERE id = $1 OR root_id = $1 RETURNING id, delete_at)
			SELECT COALESCE(bool_or(id = $1 AND delete_at = 0), false) FROM d`, p.ID).Scan(&live)
		if err != nil {
			return err
		}
		if live && p.RootID != "" {
			if _, err := tx.Exec(ctx, dropReplySQL, p.RootID, now, p.UserID); err != nil {
				return err
			}
		}
		return bumpPostVersion(ctx, tx, p.ChannelID)
	})
	if err != nil {
		return fmt.Errorf("posts: permanent delete: %w", mapErr(err))
	}
	return nil
}

// bumpPostVersion raises a channel's post_version inside the transaction
// of a change to its posts.
func bumpPostVersion(ctx context.Context, q querier, channelID string) error {
	_, err := q.Exec(ctx, `UPDATE channels SET post_version = post_version + 1 WHERE id = $1`, channelID)
	return err
}

// ChannelAccess is what a read check needs of a channel, with the version
// of its posts.
type ChannelAccess struct {
	ID, TeamID, Type string
	DeleteAt         int64
	PostVersion      int64
}

// ChannelAccess returns the access row of one channel.
func (s *Store) ChannelAccess(ctx context.Context, id string) (ChannelAccess, error) {
	var c ChannelAccess
	err := s.pool.QueryRow(ctx, `SELECT id, team_id, type, delete_at, post_version FROM channels WHERE id = $1`, id).
		Scan(&c.ID, &c.TeamID, &c.Type, &c.DeleteAt, &c.PostVersion)
	if err != nil {
		return c, fmt.Errorf("posts: channel access: %w", mapErr(err))
	}
	return c, nil
}

// ChannelsAccess returns the type, team and deletion time of the channels
// among ids, keyed by id.
func (s *Store) ChannelsAccess(ctx context.Context, ids []string) (map[string]ChannelAccess, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, team_id, type, delete_at, post_version FROM channels WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("posts: channels access: %w", mapErr(err))
	}
	defer rows.Close()
	out := make(map[string]ChannelAccess, len(ids))
	for rows.Next() {
		var c ChannelAccess
		if err := rows.Scan(&c.ID, &c.TeamID, &c.Type, &c.DeleteAt, &c.PostVersion); err != nil {
			return nil, fmt.Errorf("posts: channels access: %w", mapErr(err))
		}
		out[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("posts: channels access: %w", mapErr(err))
	}
	return out, nil
}

// LastViewedAt returns when the user last viewed the channel; ErrNotFound
// if they are not a member.
func (s *Store) LastViewedAt(ctx context.Context, channelID, userID string) (int64, error) {
	var t int64
	err := s.pool.QueryRow(ctx, `SELECT last_viewed_at FROM channel_members WHERE channel_id = $1 AND user_id = $2`,
		channelID, userID).Scan(&t)
	if err != nil {
		return 0, fmt.Errorf("posts: last viewed: %w", mapErr(err))
	}
	return t, nil
}
