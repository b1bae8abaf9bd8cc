package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

const channelColumns = `c.id, c.create_at, c.update_at, c.delete_at, c.team_id, c.type, c.display_name, c.name,
	c.header, c.purpose, c.last_post_at, c.last_root_post_at, c.total_msg_count, c.total_msg_count_root,
	c.extra_update_at, c.creator_id, c.props`

func scanChannel(row pgx.Row) (*model.Channel, error) {
	c := &model.Channel{}
	err := row.Scan(&c.ID, &c.CreateAt, &c.UpdateAt, &c.DeleteAt, &c.TeamID, &c.Type, &c.DisplayName, &c.Name,
		&c.Header, &c.Purpose, &c.LastPostAt, &c.LastRootPostAt, &c.TotalMsgCount, &c.TotalMsgCountRoot,
		&c.ExtraUpdateAt, &c.CreatorID, &c.Props)
	if err != nil {
		return nil, mapErr(err)
	}
	if len(c.Props) == 0 {
		c.Props = nil // Mattermost sends "props": null for a channel without props
	}
	return c, nil
}

func collectChannels(rows pgx.Rows, err error) ([]*model.Channel, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []*model.Channel{}
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

const channelMemberColumns = `cm.channel_id, cm.user_id, cm.scheme_user, cm.scheme_admin, cm.last_viewed_at,
	cm.msg_count, cm.msg_count_root, cm.mention_count, cm.mention_count_root, cm.urgent_mention_count,
	cm.notify_props, cm.last_update_at`

func scanChannelMember(row pgx.Row) (*model.ChannelMember, error) {
	m := &model.ChannelMember{}
	err := row.Scan(&m.ChannelID, &m.UserID, &m.SchemeUser, &m.SchemeAdmin, &m.LastViewedAt,
		&m.MsgCount, &m.MsgCountRoot, &m.MentionCount, &m.MentionCountRoot, &m.UrgentMentionCount,
		&m.NotifyProps, &m.LastUpdateAt)
	if err != nil {
		return nil, mapErr(err)
	}
	m.Roles = model.RoleChannelUser
	if m.SchemeAdmin {
		m.Roles += " " + model.RoleChannelAdmin
	}
	if m.NotifyProps == nil {
		m.NotifyProps = model.StringMap{}
	}
	return m, nil
}

func collectChannelMembers(rows pgx.Rows, err error) ([]*model.ChannelMember, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []*model.ChannelMember{}
	for rows.Next() {
		m, err := scanChannelMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

func insertChannel(ctx context.Context, q querier, c *model.Channel) error {
	const stmt = `INSERT INTO channels (id, create_at, update_at, delete_at, team_id, type, display_name, name,
		header, purpose, creator_id, props)
	VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9, $10, $11)`
	props := c.Props
	if props == nil {
		props = map[string]any{}
	}
	_, err := q.Exec(ctx, stmt, c.ID, c.CreateAt, c.UpdateAt, c.TeamID, c.Type, c.DisplayName, c.Name,
		c.Header, c.Purpose, c.CreatorID, props)
	return err
}

// insertChannelMember adds m unless the user already is a member; it
// reports whether a row was added.
func insertChannelMember(ctx context.Context, q querier, m *model.ChannelMember) (bool, error) {
	const stmt = `INSERT INTO channel_members (channel_id, user_id, scheme_user, scheme_admin, notify_props, last_update_at)
	VALUES ($1, $2, true, $3, $4, $5)
	ON CONFLICT (channel_id, user_id) DO NOTHING`
	tag, err := q.Exec(ctx, stmt, m.ChannelID, m.UserID, m.SchemeAdmin, m.NotifyProps, m.LastUpdateAt)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// CreateChannel inserts a team channel and its creator's membership.
// maxPerTeam > 0 bounds the team's active channels (ErrLimit past it).
func (s *Store) CreateChannel(ctx context.Context, c *model.Channel, creator *model.ChannelMember, maxPerTeam int64) error {
	const (
		lock  = `SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE`
		count = `SELECT count(*) FROM channels WHERE team_id = $1 AND delete_at = 0`
	)
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if maxPerTeam > 0 {
			// The team lock serialises channel creation in the team so
			// the count cannot be raced past the limit.
			if _, err := tx.Exec(ctx, lock, c.TeamID); err != nil {
				return err
			}
			var n int64
			if err := tx.QueryRow(ctx, count, c.TeamID).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerTeam {
				return ErrLimit
			}
		}
		if err := insertChannel(ctx, tx, c); err != nil {
			return err
		}
		_, err := insertChannelMember(ctx, tx, creator)
		return err
	})
	if err != nil {
		return fmt.Errorf("channels: create: %w", mapErr(err))
	}
	return nil
}

// GetOrCreateChannel returns the channel with c's team and name, creating
// it with the given members if it does not exist (direct and group
// messages, whose names are derived from their members). created reports
// whether this call made it.
func (s *Store) GetOrCreateChannel(ctx context.Context, c *model.Channel, members []*model.ChannelMember) (out *model.Channel, created bool, err error) {
	const (
		ins = `INSERT INTO channels (id, create_at, update_at, delete_at, team_id, type, display_name, name,
			header, purpose, creator_id, props)
		VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9, $10, '{}')
		ON CONFLICT (team_id, name) DO NOTHING`
		get = `SELECT ` + channelColumns + ` FROM channels c WHERE c.team_id = $1 AND c.name = $2`
	)
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, ins, c.ID, c.CreateAt, c.UpdateAt, c.TeamID, c.Type, c.DisplayName, c.Name,
			c.Header, c.Purpose, c.CreatorID)
		if err != nil {
			return err
		}
		if created = tag.RowsAffected() == 1; created {
			for _, m := range members {
				if _, err := insertChannelMember(ctx, tx, m); err != nil {
					return err
				}
			}
		}
		out, err = scanChannel(tx.QueryRow(ctx, get, c.TeamID, c.Name))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("channels: get or create: %w", mapErr(err))
	}
	return out, created, nil
}

// GetChannel returns the channel with id, archived or not.
func (s *Store) GetChannel(ctx context.Context, id string) (*model.Channel, error) {
	c, err := scanChannel(s.pool.QueryRow(ctx, `SELECT `+channelColumns+` FROM channels c WHERE c.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("channels: get: %w", err)
	}
	return c, nil
}

// GetChannelByName returns a team's channel by name; archived channels
// only when includeDeleted is set.
func (s *Store) GetChannelByName(ctx context.Context, teamID, name string, includeDeleted bool) (*model.Channel, error) {
	const q = `SELECT ` + channelColumns + ` FROM channels c
	WHERE c.team_id = $1 AND c.name = $2 AND ($3 OR c.delete_at = 0)`
	c, err := scanChannel(s.pool.QueryRow(ctx, q, teamID, name, includeDeleted))
	if err != nil {
		return nil, fmt.Errorf("channels: get by name: %w", err)
	}
	return c, nil
}

// PublicChannels returns a page of a team's public, unarchived channels
// by display name.
func (s *Store) PublicChannels(ctx context.Context, teamID string, offset, limit int) ([]*model.Channel, error) {
	const q = `SELECT ` + channelColumns + ` FROM channels c
	WHERE c.team_id = $1 AND c.type = 'O' AND c.delete_at = 0
	ORDER BY c.display_name, c.id LIMIT $2 OFFSET $3`
	cs, err := collectChannels(s.pool.Query(ctx, q, teamID, limit, offset))
	if err != nil {
		return nil, fmt.Errorf("channels: public: %w", err)
	}
	return cs, nil
}

// ChannelsForUser returns the channels of a team that userID belongs to,
// plus their direct and group messages. Archived channels are included
// when includeDeleted is set, and then only those archived at or after
// lastDeleteAt (if not 0).
func (s *Store) ChannelsForUser(ctx context.Context, teamID, userID string, includeDeleted bool, lastDeleteAt int64) ([]*model.Channel, error) {
	const q = `SELECT ` + channelColumns + ` FROM channels c
	JOIN channel_members cm ON cm.channel_id = c.id
	WHERE cm.user_id = $2 AND (c.team_id = $1 OR c.team_id = '')
		AND (c.delete_at = 0 OR ($3 AND c.delete_at >= $4))
	ORDER BY c.display_name, c.id`
	cs, err := collectChannels(s.pool.Query(ctx, q, teamID, userID, includeDeleted, lastDeleteAt))
	if err != nil {
		return nil, fmt.Errorf("channels: for user: %w", err)
	}
	return cs, nil
}

// UpdateChannel writes the editable fields of c (display name, name,
// header, purpose) and update_at.
func (s *Store) UpdateChannel(ctx context.Context, c *model.Channel) error {
	const q = `UPDATE channels SET update_at = $2, display_name = $3, name = $4, header = $5, purpose = $6
	WHERE id = $1`
	tag, err := s.pool.Exec(ctx, q, c.ID, c.UpdateAt, c.DisplayName, c.Name, c.Header, c.Purpose)
	if err != nil {
		return fmt.Errorf("channels: update: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("channels: update: %w", ErrNotFound)
	}
	return nil
}

// ArchiveChannel sets a channel's delete_at. It reports false if the
// channel was already archived (or does not exist).
func (s *Store) ArchiveChannel(ctx context.Context, id string, now int64) (bool, error) {
	const q = `UPDATE channels SET delete_at = $2, update_at = $2 WHERE id = $1 AND delete_at = 0`
	tag, err := s.pool.Exec(ctx, q, id, now)
	if err != nil {
		return false, fmt.Errorf("channels: archive: %w", mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ErrNotTeamMember is returned by AddChannelMember when the user is not an
// active member of the channel's team.
var ErrNotTeamMember = errors.New("not an active team member")

// AddChannelMember adds m to a channel of team teamID ("" for direct and
// group messages, which have no team); if the user already is a member the
// existing membership is returned and added is false. A team channel takes
// only active team members (ErrNotTeamMember): the check and the insert are
// one statement, and the check share-locks the team membership, so a
// concurrent LeaveTeam either waits for the insert and then removes the
// new membership with the others, or commits first and the insert finds
// no active member.
func (s *Store) AddChannelMember(ctx context.Context, m *model.ChannelMember, teamID string) (out *model.ChannelMember, added bool, err error) {
	const ins = `INSERT INTO channel_members (channel_id, user_id, scheme_user, scheme_admin, notify_props, last_update_at)
	SELECT $1, $2, true, $3, $4, $5
	WHERE $6 = '' OR EXISTS (SELECT 1 FROM team_members tm
		WHERE tm.team_id = $6 AND tm.user_id = $2 AND tm.delete_at = 0 FOR SHARE)
	ON CONFLICT (channel_id, user_id) DO NOTHING`
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, ins, m.ChannelID, m.UserID, m.SchemeAdmin, m.NotifyProps, m.LastUpdateAt, teamID)
		if err != nil {
			return err
		}
		added = tag.RowsAffected() == 1
		out, err = scanChannelMember(tx.QueryRow(ctx, `SELECT `+channelMemberColumns+` FROM channel_members cm
			WHERE cm.channel_id = $1 AND cm.user_id = $2`, m.ChannelID, m.UserID))
		if errors.Is(err, ErrNotFound) {
			return ErrNotTeamMember
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("channels: add member: %w", mapErr(err))
	}
	return out, added, nil
}

// RemoveChannelMember deletes a membership and returns the mentions it
// still had unread; ErrNotFound if there was none.
func (s *Store) RemoveChannelMember(ctx context.Context, channelID, userID string) (mentions int64, err error) {
	err = s.pool.QueryRow(ctx, `DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 RETURNING mention_count`,
		channelID, userID).Scan(&mentions)
	if err != nil {
		return 0, fmt.Errorf("channels: remove member: %w", mapErr(err))
	}
	return mentions, nil
}

// GetChannelMember returns one membership.
func (s *Store) GetChannelMember(ctx context.Context, channelID, userID string) (*model.ChannelMember, error) {
	m, err := scanChannelMember(s.pool.QueryRow(ctx, `SELECT `+channelMemberColumns+` FROM channel_members cm
		WHERE cm.channel_id = $1 AND cm.user_id = $2`, channelID, userID))
	if err != nil {
		return nil, fmt.Errorf("channels: get member: %w", err)
	}
	return m, nil
}

// ListChannelMembers returns a page of a channel's members by user id.
func (s *Store) ListChannelMembers(ctx context.Context, channelID string, offset, limit int) ([]*model.ChannelMember, error) {
	const q = `SELECT ` + channelMemberColumns + ` FROM channel_members cm
	WHERE cm.channel_id = $1 ORDER BY cm.user_id LIMIT $2 OFFSET $3`
	ms, err := collectChannelMembers(s.pool.Query(ctx, q, channelID, limit, offset))
	if err != nil {
		return nil, fmt.Errorf("channels: list members: %w", err)
	}
	return ms, nil
}

// ChannelMembersByIDs returns the memberships of a channel among userIDs.
func (s *Store) ChannelMembersByIDs(ctx context.Context, channelID string, userIDs []string) ([]*model.ChannelMember, error) {
	const q = `SELECT ` + channelMemberColumns + ` FROM channel_members cm
	WHERE cm.channel_id = $1 AND cm.user_id = ANY($2) ORDER BY cm.user_id`
	ms, err := collectChannelMembers(s.pool.Query(ctx, q, channelID, userIDs))
	if err != nil {
		return nil, fmt.Errorf("channels: members by ids: %w", err)
	}
	return ms, nil
}

// ChannelMembersForUser returns a user's memberships of a team's channels
// and of their direct and group messages.
func (s *Store) ChannelMembersForUser(ctx context.Context, teamID, userID string) ([]*model.ChannelMember, error) {
	const q = `SELECT ` + channelMemberColumns + ` FROM channel_members cm
	JOIN channels c ON c.id = cm.channel_id
	WHERE cm.user_id = $2 AND (c.team_id = $1 OR c.team_id = '') ORDER BY cm.channel_id`
	ms, err := collectChannelMembers(s.pool.Query(ctx, q, teamID, userID))
	if err != nil {
		return nil, fmt.Errorf("channels: members for user: %w", err)
	}
	return ms, nil
}

// ChannelMemberIDs returns the user ids of a channel's members.
func (s *Store) ChannelMemberIDs(ctx context.Context, channelID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_id FROM channel_members WHERE channel_id = $1`, channelID)
	if err != nil {
		return nil, fmt.Errorf("channels: member ids: %w", mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("channels: member ids: %w", mapErr(err))
	}
	return ids, nil
}

// UpdateChannelNotifyProps merges props into a membership's notify_props
// and returns the membership. check validates the merged props inside the
// transaction; its error is returned as is.
func (s *Store) UpdateChannelNotifyProps(ctx context.Context, channelID, userID string, props model.StringMap,
	check func(model.StringMap) error, now int64) (*model.ChannelMember, error) {
	const (
		get = `SELECT ` + channelMemberColumns + ` FROM channel_members cm
			WHERE cm.channel_id = $1 AND cm.user_id = $2 FOR UPDATE`
		set = `UPDATE channel_members SET notify_props = $3, last_update_at = $4 WHERE channel_id = $1 AND user_id = $2`
	)
	var m *model.ChannelMember
	var checkErr error
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if m, err = scanChannelMember(tx.QueryRow(ctx, get, channelID, userID)); err != nil {
			return err
		}
		for k, v := range props {
			m.NotifyProps[k] = v
		}
		if checkErr = check(m.NotifyProps); checkErr != nil {
			return checkErr
		}
		m.LastUpdateAt = now
		_, err = tx.Exec(ctx, set, channelID, userID, m.NotifyProps, now)
		return err
	})
	if checkErr != nil {
		return nil, checkErr
	}
	if err != nil {
		return nil, fmt.Errorf("channels: update notify props: %w", mapErr(err))
	}
	return m, nil
}

// ViewedChannel is a channel ViewChannels marked read, with what the
// member's state was before: pushes to clear depend on it (issue 5).
type ViewedChannel struct {
	ChannelID    string
	LastViewedAt int64
	Type         string
	// MentionsBefore and UnreadBefore are the member's mention count and
	// unread message count before the view.
	MentionsBefore, UnreadBefore int64
	// Push is the member's effective push level: the channel's
	// notify_props push, or the user's when that is default.
	Push string
}

// ViewChannels marks the channels among channelIDs that userID belongs to
// as read at now: message counts catch up with the channel's, mentions are
// cleared. It returns the viewed channels and their new last_viewed_at.
// The self-join reads the members as they were before this statement.
func (s *Store) ViewChannels(ctx context.Context, userID string, channelIDs []string, now int64) ([]ViewedChannel, error) {
	const q = `UPDATE channel_members cm SET last_viewed_at = greatest(cm.last_viewed_at, $3),
		msg_count = c.total_msg_count, msg_count_root = c.total_msg_count_root,
		mention_count = 0, mention_count_root = 0, urgent_mention_count = 0, last_update_at = $3
	FROM channels c, channel_members old, users u
	WHERE c.id = cm.channel_id AND cm.user_id = $1 AND cm.channel_id = ANY($2)
		AND old.channel_id = cm.channel_id AND old.user_id = cm.user_id AND u.id = cm.user_id
	RETURNING cm.channel_id, cm.last_viewed_at, c.type, old.mention_count, greatest(c.total_msg_count - old.msg_count, 0),
		COALESCE(NULLIF(NULLIF(cm.notify_props->>'push', ''), 'default'), u.notify_props->>'push', '')`
	rows, err := s.pool.Query(ctx, q, userID, channelIDs, now)
	if err != nil {
		return nil, fmt.Errorf("channels: view: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ViewedChannel, error) {
		var v ViewedChannel
		err := r.Scan(&v.ChannelID, &v.LastViewedAt, &v.Type, &v.MentionsBefore, &v.UnreadBefore, &v.Push)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("channels: view: %w", mapErr(err))
	}
	return out, nil
}

// ChannelUnread returns a member's unread counts in a channel.
func (s *Store) ChannelUnread(ctx context.Context, channelID, userID string) (*model.ChannelUnread, error) {
	const q = `SELECT c.team_id, c.id, greatest(c.total_msg_count - cm.msg_count, 0), cm.mention_count,
		cm.mention_count_root, cm.urgent_mention_count, greatest(c.total_msg_count_root - cm.msg_count_root, 0),
		cm.notify_props
	FROM channels c JOIN channel_members cm ON cm.channel_id = c.id
	WHERE c.id = $1 AND cm.user_id = $2`
	u := &model.ChannelUnread{}
	err := s.pool.QueryRow(ctx, q, channelID, userID).Scan(&u.TeamID, &u.ChannelID, &u.MsgCount, &u.MentionCount,
		&u.MentionCountRoot, &u.UrgentMentionCount, &u.MsgCountRoot, &u.NotifyProps)
	if err != nil {
		return nil, fmt.Errorf("channels: unread: %w", mapErr(err))
	}
	return u, nil
}

// ChannelStats counts a channel's members (deactivated users excluded)
// and its pinned, undeleted posts.
func (s *Store) ChannelStats(ctx context.Context, channelID string) (members, pinned int64, err error) {
	const q = `SELECT
		(SELECT count(*) FROM channel_members cm JOIN users u ON u.id = cm.user_id
			WHERE cm.channel_id = $1 AND u.delete_at = 0),
		(SELECT count(*) FROM posts p WHERE p.channel_id = $1 AND p.is_pinned AND p.delete_at = 0)`
	if err := s.pool.QueryRow(ctx, q, channelID).Scan(&members, &pinned); err != nil {
		return 0, 0, fmt.Errorf("channels: stats: %w", mapErr(err))
	}
	return members, pinned, nil
}

// IsConflictOn reports whether err is a unique violation of the named
// constraint.
func IsConflictOn(err error, constraint string) bool {
	var ce *ConflictError
	return errors.As(err, &ce) && ce.Constraint == constraint
}
