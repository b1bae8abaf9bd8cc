package app

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

func itoa(n int) string { return strconv.Itoa(n) }

// reservedUsernames cannot be taken: they are mention keywords or
// Mattermost's system names.
var reservedUsernames = map[string]bool{
	"all": true, "channel": true, "here": true, "matterbot": true, "system": true, "everyone": true,
}

func normalizeLoginID(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// validUsername applies Mattermost's username rules: 3–22 characters,
// lower-case letters, digits, '.', '-', '_', starting with a letter.
func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 22 || reservedUsernames[s] {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func validEmail(s string) bool {
	if len(s) > 128 || strings.ContainsAny(s, " <>") {
		return false
	}
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s
}

// checkProfile validates the fields a user may set on themselves.
func checkProfile(where string, u *model.User) *model.AppError {
	bad := func(field string) *model.AppError {
		return badRequest(where, "model.user.is_valid."+field+".app_error", "Invalid "+field+".")
	}
	for field, v := range map[string]string{"username": u.Username, "email": u.Email, "nickname": u.Nickname,
		"first_name": u.FirstName, "last_name": u.LastName, "position": u.Position, "locale": u.Locale} {
		// Postgres text cannot hold NUL, and no client sends one.
		if strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
			return bad(field)
		}
	}
	for field, m := range map[string]model.StringMap{"props": u.Props, "notify_props": u.NotifyProps, "timezone": u.Timezone} {
		for k, v := range m {
			if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) || len(k) > 64 || len(v) > 1024 {
				return bad(field)
			}
		}
	}
	switch {
	case !validUsername(u.Username):
		return badRequest(where, "model.user.is_valid.username.app_error",
			"Username must begin with a letter and contain between 3 and 22 lowercase characters made up of numbers, letters, and the symbols '.', '-', and '_', and must not be a reserved word.")
	case !validEmail(u.Email):
		return bad("email")
	case utf8.RuneCountInString(u.Nickname) > 64:
		return bad("nickname")
	case utf8.RuneCountInString(u.FirstName) > 64:
		return bad("first_name")
	case utf8.RuneCountInString(u.LastName) > 64:
		return bad("last_name")
	case utf8.RuneCountInString(u.Position) > 128:
		return bad("position")
	case len(u.Locale) > 5:
		return bad("locale")
	}
	return nil
}

// userConflict maps a unique violation on users to Mattermost's error.
func userConflict(where string, err error) *model.AppError {
	var ce *postgres.ConflictError
	if errors.As(err, &ce) {
		switch ce.Constraint {
		case "users_username_key":
			return badRequest(where, "app.user.save.username_exists.app_error", "An account with that username already exists.")
		case "users_email_key":
			return badRequest(where, "app.user.save.email_exists.app_error", "An account with that email already exists.")
		}
	}
	return internalErr(where, err)
}

// CreateUser signs a user up. s is the caller's session, or nil for an
// anonymous sign-up. The first user of an empty system becomes system
// admin; after that anonymous sign-up needs TeamSettings.EnableOpenServer.
func (a *App) CreateUser(ctx context.Context, s *model.Session, in *model.User) (*model.User, *model.AppError) {
	const where = "app.create_user"
	admin := s != nil && s.IsSystemAdmin()
	if !admin {
		if !a.set.EnableUserCreation {
			return nil, model.NewAppError(where, "api.user.create_user.signup_email_disabled.app_error", http.StatusNotImplemented, "User sign-up is disabled.")
		}
		if !a.set.EnableOpenServer {
			n, err := a.store.CountUsers(ctx)
			if err != nil {
				return nil, internalErr(where, err)
			}
			if n > 0 {
				return nil, model.NewAppError(where, "api.user.create_user.no_open_server", http.StatusForbidden,
					"This server does not allow open signups. Please speak with your Administrator to receive an invitation.")
			}
		}
	}
	now := a.millis()
	u := &model.User{
		ID: model.NewID(), CreateAt: now,
		Username: normalizeLoginID(in.Username), Email: normalizeLoginID(in.Email),
		Nickname: in.Nickname, FirstName: in.FirstName, LastName: in.LastName, Position: in.Position,
		Roles: model.RoleSystemUser, Locale: in.Locale, Props: in.Props, NotifyProps: model.DefaultNotifyProps(in.FirstName),
		Timezone: model.DefaultTimezone(), EmailVerified: admin,
	}
	if u.Locale == "" {
		u.Locale = "en"
	}
	if u.Props == nil {
		u.Props = model.StringMap{}
	}
	for k, v := range in.NotifyProps {
		u.NotifyProps[k] = v
	}
	if err := checkProfile(where, u); err != nil {
		return nil, err
	}
	if err := a.validatePassword(where, in.Password); err != nil {
		return nil, err
	}
	hash, appErr := a.hashPassword(ctx, where, in.Password)
	if appErr != nil {
		return nil, appErr
	}
	if err := a.store.CreateUser(ctx, u, hash); err != nil {
		return nil, userConflict(where, err)
	}
	a.publish(ctx, &ws.Event{Name: "new_user", Data: map[string]any{"user_id": u.ID}})
	return u, nil
}

// BootstrapAdmin creates the first system admin if the system has no
// users; it returns false when users already exist. Used by the all-in-one
// mode.
func (a *App) BootstrapAdmin(ctx context.Context, username, email, password string) (bool, *model.AppError) {
	n, err := a.store.CountUsers(ctx)
	if err != nil {
		return false, internalErr("app.bootstrap_admin", err)
	}
	if n > 0 {
		return false, nil
	}
	u, appErr := a.CreateUser(ctx, nil, &model.User{Username: username, Email: email, Password: password})
	if appErr != nil {
		return false, appErr
	}
	if !u.IsSystemAdmin() {
		return false, internalErr("app.bootstrap_admin", errors.New("a user was created concurrently; the bootstrap user is not admin"))
	}
	return true, nil
}

// sanitizeFor removes what viewer may not see of u: the user and system
// admins see the whole profile; anyone else sees what PrivacySettings
// allow, and none of the account's private settings.
func (a *App) sanitizeFor(s *model.Session, u *model.User) *model.User {
	if s != nil && (s.UserID == u.ID || s.IsSystemAdmin()) {
		u.Sanitize(model.SanitizeOptions{Email: true, FullName: true})
		return u
	}
	u.SanitizeProfile(a.privacy())
	return u
}

// privacy is what PrivacySettings let anyone but the user and system
// admins see.
func (a *App) privacy() model.SanitizeOptions {
	return model.SanitizeOptions{Email: a.set.ShowEmailAddress, FullName: a.set.ShowFullName}
}

func (a *App) sanitizeAll(s *model.Session, users []*model.User) []*model.User {
	for _, u := range users {
		a.sanitizeFor(s, u)
	}
	return users
}

const userMissing = "app.user.missing_account.const"

// GetUser returns a user by id.
func (a *App) GetUser(ctx context.Context, s *model.Session, id string) (*model.User, *model.AppError) {
	u, err := a.store.GetUser(ctx, id)
	if err != nil {
		return nil, storeErr("app.get_user", err, userMissing, "user")
	}
	return a.sanitizeFor(s, u), nil
}

// GetUserByUsername returns a user by username.
func (a *App) GetUserByUsername(ctx context.Context, s *model.Session, name string) (*model.User, *model.AppError) {
	u, err := a.store.GetUserByUsername(ctx, normalizeLoginID(name))
	if err != nil {
		return nil, storeErr("app.get_user_by_username", err, "app.user.get_by_username.app_error", "user")
	}
	return a.sanitizeFor(s, u), nil
}

// GetUserByEmail returns a user by email. Only callers who may see emails
// can look users up by one.
func (a *App) GetUserByEmail(ctx context.Context, s *model.Session, email string) (*model.User, *model.AppError) {
	const where = "app.get_user_by_email"
	if !a.set.ShowEmailAddress && !s.IsSystemAdmin() {
		return nil, model.ErrPermission(where, s.UserID, "read_other_users_email")
	}
	u, err := a.store.GetUserByEmail(ctx, normalizeLoginID(email))
	if err != nil {
		return nil, storeErr(where, err, userMissing, "user")
	}
	return a.sanitizeFor(s, u), nil
}

// GetUsersByIDs returns users by id.
func (a *App) GetUsersByIDs(ctx context.Context, s *model.Session, ids []string, since int64) ([]*model.User, *model.AppError) {
	users, err := a.store.GetUsersByIDs(ctx, ids, since)
	if err != nil {
		return nil, internalErr("app.get_users_by_ids", err)
	}
	return a.sanitizeAll(s, users), nil
}

// GetUsersByUsernames returns users by username.
func (a *App) GetUsersByUsernames(ctx context.Context, s *model.Session, names []string) ([]*model.User, *model.AppError) {
	for i := range names {
		names[i] = normalizeLoginID(names[i])
	}
	users, err := a.store.GetUsersByUsernames(ctx, names)
	if err != nil {
		return nil, internalErr("app.get_users_by_usernames", err)
	}
	return a.sanitizeAll(s, users), nil
}

// ListUsers returns a page of users. Listing a team's or channel's users
// needs access to that team or channel.
func (a *App) ListUsers(ctx context.Context, s *model.Session, f postgres.UserFilter) ([]*model.User, *model.AppError) {
	const where = "app.list_users"
	for _, t := range []string{f.InTeam, f.NotInTeam} {
		if t != "" {
			if err := a.requireTeamMember(ctx, s, t, "view_team"); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range []string{f.InChannel, f.NotInChannel} {
		if c != "" {
			if _, err := a.readableChannel(ctx, s, c); err != nil {
				return nil, err
			}
		}
	}
	// A search term matches only fields the caller may see, or prefix
	// probing would reveal them.
	admin := s != nil && s.IsSystemAdmin()
	f.AllowEmails = a.set.ShowEmailAddress || admin
	f.AllowFullNames = a.set.ShowFullName || admin
	var caller string
	if s != nil {
		caller = s.UserID
	}
	users, err := fromReplica(ctx, a, caller, func(st *postgres.Store) ([]*model.User, error) {
		return st.ListUsers(ctx, f)
	})
	if err != nil {
		return nil, internalErr(where, err)
	}
	return a.sanitizeAll(s, users), nil
}

// Autocomplete finds users whose names start with term, within a team and
// optionally split by channel membership.
func (a *App) Autocomplete(ctx context.Context, s *model.Session, teamID, channelID, term string, limit int) (*model.UserAutocomplete, *model.AppError) {
	out := &model.UserAutocomplete{}
	if channelID != "" {
		in, err := a.ListUsers(ctx, s, postgres.UserFilter{InChannel: channelID, Term: term, Active: true, Limit: limit})
		if err != nil {
			return nil, err
		}
		notIn, err := a.ListUsers(ctx, s, postgres.UserFilter{InTeam: teamID, NotInChannel: channelID, Term: term, Active: true, Limit: limit})
		if err != nil {
			return nil, err
		}
		out.Users, out.OutOfChannel = in, notIn
		return out, nil
	}
	users, err := a.ListUsers(ctx, s, postgres.UserFilter{InTeam: teamID, Term: term, Active: true, Limit: limit})
	if err != nil {
		return nil, err
	}
	out.Users = users
	return out, nil
}

// PatchUser changes a user's profile (self or system admin). Changing
// one's own email needs the current password.
func (a *App) PatchUser(ctx context.Context, s *model.Session, id string, p *model.UserPatch) (*model.User, *model.AppError) {
	const where = "app.patch_user"
	if err := a.requireSelfOrAdmin(s, id, "edit_other_users"); err != nil {
		return nil, err
	}
	u, err := a.store.GetUser(ctx, id)
	if err != nil {
		return nil, storeErr(where, err, userMissing, "user")
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	if p.Email != nil && normalizeLoginID(*p.Email) != u.Email && !s.IsSystemAdmin() {
		hash, err := a.store.GetPasswordHash(ctx, u.ID)
		if err != nil {
			return nil, internalErr(where, err)
		}
		match := false
		if p.Password != nil {
			var appErr *model.AppError
			if match, appErr = a.checkPassword(ctx, where, hash, *p.Password); appErr != nil {
				return nil, appErr
			}
		}
		if !match {
			return nil, badRequest(where, "api.user.check_user_password.invalid.app_error", "Changing your email needs your current password.")
		}
	}
	if p.Username != nil {
		v := normalizeLoginID(*p.Username)
		p.Username = &v
	}
	if p.Email != nil {
		v := normalizeLoginID(*p.Email)
		p.Email = &v
		if v != u.Email {
			u.EmailVerified = s.IsSystemAdmin()
		}
	}
	set(&u.Username, p.Username)
	set(&u.Email, p.Email)
	set(&u.Nickname, p.Nickname)
	set(&u.FirstName, p.FirstName)
	set(&u.LastName, p.LastName)
	set(&u.Position, p.Position)
	set(&u.Locale, p.Locale)
	if p.Props != nil {
		u.Props = *p.Props
	}
	if p.NotifyProps != nil {
		for k, v := range *p.NotifyProps {
			u.NotifyProps[k] = v
		}
	}
	if p.Timezone != nil {
		u.Timezone = *p.Timezone
	}
	if err := checkProfile(where, u); err != nil {
		return nil, err
	}
	u.UpdateAt = a.millis()
	if err := a.store.UpdateUser(ctx, u); err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, storeErr(where, err, userMissing, "user")
		}
		return nil, userConflict(where, err)
	}
	a.publishUserUpdated(ctx, u)
	return a.sanitizeFor(s, u), nil
}

// publishUserUpdated sends user_updated: a sanitised copy to everyone but
// the user, and the full profile to the user themself.
func (a *App) publishUserUpdated(ctx context.Context, u *model.User) {
	pub := *u
	pub.SanitizeProfile(a.privacy())
	a.publish(ctx, &ws.Event{Name: "user_updated", Data: map[string]any{"user": &pub},
		Broadcast: ws.Broadcast{OmitUsers: map[string]bool{u.ID: true}, OnlyNonAdmins: true}})
	full := *u
	full.Sanitize(model.SanitizeOptions{Email: true, FullName: true})
	a.publish(ctx, &ws.Event{Name: "user_updated", Data: map[string]any{"user": &full},
		Broadcast: ws.Broadcast{OmitUsers: map[string]bool{u.ID: true}, OnlyAdmins: true}})
	a.publish(ctx, &ws.Event{Name: "user_updated", Data: map[string]any{"user": &full},
		Broadcast: ws.Broadcast{UserID: u.ID}})
}

// UpdatePassword changes a password. Users give their current password;
// a system admin changing someone else's does not. As with Mattermost's
// TerminateSessionsOnPasswordChange, a user changing their own password
// keeps only the session they did it from, and an admin's reset ends all
// of the user's sessions, sockets included.
func (a *App) UpdatePassword(ctx context.Context, s *model.Session, id string, req model.PasswordUpdate) *model.AppError {
	const where = "app.update_password"
	if err := a.requireSelfOrAdmin(s, id, "edit_other_users"); err != nil {
		return err
	}
	var keep string
	if s.UserID == id {
		keep = s.ID
		hash, err := a.store.GetPasswordHash(ctx, id)
		if err != nil {
			return storeErr(where, err, userMissing, "user")
		}
		match, appErr := a.checkPassword(ctx, where, hash, req.CurrentPassword)
		if appErr != nil {
			return appErr
		}
		if !match {
			return badRequest(where, "api.user.update_password.incorrect.app_error", "The \"Current Password\" you entered is incorrect. Please check that Caps Lock is off and try again.")
		}
	}
	if err := a.validatePassword(where, req.NewPassword); err != nil {
		return err
	}
	hash, appErr := a.hashPassword(ctx, where, req.NewPassword)
	if appErr != nil {
		return appErr
	}
	revoked, err := a.store.UpdatePassword(ctx, id, hash, a.millis(), keep)
	if err != nil {
		return storeErr(where, err, userMissing, "user")
	}
	a.dropSessions(ctx, revoked...)
	return nil
}
