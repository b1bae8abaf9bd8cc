package compat

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

// postFixture is a team with alice and bob in a public channel.
type postFixture struct {
	alice, bob *account
	team       *model.Team
	ch         *model.Channel
}

func newPostFixture(t *testing.T) *postFixture {
	t.Helper()
	f := &postFixture{alice: newUser(t), bob: newUser(t)}
	f.team = teamWith(t, f.alice, f.bob)
	f.ch = channelWith(t, f.alice, f.team.Id, model.ChannelTypeOpen, f.bob)
	return f
}

// postSeries has by post n messages in the channel, each with a create_at
// later than every post already there, so that the order of the channel
// and the time cursors are unambiguous. A post that lands in the same
// millisecond as the one before it is deleted and posted again; that is
// rare, and polling with a deadline, not sleeping, is how the suite waits.
func postSeries(t *testing.T, by *account, channelID string, n int) []*model.Post {
	t.Helper()
	ctx := t.Context()
	latest, _, err := by.GetPostsForChannel(ctx, channelID, 0, 1, "", false, false)
	require.NoError(t, err)
	var after int64
	for _, p := range latest.Posts {
		after = max(after, p.CreateAt)
	}
	deadline := time.Now().Add(10 * time.Second)
	var posts []*model.Post
	for i := range n {
		for {
			p := newPost(t, by, channelID, fmt.Sprintf("post %d of %d", i+1, n))
			if p.CreateAt > after {
				posts = append(posts, p)
				after = p.CreateAt
				break
			}
			_, err := by.DeletePost(ctx, p.Id)
			require.NoError(t, err)
			require.True(t, time.Now().Before(deadline), "the server's create_at does not advance (stuck at %d)", after)
		}
	}
	return posts
}

func TestCreatePostAndReply(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)

	root, resp, err := f.alice.CreatePost(ctx, &model.Post{ChannelId: f.ch.Id, Message: "root message"})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.True(t, model.IsValidId(root.Id), "id %q", root.Id)
	require.Equal(t, f.ch.Id, root.ChannelId)
	require.Equal(t, f.alice.User.Id, root.UserId)
	require.Equal(t, "root message", root.Message)
	require.Empty(t, root.RootId)
	require.NotZero(t, root.CreateAt)
	require.Zero(t, root.DeleteAt)

	// user_id in the body is ignored: a post is always the caller's.
	reply, resp, err := f.bob.CreatePost(ctx, &model.Post{
		ChannelId: f.ch.Id, RootId: root.Id, Message: "a reply", UserId: f.alice.User.Id,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, root.Id, reply.RootId)
	require.Equal(t, f.bob.User.Id, reply.UserId)

	got, resp, err := f.bob.GetPost(ctx, root.Id, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, root.Id, got.Id)
	require.Equal(t, "root message", got.Message)
	require.EqualValues(t, 1, got.ReplyCount)

	got, _, err = f.alice.GetPost(ctx, reply.Id, "")
	require.NoError(t, err)
	require.Equal(t, root.Id, got.RootId)

	// A reply to a post that does not exist is refused.
	_, resp, err = f.alice.CreatePost(ctx, &model.Post{ChannelId: f.ch.Id, RootId: model.NewId(), Message: "orphan"})
	requireAppError(t, resp, err, http.StatusBadRequest, "api.post.create_post.root_id.app_error")
}

func TestGetPostThread(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	root := newPost(t, f.alice, f.ch.Id, "root")
	var replies []string
	for i := range 3 {
		r, _, err := f.bob.CreatePost(ctx, &model.Post{ChannelId: f.ch.Id, RootId: root.Id, Message: fmt.Sprint("reply ", i)})
		require.NoError(t, err)
		replies = append(replies, r.Id)
	}
	other := newPost(t, f.alice, f.ch.Id, "not in the thread")

	// The thread of the root and the thread of any reply are the same.
	for _, id := range []string{root.Id, replies[1]} {
		list, resp, err := f.bob.GetPostThread(ctx, id, "", false)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		want := append([]string{root.Id}, replies...)
		require.ElementsMatch(t, want, list.Order)
		require.Len(t, list.Posts, len(want))
		for _, pid := range want {
			require.Contains(t, list.Posts, pid)
			require.Equal(t, pid, list.Posts[pid].Id)
		}
		require.NotContains(t, list.Posts, other.Id)
	}
}

func TestGetPostsForChannelPaging(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	posts := postSeries(t, f.bob, f.ch.Id, 5)

	// The whole channel, newest first: our posts, then the system messages
	// that creating the channel and adding bob may have left.
	all, resp, err := f.alice.GetPostsForChannel(ctx, f.ch.Id, 0, 200, "", false, false)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	order := all.Order
	require.GreaterOrEqual(t, len(order), 5)
	for i, p := range posts {
		require.Equal(t, p.Id, order[len(posts)-1-i], "order is newest first")
		require.Equal(t, p.Message, all.Posts[p.Id].Message)
	}
	for _, id := range order {
		require.Contains(t, all.Posts, id, "every id in order has its post")
	}
	require.Empty(t, all.NextPostId, "nothing is newer than the first page")
	require.Empty(t, all.PrevPostId, "nothing is older than the whole channel")

	at := func(i int) string {
		if i < 0 || i >= len(order) {
			return ""
		}
		return order[i]
	}
	// The system messages may share a millisecond, and then their order,
	// and the cursors next to them, are the server's choice: such pages
	// are not compared. Our own posts never do (postSeries).
	tied := func(lo, hi int) bool {
		for i := max(lo-1, 0); i < min(hi, len(order)-1); i++ {
			if all.Posts[order[i]].CreateAt == all.Posts[order[i+1]].CreateAt {
				return true
			}
		}
		return false
	}
	const perPage = 2
	for page := 0; page*perPage < len(order)+perPage; page++ {
		list, _, err := f.alice.GetPostsForChannel(ctx, f.ch.Id, page, perPage, "", false, false)
		require.NoError(t, err)
		lo, hi := min(page*perPage, len(order)), min(page*perPage+perPage, len(order))
		if tied(lo, hi) {
			continue
		}
		require.Equal(t, order[lo:hi], list.Order, "page %d", page)
		for _, id := range list.Order {
			require.Contains(t, list.Posts, id)
		}
		if lo == hi {
			continue // past the end
		}
		require.Equal(t, at(lo-1), list.NextPostId, "page %d: next_post_id is the post just newer than the page", page)
		require.Equal(t, at(hi), list.PrevPostId, "page %d: prev_post_id is the post just older than the page", page)
	}
}

func TestGetPostsBeforeAfter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	p := postSeries(t, f.bob, f.ch.Id, 6) // p[0] oldest

	t.Run("Before", func(t *testing.T) {
		list, resp, err := f.alice.GetPostsBefore(ctx, f.ch.Id, p[4].Id, 0, 2, "", false, false)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, []string{p[3].Id, p[2].Id}, list.Order)
		require.Equal(t, p[4].Id, list.NextPostId, "on page 0, next_post_id is the before post")
		require.Equal(t, p[1].Id, list.PrevPostId)

		list, _, err = f.alice.GetPostsBefore(ctx, f.ch.Id, p[4].Id, 1, 2, "", false, false)
		require.NoError(t, err)
		require.Equal(t, []string{p[1].Id, p[0].Id}, list.Order)
	})

	t.Run("After", func(t *testing.T) {
		list, resp, err := f.alice.GetPostsAfter(ctx, f.ch.Id, p[1].Id, 0, 2, "", false, false)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, []string{p[3].Id, p[2].Id}, list.Order, "newest first")
		require.Equal(t, p[1].Id, list.PrevPostId, "on page 0, prev_post_id is the after post")
		require.Equal(t, p[4].Id, list.NextPostId)

		// A short last page: nothing newer.
		list, _, err = f.alice.GetPostsAfter(ctx, f.ch.Id, p[3].Id, 0, 5, "", false, false)
		require.NoError(t, err)
		require.Equal(t, []string{p[5].Id, p[4].Id}, list.Order)
		require.Empty(t, list.NextPostId)
		require.Equal(t, p[3].Id, list.PrevPostId)
	})
}

func TestGetPostsSince(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	p := postSeries(t, f.bob, f.ch.Id, 4)
	since := p[0].UpdateAt // p[0] is not newer than since; the rest are

	edited := "edited message"
	patched, _, err := f.bob.PatchPost(ctx, p[1].Id, &model.PostPatch{Message: &edited})
	require.NoError(t, err)
	_, err = f.bob.DeletePost(ctx, p[2].Id)
	require.NoError(t, err)

	list, resp, err := f.alice.GetPostsSince(ctx, f.ch.Id, since, false)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, list.Posts, p[0].Id, "not updated after since")
	for _, q := range p[1:] {
		require.Contains(t, list.Posts, q.Id)
		require.Contains(t, list.Order, q.Id)
	}
	require.Equal(t, edited, list.Posts[p[1].Id].Message)
	require.NotZero(t, list.Posts[p[1].Id].EditAt)
	require.Equal(t, patched.UpdateAt, list.Posts[p[1].Id].UpdateAt)
	require.NotZero(t, list.Posts[p[2].Id].DeleteAt, "deleted posts are included, marked deleted")
	require.Zero(t, list.Posts[p[3].Id].DeleteAt)
	require.Empty(t, list.NextPostId)
	require.Empty(t, list.PrevPostId)

	// Nothing happened after the newest update.
	var newest int64
	for _, q := range list.Posts {
		newest = max(newest, q.UpdateAt)
	}
	list, _, err = f.alice.GetPostsSince(ctx, f.ch.Id, newest, false)
	require.NoError(t, err)
	require.Empty(t, list.Order)
}

func TestPatchAndUpdatePost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	post := newPost(t, f.alice, f.ch.Id, "first version")

	msg := "second version"
	got, resp, err := f.alice.PatchPost(ctx, post.Id, &model.PostPatch{Message: &msg})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, post.Id, got.Id)
	require.Equal(t, msg, got.Message)
	require.NotZero(t, got.EditAt)
	require.GreaterOrEqual(t, got.UpdateAt, post.UpdateAt)

	got, resp, err = f.alice.UpdatePost(ctx, post.Id, &model.Post{Id: post.Id, ChannelId: f.ch.Id, Message: "third version"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "third version", got.Message)

	got, _, err = f.bob.GetPost(ctx, post.Id, "")
	require.NoError(t, err)
	require.Equal(t, "third version", got.Message)
	require.NotZero(t, got.EditAt)

	// Someone else's post is not bob's to edit.
	_, resp, err = f.bob.PatchPost(ctx, post.Id, &model.PostPatch{Message: &msg})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, resp, err = f.bob.UpdatePost(ctx, post.Id, &model.Post{Id: post.Id, ChannelId: f.ch.Id, Message: "bob's"})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestDeletePost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	root := newPost(t, f.alice, f.ch.Id, "root")
	reply, _, err := f.bob.CreatePost(ctx, &model.Post{ChannelId: f.ch.Id, RootId: root.Id, Message: "reply"})
	require.NoError(t, err)

	// bob may not delete alice's post.
	resp, err := f.bob.DeletePost(ctx, root.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	resp, err = f.alice.DeletePost(ctx, root.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, resp, err = f.bob.GetPost(ctx, root.Id, "")
	requireAppError(t, resp, err, http.StatusNotFound, "app.post.get.app_error")
	// Deleting a root deletes its thread.
	_, resp, err = f.bob.GetPost(ctx, reply.Id, "")
	requireAppError(t, resp, err, http.StatusNotFound, "app.post.get.app_error")

	list, _, err := f.bob.GetPostsForChannel(ctx, f.ch.Id, 0, 60, "", false, false)
	require.NoError(t, err)
	require.NotContains(t, list.Order, root.Id)
	require.NotContains(t, list.Order, reply.Id)
}

func TestPinPost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	post := newPost(t, f.alice, f.ch.Id, "pin me")

	resp, err := f.bob.PinPost(ctx, post.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got, _, err := f.alice.GetPost(ctx, post.Id, "")
	require.NoError(t, err)
	require.True(t, got.IsPinned)

	pinned, _, err := f.alice.GetPinnedPosts(ctx, f.ch.Id, "")
	require.NoError(t, err)
	require.Equal(t, []string{post.Id}, pinned.Order)

	resp, err = f.bob.UnpinPost(ctx, post.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got, _, err = f.alice.GetPost(ctx, post.Id, "")
	require.NoError(t, err)
	require.False(t, got.IsPinned)

	// Pinning is for channel members only.
	outsider := newUser(t)
	resp, err = outsider.PinPost(ctx, post.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestReactions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	post := newPost(t, f.alice, f.ch.Id, "react to me")
	plain := newPost(t, f.alice, f.ch.Id, "no reactions here")

	r, resp, err := f.bob.SaveReaction(ctx, &model.Reaction{UserId: f.bob.User.Id, PostId: post.Id, EmojiName: "smile"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "Mattermost answers 200, not 201")
	require.Equal(t, f.bob.User.Id, r.UserId)
	require.Equal(t, post.Id, r.PostId)
	require.Equal(t, "smile", r.EmojiName)
	require.NotZero(t, r.CreateAt)

	_, _, err = f.alice.SaveReaction(ctx, &model.Reaction{UserId: f.alice.User.Id, PostId: post.Id, EmojiName: "+1"})
	require.NoError(t, err)

	reactions, resp, err := f.alice.GetReactions(ctx, post.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, reactions, 2)
	require.True(t, slices.ContainsFunc(reactions, func(r *model.Reaction) bool {
		return r.UserId == f.bob.User.Id && r.EmojiName == "smile" && r.PostId == post.Id
	}))

	got, _, err := f.alice.GetPost(ctx, post.Id, "")
	require.NoError(t, err)
	require.True(t, got.HasReactions)

	// POST /posts/ids/reactions (GetBulkReactions in this driver version):
	// every requested post has an entry, an empty list when it has none.
	bulk, resp, err := f.alice.GetBulkReactions(ctx, []string{post.Id, plain.Id})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, bulk[post.Id], 2)
	require.Contains(t, bulk, plain.Id)
	require.Empty(t, bulk[plain.Id])

	// Nobody reacts in someone else's name.
	_, resp, err = f.bob.SaveReaction(ctx, &model.Reaction{UserId: f.alice.User.Id, PostId: post.Id, EmojiName: "heart"})
	requireAppError(t, resp, err, http.StatusForbidden, "api.reaction.save_reaction.user_id.app_error")

	resp, err = f.bob.DeleteReaction(ctx, &model.Reaction{UserId: f.bob.User.Id, PostId: post.Id, EmojiName: "smile"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	reactions, _, err = f.alice.GetReactions(ctx, post.Id)
	require.NoError(t, err)
	require.Len(t, reactions, 1)
	require.Equal(t, f.alice.User.Id, reactions[0].UserId)
}
