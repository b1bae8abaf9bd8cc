package compat

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newUser(t)

	for name, loginID := range map[string]string{
		"WrongPassword": a.User.Username,
		"UnknownUser":   uniqueName("nobody"),
	} {
		t.Run(name, func(t *testing.T) {
			c := model.NewAPIv4Client(srv.url)
			_, resp, err := c.Login(ctx, loginID, "wrong-"+a.Password)
			requireAppError(t, resp, err, http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username")
			require.Empty(t, resp.Header.Get(model.HeaderToken))
			require.Empty(t, c.AuthToken)
		})
	}
}

// call is one driver call that is expected to fail.
type call struct {
	name string
	do   func(ctx context.Context) (*model.Response, error)
}

func TestUnknownIDs(t *testing.T) {
	t.Parallel()
	a := newUser(t)
	unknown := model.NewId()

	for _, tc := range []struct {
		call
		id string
	}{
		{call{"GetUser", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetUser(ctx, unknown, "")
			return r, err
		}}, "app.user.missing_account.const"},
		{call{"GetTeam", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetTeam(ctx, unknown, "")
			return r, err
		}}, "app.team.get.find.app_error"},
		{call{"GetChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetChannel(ctx, unknown)
			return r, err
		}}, "app.channel.get.existing.app_error"},
		{call{"GetPost", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetPost(ctx, unknown, "")
			return r, err
		}}, "app.post.get.app_error"},
		{call{"GetUserByUsername", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetUserByUsername(ctx, uniqueName("nobody"), "")
			return r, err
		}}, "app.user.get_by_username.app_error"},
		{call{"GetTeamByName", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetTeamByName(ctx, uniqueName("noteam"), "")
			return r, err
		}}, "app.team.get_by_name.missing.app_error"},
		{call{"UnknownRoute", func(ctx context.Context) (*model.Response, error) {
			return raw(a.DoAPIGet(ctx, "/no/such/route", ""))
		}}, "api.context.404.app_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.do(t.Context())
			requireAppError(t, resp, err, http.StatusNotFound, tc.id)
		})
	}
}

func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	a := newUser(t)
	const bad = "abc123" // letters and digits, so the route matches, but not 26 of them

	for _, tc := range []call{
		{"GetUser", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetUser(ctx, bad, "")
			return r, err
		}},
		{"GetTeam", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetTeam(ctx, bad, "")
			return r, err
		}},
		{"GetChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetChannel(ctx, bad)
			return r, err
		}},
		{"GetPost", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetPost(ctx, bad, "")
			return r, err
		}},
		{"GetPostsForChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetPostsForChannel(ctx, bad, 0, 60, "", false, false)
			return r, err
		}},
		{"GetChannelMembers", func(ctx context.Context) (*model.Response, error) {
			_, r, err := a.GetChannelMembers(ctx, bad, 0, 60, "")
			return r, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.do(t.Context())
			requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_url_param.app_error")
		})
	}
}

func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	a := newUser(t)
	anonymous := model.NewAPIv4Client(srv.url)
	forged := model.NewAPIv4Client(srv.url)
	forged.SetToken(model.NewId())

	for _, c := range []*model.Client4{anonymous, forged} {
		for _, tc := range []call{
			{"GetMe", func(ctx context.Context) (*model.Response, error) {
				_, r, err := c.GetMe(ctx, "")
				return r, err
			}},
			{"GetUsers", func(ctx context.Context) (*model.Response, error) {
				_, r, err := c.GetUsers(ctx, 0, 60, "")
				return r, err
			}},
			{"GetUser", func(ctx context.Context) (*model.Response, error) {
				_, r, err := c.GetUser(ctx, a.User.Id, "")
				return r, err
			}},
			{"CreateTeam", func(ctx context.Context) (*model.Response, error) {
				_, r, err := c.CreateTeam(ctx, &model.Team{Name: uniqueName("t"), DisplayName: "x", Type: model.TeamOpen})
				return r, err
			}},
			{"CreatePost", func(ctx context.Context) (*model.Response, error) {
				_, r, err := c.CreatePost(ctx, &model.Post{ChannelId: model.NewId(), Message: "x"})
				return r, err
			}},
		} {
			name := "Anonymous/" + tc.name
			if c == forged {
				name = "ForgedToken/" + tc.name
			}
			t.Run(name, func(t *testing.T) {
				resp, err := tc.do(t.Context())
				requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
			})
		}
	}
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	alice, bob := newUser(t), newUser(t)
	team := teamWith(t, alice, bob)
	private := newChannel(t, alice, team.Id, model.ChannelTypePrivate)
	secret := newPost(t, alice, private.Id, "secret")
	invite := newTeam(t, alice, model.TeamInvite)
	elsewhere := newChannel(t, alice, invite.Id, model.ChannelTypeOpen)

	// bob is a plain member of team and in none of these channels.
	for _, tc := range []call{
		{"PatchOtherUser", func(ctx context.Context) (*model.Response, error) {
			nick := "x"
			_, r, err := bob.PatchUser(ctx, alice.User.Id, &model.UserPatch{Nickname: &nick})
			return r, err
		}},
		{"GetPostInPrivateChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.GetPost(ctx, secret.Id, "")
			return r, err
		}},
		{"GetPostsOfPrivateChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.GetPostsForChannel(ctx, private.Id, 0, 60, "", false, false)
			return r, err
		}},
		{"GetPostThreadInPrivateChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.GetPostThread(ctx, secret.Id, "", false)
			return r, err
		}},
		{"PostInPrivateChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.CreatePost(ctx, &model.Post{ChannelId: private.Id, Message: "let me in"})
			return r, err
		}},
		{"ReactInPrivateChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.SaveReaction(ctx, &model.Reaction{UserId: bob.User.Id, PostId: secret.Id, EmojiName: "smile"})
			return r, err
		}},
		{"PostInOtherTeam", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.CreatePost(ctx, &model.Post{ChannelId: elsewhere.Id, Message: "hi"})
			return r, err
		}},
		{"GetMembersOfInviteTeam", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.GetTeamMembers(ctx, invite.Id, 0, 60, "")
			return r, err
		}},
		{"DeletePrivateChannel", func(ctx context.Context) (*model.Response, error) {
			return bob.DeleteChannel(ctx, private.Id)
		}},
		{"AddSelfToPrivateChannel", func(ctx context.Context) (*model.Response, error) {
			_, r, err := bob.AddChannelMember(ctx, private.Id, bob.User.Id)
			return r, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.do(t.Context())
			requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
		})
	}
}

func TestAppErrorShape(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice, bob := newUser(t), newUser(t)

	nick := "x"
	_, resp, err := bob.PatchUser(ctx, alice.User.Id, &model.UserPatch{Nickname: &nick})
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	var appErr *model.AppError
	require.ErrorAs(t, err, &appErr)
	require.NotEmpty(t, appErr.Message)
	// The request id is in the body and in X-Request-ID.
	require.True(t, model.IsValidId(resp.RequestId), "X-Request-ID %q", resp.RequestId)
	require.Equal(t, resp.RequestId, appErr.RequestId)
	// Outside developer mode (ServiceSettings.EnableDeveloper, off by
	// default) Mattermost wipes detailed_error, which would otherwise show
	// user ids and permission names.
	require.Empty(t, appErr.DetailedError)
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newUser(t)
	team := teamWith(t, a)
	ch := newChannel(t, a, team.Id, model.ChannelTypeOpen)

	t.Run("MalformedJSON", func(t *testing.T) {
		resp, err := raw(a.DoAPIPost(ctx, "/posts", `{"channel_id": "`+ch.Id+`", "message": `))
		requireAppError(t, resp, err, http.StatusBadRequest, "api.context.invalid_body_param.app_error")
	})

	t.Run("MessageTooLong", func(t *testing.T) {
		_, resp, err := a.CreatePost(ctx, &model.Post{ChannelId: ch.Id, Message: strings.Repeat("x", model.PostMessageMaxRunesV2+1)})
		requireAppError(t, resp, err, http.StatusBadRequest, "model.post.is_valid.message_length.app_error")

		// Nothing was half written.
		list, _, err := a.GetPostsForChannel(ctx, ch.Id, 0, 200, "", false, false)
		require.NoError(t, err)
		for _, p := range list.Posts {
			require.NotEqual(t, model.PostMessageMaxRunesV2+1, len(p.Message))
		}
	})
}

func TestPing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	anonymous := model.NewAPIv4Client(srv.url)

	status, resp, err := anonymous.GetPing(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, model.StatusOk, status)

	status, _, err = anonymous.GetPingWithServerStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, model.StatusOk, status)

	full, resp, err := anonymous.GetPingWithFullServerStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, model.StatusOk, full["status"])
	require.Equal(t, model.StatusOk, full["database_status"])
	require.Equal(t, model.StatusOk, full["filestore_status"])
	// Mattermost repeats them as headers.
	require.Equal(t, model.StatusOk, resp.Header.Get("database_status"))
	require.Equal(t, model.StatusOk, resp.Header.Get("filestore_status"))
}

func TestClientConfigAndLicense(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	anonymous := model.NewAPIv4Client(srv.url)

	// This driver version has no GetOldClientConfig: GetClientConfig asks
	// without format, as current Mattermost clients do, and DoAPIGet sends
	// format=old, as older ones do.
	for _, c := range []*model.Client4{anonymous, srv.admin.Client4} {
		cfg, resp, err := c.GetClientConfig(ctx, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		requireClientConfig(t, cfg)

		r, err := c.DoAPIGet(ctx, "/config/client?format=old", "")
		require.NoError(t, err)
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		require.NoError(t, r.Body.Close())
		var old map[string]string
		require.NoError(t, json.Unmarshal(b, &old), "the old format is a JSON object of strings: %s", b)
		requireClientConfig(t, old)
	}

	license, resp, err := anonymous.GetOldClientLicense(ctx, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "false", license["IsLicensed"])

	// Without format=old Mattermost refuses (the new format was never made).
	resp, err = raw(anonymous.DoAPIGet(ctx, "/license/client", ""))
	requireAppError(t, resp, err, http.StatusBadRequest, "api.license.client.old_format.app_error")
}

// raw turns the result of the driver's DoAPI* calls into what its typed
// calls return, closing the body.
func raw(r *http.Response, err error) (*model.Response, error) {
	if r != nil && err == nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return model.BuildResponse(r), err
}

// requireClientConfig checks the keys clients read at start-up.
func requireClientConfig(t *testing.T, cfg map[string]string) {
	t.Helper()
	require.NotEmpty(t, cfg["Version"], "Version")
	require.NotEmpty(t, cfg["BuildNumber"], "BuildNumber")
	require.Equal(t, srv.url, cfg["SiteURL"])
	require.NotEmpty(t, cfg["SiteName"], "SiteName")
	require.Equal(t, "true", cfg["EnableSignInWithUsername"])
	require.Equal(t, "true", cfg["EnableSignUpWithEmail"])
	require.Equal(t, "true", cfg["EnableOpenServer"])
}
