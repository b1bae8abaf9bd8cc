package app

import (
	"context"
	"errors"
	"net/http"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// requireSelfOrAdmin lets a user act on themself, and a system admin on
// anyone.
func (a *App) requireSelfOrAdmin(s *model.Session, userID, permission string) *model.AppError {
	if s.UserID == userID || s.IsSystemAdmin() {
		return nil
	}
	return model.ErrPermission("app.require_self_or_admin", s.UserID, permission)
}

// isTeamMember reports whether userID is an active member of teamID.
func (a *App) isTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	set, err := a.members.team(ctx, teamID)
	if err != nil {
		return false, err
	}
	_, ok := set[userID]
	return ok, nil
}

// isChannelMember reports whether userID is a member of channelID.
func (a *App) isChannelMember(ctx context.Context, channelID, userID string) (bool, error) {
	set, err := a.members.channel(ctx, channelID)
	if err != nil {
		return false, err
	}
	_, ok := set[userID]
	return ok, nil
}

// requireTeamMember lets team members and system admins through.
func (a *App) requireTeamMember(ctx context.Context, s *model.Session, teamID, permission string) *model.AppError {
	if s.IsSystemAdmin() {
		return nil
	}
	ok, err := a.isTeamMember(ctx, teamID, s.UserID)
	if err != nil {
		return internalErr("app.require_team_member", err)
	}
	if !ok {
		return model.ErrPermission("app.require_team_member", s.UserID, permission)
	}
	return nil
}

// requireTeamAdmin lets team admins and system admins through.
func (a *App) requireTeamAdmin(ctx context.Context, s *model.Session, teamID, permission string) *model.AppError {
	if s.IsSystemAdmin() {
		return nil
	}
	m, err := a.store.GetTeamMember(ctx, teamID, s.UserID)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return internalErr("app.require_team_admin", err)
	}
	if err != nil || m.DeleteAt != 0 || !m.SchemeAdmin {
		return model.ErrPermission("app.require_team_admin", s.UserID, permission)
	}
	return nil
}

const channelMissing = "app.channel.get.existing.app_error"

// canRead is the one rule for reading a channel: system admins read
// everything, members read their channels, and team members read the
// team's public channels.
func (a *App) canRead(ctx context.Context, s *model.Session, ch postgres.ChannelAccess) (bool, error) {
	if s.IsSystemAdmin() {
		return true, nil
	}
	if ok, err := a.isChannelMember(ctx, ch.ID, s.UserID); err != nil || ok {
		return ok, err
	}
	if ch.Type == model.ChannelOpen {
		return a.isTeamMember(ctx, ch.TeamID, s.UserID)
	}
	return false, nil
}

// errCannotRead is the refusal of canRead: 403, as from Mattermost
// (clients branch on it). Lookups by name turn it into 404 instead
// (readableByName) so a private channel's name does not leak.
func errCannotRead(where string, s *model.Session) *model.AppError {
	return model.ErrPermission(where, s.UserID, "read_channel")
}

// accessOf is the access row of a loaded channel.
func accessOf(ch *model.Channel) postgres.ChannelAccess {
	return postgres.ChannelAccess{ID: ch.ID, TeamID: ch.TeamID, Type: ch.Type, DeleteAt: ch.DeleteAt}
}

// readableChannel returns the channel if the caller may read it (canRead).
func (a *App) readableChannel(ctx context.Context, s *model.Session, channelID string) (*model.Channel, *model.AppError) {
	const where = "app.readable_channel"
	ch, err := a.store.GetChannel(ctx, channelID)
	if err != nil {
		return nil, storeErr(where, err, channelMissing, "channel")
	}
	ok, err := a.canRead(ctx, s, accessOf(ch))
	if err != nil {
		return nil, internalErr(where, err)
	}
	if !ok {
		return nil, errCannotRead(where, s)
	}
	return ch, nil
}

// channelAccess loads a channel's access row, with its post version, if
// the caller may read the channel (canRead): one primary-key read.
func (a *App) channelAccess(ctx context.Context, s *model.Session, channelID string) (postgres.ChannelAccess, *model.AppError) {
	const where = "app.channel_access"
	acc, err := a.store.ChannelAccess(ctx, channelID)
	if err != nil {
		return acc, storeErr(where, err, channelMissing, "channel")
	}
	ok, err := a.canRead(ctx, s, acc)
	if err != nil {
		return acc, internalErr(where, err)
	}
	if !ok {
		return acc, errCannotRead(where, s)
	}
	return acc, nil
}

// checkChannelRead is canRead for reading a channel's posts, without
// loading the channel when it can: members pass on the member cache
// alone; everyone else costs channelAccess's primary-key read.
func (a *App) checkChannelRead(ctx context.Context, s *model.Session, channelID string) *model.AppError {
	ok, err := a.isChannelMember(ctx, channelID, s.UserID)
	if err != nil {
		return internalErr("app.check_channel_read", err)
	}
	if ok {
		return nil
	}
	_, appErr := a.channelAccess(ctx, s, channelID)
	return appErr
}

// memberChannel returns the channel if the caller is a member (or system
// admin): what writing to it needs.
func (a *App) memberChannel(ctx context.Context, s *model.Session, channelID, permission string) (*model.Channel, *model.AppError) {
	ch, err := a.readableChannel(ctx, s, channelID)
	if err != nil {
		return nil, err
	}
	if s.IsSystemAdmin() {
		return ch, nil
	}
	ok, e := a.isChannelMember(ctx, channelID, s.UserID)
	if e != nil {
		return nil, internalErr("app.member_channel", e)
	}
	if !ok {
		return nil, model.ErrPermission("app.member_channel", s.UserID, permission)
	}
	return ch, nil
}

// archived is the error for writes to an archived channel; id is
// Mattermost's for the operation.
func archived(where, id string) *model.AppError {
	return model.NewAppError(where, id, http.StatusBadRequest, "The channel is archived.")
}
