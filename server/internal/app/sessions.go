package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// sessionActivityInterval is how often a used session's last activity is
// written back (Mattermost's SessionActivityTimeout).
const sessionActivityInterval = 5 * time.Minute

// Session returns the live session for a bearer token, or a 401.
func (a *App) Session(ctx context.Context, token string) (*model.Session, *model.AppError) {
	const where = "app.session"
	if token == "" || len(token) > 64 {
		return nil, model.ErrSessionExpired(where)
	}
	now := a.millis()
	s, err := a.sessions.lookup(ctx, token, a.loadSession)
	if err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, model.ErrSessionExpired(where)
		}
		return nil, internalErr(where, err)
	}
	if s.IsExpired(now) {
		a.sessions.removeID(s.ID)
		return nil, model.ErrSessionExpired(where).Detail("session expired")
	}
	// A personal access token's session has no row to touch (tokens.go).
	if now-s.LastActivityAt > sessionActivityInterval.Milliseconds() && !s.IsUserAccessToken() {
		var extend int64
		if a.set.ExtendSessionWithUse {
			extend = now + a.sessionLength(s.DeviceID).Milliseconds()
		}
		gen := a.sessions.generation()
		if err := a.store.TouchSession(ctx, s.ID, now, extend); err != nil {
			if errors.Is(err, postgres.ErrNotFound) {
				// Revoked or cleaned up where this node's cache did not
				// hear of it: forget it rather than touch it back to life.
				a.dropSessions(ctx, s.ID)
				return nil, model.ErrSessionExpired(where).Detail("session revoked")
			}
			a.log.Warn("touch session", "err", err)
		} else {
			c := *s
			c.LastActivityAt = now
			if extend > 0 {
				c.ExpiresAt = extend
			}
			a.sessions.put(token, &c, gen)
			s = &c
		}
	}
	return s, nil
}

// Authenticate implements ws.Authenticator.
func (a *App) Authenticate(ctx context.Context, token string) (ws.Session, error) {
	s, appErr := a.Session(ctx, token)
	if appErr != nil {
		return ws.Session{}, appErr
	}
	return ws.Session{ID: s.ID, UserID: s.UserID, IsAdmin: s.IsSystemAdmin(), ExpiresAt: s.ExpiresAt}, nil
}

func (a *App) sessionLength(deviceID string) time.Duration {
	// A browser with a Web Push registration is still a browser.
	if deviceID != "" && !isWebPushDevice(deviceID) {
		return a.set.SessionLengthMobile
	}
	return a.set.SessionLengthWeb
}

// LoginResult is a successful login: the user, the new session and its
// bearer token.
type LoginResult struct {
	User    *model.User
	Session *model.Session
}

// Login checks credentials and opens a session. Failures are answered
// with one masked error so a caller cannot tell which part was wrong;
// MaximumLoginAttempts consecutive failures lock the account until an
// admin resets the password.
func (a *App) Login(ctx context.Context, req model.LoginRequest, props model.StringMap) (*LoginResult, *model.AppError) {
	const where = "app.login"
	invalid := model.NewAppError(where, "api.user.login.invalid_credentials_email_username", http.StatusUnauthorized,
		"Enter a valid email or username and/or password.")
	loginID := normalizeLoginID(req.LoginID)
	if loginID == "" && req.ID == "" {
		return nil, badRequest(where, "api.user.login.blank_pwd.app_error", "login_id is required.")
	}
	if req.Password == "" {
		return nil, badRequest(where, "api.user.login.blank_pwd.app_error", "Password field must not be blank.")
	}
	var (
		u    *model.User
		hash string
		err  error
	)
	if req.ID != "" {
		if !model.IsValidID(req.ID) {
			return nil, invalid
		}
		u, err = a.store.GetUser(ctx, req.ID)
		if err == nil {
			hash, err = a.store.GetPasswordHash(ctx, u.ID)
		}
	} else {
		u, hash, err = a.store.GetUserForLogin(ctx, loginID)
	}
	if err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			// Spend the same time as a real check so timing does not
			// reveal whether the account exists.
			if _, appErr := a.checkPassword(ctx, where, "", req.Password); appErr != nil {
				return nil, appErr
			}
			return nil, invalid
		}
		return nil, internalErr(where, err)
	}
	if req.ID == "" && !a.loginIDAllowed(u, loginID) {
		return nil, invalid
	}
	if a.set.MaxLoginAttempts > 0 && u.FailedAttempts >= a.set.MaxLoginAttempts {
		return nil, model.NewAppError(where, "api.user.check_user_login_attempts.too_many.app_error",
			http.StatusUnauthorized, "Your account is locked because of too many failed password attempts. Please reset your password.")
	}
	match, appErr := a.checkPassword(ctx, where, hash, req.Password)
	if appErr != nil {
		return nil, appErr
	}
	if !match {
		if _, err := a.store.RecordLoginAttempt(ctx, u.ID, false); err != nil {
			return nil, internalErr(where, err)
		}
		return nil, invalid
	}
	if u.DeleteAt != 0 {
		return nil, errInactive(where)
	}
	if u.FailedAttempts > 0 {
		if _, err := a.store.RecordLoginAttempt(ctx, u.ID, true); err != nil {
			return nil, internalErr(where, err)
		}
	}
	s, appErr := a.createSession(ctx, u, req.DeviceID, props)
	if appErr != nil {
		return nil, appErr
	}
	u.Sanitize(model.SanitizeOptions{Email: true, FullName: true})
	return &LoginResult{User: u, Session: s}, nil
}

func (a *App) loginIDAllowed(u *model.User, loginID string) bool {
	if loginID == u.Username {
		return a.set.EnableSignInWithUsername
	}
	return a.set.EnableSignInWithEmail
}

// createSession opens a session for u.
func (a *App) createSession(ctx context.Context, u *model.User, deviceID string, props model.StringMap) (*model.Session, *model.AppError) {
	now := a.millis()
	if props == nil {
		props = model.StringMap{}
	}
	s := &model.Session{
		ID: model.NewID(), Token: model.NewToken(), CSRF: model.NewToken(),
		CreateAt: now, LastActivityAt: now, ExpiresAt: now + a.sessionLength(deviceID).Milliseconds(),
		UserID: u.ID, DeviceID: deviceID, Roles: u.Roles, Props: props, TeamMembers: []*model.TeamMember{},
	}
	s.Props["csrf"] = s.CSRF
	revoked, err := a.store.CreateSession(ctx, s)
	if errors.Is(err, postgres.ErrNotFound) {
		// Deactivated between the password check and now.
		return nil, errInactive("app.create_session")
	}
	if err != nil {
		return nil, internalErr("app.create_session", err)
	}
	a.dropSessions(ctx, revoked...)
	return s, nil
}

// Logout revokes the caller's session.
func (a *App) Logout(ctx context.Context, s *model.Session) *model.AppError {
	deviceID, err := a.store.DeleteSession(ctx, s.ID)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return internalErr("app.logout", err)
	}
	a.dropSessions(ctx, s.ID)
	a.queueUnregister(deviceID) // Push (issue 5): the browser's registration goes with it
	return nil
}

// Sessions lists a user's sessions (self or system admin).
func (a *App) Sessions(ctx context.Context, s *model.Session, userID string) ([]*model.Session, *model.AppError) {
	const where = "app.sessions"
	if err := a.requireSelfOrAdmin(s, userID, "edit_other_users"); err != nil {
		return nil, err
	}
	out, err := a.store.ListSessions(ctx, userID)
	if err != nil {
		return nil, internalErr(where, err)
	}
	return out, nil
}

// RevokeSession ends one of a user's sessions.
func (a *App) RevokeSession(ctx context.Context, s *model.Session, userID, sessionID string) *model.AppError {
	const where = "app.revoke_session"
	if err := a.requireSelfOrAdmin(s, userID, "edit_other_users"); err != nil {
		return err
	}
	target, err := a.store.GetSession(ctx, sessionID)
	if err != nil || target.UserID != userID {
		return badRequest(where, "api.user.revoke_session.app_error", "The session does not belong to this user.")
	}
	deviceID, err := a.store.DeleteSession(ctx, sessionID)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return internalErr(where, err)
	}
	a.dropSessions(ctx, sessionID)
	a.queueUnregister(deviceID) // Push (issue 5)
	return nil
}

// RevokeAllSessions ends every session of a user.
func (a *App) RevokeAllSessions(ctx context.Context, s *model.Session, userID string) *model.AppError {
	if err := a.requireSelfOrAdmin(s, userID, "edit_other_users"); err != nil {
		return err
	}
	return a.revokeUserSessions(ctx, userID)
}

func (a *App) revokeUserSessions(ctx context.Context, userID string) *model.AppError {
	ids, err := a.store.DeleteUserSessions(ctx, userID)
	if err != nil {
		return internalErr("app.revoke_all_sessions", err)
	}
	a.invalidate(ctx, invalidation{Users: []string{userID}, Sessions: ids})
	return nil
}

// CleanupSessions deletes expired sessions, forgets them on this node and
// ends their sockets. It returns how many were deleted.
func (a *App) CleanupSessions(ctx context.Context) (int64, error) {
	ids, err := a.store.DeleteExpiredSessions(ctx, a.millis())
	if err != nil {
		return 0, err
	}
	a.dropSessions(ctx, ids...)
	return int64(len(ids)), nil
}

// errInactive refuses a login to a deactivated account.
func errInactive(where string) *model.AppError {
	return model.NewAppError(where, "api.user.login.inactive.app_error", http.StatusUnauthorized,
		"Login failed because your account has been deactivated. Please contact an administrator.")
}
