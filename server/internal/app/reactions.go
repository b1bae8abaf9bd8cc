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

// maxEmojisPerPost is Mattermost's UniqueEmojiReactionLimitPerPost default.
const maxEmojisPerPost = 50

// ValidEmojiName reports whether s is an acceptable emoji name: 1–64
// characters of lower-case letters, digits, '_', '+' and '-'.
func ValidEmojiName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// reactablePost loads a live post whose channel the caller belongs to (or
// any post, for a system admin). As in Mattermost, a missing post fails the
// permission check rather than reporting 404.
func (a *App) reactablePost(ctx context.Context, s *model.Session, where, id, permission string) (*model.Post, *model.Channel, *model.AppError) {
	p, err := a.store.GetPost(ctx, id)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		return nil, nil, internalErr(where, err)
	}
	if err != nil || p.DeleteAt != 0 {
		return nil, nil, model.ErrPermission(where, s.UserID, permission)
	}
	if !s.IsSystemAdmin() {
		ok, err := a.isChannelMember(ctx, p.ChannelID, s.UserID)
		if err != nil {
			return nil, nil, internalErr(where, err)
		}
		if !ok {
			return nil, nil, model.ErrPermission(where, s.UserID, permission)
		}
	}
	ch, err := a.store.GetChannel(ctx, p.ChannelID)
	if err != nil {
		return nil, nil, storeErr(where, err, channelMissing, "channel")
	}
	return p, ch, nil
}

// SaveReaction adds the caller's reaction to a post and publishes
// reaction_added. Adding a reaction that exists returns it unchanged.
func (a *App) SaveReaction(ctx context.Context, s *model.Session, in *model.Reaction) (*model.Reaction, *model.AppError) {
	const where = "app.save_reaction"
	if !model.IsValidID(in.UserID) || !model.IsValidID(in.PostID) || !ValidEmojiName(in.EmojiName) {
		return nil, badRequest(where, "api.reaction.save_reaction.invalid.app_error", "Reaction is not valid.")
	}
	if in.UserID != s.UserID {
		return nil, model.NewAppError(where, "api.reaction.save_reaction.user_id.app_error", http.StatusForbidden,
			"You can only save reactions for yourself.")
	}
	p, ch, appErr := a.reactablePost(ctx, s, where, in.PostID, "add_reaction")
	if appErr != nil {
		return nil, appErr
	}
	if ch.DeleteAt != 0 {
		return nil, model.NewAppError(where, "api.reaction.save.archived_channel.app_error", http.StatusForbidden,
			"You cannot react to posts in an archived channel.")
	}
	r := &model.Reaction{UserID: s.UserID, PostID: p.ID, EmojiName: in.EmojiName, ChannelID: p.ChannelID, CreateAt: a.millis()}
	created, err := a.store.SaveReaction(ctx, r, maxEmojisPerPost)
	if err != nil {
		if errors.Is(err, postgres.ErrTooManyReactions) {
			return nil, badRequest(where, "app.reaction.save.save.too_many_reactions",
				"The post already has the maximum number of different reactions.")
		}
		return nil, internalErr(where, err)
	}
	if created {
		a.publishReaction(ctx, "reaction_added", r)
	}
	return r, nil
}

// DeleteReaction removes userID's reaction from a post and publishes
// reaction_removed. Users remove their own reactions; system admins anyone's.
func (a *App) DeleteReaction(ctx context.Context, s *model.Session, userID, postID, emoji string) *model.AppError {
	const where = "app.delete_reaction"
	p, ch, appErr := a.reactablePost(ctx, s, where, postID, "remove_reaction")
	if appErr != nil {
		return appErr
	}
	if userID != s.UserID && !s.IsSystemAdmin() {
		return model.ErrPermission(where, s.UserID, "remove_others_reactions")
	}
	if ch.DeleteAt != 0 {
		return model.NewAppError(where, "api.reaction.delete.archived_channel.app_error", http.StatusForbidden,
			"You cannot remove reactions in an archived channel.")
	}
	r := &model.Reaction{UserID: userID, PostID: p.ID, EmojiName: emoji}
	deleted, err := a.store.DeleteReaction(ctx, r, a.millis())
	if err != nil {
		return internalErr(where, err)
	}
	if deleted {
		a.publishReaction(ctx, "reaction_removed", r)
	}
	return nil
}

func (a *App) publishReaction(ctx context.Context, name string, r *model.Reaction) {
	b, err := json.Marshal(r)
	if err != nil {
		a.log.Warn("encode reaction for event", "event", name, "err", err)
		return
	}
	a.publish(ctx, &ws.Event{Name: name, Data: map[string]any{"reaction": string(b)},
		Broadcast: ws.Broadcast{ChannelID: r.ChannelID}})
}

// GetReactions returns the reactions to a post the caller may read,
// oldest first.
func (a *App) GetReactions(ctx context.Context, s *model.Session, postID string) ([]*model.Reaction, *model.AppError) {
	m, appErr := a.GetReactionsForPosts(ctx, s, []string{postID})
	if appErr != nil {
		return nil, appErr
	}
	return m[postID], nil
}

// GetReactionsForPosts returns the reactions to each post, keyed by post
// id; every requested post has a key, with an empty list if it has no
// reactions. Any post the caller may not read fails the request with 403.
func (a *App) GetReactionsForPosts(ctx context.Context, s *model.Session, ids []string) (map[string][]*model.Reaction, *model.AppError) {
	const where = "app.get_reactions"
	posts, err := a.store.GetPostsByIDs(ctx, ids, false)
	if err != nil {
		return nil, internalErr(where, err)
	}
	readable, err := a.readableChannelIDs(ctx, s, posts)
	if err != nil {
		return nil, internalErr(where, err)
	}
	found := make(map[string]bool, len(posts))
	for _, p := range posts {
		if !readable[p.ChannelID] {
			return nil, model.ErrPermission(where, s.UserID, "read_channel")
		}
		found[p.ID] = true
	}
	for _, id := range ids {
		if !found[id] {
			return nil, model.ErrPermission(where, s.UserID, "read_channel")
		}
	}
	out, err := a.store.ReactionsForPosts(ctx, ids)
	if err != nil {
		return nil, internalErr(where, err)
	}
	for _, id := range ids {
		if out[id] == nil {
			out[id] = []*model.Reaction{}
		}
	}
	return out, nil
}
