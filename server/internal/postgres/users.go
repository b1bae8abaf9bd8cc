package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

const userColumns = `u.id, u.create_at, u.update_at, u.delete_at, u.username, u.auth_service, u.email,
	u.email_verified, u.nickname, u.first_name, u.last_name, u.position, u.roles, u.props, u.notify_props,
	u.last_password_update, u.last_picture_update, u.failed_attempts, u.locale, u.timezone, u.is_bot`

func scanUser(row pgx.Row) (*model.User, error) {
	u := &model.User{}
	err := row.Scan(&u.ID, &u.CreateAt, &u.UpdateAt, &u.DeleteAt, &u.Username, &u.AuthService, &u.Email,
		&u.EmailVerified, &u.Nickname, &u.FirstName, &u.LastName, &u.Position, &u.Roles, &u.Props, &u.NotifyProps,
		&u.LastPasswordUpdate, &u.LastPictureUpdate, &u.FailedAttempts, &u.Locale, &u.Timezone, &u.IsBot)
	if err != nil {
		return nil, mapErr(err)
	}
	return u, nil
}

func collectUsers(rows pgx.Rows, err error) ([]*model.User, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []*model.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, mapErr(rows.Err())
}

// firstUserLock serialises sign-ups on an empty system so exactly one user
// becomes the first system admin.
const firstUserLock = 0x6761727269736f6e // "garrison"

// CreateUser inserts u with the given bcrypt hash. The first user of an
// empty system is made system admin, atomically; u.Roles is updated.
func (s *Store) CreateUser(ctx context.Context, u *model.User, passwordHash string) error {
	const q = `INSERT INTO users (id, create_at, update_at, username, password_hash, email, email_verified,
		nickname, first_name, last_name, position, roles, props, notify_props, last_password_update, locale, timezone, is_bot)
	VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10,
		CASE WHEN EXISTS (SELECT 1 FROM users) THEN $11 ELSE 'system_admin system_user' END,
		$12, $13, $2, $14, $15, $16)
	RETURNING roles`
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(firstUserLock)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, q, u.ID, u.CreateAt, u.Username, passwordHash, u.Email, u.EmailVerified,
			u.Nickname, u.FirstName, u.LastName, u.Position, u.Roles, u.Props, u.NotifyProps,
			u.Locale, u.Timezone, u.IsBot).Scan(&u.Roles)
	})
	if err != nil {
		return fmt.Errorf("users: create: %w", mapErr(err))
	}
	u.UpdateAt = u.CreateAt
	u.LastPasswordUpdate = u.CreateAt
	return nil
}

// CountUsers returns the number of users, active or not.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, mapErr(err)
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (*model.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("users: get: %w", err)
	}
	return u, nil
}

// GetUserByUsername returns the user with the (lower-case) username.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (*model.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.username = $1`, username))
	if err != nil {
		return nil, fmt.Errorf("users: get by username: %w", err)
	}
	return u, nil
}

// GetUserByEmail returns the user with the (lower-case) email.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*model.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.email = $1`, email))
	if err != nil {
		return nil, fmt.Errorf("users: get by email: %w", err)
	}
	return u, nil
}

// GetUserForLogin returns the user whose username or email is loginID,
// with the password hash.
func (s *Store) GetUserForLogin(ctx context.Context, loginID string) (*model.User, string, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+userColumns+`, u.password_hash FROM users u
		WHERE u.username = $1 OR u.email = $1 ORDER BY (u.username = $1) DESC LIMIT 1`, loginID)
	u := &model.User{}
	var hash string
	err := row.Scan(&u.ID, &u.CreateAt, &u.UpdateAt, &u.DeleteAt, &u.Username, &u.AuthService, &u.Email,
		&u.EmailVerified, &u.Nickname, &u.FirstName, &u.LastName, &u.Position, &u.Roles, &u.Props, &u.NotifyProps,
		&u.LastPasswordUpdate, &u.LastPictureUpdate, &u.FailedAttempts, &u.Locale, &u.Timezone, &u.IsBot, &hash)
	if err != nil {
		return nil, "", fmt.Errorf("users: get for login: %w", mapErr(err))
	}
	return u, hash, nil
}

// GetPasswordHash returns the stored bcrypt hash of a user's password.
func (s *Store) GetPasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := s.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, userID).Scan(&h)
	if err != nil {
		return "", fmt.Errorf("users: get password: %w", mapErr(err))
	}
	return h, nil
}

// GetUsersByIDs returns the users among ids; unknown ids are skipped.
func (s *Store) GetUsersByIDs(ctx context.Context, ids []string, since int64) ([]*model.User, error) {
	users, err := collectUsers(s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.id = ANY($1) AND u.update_at > $2 ORDER BY u.username`, ids, since))
	if err != nil {
		return nil, fmt.Errorf("users: get by ids: %w", err)
	}
	return users, nil
}

// GetUsersByUsernames returns the users among names; unknown names are
// skipped.
func (s *Store) GetUsersByUsernames(ctx context.Context, names []string) ([]*model.User, error) {
	users, err := collectUsers(s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.username = ANY($1) ORDER BY u.username`, names))
	if err != nil {
		return nil, fmt.Errorf("users: get by usernames: %w", err)
	}
	return users, nil
}

// UserFilter narrows a user listing. Empty fields do not filter.
type UserFilter struct {
	InTeam, NotInTeam, InChannel, NotInChannel string
	// Active / Inactive restrict to users with or without delete_at.
	Active, Inactive bool
	// Role restricts to users holding this system role.
	Role string
	// Term matches a prefix of username or nickname, and of the email and
	// first/last names only where AllowEmails/AllowFullNames say the
	// viewer may see them (PrivacySettings): otherwise prefix probing
	// would reveal hidden values.
	Term                        string
	AllowEmails, AllowFullNames bool
	// Sort is "" (username) or "last_activity_at"/"create_at".
	Sort   string
	Offset int
	Limit  int
}

// ListUsers returns a page of users matching f.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]*model.User, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.InTeam != "" {
		where = append(where, `EXISTS (SELECT 1 FROM team_members tm WHERE tm.user_id = u.id AND tm.team_id = `+arg(f.InTeam)+` AND tm.delete_at = 0)`)
	}
	if f.NotInTeam != "" {
		where = append(where, `NOT EXISTS (SELECT 1 FROM team_members tm WHERE tm.user_id = u.id AND tm.team_id = `+arg(f.NotInTeam)+` AND tm.delete_at = 0)`)
	}
	if f.InChannel != "" {
		where = append(where, `EXISTS (SELECT 1 FROM channel_members cm WHERE cm.user_id = u.id AND cm.channel_id = `+arg(f.InChannel)+`)`)
	}
	if f.NotInChannel != "" {
		where = append(where, `NOT EXISTS (SELECT 1 FROM channel_members cm WHERE cm.user_id = u.id AND cm.channel_id = `+arg(f.NotInChannel)+`)`)
	}
	if f.Active {
		where = append(where, `u.delete_at = 0`)
	}
	if f.Inactive {
		where = append(where, `u.delete_at <> 0`)
	}
	if f.Role != "" {
		where = append(where, arg(f.Role)+` = ANY(string_to_array(u.roles, ' '))`)
	}
	if f.Term != "" {
		p := arg(likePrefix(f.Term))
		match := []string{`u.username LIKE ` + p, `lower(u.nickname) LIKE ` + p}
		if f.AllowFullNames {
			match = append(match, `lower(u.first_name) LIKE `+p, `lower(u.last_name) LIKE `+p)
		}
		if f.AllowEmails {
			match = append(match, `u.email LIKE `+p)
		}
		where = append(where, `(`+strings.Join(match, ` OR `)+`)`)
	}
	q := `SELECT ` + userColumns + ` FROM users u`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	switch f.Sort {
	case "create_at":
		q += ` ORDER BY u.create_at DESC, u.id`
	default:
		q += ` ORDER BY u.username`
	}
	q += ` LIMIT ` + arg(f.Limit) + ` OFFSET ` + arg(f.Offset)
	users, err := collectUsers(s.pool.Query(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("users: list: %w", err)
	}
	return users, nil
}

// likePrefix escapes term for a LIKE prefix match, lower-cased.
func likePrefix(term string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(strings.ToLower(term)) + "%"
}

// UpdateUser writes the profile fields of u (not password, roles or
// failed attempts) and sets update_at.
func (s *Store) UpdateUser(ctx context.Context, u *model.User) error {
	const q = `UPDATE users SET update_at = $2, username = $3, email = $4, email_verified = $5, nickname = $6,
		first_name = $7, last_name = $8, position = $9, props = $10, notify_props = $11, locale = $12, timezone = $13
	WHERE id = $1`
	tag, err := s.pool.Exec(ctx, q, u.ID, u.UpdateAt, u.Username, u.Email, u.EmailVerified, u.Nickname,
		u.FirstName, u.LastName, u.Position, u.Props, u.NotifyProps, u.Locale, u.Timezone)
	if err != nil {
		return fmt.Errorf("users: update: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("users: update: %w", ErrNotFound)
	}
	return nil
}

// UpdatePassword stores a new hash, resets failed attempts and, in the
// same transaction, revokes the user's sessions except keepSessionID (""
// keeps none): Mattermost's TerminateSessionsOnPasswordChange. It returns
// the revoked session ids.
func (s *Store) UpdatePassword(ctx context.Context, userID, hash string, now int64, keepSessionID string) (revoked []string, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, last_password_update = $3, update_at = $3,
			failed_attempts = 0 WHERE id = $1`, userID, hash, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id`, userID, keepSessionID)
		if err != nil {
			return err
		}
		revoked, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("users: update password: %w", mapErr(err))
	}
	return revoked, nil
}

// RecordLoginAttempt resets failed_attempts on success or increments it on
// failure, returning the new count.
func (s *Store) RecordLoginAttempt(ctx context.Context, userID string, ok bool) (int, error) {
	q := `UPDATE users SET failed_attempts = failed_attempts + 1 WHERE id = $1 RETURNING failed_attempts`
	if ok {
		q = `UPDATE users SET failed_attempts = 0 WHERE id = $1 RETURNING failed_attempts`
	}
	var n int
	if err := s.pool.QueryRow(ctx, q, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("users: record login attempt: %w", mapErr(err))
	}
	return n, nil
}
