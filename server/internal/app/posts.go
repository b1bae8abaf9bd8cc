package app

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// Limits on a post, from Mattermost's model.Post.IsValid.
const (
	// postPropsMaxRunes is PostPropsMaxUserRunes: the JSON of the props a
	// client may send.
	postPropsMaxRunes = 800000 - 40000
	// postFileIDsMaxRunes bounds the JSON of file_ids (about ten ids).
	postFileIDsMaxRunes = 300
	// postHashtagsMaxRunes bounds the stored hashtags.
	postHashtagsMaxRunes = 1000
	// pendingPostIDMaxLength bounds the client's dedupe key.
	pendingPostIDMaxLength = 128
)

const postMissing = "app.post.get.app_error"

// serverProps are props only the server sets; a client's values are
// dropped.
var serverProps = []string{"deleteBy", "add_channel_member", "from_webhook", "from_bot", "from_plugin", "from_oauth_app"}

func postNotFound(where string) *model.AppError {
	return model.ErrNotFound(where, postMissing, "post")
}

// validPostType accepts the types a client may post: the default, /me,
// attachments and plugin types; system messages are the server's.
func validPostType(t string) bool {
	return t == "" || t == "me" || t == "slack_attachment" || strings.HasPrefix(t, "custom_")
}

// stripServerProps drops the props only the server sets from a client's.
func stripServerProps(props map[string]any) {
	for _, k := range serverProps {
		delete(props, k)
	}
}

// checkPostContent validates the fields of a post a client writes; it
// de-duplicates file_ids and makes nil props empty.
func (a *App) checkPostContent(where string, p *model.Post) *model.AppError {
	// Postgres stores no NUL character in text or jsonb.
	if strings.ContainsRune(p.Message, 0) {
		return model.ErrInvalidBody(where, "message").Detail("NUL character")
	}
	if utf8.RuneCountInString(p.Message) > a.set.MaxPostSize {
		return badRequest(where, "model.post.is_valid.message_length.app_error", "The message is too long.").
			Detail("length %d, limit %d", utf8.RuneCountInString(p.Message), a.set.MaxPostSize)
	}
	if len(p.FileIDs) > 0 {
		seen := make(map[string]bool, len(p.FileIDs))
		var ids []string
		for _, id := range p.FileIDs {
			if !model.IsValidID(id) {
				return badRequest(where, "model.post.is_valid.file_ids.app_error", "Invalid file ids.")
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		p.FileIDs = ids
		if b, _ := json.Marshal(ids); utf8.RuneCount(b) > postFileIDsMaxRunes {
			return badRequest(where, "model.post.is_valid.file_ids.app_error", "Too many file ids.")
		}
	}
	if p.Props == nil {
		p.Props = map[string]any{}
	}
	if len(p.Props) > 0 {
		b, err := json.Marshal(p.Props)
		if err != nil || hasNUL(p.Props) {
			return badRequest(where, "model.post.is_valid.props.app_error", "Invalid props.")
		}
		if utf8.RuneCount(b) > postPropsMaxRunes {
			return badRequest(where, "model.post.is_valid.props.app_error", "The props are too large.")
		}
	}
	return nil
}

// hasNUL reports whether a decoded JSON value holds a NUL character in a
// key or string.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, 0) || hasNUL(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasNUL(x) {
				return true
			}
		}
	}
	return false
}

// CreatePost creates a post as the session's user and publishes `posted`.
// A retry with the same pending_post_id returns the first post.
func (a *App) CreatePost(ctx context.Context, s *model.Session, in *model.Post, setOnline bool) (*model.Post, *model.AppError) {
	return a.createPost(ctx, s, in, setOnline, nil)
}

// createPost is CreatePost; trusted are props only the server may set
// (from_webhook...), added after the client's server props are dropped.
func (a *App) createPost(ctx context.Context, s *model.Session, in *model.Post, setOnline bool, trusted map[string]any) (*model.Post, *model.AppError) {
	const where = "app.create_post"
	if !model.IsValidID(in.ChannelID) {
		return nil, model.ErrInvalidBody(where, "channel_id")
	}
	if in.RootID != "" && !model.IsValidID(in.RootID) {
		return nil, badRequest(where, "model.post.is_valid.root_id.app_error", "Invalid root id.")
	}
	if !validPostType(in.Type) {
		return nil, model.ErrInvalidBody(where, "type")
	}
	if len(in.PendingPostID) > pendingPostIDMaxLength || strings.ContainsRune(in.PendingPostID, 0) {
		return nil, model.ErrInvalidBody(where, "pending_post_id")
	}
	p := &model.Post{
		ID: model.NewID(), CreateAt: in.CreateAt, UserID: s.UserID, ChannelID: in.ChannelID, RootID: in.RootID,
		Message: in.Message, Type: in.Type, Props: in.Props, FileIDs: in.FileIDs, PendingPostID: in.PendingPostID,
	}
	stripServerProps(p.Props)
	if len(trusted) > 0 {
		if p.Props == nil {
			p.Props = map[string]any{}
		}
		maps.Copy(p.Props, trusted)
	}
	if err := a.checkPostContent(where, p); err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Message) == "" && len(p.FileIDs) == 0 {
		return nil, model.ErrInvalidBody(where, "message").Detail("a post needs a message or files")
	}
	now := a.millis()
	if p.CreateAt <= 0 || !s.IsSystemAdmin() {
		p.CreateAt = now
	}
	p.UpdateAt = p.CreateAt
	p.Hashtags = parseHashtags(p.Message)

	ch, appErr := a.memberChannel(ctx, s, p.ChannelID, "create_post")
	if appErr != nil {
		return nil, appErr
	}
	if ch.DeleteAt != 0 {
		return nil, archived(where, "api.post.create_post.can_not_post_to_deleted.error")
	}
	var m postgres.PostMentions
	if ch.Type == model.ChannelDirect {
		m.Everyone = true
	} else {
		var err error
		if m, err = a.findMentions(ctx, ch.ID, s.UserID, p.Message); err != nil {
			return nil, internalErr(where, err)
		}
	}
	res, err := a.store.CreatePost(ctx, p, m, now)
	if err != nil {
		if errors.Is(err, postgres.ErrInvalidRoot) {
			return nil, badRequest(where, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
		}
		return nil, internalErr(where, err)
	}
	out := res.Post
	out.Metadata = &model.PostMetadata{}
	if err := a.addFileMetadata(ctx, []*model.Post{out}); err != nil { // Files (issue 3)
		return nil, internalErr(where, err)
	}
	if res.Duplicate {
		if err := a.prepareForClient(ctx, []*model.Post{out}); err != nil {
			return nil, internalErr(where, err)
		}
		return out, nil
	}

	postJSON, err := json.Marshal(out)
	if err != nil {
		return nil, internalErr(where, err)
	}
	displayName := ch.DisplayName
	if ch.Type == model.ChannelDirect {
		displayName = "@" + res.SenderUsername
	}
	data := map[string]any{
		"post":                 string(postJSON),
		"channel_type":         ch.Type,
		"channel_display_name": displayName,
		"channel_name":         ch.Name,
		"sender_name":          "@" + res.SenderUsername,
		"team_id":              ch.TeamID,
		"set_online":           setOnline,
	}
	a.publishPosted(ctx, ch.ID, data, res.Mentioned)
	a.queuePosted(out, ch, res.SenderUsername, m, res.Mentioned) // Push notifications (issue 5)
	return out, nil
}

// GetPost returns a post the caller may read. Deleted posts are only
// returned to system admins asking for them.
func (a *App) GetPost(ctx context.Context, s *model.Session, id string, includeDeleted bool) (*model.Post, *model.AppError) {
	const where = "app.get_post"
	if includeDeleted && !s.IsSystemAdmin() {
		return nil, model.ErrPermission(where, s.UserID, "manage_system")
	}
	p, err := a.store.GetPost(ctx, id)
	if err != nil {
		return nil, storeErr(where, err, postMissing, "post")
	}
	if p.DeleteAt != 0 && !includeDeleted {
		return nil, postNotFound(where)
	}
	if appErr := a.checkChannelRead(ctx, s, p.ChannelID); appErr != nil {
		return nil, appErr
	}
	if err := a.prepareForClient(ctx, []*model.Post{p}); err != nil {
		return nil, internalErr(where, err)
	}
	return p, nil
}

// GetPostsByIDs returns the live posts among ids that the caller may
// read, newest first; others are left out.
func (a *App) GetPostsByIDs(ctx context.Context, s *model.Session, ids []string) ([]*model.Post, *model.AppError) {
	const where = "app.get_posts_by_ids"
	posts, err := a.store.GetPostsByIDs(ctx, ids, false)
	if err != nil {
		return nil, internalErr(where, err)
	}
	readable, err := a.readableChannelIDs(ctx, s, posts)
	if err != nil {
		return nil, internalErr(where, err)
	}
	out := make([]*model.Post, 0, len(posts))
	for _, p := range posts {
		if readable[p.ChannelID] {
			out = append(out, p)
		}
	}
	if err := a.prepareForClient(ctx, out); err != nil {
		return nil, internalErr(where, err)
	}
	return out, nil
}

// readableChannelIDs reports which channels of the posts the caller may
// read (canRead), with one query for the channels.
func (a *App) readableChannelIDs(ctx context.Context, s *model.Session, posts []*model.Post) (map[string]bool, error) {
	var ids []string
	seen := map[string]bool{}
	for _, p := range posts {
		if !seen[p.ChannelID] {
			seen[p.ChannelID] = true
			ids = append(ids, p.ChannelID)
		}
	}
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	chans, err := a.store.ChannelsAccess(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, ch := range chans {
		ok, err := a.canRead(ctx, s, ch)
		if err != nil {
			return nil, err
		}
		out[ch.ID] = ok
	}
	return out, nil
}

// ChannelPostsVersion checks that the caller may make the request o and
// returns the channel's post version, in one query. Two reads of a page
// under the same version return the same posts, so an encoded page can be
// reused while the version stands.
func (a *App) ChannelPostsVersion(ctx context.Context, s *model.Session, o ChannelPostsOptions) (int64, *model.AppError) {
	if o.IncludeDeleted && !s.IsSystemAdmin() {
		return 0, model.ErrPermission("app.channel_posts_version", s.UserID, "read_deleted_posts")
	}
	acc, appErr := a.channelAccess(ctx, s, o.ChannelID)
	if appErr != nil {
		return 0, appErr
	}
	return acc.PostVersion, nil
}

// prepareForClient gives every post the metadata Mattermost sends: an
// object, with the reactions of posts that have some (one query for all).
func (a *App) prepareForClient(ctx context.Context, posts []*model.Post) error {
	var withReactions []string
	for _, p := range posts {
		if p.Metadata == nil {
			p.Metadata = &model.PostMetadata{}
		}
		if p.HasReactions {
			withReactions = append(withReactions, p.ID)
		}
	}
	if err := a.addFileMetadata(ctx, posts); err != nil { // Files (issue 3)
		return err
	}
	if len(withReactions) == 0 {
		return nil
	}
	reactions, err := a.store.ReactionsForPosts(ctx, withReactions)
	if err != nil {
		return err
	}
	for _, p := range posts {
		if rs, ok := reactions[p.ID]; ok {
			p.Metadata.Reactions = rs
		}
	}
	return nil
}

// ChannelPostsOptions are the query of GET /channels/{id}/posts.
type ChannelPostsOptions struct {
	ChannelID        string
	Page, PerPage    int
	Since            int64
	Before, After    string
	IncludeDeleted   bool
	SkipFetchThreads bool
}

// GetChannelPosts returns a page of a channel's posts with Mattermost's
// cursor rules (App.AddCursorIdsForPostList): `since` returns every post
// changed after that time, including deleted ones, with no cursors;
// `after`/`before` page away from a post; otherwise pages count back from
// the newest post. The neighbours that give next_post_id and prev_post_id
// come from the same query as the page. A cursor that is not a post of the
// channel gives an empty page, as an unknown id does in Mattermost: another
// channel's post is never used as a position.
func (a *App) GetChannelPosts(ctx context.Context, s *model.Session, o ChannelPostsOptions) (*model.PostList, *model.AppError) {
	const where = "app.get_channel_posts"
	if o.IncludeDeleted && !s.IsSystemAdmin() {
		return nil, model.ErrPermission(where, s.UserID, "read_deleted_posts")
	}
	if appErr := a.checkChannelRead(ctx, s, o.ChannelID); appErr != nil {
		return nil, appErr
	}
	list := model.NewPostList()
	st := a.channelPostsStore(ctx, s.UserID, o.ChannelID) // Database (issue 4): a replica when fresh enough
	if o.Since > 0 {
		posts, err := readOn(ctx, a, st, func(st *postgres.Store) ([]*model.Post, error) {
			return st.PostsSince(ctx, o.ChannelID, o.Since)
		})
		if err != nil {
			return nil, internalErr(where, err)
		}
		if err := a.fillPostList(ctx, list, posts, !o.SkipFetchThreads, true); err != nil {
			return nil, internalErr(where, err)
		}
		return list, nil
	}
	page, err := readOn(ctx, a, st, func(st *postgres.Store) (*postgres.ChannelPostsPage, error) {
		return st.ChannelPosts(ctx, postgres.ChannelPostsQuery{
			ChannelID: o.ChannelID, Before: o.Before, After: o.After,
			Offset: o.Page * o.PerPage, Limit: o.PerPage, IncludeDeleted: o.IncludeDeleted,
		})
	})
	if err != nil {
		return nil, internalErr(where, err)
	}
	// The first page away from a cursor points back at it; Newer and
	// Older are empty past the ends of the channel (and for a cursor that
	// is not one of its posts).
	list.NextPostID, list.PrevPostID = page.Newer, page.Older
	if o.Page == 0 {
		switch {
		case o.After != "":
			list.PrevPostID = o.After
		case o.Before != "":
			list.NextPostID = o.Before
		}
	}
	if err := a.fillPostList(ctx, list, page.Posts, !o.SkipFetchThreads, o.IncludeDeleted); err != nil {
		return nil, internalErr(where, err)
	}
	return list, nil
}

// fillPostList puts posts (newest first) into list and, with roots, adds
// the root posts of replies whose root is not among them to list.Posts
// (not to the order) in one query.
func (a *App) fillPostList(ctx context.Context, list *model.PostList, posts []*model.Post, roots, includeDeleted bool) error {
	all := posts
	for _, p := range posts {
		list.Order = append(list.Order, p.ID)
		list.Posts[p.ID] = p
	}
	if roots {
		var missing []string
		for _, p := range posts {
			if p.RootID != "" {
				if _, ok := list.Posts[p.RootID]; !ok && !slices.Contains(missing, p.RootID) {
					missing = append(missing, p.RootID)
				}
			}
		}
		if len(missing) > 0 {
			extra, err := a.store.GetPostsByIDs(ctx, missing, includeDeleted)
			if err != nil {
				return err
			}
			for _, p := range extra {
				list.Posts[p.ID] = p
			}
			all = append(all[:len(all):len(all)], extra...)
		}
	}
	if err := a.addParticipants(ctx, all); err != nil {
		return err
	}
	return a.prepareForClient(ctx, all)
}

// GetPostThread returns the thread of a post: its root and every live
// reply, newest first.
func (a *App) GetPostThread(ctx context.Context, s *model.Session, id string) (*model.PostList, *model.AppError) {
	const where = "app.get_post_thread"
	p, err := a.store.GetPost(ctx, id)
	if err != nil {
		return nil, storeErr(where, err, postMissing, "post")
	}
	if p.DeleteAt != 0 {
		return nil, postNotFound(where)
	}
	if appErr := a.checkChannelRead(ctx, s, p.ChannelID); appErr != nil {
		return nil, appErr
	}
	root := p.ID
	if p.RootID != "" {
		root = p.RootID
	}
	posts, err := a.store.Thread(ctx, root, false)
	if err != nil {
		return nil, internalErr(where, err)
	}
	list := model.NewPostList()
	if err := a.fillPostList(ctx, list, posts, false, false); err != nil {
		return nil, internalErr(where, err)
	}
	if _, ok := list.Posts[id]; !ok {
		return nil, postNotFound(where)
	}
	return list, nil
}

// GetPinnedPosts returns a channel's pinned posts, newest first.
func (a *App) GetPinnedPosts(ctx context.Context, s *model.Session, channelID string) (*model.PostList, *model.AppError) {
	const where = "app.get_pinned_posts"
	if appErr := a.checkChannelRead(ctx, s, channelID); appErr != nil {
		return nil, appErr
	}
	posts, err := a.store.PinnedPosts(ctx, channelID)
	if err != nil {
		return nil, internalErr(where, err)
	}
	list := model.NewPostList()
	if err := a.fillPostList(ctx, list, posts, false, false); err != nil {
		return nil, internalErr(where, err)
	}
	return list, nil
}

// GetPostsAroundUnread returns the posts around the first post userID has
// not read in the channel: limitBefore older posts, that post, and
// limitAfter-1 newer ones. With nothing unread it returns the newest
// limitBefore posts, as Mattermost does.
func (a *App) GetPostsAroundUnread(ctx context.Context, s *model.Session, userID, channelID string, limitBefore, limitAfter int, skipFetchThreads bool) (*model.PostList, *model.AppError) {
	const where = "app.get_posts_around_unread"
	if err := a.requireSelfOrAdmin(s, userID, "edit_other_users"); err != nil {
		return nil, err
	}
	if appErr := a.checkChannelRead(ctx, s, channelID); appErr != nil {
		return nil, appErr
	}
	lastViewed, err := a.store.LastViewedAt(ctx, channelID, userID)
	if err != nil {
		return nil, storeErr(where, err, "app.channel.get_member.missing.app_error", "channel member")
	}
	page := &postgres.ChannelPostsPage{}
	if lastViewed > 0 {
		if page, err = a.store.UnreadWindow(ctx, channelID, lastViewed, limitBefore, limitAfter); err != nil {
			return nil, internalErr(where, err)
		}
	}
	if len(page.Posts) == 0 {
		if page, err = a.store.ChannelPosts(ctx, postgres.ChannelPostsQuery{ChannelID: channelID, Limit: limitBefore}); err != nil {
			return nil, internalErr(where, err)
		}
	}
	list := model.NewPostList()
	list.NextPostID, list.PrevPostID = page.Newer, page.Older
	if err := a.fillPostList(ctx, list, page.Posts, !skipFetchThreads, false); err != nil {
		return nil, internalErr(where, err)
	}
	return list, nil
}

// editablePost loads a live post for a change by the caller: its author,
// if still a member of the channel, or a system admin. It fails with 403
// edit_post when the post is missing, as Mattermost does, and with 400
// when the channel is archived.
func (a *App) editablePost(ctx context.Context, s *model.Session, where, id string) (*model.Post, *model.AppError) {
	p, err := a.store.GetPost(ctx, id)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return nil, internalErr(where, err)
	}
	if err != nil || p.DeleteAt != 0 {
		return nil, model.ErrPermission(where, s.UserID, "edit_post")
	}
	if !s.IsSystemAdmin() {
		ok, err := a.isChannelMember(ctx, p.ChannelID, s.UserID)
		if err != nil {
			return nil, internalErr(where, err)
		}
		if !ok {
			return nil, model.ErrPermission(where, s.UserID, "edit_post")
		}
		if p.UserID != s.UserID {
			return nil, model.ErrPermission(where, s.UserID, "edit_others_posts")
		}
	}
	ch, err := a.store.GetChannel(ctx, p.ChannelID)
	if err != nil {
		return nil, storeErr(where, err, channelMissing, "channel")
	}
	if ch.DeleteAt != 0 {
		return nil, archived(where, "api.post.update_post.can_not_update_post_in_deleted.error")
	}
	return p, nil
}

// editTimeOK applies ServiceSettings.PostEditTimeLimit to a message
// change.
func (a *App) editTimeOK(where string, p *model.Post) *model.AppError {
	if lim := a.set.PostEditTimeLimit; lim >= 0 && a.millis() > p.CreateAt+lim.Milliseconds() {
		return badRequest(where, "api.post.update_post.permissions_time_limit.app_error",
			"Post edit is only allowed for a limited time; please ask your System Administrator for details.")
	}
	return nil
}

// UpdatePost replaces the editable fields of a post (message, props,
// file_ids, is_pinned) with those of in, and publishes post_edited. A nil
// in.FileIDs keeps the post's files.
func (a *App) UpdatePost(ctx context.Context, s *model.Session, id string, in *model.Post) (*model.Post, *model.AppError) {
	const where = "app.update_post"
	p, appErr := a.editablePost(ctx, s, where, id)
	if appErr != nil {
		return nil, appErr
	}
	var files *[]string
	if in.FileIDs != nil {
		files = &in.FileIDs
	}
	return a.savePostEdit(ctx, s, where, p, &in.Message, &in.Props, files, &in.IsPinned)
}

// PatchPost changes the fields of a post the patch sets and publishes
// post_edited.
func (a *App) PatchPost(ctx context.Context, s *model.Session, id string, patch *model.PostPatch) (*model.Post, *model.AppError) {
	const where = "app.patch_post"
	p, appErr := a.editablePost(ctx, s, where, id)
	if appErr != nil {
		return nil, appErr
	}
	return a.savePostEdit(ctx, s, where, p, patch.Message, patch.Props, patch.FileIDs, patch.IsPinned)
}

// maxEditAttempts bounds how often savePostEdit re-reads a post that
// concurrent writes keep changing before it gives up with 409.
const maxEditAttempts = 5

// savePostEdit applies the non-nil fields to p, stores it and publishes
// post_edited. The write succeeds only if the post is still as read, so a
// concurrent change (a pin, a reaction, another edit) is never undone: on
// a conflict the post is read again and the fields applied to the new
// version. edit_at moves only when the message changes, as in Mattermost.
func (a *App) savePostEdit(ctx context.Context, s *model.Session, where string, p *model.Post,
	msg *string, props *map[string]any, files *[]string, pinned *bool) (*model.Post, *model.AppError) {
	for attempt := 1; ; attempt++ {
		read := p.UpdateAt
		now := a.millis()
		if appErr := a.applyPostEdit(where, p, now, msg, props, files, pinned); appErr != nil {
			return nil, appErr
		}
		err := a.store.UpdatePost(ctx, p, read, now)
		if err == nil {
			break
		}
		if !errors.Is(err, postgres.ErrStale) {
			return nil, internalErr(where, err)
		}
		if attempt == maxEditAttempts {
			return nil, model.NewAppError(where, "app.post.update.conflict.app_error", http.StatusConflict,
				"The post kept changing while it was being edited; please try again.").Wrap(err)
		}
		if p, err = a.store.GetPost(ctx, p.ID); err != nil && !errors.Is(err, postgres.ErrNotFound) {
			return nil, internalErr(where, err)
		}
		if err != nil || p.DeleteAt != 0 {
			return nil, model.ErrPermission(where, s.UserID, "edit_post")
		}
	}
	p.Metadata = nil
	if err := a.prepareForClient(ctx, []*model.Post{p}); err != nil {
		return nil, internalErr(where, err)
	}
	a.publishPostEvent(ctx, "post_edited", p, ws.Broadcast{ChannelID: p.ChannelID}, nil)
	return p, nil
}

// applyPostEdit sets the non-nil fields on p, as edited at now, and
// checks the result.
func (a *App) applyPostEdit(where string, p *model.Post, now int64,
	msg *string, props *map[string]any, files *[]string, pinned *bool) *model.AppError {
	if msg != nil && *msg != p.Message {
		if err := a.editTimeOK(where, p); err != nil {
			return err
		}
		p.Message = *msg
		p.EditAt = now
		p.Hashtags = parseHashtags(p.Message)
	}
	if props != nil {
		// A client replaces its props; the server's survive.
		next := maps.Clone(*props)
		if next == nil {
			next = map[string]any{}
		}
		stripServerProps(next)
		for _, k := range serverProps {
			if v, ok := p.Props[k]; ok {
				next[k] = v
			}
		}
		p.Props = next
	}
	if files != nil {
		p.FileIDs = *files
	}
	if pinned != nil {
		p.IsPinned = *pinned
	}
	if err := a.checkPostContent(where, p); err != nil {
		return err
	}
	if (msg != nil || files != nil) && strings.TrimSpace(p.Message) == "" && len(p.FileIDs) == 0 {
		return model.ErrInvalidBody(where, "message").Detail("a post needs a message or files")
	}
	return nil
}

// publishPostEvent publishes an event whose data is the post as a JSON
// string, plus extra.
func (a *App) publishPostEvent(ctx context.Context, name string, p *model.Post, b ws.Broadcast, extra map[string]any) {
	postJSON, err := json.Marshal(p)
	if err != nil {
		a.log.Warn("encode post for event", "event", name, "err", err)
		return
	}
	data := map[string]any{"post": string(postJSON)}
	for k, v := range extra {
		data[k] = v
	}
	a.publish(ctx, &ws.Event{Name: name, Data: data, Broadcast: b})
}

// SetPostPinned pins or unpins a post; any member of its channel may. It
// writes is_pinned alone, so it cannot undo a concurrent edit.
func (a *App) SetPostPinned(ctx context.Context, s *model.Session, id string, pinned bool) *model.AppError {
	const where = "app.set_post_pinned"
	p, err := a.store.GetPost(ctx, id)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return internalErr(where, err)
	}
	if err != nil || p.DeleteAt != 0 {
		return model.ErrPermission(where, s.UserID, "read_channel")
	}
	ch, appErr := a.memberChannel(ctx, s, p.ChannelID, "read_channel")
	if appErr != nil {
		if appErr.StatusCode == http.StatusNotFound {
			return model.ErrPermission(where, s.UserID, "read_channel")
		}
		return appErr
	}
	if ch.DeleteAt != 0 {
		return archived(where, "api.post.update_post.can_not_update_post_in_deleted.error")
	}
	p, err = a.store.SetPostPinned(ctx, id, pinned, a.millis())
	if errors.Is(err, postgres.ErrNotFound) {
		return model.ErrPermission(where, s.UserID, "read_channel") // deleted meanwhile
	}
	if err != nil {
		return internalErr(where, err)
	}
	if err := a.prepareForClient(ctx, []*model.Post{p}); err != nil {
		return internalErr(where, err)
	}
	a.publishPostEvent(ctx, "post_edited", p, ws.Broadcast{ChannelID: p.ChannelID}, nil)
	return nil
}

// DeletePost deletes a post: its author (while a member of the channel)
// or a system admin may. A soft delete also deletes the replies of a root;
// permanent deletion needs ServiceSettings.EnableAPIPostDeletion and a
// system admin. It publishes post_deleted: non-admins get the post, admins
// also learn who deleted it.
func (a *App) DeletePost(ctx context.Context, s *model.Session, id string, permanent bool) *model.AppError {
	const where = "app.delete_post"
	if permanent && !a.set.EnableAPIPostDeletion {
		return model.NewAppError(where, "api.post.delete_post.not_enabled.app_error", http.StatusNotImplemented,
			"Permanent post deletion through the API is disabled.")
	}
	if permanent && !s.IsSystemAdmin() {
		return model.ErrPermission(where, s.UserID, "manage_system")
	}
	p, err := a.store.GetPost(ctx, id)
	if err != nil {
		return storeErr(where, err, postMissing, "post")
	}
	if p.DeleteAt != 0 && !permanent {
		return postNotFound(where)
	}
	if !s.IsSystemAdmin() {
		ok, err := a.isChannelMember(ctx, p.ChannelID, s.UserID)
		if err != nil {
			return internalErr(where, err)
		}
		if !ok {
			return model.ErrPermission(where, s.UserID, "delete_post")
		}
		if p.UserID != s.UserID {
			return model.ErrPermission(where, s.UserID, "delete_others_posts")
		}
	}
	now := a.millis()
	if permanent {
		err = a.store.PermanentDeletePost(ctx, p, now)
	} else {
		err = a.store.DeletePost(ctx, p, s.UserID, now)
	}
	if err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			return postNotFound(where)
		}
		return internalErr(where, err)
	}
	p.DeleteAt, p.UpdateAt, p.Metadata = now, now, &model.PostMetadata{}
	a.publishPostEvent(ctx, "post_deleted", p, ws.Broadcast{ChannelID: p.ChannelID, OnlyNonAdmins: true}, nil)
	a.publishPostEvent(ctx, "post_deleted", p, ws.Broadcast{ChannelID: p.ChannelID, OnlyAdmins: true},
		map[string]any{"delete_by": s.UserID})
	return nil
}

// Hashtags, as Mattermost's model.ParseHashtags finds them.
var (
	validHashtag = regexp.MustCompile(`^(#\pL[\pL\d\-_.]*[\pL\d])$`)
	puncStart    = regexp.MustCompile(`^[^\pL\d\s#]+`)
	hashtagStart = regexp.MustCompile(`^#{2,}`)
	puncEnd      = regexp.MustCompile(`[^\pL\d\s]+$`)
)

// parseHashtags returns the space-separated hashtags of a message, cut to
// postHashtagsMaxRunes at a word boundary.
func parseHashtags(msg string) string {
	if !strings.Contains(msg, "#") {
		return ""
	}
	var b strings.Builder
	for _, w := range strings.Fields(msg) {
		if !strings.Contains(w, "#") {
			continue
		}
		w = puncStart.ReplaceAllString(w, "")
		w = puncEnd.ReplaceAllString(w, "")
		w = hashtagStart.ReplaceAllString(w, "#")
		if validHashtag.MatchString(w) {
			b.WriteString(" ")
			b.WriteString(w)
		}
	}
	tags := b.String()
	if len(tags) > postHashtagsMaxRunes {
		tags = tags[:postHashtagsMaxRunes-1]
		if i := strings.LastIndex(tags, " "); i > -1 {
			tags = tags[:i]
		} else {
			tags = ""
		}
	}
	return strings.TrimSpace(tags)
}
