package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// routes lists every route of the API in one place. Handlers wrapped in
// a.auth need a session and a CSRF token for cookie writes; a.authTrust
// needs a session only; a.handle needs neither.
func (a *API) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(a.common, middleware.Recoverer)

	r.Route("/api/v4", func(r chi.Router) {
		if a.o.Gzip {
			r.Use(gzipMiddleware)
		}
		r.Use(a.rateLimited)
		r.NotFound(a.handle(notFound))
		r.MethodNotAllowed(a.handle(notFound))

		// Users and sessions.
		r.Post("/users", a.handle(a.createUser))
		r.Get("/users", a.auth(a.getUsers))
		r.Post("/users/login", a.handle(a.login))
		r.Post("/users/logout", a.handle(a.logout))
		r.Post("/users/ids", a.auth(a.getUsersByIDs))
		r.Post("/users/usernames", a.auth(a.getUsersByUsernames))
		r.Get("/users/autocomplete", a.auth(a.autocompleteUsers))
		r.Get("/users/username/{username}", a.auth(a.getUserByUsername))
		r.Get("/users/email/{email}", a.auth(a.getUserByEmail))
		r.Get("/users/{user_id}", a.auth(a.getUser))
		r.Put("/users/{user_id}", a.auth(a.updateUser))
		r.Put("/users/{user_id}/patch", a.auth(a.patchUser))
		r.Put("/users/{user_id}/password", a.auth(a.updatePassword))
		r.Get("/users/{user_id}/sessions", a.auth(a.getSessions))
		r.Post("/users/{user_id}/sessions/revoke", a.auth(a.revokeSession))
		r.Post("/users/{user_id}/sessions/revoke/all", a.auth(a.revokeAllSessions))
		r.Post("/users/{user_id}/typing", a.auth(a.userTyping))

		// Teams.
		r.Post("/teams", a.auth(a.createTeam))
		r.Get("/teams", a.auth(a.getTeams))
		r.Get("/teams/{team_id}", a.auth(a.getTeam))
		r.Put("/teams/{team_id}/patch", a.auth(a.patchTeam))
		r.Get("/teams/name/{team_name}", a.auth(a.getTeamByName))
		r.Get("/teams/name/{team_name}/exists", a.auth(a.teamExists))
		r.Post("/teams/{team_id}/members", a.auth(a.addTeamMember))
		r.Post("/teams/{team_id}/members/batch", a.auth(a.addTeamMembers))
		r.Post("/teams/members/invite", a.auth(a.addTeamMemberFromInvite))
		r.Get("/teams/{team_id}/members", a.auth(a.getTeamMembers))
		r.Post("/teams/{team_id}/members/ids", a.auth(a.getTeamMembersByIDs))
		r.Get("/teams/{team_id}/members/{user_id}", a.auth(a.getTeamMember))
		r.Delete("/teams/{team_id}/members/{user_id}", a.auth(a.removeTeamMember))
		r.Get("/users/{user_id}/teams", a.auth(a.getTeamsForUser))
		r.Get("/users/{user_id}/teams/members", a.auth(a.getTeamMembersForUser))
		r.Get("/users/{user_id}/teams/unread", a.auth(a.getTeamsUnread))
		r.Get("/users/{user_id}/teams/{team_id}/unread", a.auth(a.getTeamUnread))

		// Channels.
		r.Post("/channels", a.auth(a.createChannel))
		r.Post("/channels/direct", a.auth(a.createDirectChannel))
		r.Post("/channels/group", a.auth(a.createGroupChannel))
		r.Get("/channels/{channel_id}", a.auth(a.getChannel))
		r.Put("/channels/{channel_id}", a.auth(a.updateChannel))
		r.Put("/channels/{channel_id}/patch", a.auth(a.patchChannel))
		r.Delete("/channels/{channel_id}", a.auth(a.deleteChannel))
		r.Get("/channels/{channel_id}/stats", a.auth(a.getChannelStats))
		r.Get("/teams/{team_id}/channels", a.auth(a.getPublicChannels))
		r.Get("/teams/{team_id}/channels/name/{channel_name}", a.auth(a.getChannelByName))
		r.Get("/teams/name/{team_name}/channels/name/{channel_name}", a.auth(a.getChannelByNameForTeamName))
		r.Get("/users/{user_id}/teams/{team_id}/channels", a.auth(a.getChannelsForUser))
		r.Get("/users/{user_id}/teams/{team_id}/channels/members", a.auth(a.getChannelMembersForUser))
		r.Post("/channels/{channel_id}/members", a.auth(a.addChannelMember))
		r.Get("/channels/{channel_id}/members", a.auth(a.getChannelMembers))
		r.Post("/channels/{channel_id}/members/ids", a.auth(a.getChannelMembersByIDs))
		r.Get("/channels/{channel_id}/members/{user_id}", a.auth(a.getChannelMember))
		r.Delete("/channels/{channel_id}/members/{user_id}", a.auth(a.removeChannelMember))
		r.Put("/channels/{channel_id}/members/{user_id}/notify_props", a.auth(a.updateChannelNotifyProps))
		r.Post("/channels/members/{user_id}/view", a.auth(a.viewChannel))
		r.Get("/users/{user_id}/channels/{channel_id}/unread", a.auth(a.getChannelUnread))

		// Posts and reactions.
		r.Post("/posts", a.auth(a.createPost))
		r.Post("/posts/ids", a.auth(a.getPostsByIDs))
		r.Get("/posts/{post_id}", a.auth(a.getPost))
		r.Put("/posts/{post_id}", a.auth(a.updatePost))
		r.Put("/posts/{post_id}/patch", a.auth(a.patchPost))
		r.Delete("/posts/{post_id}", a.auth(a.deletePost))
		r.Get("/posts/{post_id}/thread", a.auth(a.getPostThread))
		r.Post("/posts/{post_id}/pin", a.auth(a.pinPost))
		r.Post("/posts/{post_id}/unpin", a.auth(a.unpinPost))
		r.Get("/channels/{channel_id}/posts", a.auth(a.getChannelPosts))
		r.Get("/channels/{channel_id}/pinned", a.auth(a.getPinnedPosts))
		r.Get("/users/{user_id}/channels/{channel_id}/posts/unread", a.auth(a.getPostsAroundUnread))
		r.Post("/reactions", a.auth(a.addReaction))
		r.Get("/posts/{post_id}/reactions", a.auth(a.getReactions))
		r.Post("/posts/ids/reactions", a.auth(a.getReactionsForPosts))
		r.Delete("/users/{user_id}/posts/{post_id}/reactions/{emoji_name}", a.auth(a.removeReaction))

		// System.
		r.Get("/system/ping", a.handle(a.ping))
		r.Get("/config/client", a.handle(a.clientConfig))
		r.Get("/license/client", a.handle(a.clientLicense))
	})
	// The WebSocket upgrade is outside the gzip middleware: compression
	// would wrap the hijacked connection.
	if a.o.WebSocket != nil {
		r.Get("/api/v4/websocket", a.o.WebSocket.ServeHTTP)
		r.Get("/api/v4/websocket/", a.o.WebSocket.ServeHTTP)
	}
	return r
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return model.NewAppError("api.not_found", "api.context.404.app_error", http.StatusNotFound,
		"Sorry, we could not find the page.")
}
