package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/garrison-chat/garrison/server/internal/app"
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

		// Every route but the file transfers: bodies are bounded by
		// MaximumPayloadSizeBytes and requests by the request timeout.
		r.Group(func(r chi.Router) {
			r.Use(a.bounded)

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

			// Preferences.
			r.Get("/users/{user_id}/preferences", a.auth(a.getPreferences))
			r.Put("/users/{user_id}/preferences", a.auth(a.updatePreferences))
			r.Post("/users/{user_id}/preferences/delete", a.auth(a.deletePreferences))
			r.Get("/users/{user_id}/preferences/{category}", a.auth(a.getPreferencesByCategory))
			r.Get("/users/{user_id}/preferences/{category}/name/{preference_name}", a.auth(a.getPreference))

			// Search (issue 3): posts, users, channels.
			r.Post("/teams/{team_id}/posts/search", a.auth(a.searchPostsInTeam))
			r.Post("/posts/search", a.auth(a.searchPostsAllTeams))
			r.Post("/teams/{team_id}/files/search", a.auth(a.searchFilesInTeam))
			r.Post("/files/search", a.auth(a.searchFilesAllTeams))
			r.Post("/users/search", a.auth(a.searchUsers))
			r.Post("/teams/{team_id}/channels/search", a.auth(a.searchChannels))
			r.Get("/teams/{team_id}/channels/autocomplete", a.auth(a.autocompleteChannels))
			r.Get("/teams/{team_id}/channels/search_autocomplete", a.auth(a.searchAutocompleteChannels))

			// Administration (issue 3): deactivation, roles, and 501 for the
			// Mattermost features Garrison does not have yet.
			r.Put("/users/{user_id}/active", a.auth(a.updateUserActive))
			r.Put("/users/{user_id}/roles", a.auth(a.updateUserRoles))
			r.Put("/teams/{team_id}/members/{user_id}/roles", a.auth(a.updateTeamMemberRoles))
			r.Put("/channels/{channel_id}/members/{user_id}/roles", a.auth(a.updateChannelMemberRoles))
			r.Put("/users/{user_id}/mfa", notImplemented("Multi-factor authentication"))
			r.Post("/users/{user_id}/mfa/generate", notImplemented("Multi-factor authentication"))
			r.Post("/users/migrate_auth/ldap", notImplemented("LDAP"))
			r.Post("/users/migrate_auth/saml", notImplemented("SAML"))
			r.Post("/license", notImplemented("License upload"))
			r.Delete("/license", notImplemented("License upload"))
			for _, f := range []struct{ prefix, feature string }{
				{"/ldap", "LDAP"}, {"/saml", "SAML"}, {"/oauth", "OAuth 2.0 applications"},
				{"/compliance", "Compliance export"}, {"/data_retention", "Data retention"}, {"/plugins", "Plugins"},
				{"/jobs", "Jobs"}, {"/elasticsearch", "Elasticsearch"}, {"/exports", "Bulk export"},
				{"/imports", "Bulk import"}, {"/emoji", "Custom emoji"}, {"/bots", "Bots"}, {"/groups", "User groups"},
			} {
				r.HandleFunc(f.prefix, notImplemented(f.feature))
				r.HandleFunc(f.prefix+"/*", notImplemented(f.feature))
			}

			// File infos of a post (issue 3).
			r.Get("/posts/{post_id}/files/info", a.auth(a.getFileInfosForPost))

			// Statuses (issue 3).
			r.Get("/users/{user_id}/status", a.auth(a.getUserStatus))
			r.Put("/users/{user_id}/status", a.auth(a.updateUserStatus))
			r.Post("/users/status/ids", a.auth(a.getUserStatusesByIDs))

			// Integrations (issue 3): incoming webhooks, personal access tokens.
			r.Post("/hooks/incoming", a.auth(a.createIncomingHook))
			r.Get("/hooks/incoming", a.auth(a.getIncomingHooks))
			r.Get("/hooks/incoming/{hook_id}", a.auth(a.getIncomingHook))
			r.Put("/hooks/incoming/{hook_id}", a.auth(a.updateIncomingHook))
			r.Delete("/hooks/incoming/{hook_id}", a.auth(a.deleteIncomingHook))
			r.Post("/users/{user_id}/tokens", a.auth(a.createUserAccessToken))
			r.Get("/users/{user_id}/tokens", a.auth(a.getUserAccessTokensForUser))
			r.Get("/users/tokens", a.auth(a.getUserAccessTokens))
			r.Get("/users/tokens/{token_id}", a.auth(a.getUserAccessToken))
			r.Post("/users/tokens/revoke", a.auth(a.revokeUserAccessToken))
			r.Post("/users/tokens/disable", a.auth(a.setUserAccessTokenActive(false)))
			r.Post("/users/tokens/enable", a.auth(a.setUserAccessTokenActive(true)))

			// Cluster (issue 4).
			r.Get("/cluster/status", a.auth(a.clusterStatus))

			// Push notifications (issue 5): mobile devices, browsers' Web
			// Push registrations, delivery receipts.
			r.Put("/users/sessions/device", a.auth(a.attachDevice))
			r.Get("/notifications/webpush", a.auth(a.getWebPushKey))
			r.Post("/notifications/webpush", a.auth(a.registerWebPush))
			r.Delete("/notifications/webpush", a.auth(a.unregisterWebPush))
			r.Post("/notifications/ack", a.auth(a.pushAck))

			// System.
			r.Get("/system/ping", a.handle(a.ping))
			r.Get("/config/client", a.handle(a.clientConfig))
			r.Get("/license/client", a.handle(a.clientLicense))
		})

		// Files (issue 3): uploads, downloads, renditions, links. They
		// bound their own bodies (FileSettings.MaxFileSize) and are not
		// cut short by the request timeout: files are large.
		r.Post("/files", a.auth(a.uploadFiles))
		r.Get("/files/{file_id}", a.authTrust(a.serveFile(app.FileOriginal)))
		r.Get("/files/{file_id}/thumbnail", a.authTrust(a.serveFile(app.FileThumbnail)))
		r.Get("/files/{file_id}/preview", a.authTrust(a.serveFile(app.FilePreview)))
		r.Get("/files/{file_id}/info", a.auth(a.getFileInfo))
		r.Get("/files/{file_id}/link", a.auth(a.getFileLink))
	})
	// Files (issue 3): public links live outside /api/v4, as in Mattermost.
	r.Get("/files/{file_id}/public", a.handle(a.getPublicFile))
	// Integrations (issue 3): a webhook's URL is outside /api/v4 and needs
	// no session, as in Mattermost.
	r.With(a.bounded).Post("/hooks/{hook_id}", a.handle(a.incomingWebhook()))
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
