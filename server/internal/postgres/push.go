package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// Push notifications (issue 5): what deciding and sending a push reads,
// and the device ids of sessions.

// AttachDeviceID sets a session's device id, revoking the user's other
// sessions on the same device (Mattermost's rule), in one transaction.
// expiresAt > 0 also sets the session's expiry. It returns the device id
// the session had before and the ids of the revoked sessions;
// ErrNotFound when the session no longer exists.
//
// A browser's Web Push registration ("webpush:<id>") belongs to the
// browser, not to a user: when another user's session on the same
// browser registers it, the earlier session must stop receiving (its
// pushes would reach whoever uses the browser now) and must not drop the
// registration at its logout. So the device id is also taken off every
// other session, of any user; detached lists those sessions' users.
func (s *Store) AttachDeviceID(ctx context.Context, sessionID, userID, deviceID string, expiresAt int64) (previous string, revoked, detached []string, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		// The user first, then sessions: CreateSession's lock order.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR SHARE`, userID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT device_id FROM sessions WHERE id = $1 AND user_id = $2 FOR UPDATE`,
			sessionID, userID).Scan(&previous); err != nil {
			return err
		}
		if deviceID != "" {
			rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 AND device_id = $2 AND id <> $3 RETURNING id`,
				userID, deviceID, sessionID)
			if err != nil {
				return err
			}
			if revoked, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		if strings.HasPrefix(deviceID, webPushDevicePrefix) {
			rows, err := tx.Query(ctx, `UPDATE sessions SET device_id = '' WHERE device_id = $1 AND id <> $2 RETURNING user_id`,
				deviceID, sessionID)
			if err != nil {
				return err
			}
			if detached, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE sessions SET device_id = $2,
			expires_at = CASE WHEN $3::bigint > 0 THEN $3::bigint ELSE expires_at END WHERE id = $1`,
			sessionID, deviceID, expiresAt)
		return err
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("sessions: attach device: %w", mapErr(err))
	}
	return previous, revoked, detached, nil
}

// webPushDevicePrefix starts the device id of a browser's Web Push
// registration.
const webPushDevicePrefix = "webpush:"

// DeviceHeld reports whether any session has deviceID.
func (s *Store) DeviceHeld(ctx context.Context, deviceID string) (bool, error) {
	var held bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE device_id = $1)`, deviceID).Scan(&held); err != nil {
		return false, fmt.Errorf("sessions: device held: %w", mapErr(err))
	}
	return held, nil
}

// ClearDeviceID removes deviceID from a session if the session still has
// it, and reports whether it did (a session that attached another device
// meanwhile keeps it).
func (s *Store) ClearDeviceID(ctx context.Context, sessionID, deviceID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET device_id = '' WHERE id = $1 AND device_id = $2`, sessionID, deviceID)
	if err != nil {
		return false, fmt.Errorf("sessions: clear device: %w", mapErr(err))
	}
	return tag.RowsAffected() > 0, nil
}

// DeviceSession is a live session with a device to push to.
type DeviceSession struct {
	ID       string
	UserID   string
	DeviceID string
}

// DeviceSessions returns the unexpired sessions of the users that have a
// device id (now in ms), in a stable order.
func (s *Store) DeviceSessions(ctx context.Context, userIDs []string, now int64) ([]DeviceSession, error) {
	const q = `SELECT id, user_id, device_id FROM sessions
	WHERE user_id = ANY($1) AND device_id <> '' AND (expires_at = 0 OR expires_at > $2)
	ORDER BY user_id, create_at, id`
	rows, err := s.pool.Query(ctx, q, userIDs, now)
	if err != nil {
		return nil, fmt.Errorf("sessions: with devices: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeviceSession, error) {
		var d DeviceSession
		err := r.Scan(&d.ID, &d.UserID, &d.DeviceID)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: with devices: %w", mapErr(err))
	}
	return out, nil
}

// PushRecipient is a channel member who could be pushed to: active, with
// at least one live session that has a device.
type PushRecipient struct {
	UserID         string
	Username       string
	UserNotify     model.StringMap
	MemberNotify   model.StringMap
	Status         string // "offline" for a user without a status
	LastActivityAt int64
	ActiveChannel  string
	// ActiveChannelAt is when ActiveChannel was last viewed (ms).
	ActiveChannelAt int64
}

// The EXISTS is answered by sessions_device_idx; members without a device
// cost one index probe each.
const pushRecipientsSQL = `SELECT u.id, u.username, u.notify_props, cm.notify_props,
		COALESCE(st.status, 'offline'), COALESCE(st.last_activity_at, 0),
		COALESCE(st.active_channel, ''), COALESCE(st.active_channel_at, 0)
	FROM channel_members cm
	JOIN users u ON u.id = cm.user_id AND u.delete_at = 0
	LEFT JOIN status st ON st.user_id = cm.user_id
	WHERE cm.channel_id = $1 AND cm.user_id <> $2
		AND EXISTS (SELECT 1 FROM sessions se WHERE se.user_id = cm.user_id AND se.device_id <> ''
			AND (se.expires_at = 0 OR se.expires_at > $3))
	ORDER BY u.id`

// PushRecipients returns the members of a channel, other than exclude,
// who have a device to push to (now in ms).
func (s *Store) PushRecipients(ctx context.Context, channelID, exclude string, now int64) ([]PushRecipient, error) {
	rows, err := s.pool.Query(ctx, pushRecipientsSQL, channelID, exclude, now)
	if err != nil {
		return nil, fmt.Errorf("push: recipients: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PushRecipient, error) {
		var p PushRecipient
		err := r.Scan(&p.UserID, &p.Username, &p.UserNotify, &p.MemberNotify, &p.Status, &p.LastActivityAt,
			&p.ActiveChannel, &p.ActiveChannelAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("push: recipients: %w", mapErr(err))
	}
	return out, nil
}

// BadgeCounts returns each user's badge, as Mattermost's GetUnreadCount
// counts it: unread messages in direct channels plus mentions elsewhere,
// over live channels. Users without memberships count 0.
func (s *Store) BadgeCounts(ctx context.Context, userIDs []string) (map[string]int, error) {
	const q = `SELECT cm.user_id, COALESCE(SUM(CASE WHEN c.type = 'D'
			THEN GREATEST(c.total_msg_count - cm.msg_count, 0) ELSE cm.mention_count END), 0)
	FROM channel_members cm JOIN channels c ON c.id = cm.channel_id AND c.delete_at = 0
	WHERE cm.user_id = ANY($1)
	GROUP BY cm.user_id`
	rows, err := s.pool.Query(ctx, q, userIDs)
	if err != nil {
		return nil, fmt.Errorf("push: badge counts: %w", mapErr(err))
	}
	defer rows.Close()
	out := make(map[string]int, len(userIDs))
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("push: badge counts: %w", mapErr(err))
		}
		out[id] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push: badge counts: %w", mapErr(err))
	}
	return out, nil
}

// ThreadPosters returns who wrote a thread's root post and who replied to
// it (the root's participants).
func (s *Store) ThreadPosters(ctx context.Context, rootID string) (author string, repliers []string, err error) {
	err = s.pool.QueryRow(ctx, `SELECT user_id, participants FROM posts WHERE id = $1`, rootID).Scan(&author, &repliers)
	if err != nil {
		return "", nil, fmt.Errorf("push: thread posters: %w", mapErr(err))
	}
	return author, repliers, nil
}

// ChannelMemberUsernames returns the usernames of a channel's active
// members (for a group message's name), by id.
func (s *Store) ChannelMemberUsernames(ctx context.Context, channelID string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.id, u.username FROM channel_members cm
		JOIN users u ON u.id = cm.user_id AND u.delete_at = 0 WHERE cm.channel_id = $1`, channelID)
	if err != nil {
		return nil, fmt.Errorf("push: member usernames: %w", mapErr(err))
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("push: member usernames: %w", mapErr(err))
		}
		out[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push: member usernames: %w", mapErr(err))
	}
	return out, nil
}

// SetActiveChannel records the channel a user is viewing ("" for none) at
// now (ms). A user without a status gets an offline one, which means the
// same as none.
func (s *Store) SetActiveChannel(ctx context.Context, userID, channelID string, now int64) error {
	const q = `INSERT INTO status (user_id, status, active_channel, active_channel_at) VALUES ($1, 'offline', $2, $3)
	ON CONFLICT (user_id) DO UPDATE SET active_channel = excluded.active_channel, active_channel_at = excluded.active_channel_at`
	if _, err := s.pool.Exec(ctx, q, userID, channelID, now); err != nil {
		return fmt.Errorf("status: set active channel: %w", mapErr(err))
	}
	return nil
}
