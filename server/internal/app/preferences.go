package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// MaxPreferencesPerRequest bounds the preferences one update or delete may
// carry, as Mattermost does.
const MaxPreferencesPerRequest = 100

// GetPreferences returns a user's preferences (self or system admin);
// with category set, only that category's, and then an empty result is a
// 404 as in Mattermost.
func (a *App) GetPreferences(ctx context.Context, s *model.Session, userID, category string) ([]*model.Preference, *model.AppError) {
	const where = "app.get_preferences"
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return nil, appErr
	}
	ps, err := a.store.Preferences(ctx, userID, category)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if category != "" && len(ps) == 0 {
		return nil, model.ErrNotFound(where, "api.preference.preferences_category.get.app_error", "preferences")
	}
	return ps, nil
}

// GetPreference returns one preference of a user (self or system admin).
// A preference that is not set is a 400, as in Mattermost.
func (a *App) GetPreference(ctx context.Context, s *model.Session, userID, category, name string) (*model.Preference, *model.AppError) {
	const where = "app.get_preference"
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return nil, appErr
	}
	p, err := a.store.Preference(ctx, userID, category, name)
	if errors.Is(err, postgres.ErrNotFound) {
		return nil, badRequest(where, "app.preference.get.app_error", "Unable to find the preference.").Wrap(err)
	}
	if err != nil {
		return nil, internalErr(where, err)
	}
	return p, nil
}

// checkPreferenceBatch applies the rules every update and delete share:
// self or system admin, 1 to MaxPreferencesPerRequest entries, each for
// userID (mismatchID names the 403 otherwise).
func (a *App) checkPreferenceBatch(s *model.Session, where, userID, mismatchID string, ps []*model.Preference) *model.AppError {
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return appErr
	}
	if len(ps) == 0 || len(ps) > MaxPreferencesPerRequest {
		return model.ErrInvalidBody(where, "preferences").Detail("%d entries, limit %d", len(ps), MaxPreferencesPerRequest)
	}
	for _, p := range ps {
		if p == nil {
			return model.ErrInvalidBody(where, "preferences")
		}
		if p.UserID != userID {
			return model.NewAppError(where, mismatchID, http.StatusForbidden,
				"Unable to change the preferences of another user.").Detail("user_id=%s, preference.user_id=%s", userID, p.UserID)
		}
	}
	return nil
}

// UpdatePreferences inserts or replaces preferences of a user (self or
// system admin), all or none, and tells the user's sessions with
// preferences_changed. A flagged_post preference must name a post the
// caller may read.
func (a *App) UpdatePreferences(ctx context.Context, s *model.Session, userID string, ps []*model.Preference) *model.AppError {
	const where = "app.update_preferences"
	if appErr := a.checkPreferenceBatch(s, where, userID, "api.preference.update_preferences.set.app_error", ps); appErr != nil {
		return appErr
	}
	for _, p := range ps {
		p.PreUpdate()
		if appErr := p.IsValid(where); appErr != nil {
			return appErr
		}
		if p.Category == model.PreferenceCategoryFlaggedPost {
			if appErr := a.checkFlaggablePost(ctx, s, where, p.Name); appErr != nil {
				return appErr
			}
		}
	}
	if err := a.store.SavePreferences(ctx, ps); err != nil {
		return internalErr(where, err)
	}
	a.publishPreferences(ctx, "preferences_changed", userID, ps)
	return nil
}

// checkFlaggablePost lets a post be flagged only by someone who may read
// it, so flags cannot probe other channels.
func (a *App) checkFlaggablePost(ctx context.Context, s *model.Session, where, postID string) *model.AppError {
	if !model.IsValidID(postID) {
		return model.ErrInvalidBody(where, "preference.name")
	}
	p, err := a.store.GetPost(ctx, postID)
	if errors.Is(err, postgres.ErrNotFound) || err == nil && p.DeleteAt != 0 {
		return model.ErrInvalidBody(where, "preference.name")
	}
	if err != nil {
		return internalErr(where, err)
	}
	if appErr := a.checkChannelRead(ctx, s, p.ChannelID); appErr != nil {
		if appErr.StatusCode == http.StatusNotFound || appErr.StatusCode == http.StatusForbidden {
			return model.ErrPermission(where, s.UserID, "read_channel_content")
		}
		return appErr
	}
	return nil
}

// DeletePreferences removes preferences of a user (self or system admin)
// and tells the user's sessions with preferences_deleted. Entries that
// are not set are ignored.
func (a *App) DeletePreferences(ctx context.Context, s *model.Session, userID string, ps []*model.Preference) *model.AppError {
	const where = "app.delete_preferences"
	if appErr := a.checkPreferenceBatch(s, where, userID, "api.preference.delete_preferences.delete.app_error", ps); appErr != nil {
		return appErr
	}
	if err := a.store.DeletePreferences(ctx, userID, ps); err != nil {
		return internalErr(where, err)
	}
	a.publishPreferences(ctx, "preferences_deleted", userID, ps)
	return nil
}

// publishPreferences sends the preferences, as a JSON string, to the
// user's sessions only.
func (a *App) publishPreferences(ctx context.Context, name, userID string, ps []*model.Preference) {
	b, err := json.Marshal(ps)
	if err != nil {
		a.log.Warn("encode preferences for event", "event", name, "err", err)
		return
	}
	a.publish(ctx, &ws.Event{Name: name, Data: map[string]any{"preferences": string(b)},
		Broadcast: ws.Broadcast{UserID: userID}})
}
