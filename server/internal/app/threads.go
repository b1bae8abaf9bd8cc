package app

import (
	"context"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// addParticipants sets the participants of the root posts among posts
// that have replies: the users who replied, in the order of their first
// reply, loaded in one query for the whole page. They are sanitised as
// for any viewer who is neither the user nor an admin, so an encoded page
// is the same for every reader and may be cached.
func (a *App) addParticipants(ctx context.Context, posts []*model.Post) error {
	var roots []string
	for _, p := range posts {
		if p.RootID == "" && p.ReplyCount > 0 {
			roots = append(roots, p.ID)
		}
	}
	if len(roots) == 0 {
		return nil
	}
	byRoot, err := a.store.ThreadParticipants(ctx, roots)
	if err != nil {
		return err
	}
	privacy := a.privacy()
	for _, p := range posts {
		if us, ok := byRoot[p.ID]; ok {
			for _, u := range us {
				u.SanitizeProfile(privacy)
			}
			p.Participants = us
		}
	}
	return nil
}
