package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// ErrLastAdmin is returned when a change would leave the system without
// an active system admin.
var ErrLastAdmin = errors.New("the last active system admin")

// adminLock serialises the changes that can remove a system admin, so two
// of them running at once cannot each see the other admin and both go
// through.
const adminLock = 0x6761646d696e73 // "gadmins"

// checkNotLastAdmin returns ErrLastAdmin if userID is the only active,
// non-bot system admin. It takes adminLock for the rest of tx.
func checkNotLastAdmin(ctx context.Context, tx pgx.Tx, userID string) error {
	const q = `SELECT EXISTS (SELECT 1 FROM users WHERE id <> $1 AND delete_at = 0 AND NOT is_bot
		AND 'system_admin' = ANY(string_to_array(roles, ' ')))`
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(adminLock)); err != nil {
		return err
	}
	var others bool
	if err := tx.QueryRow(ctx, q, userID).Scan(&others); err != nil {
		return err
	}
	if !others {
		return ErrLastAdmin
	}
	return nil
}

// removesActiveAdmin reports whether u is an active system admin whose
// admin rights a change is about to end.
func removesActiveAdmin(u *model.User) bool {
	return u.DeleteAt == 0 && !u.IsBot && u.IsSystemAdmin()
}

// SetUserActive deactivates a user (delete_at = now) or reactivates one
// (delete_at = 0) and returns the updated user. Deactivating the last
// active system admin fails with ErrLastAdmin. The user's sessions are not
// touched here: the caller revokes them. A login racing with the change
// cannot open a session afterwards: the sessions insert trigger of
// migration 00004 skips sessions of deactivated users.
func (s *Store) SetUserActive(ctx context.Context, userID string, active bool, now int64) (*model.User, error) {
	const (
		get = `SELECT ` + userColumns + ` FROM users u WHERE u.id = $1 FOR UPDATE`
		set = `UPDATE users SET delete_at = $2, update_at = $3 WHERE id = $1`
	)
	var u *model.User
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if u, err = scanUser(tx.QueryRow(ctx, get, userID)); err != nil {
			return err
		}
		if !active && removesActiveAdmin(u) {
			if err := checkNotLastAdmin(ctx, tx, userID); err != nil {
				return err
			}
		}
		u.UpdateAt, u.DeleteAt = now, 0
		if !active {
			u.DeleteAt = now
		}
		_, err = tx.Exec(ctx, set, userID, u.DeleteAt, u.UpdateAt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("users: set active: %w", mapErr(err))
	}
	return u, nil
}

// SetUserRoles stores a user's system roles and copies them onto the
// user's sessions in the same transaction, and returns the updated user
// and the roles it had before. Taking away the system admin role of the last active system admin fails
// with ErrLastAdmin.
func (s *Store) SetUserRoles(ctx context.Context, userID, roles string, now int64) (u *model.User, prev string, err error) {
	const (
		// The sessions are locked before the user row, the order a login
		// takes them in (it deletes the device's old session, then its
		// insert trigger reads the user), so the two cannot deadlock.
		lockSessions = `SELECT id FROM sessions WHERE user_id = $1 FOR UPDATE`
		get          = `SELECT ` + userColumns + ` FROM users u WHERE u.id = $1 FOR UPDATE`
		setUser      = `UPDATE users SET roles = $2, update_at = $3 WHERE id = $1`
		setSessions  = `UPDATE sessions SET roles = $2 WHERE user_id = $1`
	)
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockSessions, userID); err != nil {
			return err
		}
		var err error
		if u, err = scanUser(tx.QueryRow(ctx, get, userID)); err != nil {
			return err
		}
		if removesActiveAdmin(u) && !model.HasRole(roles, model.RoleSystemAdmin) {
			if err := checkNotLastAdmin(ctx, tx, userID); err != nil {
				return err
			}
		}
		prev, u.Roles, u.UpdateAt = u.Roles, roles, now
		if _, err := tx.Exec(ctx, setUser, userID, roles, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, setSessions, userID, roles)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("users: set roles: %w", mapErr(err))
	}
	return u, prev, nil
}

// SetTeamMemberAdmin sets whether an active team member is a team admin
// and returns the membership; ErrNotFound if the user is not an active
// member.
func (s *Store) SetTeamMemberAdmin(ctx context.Context, teamID, userID string, admin bool) (*model.TeamMember, error) {
	const q = `UPDATE team_members AS tm SET scheme_admin = $3
	WHERE tm.team_id = $1 AND tm.user_id = $2 AND tm.delete_at = 0
	RETURNING ` + teamMemberColumns
	m, err := scanTeamMember(s.pool.QueryRow(ctx, q, teamID, userID, admin))
	if err != nil {
		return nil, fmt.Errorf("teams: set member admin: %w", err)
	}
	return m, nil
}

// SetChannelMemberAdmin sets whether a channel member is a channel admin
// and returns the membership; ErrNotFound if the user is not a member.
func (s *Store) SetChannelMemberAdmin(ctx context.Context, channelID, userID string, admin bool, now int64) (*model.ChannelMember, error) {
	const q = `UPDATE channel_members AS cm SET scheme_admin = $3, last_update_at = $4
	WHERE cm.channel_id = $1 AND cm.user_id = $2
	RETURNING ` + channelMemberColumns
	m, err := scanChannelMember(s.pool.QueryRow(ctx, q, channelID, userID, admin, now))
	if err != nil {
		return nil, fmt.Errorf("channels: set member admin: %w", err)
	}
	return m, nil
}
