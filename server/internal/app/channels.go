package app

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// Mattermost's ids for channel errors that several operations share.
const (
	channelByNameMissing = "app.channel.get_by_name.missing.app_error"
	channelMemberMissing = "app.channel.get_member.missing.app_error"
	channelExists        = "store.sql_channel.save_channel.exists.app_error"
)

// Channel field limits (Mattermost's model.Channel).
const (
	channelNameMaxLength       = 64
	channelDisplayNameMaxRunes = 64
	channelHeaderMaxRunes      = 1024
	channelPurposeMaxRunes     = 250
	groupMinUsers              = 3
	groupMaxUsers              = 8
	// groupMaxInput bounds the user ids a group request may list,
	// repeats included, before they are looked at.
	groupMaxInput = 4 * groupMaxUsers
)

// channelNameRe is Mattermost's validSimpleAlphaNum, the channel name rule.
var channelNameRe = regexp.MustCompile(`^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$`)

// groupNameRe matches the names of group messages, which other channels
// may not take.
var groupNameRe = regexp.MustCompile(`^[a-f0-9]{40}$`)

// ValidChannelName reports whether s is a valid channel name
// (Mattermost's model.IsValidChannelIdentifier, at most 64 bytes).
func ValidChannelName(s string) bool {
	return len(s) >= 1 && len(s) <= channelNameMaxLength && channelNameRe.MatchString(s)
}

// checkChannel applies Mattermost's Channel.IsValid rules, in its order.
func checkChannel(where string, c *model.Channel) *model.AppError {
	bad := func(what string) *model.AppError {
		return badRequest(where, "model.channel.is_valid."+what+".app_error", "Invalid channel "+what+".")
	}
	switch {
	case utf8.RuneCountInString(c.DisplayName) > channelDisplayNameMaxRunes:
		return bad("display_name")
	case !ValidChannelName(c.Name):
		return badRequest(where, "model.channel.is_valid.1_or_more.app_error",
			"Name must be 1 or more lowercase alphanumeric characters.")
	case c.Type != model.ChannelOpen && c.Type != model.ChannelPrivate && !c.IsGroupOrDirect():
		return bad("type")
	case utf8.RuneCountInString(c.Header) > channelHeaderMaxRunes:
		return bad("header")
	case utf8.RuneCountInString(c.Purpose) > channelPurposeMaxRunes:
		return bad("purpose")
	}
	if !c.IsGroupOrDirect() {
		ids := strings.Split(c.Name, "__")
		if groupNameRe.MatchString(c.Name) || len(ids) == 2 && model.IsValidID(ids[0]) && model.IsValidID(ids[1]) {
			return bad("name")
		}
	}
	return nil
}

// canManageChannel reports whether the caller may change a channel, its
// members or archive it: its members (channel_user holds those permissions
// in Mattermost's default scheme), team admins and system admins.
func (a *App) canManageChannel(ctx context.Context, s *model.Session, ch *model.Channel) (bool, error) {
	if s.IsSystemAdmin() {
		return true, nil
	}
	ok, err := a.isChannelMember(ctx, ch.ID, s.UserID)
	if err != nil || ok || ch.TeamID == "" {
		return ok, err
	}
	m, err := a.store.GetTeamMember(ctx, ch.TeamID, s.UserID)
	if errors.Is(err, postgres.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.DeleteAt == 0 && m.SchemeAdmin, nil
}

// requireManageChannel is canManageChannel as a permission check; perm is
// the public-channel permission name, whose private twin is derived.
func (a *App) requireManageChannel(ctx context.Context, s *model.Session, ch *model.Channel, perm string) *model.AppError {
	const where = "app.require_manage_channel"
	ok, err := a.canManageChannel(ctx, s, ch)
	if err != nil {
		return internalErr(where, err)
	}
	if !ok {
		if ch.Type == model.ChannelPrivate {
			perm = strings.Replace(perm, "public", "private", 1)
		}
		return model.ErrPermission(where, s.UserID, perm)
	}
	return nil
}

// sanitizeMembers hides other users' read times, as Mattermost's
// SanitizeForCurrentUser does.
func sanitizeMembers(s *model.Session, ms ...*model.ChannelMember) {
	for _, m := range ms {
		if m.UserID != s.UserID {
			m.LastViewedAt = -1
			m.LastUpdateAt = -1
		}
	}
}

// CreateChannel creates a public or private channel in a team; the
// creator needs team membership and becomes channel admin.
func (a *App) CreateChannel(ctx context.Context, s *model.Session, in *model.Channel) (*model.Channel, *model.AppError) {
	const where = "app.create_channel"
	switch in.Type {
	case model.ChannelDirect, model.ChannelGroup:
		return nil, badRequest(where, "api.channel.create_channel.direct_channel.app_error",
			"Must use createDirectChannel API service for direct message channel creation.")
	case model.ChannelOpen:
		if appErr := a.requireTeamMember(ctx, s, in.TeamID, "create_public_channel"); appErr != nil {
			return nil, appErr
		}
	case model.ChannelPrivate:
		if appErr := a.requireTeamMember(ctx, s, in.TeamID, "create_private_channel"); appErr != nil {
			return nil, appErr
		}
	}
	if _, err := a.store.GetTeam(ctx, in.TeamID); err != nil {
		return nil, storeErr(where, err, teamMissing, "team")
	}
	now := a.millis()
	c := &model.Channel{
		ID: model.NewID(), CreateAt: now, UpdateAt: now, TeamID: in.TeamID, Type: in.Type,
		DisplayName: strings.TrimSpace(in.DisplayName), Name: in.Name, Header: in.Header, Purpose: in.Purpose,
		CreatorID: s.UserID,
	}
	if appErr := checkChannel(where, c); appErr != nil {
		return nil, appErr
	}
	creator := &model.ChannelMember{ChannelID: c.ID, UserID: s.UserID, SchemeAdmin: true,
		NotifyProps: model.DefaultChannelNotifyProps(), LastUpdateAt: now}
	err := a.store.CreateChannel(ctx, c, creator, a.set.MaxChannelsPerTeam)
	switch {
	case errors.Is(err, postgres.ErrLimit):
		return nil, badRequest(where, "api.channel.create_channel.max_channel_limit.app_error",
			"Cannot create more channels in this team.").Detail("MaxChannelsPerTeam=%d", a.set.MaxChannelsPerTeam)
	case postgres.IsConflictOn(err, "channels_team_id_name_key"):
		return nil, badRequest(where, channelExists, "A channel with that name already exists on the same team.")
	case err != nil:
		return nil, internalErr(where, err)
	}
	a.refresh(invalidation{Channels: []string{c.ID}})
	a.publish(ctx, &ws.Event{Name: "channel_created", Data: map[string]any{"channel_id": c.ID, "team_id": c.TeamID},
		Broadcast: ws.Broadcast{UserID: s.UserID}})
	return c, nil
}

// dedupe returns ids without repeats, in first-seen order.
func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// directChannelName is Mattermost's GetDMNameFromIds.
func directChannelName(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "__" + b
}

// groupChannelName is Mattermost's GetGroupNameFromUserIds: the hex SHA-1
// of the sorted ids concatenated.
func groupChannelName(sorted []string) string {
	h := sha1.New()
	for _, id := range sorted {
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CreateDirectChannel returns the direct message channel between two
// users (one of them the caller, unless a system admin asks), creating it
// if needed. ids may hold just the caller for a self-DM.
func (a *App) CreateDirectChannel(ctx context.Context, s *model.Session, ids []string) (*model.Channel, *model.AppError) {
	const where = "app.create_direct_channel"
	ids = dedupe(ids)
	if len(ids) == 1 && ids[0] == s.UserID {
		ids = append(ids, s.UserID)
	}
	if len(ids) != 2 {
		return nil, model.ErrInvalidBody(where, "user_ids")
	}
	for _, id := range ids {
		if !model.IsValidID(id) {
			return nil, model.ErrInvalidBody(where, "user_id")
		}
	}
	if !slices.Contains(ids, s.UserID) && !s.IsSystemAdmin() {
		return nil, model.ErrPermission(where, s.UserID, "manage_system")
	}
	if ids[1] == s.UserID {
		ids[0], ids[1] = ids[1], ids[0]
	}
	unique := dedupe(ids)
	users, err := a.store.GetUsersByIDs(ctx, unique, 0)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if len(users) != len(unique) {
		return nil, badRequest(where, "api.channel.create_direct_channel.invalid_user.app_error",
			"Invalid user ID for direct channel creation.")
	}
	now := a.millis()
	c := &model.Channel{ID: model.NewID(), CreateAt: now, UpdateAt: now, Type: model.ChannelDirect,
		Name: directChannelName(ids[0], ids[1]), CreatorID: ids[0]}
	var members []*model.ChannelMember
	for _, id := range unique {
		members = append(members, &model.ChannelMember{ChannelID: c.ID, UserID: id,
			NotifyProps: model.DefaultChannelNotifyProps(), LastUpdateAt: now})
	}
	out, created, err := a.store.GetOrCreateChannel(ctx, c, members)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if created {
		a.refresh(invalidation{Channels: []string{out.ID}})
		a.publish(ctx, &ws.Event{Name: "direct_added", Data: map[string]any{"creator_id": ids[0], "teammate_id": ids[1]},
			Broadcast: ws.Broadcast{ChannelID: out.ID}})
	}
	return out, nil
}

// CreateGroupChannel returns the group message of 3 to 8 users (the
// caller is added if missing), creating it if needed.
func (a *App) CreateGroupChannel(ctx context.Context, s *model.Session, ids []string) (*model.Channel, *model.AppError) {
	const where = "app.create_group_channel"
	badSize := badRequest(where, "api.channel.create_group.bad_size.app_error",
		"Group message channels must contain at least 3 and no more than 8 users.")
	if len(ids) == 0 {
		return nil, model.ErrInvalidBody(where, "user_ids")
	}
	if len(ids) > groupMaxInput {
		return nil, badSize.Detail("%d user ids", len(ids))
	}
	for _, id := range ids {
		if !model.IsValidID(id) {
			return nil, model.ErrInvalidBody(where, "user_id")
		}
	}
	ids = dedupe(append(ids, s.UserID))
	slices.Sort(ids)
	if len(ids) < groupMinUsers || len(ids) > groupMaxUsers {
		return nil, badSize
	}
	users, err := a.store.GetUsersByIDs(ctx, ids, 0)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if len(users) != len(ids) {
		return nil, badRequest(where, "api.channel.create_group.bad_user.app_error",
			"One of the provided users does not exist.").Detail("user_ids=%s", jsonString(ids))
	}
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.Username
	}
	slices.Sort(names)
	display := strings.Join(names, ", ")
	if len(display) > channelNameMaxLength {
		display = display[:channelNameMaxLength]
	}
	now := a.millis()
	c := &model.Channel{ID: model.NewID(), CreateAt: now, UpdateAt: now, Type: model.ChannelGroup,
		DisplayName: display, Name: groupChannelName(ids), CreatorID: s.UserID}
	var members []*model.ChannelMember
	for _, id := range ids {
		members = append(members, &model.ChannelMember{ChannelID: c.ID, UserID: id,
			NotifyProps: model.DefaultChannelNotifyProps(), LastUpdateAt: now})
	}
	out, created, err := a.store.GetOrCreateChannel(ctx, c, members)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if created {
		a.refresh(invalidation{Channels: []string{out.ID}})
		teammates := jsonString(ids)
		for _, id := range ids {
			a.publish(ctx, &ws.Event{Name: "group_added", Data: map[string]any{"teammate_ids": teammates},
				Broadcast: ws.Broadcast{ChannelID: out.ID, UserID: id}})
		}
	}
	return out, nil
}

// GetChannel returns a channel the caller may read.
func (a *App) GetChannel(ctx context.Context, s *model.Session, id string) (*model.Channel, *model.AppError) {
	return a.readableChannel(ctx, s, id)
}

// UpdateChannel is PUT /channels/{id}: header and purpose are replaced,
// display name and name only when given. Direct and group messages may
// change only their header.
func (a *App) UpdateChannel(ctx context.Context, s *model.Session, in *model.Channel) (*model.Channel, *model.AppError) {
	const where = "app.update_channel"
	ch, appErr := a.readableChannel(ctx, s, in.ID)
	if appErr != nil {
		return nil, appErr
	}
	if ch.IsGroupOrDirect() {
		if in.Name != "" && in.Name != ch.Name || in.DisplayName != "" && in.DisplayName != ch.DisplayName || in.Purpose != ch.Purpose {
			return nil, badRequest(where, "api.channel.update_channel.update_direct_or_group_messages_not_allowed.app_error",
				"You cannot change the name, display name or purpose of direct or group messages.")
		}
	} else if appErr := a.requireManageChannel(ctx, s, ch, "manage_public_channel_properties"); appErr != nil {
		return nil, appErr
	}
	if ch.DeleteAt > 0 {
		return nil, badRequest(where, "api.channel.update_channel.deleted.app_error", "The channel has been archived or deleted.")
	}
	if in.Type != "" && in.Type != ch.Type {
		return nil, badRequest(where, "api.channel.update_channel.typechange.app_error", "Channel type cannot be updated.")
	}
	if ch.Name == model.DefaultChannelName && in.Name != "" && in.Name != ch.Name {
		return nil, badRequest(where, "api.channel.update_channel.tried.app_error", "Tried to perform an invalid update of the default channel town-square.")
	}
	ch.Header, ch.Purpose = in.Header, in.Purpose
	if in.DisplayName != "" {
		ch.DisplayName = strings.TrimSpace(in.DisplayName)
	}
	if in.Name != "" {
		ch.Name = in.Name
	}
	return a.saveChannel(ctx, where, ch)
}

// PatchChannel changes the given fields of a channel.
func (a *App) PatchChannel(ctx context.Context, s *model.Session, id string, p *model.ChannelPatch) (*model.Channel, *model.AppError) {
	const where = "app.patch_channel"
	ch, appErr := a.readableChannel(ctx, s, id)
	if appErr != nil {
		return nil, appErr
	}
	changes := func(v *string, cur string) bool { return v != nil && *v != cur }
	if ch.IsGroupOrDirect() {
		if changes(p.Name, ch.Name) || changes(p.DisplayName, ch.DisplayName) || changes(p.Purpose, ch.Purpose) {
			return nil, badRequest(where, "api.channel.patch_update_channel.update_direct_or_group_messages_not_allowed.app_error",
				"You cannot change the name, display name or purpose of direct or group messages.")
		}
	} else if appErr := a.requireManageChannel(ctx, s, ch, "manage_public_channel_properties"); appErr != nil {
		return nil, appErr
	}
	if ch.DeleteAt > 0 {
		return nil, badRequest(where, "api.channel.update_channel.deleted.app_error", "The channel has been archived or deleted.")
	}
	if ch.Name == model.DefaultChannelName && changes(p.Name, ch.Name) {
		return nil, badRequest(where, "api.channel.update_channel.tried.app_error", "Tried to perform an invalid update of the default channel town-square.")
	}
	if p.DisplayName != nil {
		ch.DisplayName = strings.TrimSpace(*p.DisplayName)
	}
	if p.Name != nil {
		ch.Name = *p.Name
	}
	if p.Header != nil {
		ch.Header = *p.Header
	}
	if p.Purpose != nil {
		ch.Purpose = *p.Purpose
	}
	return a.saveChannel(ctx, where, ch)
}

// saveChannel validates and stores an edited channel and tells its
// members.
func (a *App) saveChannel(ctx context.Context, where string, ch *model.Channel) (*model.Channel, *model.AppError) {
	if appErr := checkChannel(where, ch); appErr != nil {
		return nil, appErr
	}
	ch.UpdateAt = a.millis()
	err := a.store.UpdateChannel(ctx, ch)
	switch {
	case postgres.IsConflictOn(err, "channels_team_id_name_key"):
		return nil, badRequest(where, channelExists, "A channel with that name already exists on the same team.")
	case err != nil:
		return nil, storeErr(where, err, channelMissing, "channel")
	}
	a.publish(ctx, &ws.Event{Name: "channel_updated", Data: map[string]any{"channel": jsonString(ch)},
		Broadcast: ws.Broadcast{ChannelID: ch.ID}})
	return ch, nil
}

// DeleteChannel archives a public or private channel (its members, team
// admins and system admins may). Permanent deletion is not offered.
func (a *App) DeleteChannel(ctx context.Context, s *model.Session, id string, permanent bool) *model.AppError {
	const where = "app.delete_channel"
	ch, appErr := a.readableChannel(ctx, s, id)
	if appErr != nil {
		return appErr
	}
	if ch.IsGroupOrDirect() {
		return badRequest(where, "api.channel.delete_channel.type.invalid", "Could not delete direct or group message channels.")
	}
	if appErr := a.requireManageChannel(ctx, s, ch, "delete_public_channel"); appErr != nil {
		return appErr
	}
	if permanent {
		return model.NewAppError(where, "api.user.delete_channel.not_enabled.app_error", http.StatusUnauthorized,
			"Permanent channel deletion feature is not enabled. Please contact your System Administrator.")
	}
	deleted := badRequest(where, "api.channel.delete_channel.deleted.app_error", "The channel has been archived or deleted.")
	if ch.DeleteAt > 0 {
		return deleted
	}
	if ch.Name == model.DefaultChannelName {
		return badRequest(where, "api.channel.delete_channel.cannot.app_error", "Unable to delete the default channel town-square.")
	}
	now := a.millis()
	ok, err := a.store.ArchiveChannel(ctx, ch.ID, now)
	if err != nil {
		return internalErr(where, err)
	}
	if !ok {
		return deleted
	}
	b := ws.Broadcast{ChannelID: ch.ID}
	if ch.Type == model.ChannelOpen {
		b = ws.Broadcast{TeamID: ch.TeamID}
	}
	a.publish(ctx, &ws.Event{Name: "channel_deleted", Data: map[string]any{"channel_id": ch.ID, "delete_at": now}, Broadcast: b})
	return nil
}

// ChannelStats is Mattermost's model.ChannelStats.
type ChannelStats struct {
	ChannelID       string `json:"channel_id"`
	MemberCount     int64  `json:"member_count"`
	GuestCount      int64  `json:"guest_count"`
	PinnedPostCount int64  `json:"pinnedpost_count"`
	FilesCount      int64  `json:"files_count"`
}

// GetChannelStats counts a readable channel's members and pinned posts.
// Garrison keeps no per-channel file count: files_count is 0, or -1 when
// the caller asked to exclude it (as Mattermost answers then).
func (a *App) GetChannelStats(ctx context.Context, s *model.Session, id string, excludeFiles bool) (*ChannelStats, *model.AppError) {
	if _, appErr := a.readableChannel(ctx, s, id); appErr != nil {
		return nil, appErr
	}
	members, pinned, err := a.store.ChannelStats(ctx, id)
	if err != nil {
		return nil, internalErr("app.get_channel_stats", err)
	}
	st := &ChannelStats{ChannelID: id, MemberCount: members, PinnedPostCount: pinned}
	if excludeFiles {
		st.FilesCount = -1
	}
	return st, nil
}

// PublicChannels returns a page of a team's public channels (team members
// and system admins).
func (a *App) PublicChannels(ctx context.Context, s *model.Session, teamID string, offset, limit int) ([]*model.Channel, *model.AppError) {
	if appErr := a.requireTeamMember(ctx, s, teamID, "list_team_channels"); appErr != nil {
		return nil, appErr
	}
	cs, err := fromReplica(ctx, a, s.UserID, func(st *postgres.Store) ([]*model.Channel, error) {
		return st.PublicChannels(ctx, teamID, offset, limit)
	})
	if err != nil {
		return nil, internalErr("app.public_channels", err)
	}
	return cs, nil
}

// readableByName applies readableChannel to a channel found by name. As
// in Mattermost, a private, direct or group channel the caller may not
// read is reported missing under the by-name id, whatever readableChannel
// says; a public one the caller may not read is forbidden.
func (a *App) readableByName(ctx context.Context, s *model.Session, ch *model.Channel) (*model.Channel, *model.AppError) {
	out, appErr := a.readableChannel(ctx, s, ch.ID)
	hidden := appErr != nil && (appErr.StatusCode == http.StatusNotFound ||
		appErr.StatusCode == http.StatusForbidden && ch.Type != model.ChannelOpen)
	if hidden {
		return nil, model.ErrNotFound("app.channel_by_name", channelByNameMissing, "channel").Wrap(appErr)
	}
	return out, appErr
}

// ChannelByName returns a team's channel by name.
func (a *App) ChannelByName(ctx context.Context, s *model.Session, teamID, name string, includeDeleted bool) (*model.Channel, *model.AppError) {
	ch, err := a.store.GetChannelByName(ctx, teamID, name, includeDeleted)
	if err != nil {
		return nil, storeErr("app.channel_by_name", err, channelByNameMissing, "channel")
	}
	return a.readableByName(ctx, s, ch)
}

// ChannelByTeamName returns a channel by its team's and its own name.
func (a *App) ChannelByTeamName(ctx context.Context, s *model.Session, teamName, name string, includeDeleted bool) (*model.Channel, *model.AppError) {
	const where = "app.channel_by_team_name"
	t, err := a.store.GetTeamByName(ctx, teamName)
	if err != nil {
		return nil, storeErr(where, err, teamByNameMissing, "team")
	}
	ch, err := a.store.GetChannelByName(ctx, t.ID, name, includeDeleted)
	if err != nil {
		return nil, storeErr(where, err, channelByNameMissing, "channel")
	}
	return a.readableByName(ctx, s, ch)
}

// ChannelsForUser returns a user's channels in a team plus their direct
// and group messages (self or system admin; the caller must see the team).
func (a *App) ChannelsForUser(ctx context.Context, s *model.Session, userID, teamID string, includeDeleted bool, lastDeleteAt int64) ([]*model.Channel, *model.AppError) {
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return nil, appErr
	}
	if appErr := a.requireTeamMember(ctx, s, teamID, "view_team"); appErr != nil {
		return nil, appErr
	}
	cs, err := fromReplica(ctx, a, s.UserID, func(st *postgres.Store) ([]*model.Channel, error) {
		return st.ChannelsForUser(ctx, teamID, userID, includeDeleted, lastDeleteAt)
	})
	if err != nil {
		return nil, internalErr("app.channels_for_user", err)
	}
	return cs, nil
}

// ChannelMembersForUser returns a user's memberships of a team's channels
// and of their direct and group messages.
func (a *App) ChannelMembersForUser(ctx context.Context, s *model.Session, userID, teamID string) ([]*model.ChannelMember, *model.AppError) {
	if appErr := a.requireTeamMember(ctx, s, teamID, "view_team"); appErr != nil {
		return nil, appErr
	}
	if appErr := a.requireSelfOrAdmin(s, userID, "manage_system"); appErr != nil {
		return nil, appErr
	}
	ms, err := a.store.ChannelMembersForUser(ctx, teamID, userID)
	if err != nil {
		return nil, internalErr("app.channel_members_for_user", err)
	}
	sanitizeMembers(s, ms...)
	return ms, nil
}

// AddChannelMembers adds users to a public or private channel. Team
// members may join a public channel themselves; adding others needs
// channel membership (or team or system admin). Users already in the
// channel are returned as they are. As in Mattermost, a failure for one
// user does not stop the others; it is returned only if nobody could be
// added.
func (a *App) AddChannelMembers(ctx context.Context, s *model.Session, channelID string, userIDs []string) ([]*model.ChannelMember, *model.AppError) {
	const where = "app.add_channel_members"
	ch, appErr := a.readableChannel(ctx, s, channelID)
	if appErr != nil {
		return nil, appErr
	}
	if ch.IsGroupOrDirect() {
		return nil, badRequest(where, "api.channel.add_user_to_channel.type.app_error", "Can not add user to this channel type.")
	}
	if ch.DeleteAt > 0 {
		return nil, archived(where, "api.channel.add_user_to_channel.deleted.app_error")
	}
	canManage, err := a.canManageChannel(ctx, s, ch)
	if err != nil {
		return nil, internalErr(where, err)
	}
	var lastErr *model.AppError
	out := []*model.ChannelMember{}
	for _, id := range dedupe(userIDs) {
		if !canManage {
			self := id == s.UserID
			if !self || ch.Type != model.ChannelOpen {
				perm := "manage_public_channel_members"
				if ch.Type == model.ChannelPrivate {
					perm = "manage_private_channel_members"
				}
				lastErr = model.ErrPermission(where, s.UserID, perm)
				continue
			}
			// readableChannel let the caller see this public channel, so
			// they are a team member: they may join it.
		}
		m, appErr := a.addChannelMember(ctx, ch, id)
		if appErr != nil {
			lastErr = appErr
			continue
		}
		out = append(out, m)
	}
	if len(out) == 0 && lastErr != nil {
		return nil, lastErr
	}
	sanitizeMembers(s, out...)
	return out, nil
}

// addChannelMember adds one active team member to ch. The team check is
// part of the insert (Store.AddChannelMember), so a user leaving the team
// meanwhile cannot be left in the channel.
func (a *App) addChannelMember(ctx context.Context, ch *model.Channel, userID string) (*model.ChannelMember, *model.AppError) {
	const where = "app.add_channel_member"
	u, err := a.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr(where, err, userMissing, "user")
	}
	if u.DeleteAt > 0 {
		return nil, model.NewAppError(where, "app.channel.add_member.deleted_user.app_error", http.StatusForbidden,
			"Can not add a deactivated user as a member of the channel.")
	}
	m, added, err := a.store.AddChannelMember(ctx, &model.ChannelMember{ChannelID: ch.ID, UserID: userID,
		NotifyProps: model.DefaultChannelNotifyProps(), LastUpdateAt: a.millis()}, ch.TeamID)
	if errors.Is(err, postgres.ErrNotTeamMember) {
		return nil, a.notTeamMember(ctx, where, ch.TeamID, userID)
	}
	if err != nil {
		return nil, internalErr(where, err)
	}
	if added {
		a.refresh(invalidation{Channels: []string{ch.ID}})
		a.publishUserAdded(ctx, ch.ID, ch.TeamID, userID)
	}
	return m, nil
}

// notTeamMember is Mattermost's error for adding a user who is not an
// active member of the team to one of its channels: 404 if they never
// were, 400 if they were removed.
func (a *App) notTeamMember(ctx context.Context, where, teamID, userID string) *model.AppError {
	_, err := a.store.GetTeamMember(ctx, teamID, userID)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return internalErr(where, err)
	}
	if err != nil {
		return model.ErrNotFound(where, teamMemberMissing, "team member").Wrap(err)
	}
	return badRequest(where, "api.channel.add_user.to.channel.failed.deleted.app_error",
		"Failed to add user to channel because they have been removed from the team.")
}

// publishUserAdded tells a channel's members, and the added user, that
// userID joined it.
func (a *App) publishUserAdded(ctx context.Context, channelID, teamID, userID string) {
	data := map[string]any{"user_id": userID, "team_id": teamID}
	a.publish(ctx, &ws.Event{Name: "user_added", Data: data,
		Broadcast: ws.Broadcast{ChannelID: channelID, OmitUsers: map[string]bool{userID: true}}})
	a.publish(ctx, &ws.Event{Name: "user_added", Data: data,
		Broadcast: ws.Broadcast{ChannelID: channelID, UserID: userID}})
}

// ListChannelMembers returns a page of a readable channel's members.
func (a *App) ListChannelMembers(ctx context.Context, s *model.Session, channelID string, offset, limit int) ([]*model.ChannelMember, *model.AppError) {
	if _, appErr := a.readableChannel(ctx, s, channelID); appErr != nil {
		return nil, appErr
	}
	ms, err := a.store.ListChannelMembers(ctx, channelID, offset, limit)
	if err != nil {
		return nil, internalErr("app.list_channel_members", err)
	}
	sanitizeMembers(s, ms...)
	return ms, nil
}

// ChannelMembersByIDs returns a readable channel's members among userIDs.
func (a *App) ChannelMembersByIDs(ctx context.Context, s *model.Session, channelID string, userIDs []string) ([]*model.ChannelMember, *model.AppError) {
	if _, appErr := a.readableChannel(ctx, s, channelID); appErr != nil {
		return nil, appErr
	}
	ms, err := a.store.ChannelMembersByIDs(ctx, channelID, userIDs)
	if err != nil {
		return nil, internalErr("app.channel_members_by_ids", err)
	}
	sanitizeMembers(s, ms...)
	return ms, nil
}

// ChannelMember returns one member of a readable channel.
func (a *App) ChannelMember(ctx context.Context, s *model.Session, channelID, userID string) (*model.ChannelMember, *model.AppError) {
	if _, appErr := a.readableChannel(ctx, s, channelID); appErr != nil {
		return nil, appErr
	}
	m, err := a.store.GetChannelMember(ctx, channelID, userID)
	if err != nil {
		return nil, storeErr("app.channel_member", err, channelMemberMissing, "channel member")
	}
	sanitizeMembers(s, m)
	return m, nil
}

// RemoveChannelMember takes a user out of a public or private channel.
// Users may leave (except town-square); removing others needs channel
// membership (or team or system admin).
func (a *App) RemoveChannelMember(ctx context.Context, s *model.Session, channelID, userID string) *model.AppError {
	const where = "app.remove_channel_member"
	ch, appErr := a.readableChannel(ctx, s, channelID)
	if appErr != nil {
		return appErr
	}
	if _, err := a.store.GetUser(ctx, userID); err != nil {
		return storeErr(where, err, userMissing, "user")
	}
	if ch.IsGroupOrDirect() {
		return badRequest(where, "api.channel.remove_channel_member.type.app_error", "Could not remove user from this channel type.")
	}
	if userID != s.UserID {
		if appErr := a.requireManageChannel(ctx, s, ch, "manage_public_channel_members"); appErr != nil {
			return appErr
		}
	}
	if ch.Name == model.DefaultChannelName {
		return badRequest(where, "api.channel.remove.default.app_error", "Unable to remove user from the default channel town-square.")
	}
	mentions, err := a.store.RemoveChannelMember(ctx, channelID, userID)
	if err != nil {
		return storeErr(where, err, channelMemberMissing, "channel member")
	}
	a.invalidate(ctx, invalidation{Channels: []string{channelID}})
	a.publishUserRemoved(ctx, channelID, userID, s.UserID)
	if mentions > 0 {
		a.queueBadge(userID) // Push notifications (issue 5): the badge counted them
	}
	return nil
}

// publishUserRemoved tells a channel's members, and the removed user (no
// longer among them), that userID left it. Call it after the membership
// cache is invalidated, so the channel's audience no longer has the user.
func (a *App) publishUserRemoved(ctx context.Context, channelID, userID, removerID string) {
	a.publish(ctx, &ws.Event{Name: "user_removed", Data: map[string]any{"user_id": userID, "remover_id": removerID},
		Broadcast: ws.Broadcast{ChannelID: channelID}})
	a.publish(ctx, &ws.Event{Name: "user_removed", Data: map[string]any{"channel_id": channelID, "remover_id": removerID},
		Broadcast: ws.Broadcast{UserID: userID}})
}

// channelNotifyKeys are the notify_props a member may set (Mattermost's
// UpdateChannelMemberNotifyProps filter).
var channelNotifyKeys = []string{
	"mark_unread", "desktop", "desktop_sound", "desktop_notification_sound", "desktop_threads", "email",
	"push", "push_threads", "ignore_channel_mentions", "channel_auto_follow_threads",
}

// checkChannelNotifyProps is Mattermost's IsChannelMemberNotifyPropsValid
// for a full set of props.
func checkChannelNotifyProps(props model.StringMap) *model.AppError {
	const where = "app.check_channel_notify_props"
	level := []string{"default", "all", "mention", "none"}
	rules := []struct {
		key, id  string
		allowed  []string
		required bool
	}{
		{"desktop", "notify_level", level, true},
		{"mark_unread", "unread_level", []string{"all", "mention"}, true},
		{"push", "push_level", level, false},
		{"email", "email_value", []string{"default", "true", "false"}, false},
		{"ignore_channel_mentions", "ignore_channel_mentions_value", []string{"default", "off", "on"}, false},
		{"channel_auto_follow_threads", "channel_auto_follow_threads_value", []string{"off", "on"}, false},
	}
	for _, r := range rules {
		v, ok := props[r.key]
		if (ok || r.required) && !slices.Contains(r.allowed, v) {
			return badRequest(where, "model.channel_member.is_valid."+r.id+".app_error",
				"Invalid "+r.key+" notification level.").Detail("%s=%s", r.key, v)
		}
	}
	return nil
}

// UpdateChannelNotifyProps merges the given notify_props into a user's
// membership (self or system admin).
func (a *App) UpdateChannelNotifyProps(ctx context.Context, s *model.Session, channelID, userID string, props model.StringMap) *model.AppError {
	const where = "app.update_channel_notify_props"
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return appErr
	}
	set := model.StringMap{}
	for _, k := range channelNotifyKeys {
		if v, ok := props[k]; ok {
			set[k] = v
		}
	}
	check := func(p model.StringMap) error {
		if appErr := checkChannelNotifyProps(p); appErr != nil {
			return appErr
		}
		return nil
	}
	m, err := a.store.UpdateChannelNotifyProps(ctx, channelID, userID, set, check, a.millis())
	if err != nil {
		var ae *model.AppError
		if errors.As(err, &ae) {
			return ae
		}
		return storeErr(where, err, channelMemberMissing, "channel member")
	}
	a.publish(ctx, &ws.Event{Name: "channel_member_updated", Data: map[string]any{"channelMember": jsonString(m)},
		Broadcast: ws.Broadcast{UserID: userID}})
	return nil
}

// ViewChannel marks the viewed channel (and the one the user came from)
// as read. Blank ids are allowed; channels the user is not in are
// ignored. It returns the new last_viewed_at of each channel marked.
func (a *App) ViewChannel(ctx context.Context, s *model.Session, userID string, v *model.ChannelView) (map[string]int64, *model.AppError) {
	const where = "app.view_channel"
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return nil, appErr
	}
	now := a.millis()
	if a.pushOn() && userID == s.UserID {
		// Push notifications (issue 5): the channel the user now reads
		// ("" for none) gets no pushes while they are active in it.
		if err := a.store.SetActiveChannel(ctx, userID, v.ChannelID, now); err != nil {
			return nil, internalErr(where, err)
		}
	}
	var ids []string
	for _, id := range []string{v.ChannelID, v.PrevChannelID} {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return map[string]int64{}, nil
	}
	viewed, err := a.store.ViewChannels(ctx, userID, ids, now)
	if err != nil {
		return nil, internalErr(where, err)
	}
	times := make(map[string]int64, len(viewed))
	for _, vc := range viewed {
		times[vc.ChannelID] = vc.LastViewedAt
		if shouldClear(vc) {
			// The devices drop this channel's pushes, except the one
			// reading it (Mattermost's clearPushNotification).
			a.queueClear(userID, vc.ChannelID, s.ID)
		}
	}
	if len(times) > 0 && a.set.EnableChannelViewed {
		a.publish(ctx, &ws.Event{Name: "multiple_channels_viewed", Data: map[string]any{"channel_times": times},
			Broadcast: ws.Broadcast{UserID: userID}})
	}
	return times, nil
}

// ChannelUnread returns a user's unread counts in a channel they belong
// to. With mark_unread "mention" only mentions count.
func (a *App) ChannelUnread(ctx context.Context, s *model.Session, userID, channelID string) (*model.ChannelUnread, *model.AppError) {
	const where = "app.channel_unread"
	if appErr := a.requireSelfOrAdmin(s, userID, "edit_other_users"); appErr != nil {
		return nil, appErr
	}
	if _, appErr := a.readableChannel(ctx, s, channelID); appErr != nil {
		return nil, appErr
	}
	u, err := a.store.ChannelUnread(ctx, channelID, userID)
	if err != nil {
		return nil, storeErr(where, err, "app.channel.get_unread.app_error", "channel member")
	}
	if u.NotifyProps["mark_unread"] == "mention" {
		u.MsgCount, u.MsgCountRoot = 0, 0
	}
	return u, nil
}

// UserTyping tells a channel that userID is typing (self or system admin;
// the user must be in the channel). parentID is "" or the thread's root.
func (a *App) UserTyping(ctx context.Context, s *model.Session, userID, channelID, parentID string) *model.AppError {
	const where = "app.user_typing"
	if parentID != "" && !model.IsValidID(parentID) {
		return model.ErrInvalidBody(where, "parent_id")
	}
	if appErr := a.requireSelfOrAdmin(s, userID, "manage_system"); appErr != nil {
		return appErr
	}
	ok, err := a.isChannelMember(ctx, channelID, userID)
	if err != nil {
		return internalErr(where, err)
	}
	if !ok {
		return model.ErrPermission(where, s.UserID, "create_post")
	}
	a.publishTyping(ctx, userID, channelID, parentID)
	return nil
}

// publishTyping sends typing to the channel, not to the typist. Nothing is
// sent when ServiceSettings.EnableUserTypingMessages is off, nor when the
// user's last typing event for the channel is less than typingMinInterval
// old: a client cannot make the server fan out to a channel at its own
// rate.
func (a *App) publishTyping(ctx context.Context, userID, channelID, parentID string) {
	if !a.set.EnableUserTypingMessages || !a.typing.allow(userID, channelID, a.now()) {
		return
	}
	a.publish(ctx, &ws.Event{Name: "typing", Data: map[string]any{"user_id": userID, "parent_id": parentID},
		Broadcast: ws.Broadcast{ChannelID: channelID, OmitUsers: map[string]bool{userID: true}}})
}

// Typing throttle limits.
const (
	// typingMinInterval is the least time between two typing events of
	// one user in one channel; Mattermost's clients send one every few
	// seconds while the user types.
	typingMinInterval = time.Second
	// typingThrottleMax bounds the (user, channel) pairs remembered.
	typingThrottleMax = 50000
)

// typingThrottle remembers when each user last sent a typing event to each
// channel, for at most max pairs.
type typingThrottle struct {
	interval time.Duration
	max      int

	mu   sync.Mutex // guards the field below
	last map[typingKey]time.Time
}

type typingKey struct{ userID, channelID string }

func newTypingThrottle(interval time.Duration, max int) *typingThrottle {
	return &typingThrottle{interval: interval, max: max, last: map[typingKey]time.Time{}}
}

// allow reports whether a typing event of userID in channelID at now may
// go out, and if so records it.
func (t *typingThrottle) allow(userID, channelID string, now time.Time) bool {
	k := typingKey{userID, channelID}
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.last[k]; ok && now.Sub(at) < t.interval {
		return false
	}
	if _, ok := t.last[k]; !ok && len(t.last) >= t.max {
		t.evictLocked(now)
	}
	t.last[k] = now
	return true
}

// evictLocked makes room: it drops the pairs whose last event is old
// enough not to matter, and everything if that frees less than half, so
// the scan's cost is shared by at least max/2 inserts. Forgetting a recent
// pair only lets one extra event through.
func (t *typingThrottle) evictLocked(now time.Time) {
	for k, at := range t.last {
		if now.Sub(at) >= t.interval {
			delete(t.last, k)
		}
	}
	if len(t.last) > t.max/2 {
		clear(t.last)
	}
}

// invalidWSParam is Mattermost's NewInvalidWebSocketParamError.
func invalidWSParam(action, name string) *model.AppError {
	return badRequest("websocket: "+action, "api.websocket_handler.invalid_param.app_error",
		"Invalid "+name+" parameter.")
}

// HandleAction implements ws.ActionHandler: the client → server actions
// other than authentication and ping.
func (a *App) HandleAction(ctx context.Context, s ws.Session, connID, action string, data json.RawMessage) (any, error) {
	const where = "app.handle_action"
	if isStatusAction(action) { // Statuses (issue 3): app/status.go
		return a.handleStatusAction(ctx, s, action, data)
	}
	switch action {
	case "user_typing":
		var d struct {
			ChannelID string `json:"channel_id"`
			ParentID  string `json:"parent_id"`
		}
		if err := json.Unmarshal(data, &d); err != nil || !model.IsValidID(d.ChannelID) {
			return nil, invalidWSParam(action, "channel_id")
		}
		if d.ParentID != "" && !model.IsValidID(d.ParentID) {
			return nil, invalidWSParam(action, "parent_id")
		}
		ok, err := a.isChannelMember(ctx, d.ChannelID, s.UserID)
		if err != nil {
			return nil, internalErr(where, err)
		}
		if !ok {
			return nil, invalidWSParam(action, "channel_id")
		}
		a.publishTyping(ctx, s.UserID, d.ChannelID, d.ParentID)
		return nil, nil
	}
	return nil, badRequest(where, "api.web_socket_router.bad_action.app_error", "Unknown WebSocket action.")
}

// ChannelMembers implements ws.Audience: the members of a channel.
func (a *App) ChannelMembers(ctx context.Context, channelID string) ([]string, error) {
	set, err := a.members.channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	return setKeys(set), nil
}

// TeamMembers implements ws.Audience: the active members of a team.
func (a *App) TeamMembers(ctx context.Context, teamID string) ([]string, error) {
	set, err := a.members.team(ctx, teamID)
	if err != nil {
		return nil, err
	}
	return setKeys(set), nil
}
