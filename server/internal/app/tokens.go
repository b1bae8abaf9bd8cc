package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// Personal access tokens. A token is a bearer token like a session's; only
// its SHA-256 is stored. It has no session row: on a session-cache miss,
// Session's loader finds either a session or an active token of an active
// user in one query and builds a session for the token (its id is the
// token's id), which is cached like any other. Revoking or disabling the
// token drops that cached session and ends its sockets at once; a
// deactivated user's tokens stop matching the query.
//
// Who may manage tokens (a simplification of Mattermost's
// create/read/revoke_user_access_token permissions, which by default only
// the system_user_access_token role and system admins hold): system
// admins, for anyone; users whose roles include system_user_access_token,
// for themselves only.

const tokenMissing = "app.user_access_token.get_by_user.app_error"

// loadSession is the session cache's loader: a session row, or a session
// built from a personal access token when those are enabled.
func (a *App) loadSession(ctx context.Context, token string) (*model.Session, error) {
	return a.store.GetSessionOrAccessToken(ctx, token, a.set.EnableUserAccessTokens, a.millis())
}

// requireTokenPermission checks that s may use permission on the tokens of
// userID.
func requireTokenPermission(where string, s *model.Session, permission, userID string) *model.AppError {
	if s.IsSystemAdmin() {
		return nil
	}
	if s.IsOAuth || !model.HasRole(s.Roles, model.RoleSystemUserAccessToken) {
		return model.ErrPermission(where, s.UserID, permission)
	}
	if userID != "" && userID != s.UserID {
		return model.ErrPermission(where, s.UserID, "edit_other_users")
	}
	return nil
}

// CreateUserAccessToken creates a token for userID. The reply is the only
// time its value is shown.
func (a *App) CreateUserAccessToken(ctx context.Context, s *model.Session, userID, description string) (*model.UserAccessToken, *model.AppError) {
	const where = "app.create_user_access_token"
	if !a.set.EnableUserAccessTokens {
		return nil, model.NewAppError(where, "app.user_access_token.disabled", http.StatusNotImplemented,
			"Personal access tokens are disabled on this server. Please contact your system administrator for details.")
	}
	if s.IsOAuth {
		return nil, model.ErrPermission(where, s.UserID, "create_user_access_token").Detail("attempted access by oauth app")
	}
	description = strings.TrimSpace(description)
	if description == "" || strings.ContainsRune(description, 0) || !utf8.ValidString(description) {
		return nil, model.ErrInvalidBody(where, "description")
	}
	if utf8.RuneCountInString(description) > model.UserAccessTokenDescriptionMax {
		return nil, badRequest(where, "model.user_access_token.is_valid.description.app_error",
			"The description must be 255 characters or fewer.")
	}
	if err := requireTokenPermission(where, s, "create_user_access_token", userID); err != nil {
		return nil, err
	}
	if _, err := a.store.GetUser(ctx, userID); err != nil {
		return nil, storeErr(where, err, userMissing, "user")
	}
	t := &model.UserAccessToken{
		ID: model.NewID(), Token: model.NewToken(), UserID: userID, Description: description, IsActive: true,
	}
	if err := a.store.CreateUserAccessToken(ctx, t, a.millis()); err != nil {
		return nil, internalErr(where, err)
	}
	return t, nil
}

// UserAccessTokensForUser lists a user's tokens, without their values.
func (a *App) UserAccessTokensForUser(ctx context.Context, s *model.Session, userID string, offset, limit int) ([]*model.UserAccessToken, *model.AppError) {
	const where = "app.get_user_access_tokens_for_user"
	if err := requireTokenPermission(where, s, "read_user_access_token", userID); err != nil {
		return nil, err
	}
	out, err := a.store.ListUserAccessTokens(ctx, userID, offset, limit)
	if err != nil {
		return nil, internalErr(where, err)
	}
	return out, nil
}

// AllUserAccessTokens lists every token, without their values (system
// admins).
func (a *App) AllUserAccessTokens(ctx context.Context, s *model.Session, offset, limit int) ([]*model.UserAccessToken, *model.AppError) {
	const where = "app.get_user_access_tokens"
	if !s.IsSystemAdmin() {
		return nil, model.ErrPermission(where, s.UserID, "manage_system")
	}
	out, err := a.store.ListUserAccessTokens(ctx, "", offset, limit)
	if err != nil {
		return nil, internalErr(where, err)
	}
	return out, nil
}

// userAccessToken loads a token the caller may use permission on.
func (a *App) userAccessToken(ctx context.Context, where string, s *model.Session, permission, tokenID string) (*model.UserAccessToken, *model.AppError) {
	if err := requireTokenPermission(where, s, permission, ""); err != nil {
		return nil, err
	}
	t, err := a.store.GetUserAccessToken(ctx, tokenID)
	if err != nil {
		return nil, storeErr(where, err, tokenMissing, "personal access token")
	}
	if err := requireTokenPermission(where, s, permission, t.UserID); err != nil {
		return nil, err
	}
	return t, nil
}

// UserAccessToken returns one token, without its value.
func (a *App) UserAccessToken(ctx context.Context, s *model.Session, tokenID string) (*model.UserAccessToken, *model.AppError) {
	return a.userAccessToken(ctx, "app.get_user_access_token", s, "read_user_access_token", tokenID)
}

// RevokeUserAccessToken deletes a token; requests using it fail from now
// on and its WebSockets close.
func (a *App) RevokeUserAccessToken(ctx context.Context, s *model.Session, tokenID string) *model.AppError {
	const where = "app.revoke_user_access_token"
	t, appErr := a.userAccessToken(ctx, where, s, "revoke_user_access_token", tokenID)
	if appErr != nil {
		return appErr
	}
	if err := a.store.DeleteUserAccessToken(ctx, t.ID); err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return internalErr(where, err)
	}
	a.dropSessions(ctx, t.ID)
	return nil
}

// SetUserAccessTokenActive disables a token (as revoking does, but it can
// be enabled again) or enables it. Mattermost asks for
// revoke_user_access_token to disable and create_user_access_token to
// enable.
func (a *App) SetUserAccessTokenActive(ctx context.Context, s *model.Session, tokenID string, active bool) *model.AppError {
	where, permission := "app.disable_user_access_token", "revoke_user_access_token"
	if active {
		where, permission = "app.enable_user_access_token", "create_user_access_token"
	}
	t, appErr := a.userAccessToken(ctx, where, s, permission, tokenID)
	if appErr != nil {
		return appErr
	}
	if err := a.store.SetUserAccessTokenActive(ctx, t.ID, active); err != nil {
		return storeErr(where, err, tokenMissing, "personal access token")
	}
	if !active {
		a.dropSessions(ctx, t.ID)
	}
	return nil
}
