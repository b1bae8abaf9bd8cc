package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// ErrLimit is returned when a write would pass a configured size limit
// (MaxUsersPerTeam, MaxChannelsPerTeam).
var ErrLimit = errors.New("limit reached")

const teamColumns = `t.id, t.create_at, t.update_at, t.delete_at, t.display_name, t.name, t.description, t.email,
	t.type, t.company_name, t.allowed_domains, t.invite_id, t.allow_open_invite`

func scanTeam(row pgx.Row) (*model.Team, error) {
	t := &model.Team{}
	err := row.Scan(&t.ID, &t.CreateAt, &t.UpdateAt, &t.DeleteAt, &t.DisplayName, &t.Name, &t.Description, &t.Email,
		&t.Type, &t.CompanyName, &t.AllowedDomains, &t.InviteID, &t.AllowOpenInvite)
	if err != nil {
		return nil, mapErr(err)
	}
	return t, nil
}

func collectTeams(rows pgx.Rows, err error) ([]*model.Team, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []*model.Team{}
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err())
}

const teamMemberColumns = `tm.team_id, tm.user_id, tm.delete_at, tm.scheme_user, tm.scheme_admin, tm.create_at`

func scanTeamMember(row pgx.Row) (*model.TeamMember, error) {
	m := &model.TeamMember{}
	if err := row.Scan(&m.TeamID, &m.UserID, &m.DeleteAt, &m.SchemeUser, &m.SchemeAdmin, &m.CreateAt); err != nil {
		return nil, mapErr(err)
	}
	m.Roles = model.RoleTeamUser
	if m.SchemeAdmin {
		m.Roles += " " + model.RoleTeamAdmin
	}
	return m, nil
}

func collectTeamMembers(rows pgx.Rows, err error) ([]*model.TeamMember, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []*model.TeamMember{}
	for rows.Next() {
		m, err := scanTeamMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

// CreateTeam inserts t with its default channels, and makes creatorID a
// team admin and a channel admin of every channel, in one transaction.
// It returns the creator's team membership.
func (s *Store) CreateTeam(ctx context.Context, t *model.Team, channels []*model.Channel, creatorID string) (*model.TeamMember, error) {
	const q = `INSERT INTO teams (id, create_at, update_at, delete_at, display_name, name, description, email, type,
		company_name, allowed_domains, invite_id, allow_open_invite)
	VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
	var tm *model.TeamMember
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, q, t.ID, t.CreateAt, t.UpdateAt, t.DisplayName, t.Name, t.Description, t.Email, t.Type,
			t.CompanyName, t.AllowedDomains, t.InviteID, t.AllowOpenInvite); err != nil {
			return err
		}
		var err error
		if tm, err = upsertTeamMember(ctx, tx, t.ID, creatorID, true, t.CreateAt); err != nil {
			return err
		}
		for _, ch := range channels {
			if err := insertChannel(ctx, tx, ch); err != nil {
				return err
			}
			m := &model.ChannelMember{ChannelID: ch.ID, UserID: creatorID, SchemeAdmin: true,
				NotifyProps: model.DefaultChannelNotifyProps(), LastUpdateAt: t.CreateAt}
			if _, err := insertChannelMember(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("teams: create: %w", mapErr(err))
	}
	return tm, nil
}

// upsertTeamMember adds a member or reactivates a removed one.
func upsertTeamMember(ctx context.Context, q querier, teamID, userID string, admin bool, now int64) (*model.TeamMember, error) {
	const stmt = `INSERT INTO team_members AS tm (team_id, user_id, scheme_user, scheme_admin, create_at, delete_at)
	VALUES ($1, $2, true, $3, $4, 0)
	ON CONFLICT (team_id, user_id) DO UPDATE SET delete_at = 0, scheme_admin = excluded.scheme_admin
	RETURNING ` + teamMemberColumns
	return scanTeamMember(q.QueryRow(ctx, stmt, teamID, userID, admin, now))
}

// GetTeam returns the team with id.
func (s *Store) GetTeam(ctx context.Context, id string) (*model.Team, error) {
	t, err := scanTeam(s.pool.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("teams: get: %w", err)
	}
	return t, nil
}

// GetTeamByName returns the team with the URL name.
func (s *Store) GetTeamByName(ctx context.Context, name string) (*model.Team, error) {
	t, err := scanTeam(s.pool.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.name = $1`, name))
	if err != nil {
		return nil, fmt.Errorf("teams: get by name: %w", err)
	}
	return t, nil
}

// GetTeamByInviteID returns the team whose invite link id is inviteID.
func (s *Store) GetTeamByInviteID(ctx context.Context, inviteID string) (*model.Team, error) {
	t, err := scanTeam(s.pool.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.invite_id = $1`, inviteID))
	if err != nil {
		return nil, fmt.Errorf("teams: get by invite id: %w", err)
	}
	return t, nil
}

// ListTeams returns a page of teams by display name; openOnly keeps those
// anyone may join (allow_open_invite).
func (s *Store) ListTeams(ctx context.Context, openOnly bool, offset, limit int) ([]*model.Team, error) {
	const q = `SELECT ` + teamColumns + ` FROM teams t
	WHERE t.delete_at = 0 AND (NOT $1 OR t.allow_open_invite)
	ORDER BY t.display_name, t.id LIMIT $2 OFFSET $3`
	teams, err := collectTeams(s.pool.Query(ctx, q, openOnly, limit, offset))
	if err != nil {
		return nil, fmt.Errorf("teams: list: %w", err)
	}
	return teams, nil
}

// CountTeams counts the teams ListTeams pages through.
func (s *Store) CountTeams(ctx context.Context, openOnly bool) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM teams t WHERE t.delete_at = 0 AND (NOT $1 OR t.allow_open_invite)`,
		openOnly).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("teams: count: %w", mapErr(err))
	}
	return n, nil
}

// TeamsForUser returns the teams userID is an active member of.
func (s *Store) TeamsForUser(ctx context.Context, userID string) ([]*model.Team, error) {
	const q = `SELECT ` + teamColumns + ` FROM teams t
	JOIN team_members tm ON tm.team_id = t.id
	WHERE tm.user_id = $1 AND tm.delete_at = 0 AND t.delete_at = 0
	ORDER BY t.display_name, t.id`
	teams, err := collectTeams(s.pool.Query(ctx, q, userID))
	if err != nil {
		return nil, fmt.Errorf("teams: for user: %w", err)
	}
	return teams, nil
}

// UpdateTeam writes the editable fields of t (display name, description,
// company, allowed domains, open invite, invite id) and update_at.
func (s *Store) UpdateTeam(ctx context.Context, t *model.Team) error {
	const q = `UPDATE teams SET update_at = $2, display_name = $3, description = $4, company_name = $5,
		allowed_domains = $6, allow_open_invite = $7, invite_id = $8
	WHERE id = $1`
	tag, err := s.pool.Exec(ctx, q, t.ID, t.UpdateAt, t.DisplayName, t.Description, t.CompanyName,
		t.AllowedDomains, t.AllowOpenInvite, t.InviteID)
	if err != nil {
		return fmt.Errorf("teams: update: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("teams: update: %w", ErrNotFound)
	}
	return nil
}

// GetTeamMember returns a membership, active or removed.
func (s *Store) GetTeamMember(ctx context.Context, teamID, userID string) (*model.TeamMember, error) {
	m, err := scanTeamMember(s.pool.QueryRow(ctx, `SELECT `+teamMemberColumns+` FROM team_members tm
		WHERE tm.team_id = $1 AND tm.user_id = $2`, teamID, userID))
	if err != nil {
		return nil, fmt.Errorf("teams: get member: %w", err)
	}
	return m, nil
}

// TeamMemberFilter narrows a team member listing.
type TeamMemberFilter struct {
	// ByUsername sorts by username instead of user id.
	ByUsername bool
	// ExcludeDeletedUsers leaves out deactivated users.
	ExcludeDeletedUsers bool
	Offset, Limit       int
}

// ListTeamMembers returns a page of a team's active members.
func (s *Store) ListTeamMembers(ctx context.Context, teamID string, f TeamMemberFilter) ([]*model.TeamMember, error) {
	const q = `SELECT ` + teamMemberColumns + ` FROM team_members tm
	JOIN users u ON u.id = tm.user_id
	WHERE tm.team_id = $1 AND tm.delete_at = 0 AND (NOT $2 OR u.delete_at = 0)
	ORDER BY CASE WHEN $3 THEN u.username ELSE tm.user_id END, tm.user_id
	LIMIT $4 OFFSET $5`
	ms, err := collectTeamMembers(s.pool.Query(ctx, q, teamID, f.ExcludeDeletedUsers, f.ByUsername, f.Limit, f.Offset))
	if err != nil {
		return nil, fmt.Errorf("teams: list members: %w", err)
	}
	return ms, nil
}

// TeamMembersByIDs returns the active members of a team among userIDs.
func (s *Store) TeamMembersByIDs(ctx context.Context, teamID string, userIDs []string) ([]*model.TeamMember, error) {
	const q = `SELECT ` + teamMemberColumns + ` FROM team_members tm
	WHERE tm.team_id = $1 AND tm.user_id = ANY($2) AND tm.delete_at = 0 ORDER BY tm.user_id`
	ms, err := collectTeamMembers(s.pool.Query(ctx, q, teamID, userIDs))
	if err != nil {
		return nil, fmt.Errorf("teams: members by ids: %w", err)
	}
	return ms, nil
}

// TeamMembersForUser returns every team membership of a user, removed
// ones included.
func (s *Store) TeamMembersForUser(ctx context.Context, userID string) ([]*model.TeamMember, error) {
	const q = `SELECT ` + teamMemberColumns + ` FROM team_members tm
	JOIN teams t ON t.id = tm.team_id
	WHERE tm.user_id = $1 AND t.delete_at = 0 ORDER BY tm.team_id`
	ms, err := collectTeamMembers(s.pool.Query(ctx, q, userID))
	if err != nil {
		return nil, fmt.Errorf("teams: members for user: %w", err)
	}
	return ms, nil
}

// TeamMemberIDs returns the user ids of a team's active members.
func (s *Store) TeamMemberIDs(ctx context.Context, teamID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_id FROM team_members WHERE team_id = $1 AND delete_at = 0`, teamID)
	if err != nil {
		return nil, fmt.Errorf("teams: member ids: %w", mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("teams: member ids: %w", mapErr(err))
	}
	return ids, nil
}

// JoinTeam makes userID an active member of teamID (adding or
// reactivating) and adds them to the team's open channels named in
// defaultChannels. maxUsers > 0 bounds the active, non-deactivated members;
// a join past it fails with ErrLimit. If the user already is an active
// member nothing changes and added is false. joined lists the channels the
// user was added to.
func (s *Store) JoinTeam(ctx context.Context, teamID, userID string, defaultChannels []string, maxUsers int, now int64) (tm *model.TeamMember, joined []string, added bool, err error) {
	// Locking the team row serialises joins to one team, so the member
	// count cannot be raced past the limit. NO KEY UPDATE does not block
	// the key-share locks that foreign keys to teams take.
	const (
		lock  = `SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE`
		count = `SELECT count(*) FROM team_members tm JOIN users u ON u.id = tm.user_id
			WHERE tm.team_id = $1 AND tm.delete_at = 0 AND u.delete_at = 0`
		join = `INSERT INTO channel_members (channel_id, user_id, notify_props, last_update_at)
			SELECT c.id, $2, $4, $5 FROM channels c
			WHERE c.team_id = $1 AND c.name = ANY($3) AND c.type = 'O' AND c.delete_at = 0
			ON CONFLICT (channel_id, user_id) DO NOTHING
			RETURNING channel_id`
	)
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lock, teamID); err != nil {
			return err
		}
		cur, err := scanTeamMember(tx.QueryRow(ctx, `SELECT `+teamMemberColumns+` FROM team_members tm
			WHERE tm.team_id = $1 AND tm.user_id = $2`, teamID, userID))
		switch {
		case err == nil && cur.DeleteAt == 0:
			tm = cur
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		if maxUsers > 0 {
			var n int
			if err := tx.QueryRow(ctx, count, teamID).Scan(&n); err != nil {
				return err
			}
			if n >= maxUsers {
				return ErrLimit
			}
		}
		if tm, err = upsertTeamMember(ctx, tx, teamID, userID, false, now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, join, teamID, userID, defaultChannels, model.DefaultChannelNotifyProps(), now)
		if err != nil {
			return err
		}
		joined, err = pgx.CollectRows(rows, pgx.RowTo[string])
		added = true
		return err
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("teams: join: %w", mapErr(err))
	}
	return tm, joined, added, nil
}

// LeaveTeam marks userID's membership of teamID removed and takes the user
// out of the team's channels (not their direct and group messages). It
// returns the channels left; ErrNotFound if the user was not an active
// member.
func (s *Store) LeaveTeam(ctx context.Context, teamID, userID string, now int64) ([]string, error) {
	const (
		leave = `UPDATE team_members SET delete_at = $3 WHERE team_id = $1 AND user_id = $2 AND delete_at = 0`
		part  = `DELETE FROM channel_members cm USING channels c
			WHERE cm.channel_id = c.id AND c.team_id = $1 AND cm.user_id = $2
			RETURNING cm.channel_id`
	)
	var left []string
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, leave, teamID, userID, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		rows, err := tx.Query(ctx, part, teamID, userID)
		if err != nil {
			return err
		}
		left, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("teams: leave: %w", mapErr(err))
	}
	return left, nil
}

// TeamUnreads sums a user's unread counts per team over the team channels
// they belong to. teamID, if set, restricts to that team; excludeTeamID
// leaves one out. Channels whose mark_unread is "mention" add mentions
// only, as in Mattermost.
func (s *Store) TeamUnreads(ctx context.Context, userID, teamID, excludeTeamID string) ([]*model.TeamUnread, error) {
	const q = `SELECT c.team_id,
		coalesce(sum(CASE WHEN cm.notify_props->>'mark_unread' = 'mention' THEN 0
			ELSE greatest(c.total_msg_count - cm.msg_count, 0) END), 0),
		coalesce(sum(cm.mention_count), 0),
		coalesce(sum(cm.mention_count_root), 0),
		coalesce(sum(CASE WHEN cm.notify_props->>'mark_unread' = 'mention' THEN 0
			ELSE greatest(c.total_msg_count_root - cm.msg_count_root, 0) END), 0)
	FROM channel_members cm JOIN channels c ON c.id = cm.channel_id
	WHERE cm.user_id = $1 AND c.delete_at = 0 AND c.team_id <> ''
		AND ($2 = '' OR c.team_id = $2) AND c.team_id <> $3
	GROUP BY c.team_id ORDER BY c.team_id`
	rows, err := s.pool.Query(ctx, q, userID, teamID, excludeTeamID)
	if err != nil {
		return nil, fmt.Errorf("teams: unreads: %w", mapErr(err))
	}
	defer rows.Close()
	out := []*model.TeamUnread{}
	for rows.Next() {
		u := &model.TeamUnread{}
		if err := rows.Scan(&u.TeamID, &u.MsgCount, &u.MentionCount, &u.MentionCountRoot, &u.MsgCountRoot); err != nil {
			return nil, fmt.Errorf("teams: unreads: %w", mapErr(err))
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("teams: unreads: %w", mapErr(err))
	}
	return out, nil
}
