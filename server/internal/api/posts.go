package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/klauspost/compress/gzip"

	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// maxPostIDsPerRequest bounds POST /posts/ids, as Mattermost does.
const maxPostIDsPerRequest = 1000

func (a *API) createPost(w http.ResponseWriter, r *http.Request) error {
	var in model.Post
	if err := decodeBody(r, &in, "post"); err != nil {
		return err
	}
	// set_online defaults to true, and a bad value counts as true.
	setOnline := true
	if v, err := strconv.ParseBool(r.URL.Query().Get("set_online")); err == nil {
		setOnline = v
	}
	s := sessionFrom(r)
	p, appErr := a.app.CreatePost(r.Context(), s, &in, setOnline)
	if appErr != nil {
		return appErr
	}
	if setOnline {
		// Posting is activity, as in Mattermost (set_online=false is for
		// bots and integrations that must not mark their user online).
		a.app.RecordActivity(r.Context(), s.UserID)
	}
	return created(w, p)
}

// decodePostIDs reads a JSON array of post ids: at least one, at most
// maxPostIDsPerRequest, duplicates dropped.
func decodePostIDs(r *http.Request, allowEmpty bool) ([]string, error) {
	const where = "api.decode_post_ids"
	var ids []string
	if err := decodeBody(r, &ids, "post_ids"); err != nil {
		return nil, err
	}
	if len(ids) == 0 && !allowEmpty {
		return nil, model.ErrInvalidBody(where, "post_ids")
	}
	if len(ids) > maxPostIDsPerRequest {
		return nil, model.NewAppError(where, "api.post.posts_by_ids.invalid_body.request_error", http.StatusBadRequest,
			"Too many post ids; the limit is "+strconv.Itoa(maxPostIDsPerRequest)+".")
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !model.IsValidID(id) {
			return nil, model.ErrInvalidBody(where, "post_ids").Detail("invalid id %q", id)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func (a *API) getPostsByIDs(w http.ResponseWriter, r *http.Request) error {
	ids, err := decodePostIDs(r, false)
	if err != nil {
		return err
	}
	posts, appErr := a.app.GetPostsByIDs(r.Context(), sessionFrom(r), ids)
	return reply(w, http.StatusOK, posts, appErr)
}

func (a *API) getPost(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	p, appErr := a.app.GetPost(r.Context(), sessionFrom(r), id, boolQuery(r, "include_deleted"))
	if appErr != nil {
		return appErr
	}
	// Mattermost's post ETag: the API version and the post's update_at.
	etag := a.o.MattermostVersion + "." + strconv.FormatInt(p.UpdateAt, 10)
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return ok(w, p)
}

func (a *API) updatePost(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	var in model.Post
	if err := decodeBody(r, &in, "post"); err != nil {
		return err
	}
	if in.ID != id {
		return model.ErrInvalidBody("api.update_post", "id")
	}
	p, appErr := a.app.UpdatePost(r.Context(), sessionFrom(r), id, &in)
	return reply(w, http.StatusOK, p, appErr)
}

func (a *API) patchPost(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	var patch model.PostPatch
	if err := decodeBody(r, &patch, "post"); err != nil {
		return err
	}
	p, appErr := a.app.PatchPost(r.Context(), sessionFrom(r), id, &patch)
	return reply(w, http.StatusOK, p, appErr)
}

func (a *API) deletePost(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.DeletePost(r.Context(), sessionFrom(r), id, boolQuery(r, "permanent")))
}

// getPostThread serves the whole thread; the paging parameters
// (perPage, fromPost, ...) and skipFetchThreads are accepted and ignored,
// which Mattermost clients handle as a single complete page.
func (a *API) getPostThread(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	list, appErr := a.app.GetPostThread(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, list, appErr)
}

func (a *API) pinPost(w http.ResponseWriter, r *http.Request) error { return a.setPinned(w, r, true) }

func (a *API) unpinPost(w http.ResponseWriter, r *http.Request) error {
	return a.setPinned(w, r, false)
}

func (a *API) setPinned(w http.ResponseWriter, r *http.Request, pinned bool) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	return replyStatusOK(w, a.app.SetPostPinned(r.Context(), sessionFrom(r), id, pinned))
}

// postPageCacheBytes bounds the memory of encoded post pages kept.
const postPageCacheBytes = 32 << 20

// postPageCache keeps encoded GET /channels/{id}/posts replies, each with
// the channel's post version it was read under. Reading a page then costs
// one primary-key query for the version (which is also the read check)
// instead of the page queries, the encoding and the compression. The
// version lives in the database, so every node sees another's writes.
type postPageCache struct {
	max int

	mu    sync.Mutex // guards the fields below
	size  int
	pages map[string]*postPage
}

// postPage is an encoded page. The gzip form is made on first demand.
type postPage struct {
	version int64
	json    []byte

	gzipOnce sync.Once
	gzip     []byte
}

func newPostPageCache(max int) *postPageCache {
	return &postPageCache{max: max, pages: map[string]*postPage{}}
}

func (c *postPageCache) get(key string, version int64) *postPage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pages[key]; ok && p.version == version {
		return p
	}
	return nil
}

func (c *postPageCache) put(key string, p *postPage) {
	n := len(key) + len(p.json)
	if n > c.max/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.pages[key]; ok {
		if old.version > p.version {
			return // a newer page won the race
		}
		c.size -= len(key) + len(old.json)
	}
	// Make room by dropping arbitrary pages (map order is random).
	for k, old := range c.pages {
		if c.size+n <= c.max {
			break
		}
		c.size -= len(k) + len(old.json)
		delete(c.pages, k)
	}
	c.pages[key] = p
	c.size += n
}

// gzipped returns the page compressed; the compression happens once.
func (p *postPage) gzipped() []byte {
	p.gzipOnce.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		_, _ = zw.Write(p.json)
		_ = zw.Close()
		p.gzip = b.Bytes()
	})
	return p.gzip
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if name = strings.TrimSpace(name); name != "gzip" && name != "*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// varyOnEncoding says that a response depends on Accept-Encoding, once.
// The gzip middleware says so too, but a page compressed here must not
// depend on it: a cache that missed the header would serve gzip to a
// client that cannot read it.
func varyOnEncoding(h http.Header) {
	for _, v := range h.Values("Vary") {
		for _, name := range strings.Split(v, ",") {
			if n := strings.TrimSpace(name); n == "*" || strings.EqualFold(n, "Accept-Encoding") {
				return
			}
		}
	}
	h.Add("Vary", "Accept-Encoding")
}

// writePostPage writes an encoded page, compressed when the server
// compresses responses and the client takes gzip.
func (a *API) writePostPage(w http.ResponseWriter, r *http.Request, p *postPage) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	body := p.json
	if a.o.Gzip {
		varyOnEncoding(h)
	}
	if a.o.Gzip && acceptsGzip(r) {
		body = p.gzipped()
		// A set Content-Encoding makes the gzip middleware pass the
		// body through as it is.
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

func (a *API) getChannelPosts(w http.ResponseWriter, r *http.Request) error {
	const where = "api.get_channel_posts"
	id, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	o := app.ChannelPostsOptions{ChannelID: id}
	if o.After, err = optionalID(r, "after"); err != nil {
		return err
	}
	if o.Before, err = optionalID(r, "before"); err != nil {
		return err
	}
	if v := r.URL.Query().Get("since"); v != "" {
		if o.Since, err = strconv.ParseInt(v, 10, 64); err != nil {
			return model.ErrInvalidURLParam(where, "since")
		}
	}
	p := paging(r)
	o.Page, o.PerPage = p.Page, p.PerPage
	o.IncludeDeleted = boolQuery(r, "include_deleted")
	o.SkipFetchThreads = boolQuery(r, "skipFetchThreads")
	s := sessionFrom(r)
	if o.Since > 0 {
		// Changes since a time: not cached, and without an ETag, as in
		// Mattermost.
		list, appErr := a.app.GetChannelPosts(r.Context(), s, o)
		if appErr != nil {
			return appErr
		}
		return ok(w, list)
	}
	version, appErr := a.app.ChannelPostsVersion(r.Context(), s, o)
	if appErr != nil {
		return appErr
	}
	etag := a.o.MattermostVersion + "." + strconv.FormatInt(version, 10)
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		if a.o.Gzip {
			varyOnEncoding(w.Header()) // as the 200 would
		}
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	key := fmt.Sprintf("%s|%d|%d|%s|%s|%t|%t", o.ChannelID, o.Page, o.PerPage, o.Before, o.After, o.IncludeDeleted, o.SkipFetchThreads)
	if page := a.postPages.get(key, version); page != nil {
		return a.writePostPage(w, r, page)
	}
	list, appErr := a.app.GetChannelPosts(r.Context(), s, o)
	if appErr != nil {
		return appErr
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	page := &postPage{version: version, json: b}
	a.postPages.put(key, page)
	return a.writePostPage(w, r, page)
}

func (a *API) getPinnedPosts(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	list, appErr := a.app.GetPinnedPosts(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, list, appErr)
}

// limitQuery reads limit_before/limit_after as Mattermost does: absent,
// bad or negative values become 60, large ones 200.
func limitQuery(r *http.Request, name string) int {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || v < 0 {
		return defaultPerPage
	}
	return min(v, maxPerPage)
}

func (a *API) getPostsAroundUnread(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	channelID, err := idParam(r, "channel_id")
	if err != nil {
		return err
	}
	before, after := limitQuery(r, "limit_before"), limitQuery(r, "limit_after")
	if after == 0 {
		return model.ErrInvalidURLParam("api.get_posts_around_unread", "limit_after")
	}
	list, appErr := a.app.GetPostsAroundUnread(r.Context(), sessionFrom(r), userID, channelID, before, after,
		boolQuery(r, "skipFetchThreads"))
	if appErr != nil {
		return appErr
	}
	return ok(w, list)
}

// addReaction answers 200, not 201, as Mattermost does.
func (a *API) addReaction(w http.ResponseWriter, r *http.Request) error {
	var in model.Reaction
	if err := decodeBody(r, &in, "reaction"); err != nil {
		return err
	}
	re, appErr := a.app.SaveReaction(r.Context(), sessionFrom(r), &in)
	return reply(w, http.StatusOK, re, appErr)
}

func (a *API) getReactions(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	rs, appErr := a.app.GetReactions(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, rs, appErr)
}

func (a *API) getReactionsForPosts(w http.ResponseWriter, r *http.Request) error {
	ids, err := decodePostIDs(r, true)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return ok(w, json.RawMessage("{}"))
	}
	m, appErr := a.app.GetReactionsForPosts(r.Context(), sessionFrom(r), ids)
	return reply(w, http.StatusOK, m, appErr)
}

func (a *API) removeReaction(w http.ResponseWriter, r *http.Request) error {
	userID, err := userParam(r)
	if err != nil {
		return err
	}
	postID, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	emoji := chi.URLParam(r, "emoji_name")
	if !app.ValidEmojiName(emoji) {
		return model.ErrInvalidURLParam("api.remove_reaction", "emoji_name")
	}
	return replyStatusOK(w, a.app.DeleteReaction(r.Context(), sessionFrom(r), userID, postID, emoji))
}
