package compat

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	// TestMain created the first user of the system: it is the admin.
	require.True(t, srv.admin.User.IsSystemAdmin(), "first user's roles = %q, want system_admin", srv.admin.User.Roles)
	me, _, err := srv.admin.GetMe(ctx, "")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{model.SystemAdminRoleId, model.SystemUserRoleId}, strings.Fields(me.Roles))

	name := uniqueName("u")
	u, resp, err := model.NewAPIv4Client(srv.url).CreateUser(ctx, &model.User{
		Username: name, Email: name + "@example.com", Password: "Pw-" + model.NewId(),
		Nickname: "nick", FirstName: "Ada", LastName: "Lovelace",
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.True(t, model.IsValidId(u.Id), "id %q", u.Id)
	require.Equal(t, name, u.Username)
	require.Equal(t, name+"@example.com", u.Email)
	require.Equal(t, "nick", u.Nickname)
	require.Equal(t, "Ada", u.FirstName)
	require.Equal(t, "Lovelace", u.LastName)
	require.Equal(t, model.SystemUserRoleId, u.Roles, "a later user is not an admin")
	require.Empty(t, u.Password, "the password (hash) must never be sent")
	require.NotZero(t, u.CreateAt)

	// The same username again is refused.
	_, resp, err = model.NewAPIv4Client(srv.url).CreateUser(ctx, &model.User{
		Username: name, Email: "other" + name + "@example.com", Password: "Pw-" + model.NewId(),
	})
	requireAppError(t, resp, err, http.StatusBadRequest, "app.user.save.username_exists.app_error")
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newUser(t)

	c := model.NewAPIv4Client(srv.url)
	u, resp, err := c.Login(ctx, a.User.Username, a.Password)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, a.User.Id, u.Id)
	require.Empty(t, u.Password)
	token := resp.Header.Get(model.HeaderToken)
	require.NotEmpty(t, token, "login must return the session token in the Token header")
	require.Equal(t, token, c.AuthToken)
	require.Equal(t, model.HeaderBearer, c.AuthType)

	// Logging in by email works too.
	byEmail := model.NewAPIv4Client(srv.url)
	_, _, err = byEmail.Login(ctx, a.User.Email, a.Password)
	require.NoError(t, err)

	me, _, err := c.GetMe(ctx, "")
	require.NoError(t, err)
	require.Equal(t, a.User.Id, me.Id)
	require.Equal(t, a.User.Username, me.Username)

	resp, err = c.Logout(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The token of the ended session is refused.
	old := model.NewAPIv4Client(srv.url)
	old.SetToken(token)
	_, resp, err = old.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")

	// The other session is untouched.
	_, _, err = byEmail.GetMe(ctx, "")
	require.NoError(t, err)
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := newUser(t), newUser(t)

	for name, get := range map[string]func() (*model.User, *model.Response, error){
		"GetUser":           func() (*model.User, *model.Response, error) { return a.GetUser(ctx, b.User.Id, "") },
		"GetUserByUsername": func() (*model.User, *model.Response, error) { return a.GetUserByUsername(ctx, b.User.Username, "") },
		"GetUserByEmail":    func() (*model.User, *model.Response, error) { return a.GetUserByEmail(ctx, b.User.Email, "") },
	} {
		t.Run(name, func(t *testing.T) {
			u, resp, err := get()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, b.User.Id, u.Id)
			require.Equal(t, b.User.Username, u.Username)
			require.Equal(t, b.User.FirstName, u.FirstName)
			require.Empty(t, u.Password)
		})
	}

	// "me" works in place of one's own id.
	me, _, err := a.GetUser(ctx, model.Me, "")
	require.NoError(t, err)
	require.Equal(t, a.User.Id, me.Id)
}

func TestGetUsersPaging(t *testing.T) {
	// Not parallel: offset paging over every user of the system must not
	// see users created by other tests while it pages.
	ctx := t.Context()
	created := map[string]bool{}
	for range 5 {
		created[newUser(t).User.Id] = true
	}

	seen := map[string]bool{}
	for page := 0; ; page++ {
		users, resp, err := srv.admin.GetUsers(ctx, page, 2, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.LessOrEqual(t, len(users), 2, "page %d is longer than per_page", page)
		for _, u := range users {
			require.False(t, seen[u.Id], "user %s is on two pages", u.Username)
			seen[u.Id] = true
			require.Empty(t, u.Password)
		}
		if len(users) < 2 {
			break
		}
		require.Less(t, page, 10000, "paging does not end")
	}
	for id := range created {
		require.True(t, seen[id], "user %s missing from GetUsers pages", id)
	}
	require.True(t, seen[srv.admin.User.Id])
}

func TestGetUsersByIdsAndUsernames(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b, c := newUser(t), newUser(t), newUser(t)

	users, resp, err := a.GetUsersByIds(ctx, []string{b.User.Id, c.User.Id, model.NewId()})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.ElementsMatch(t, []string{b.User.Id, c.User.Id}, userIDs(users), "unknown ids are left out")

	users, _, err = a.GetUsersByUsernames(ctx, []string{b.User.Username, c.User.Username, uniqueName("nobody")})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{b.User.Id, c.User.Id}, userIDs(users))
}

func TestGetUsersInTeamAndChannel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, member, outsider := newUser(t), newUser(t), newUser(t)
	teamMates := []*account{newUser(t), newUser(t), newUser(t)}
	team := teamWith(t, owner, append([]*account{member}, teamMates...)...)
	ch := channelWith(t, owner, team.Id, model.ChannelTypeOpen, member)

	t.Run("InTeam", func(t *testing.T) {
		want := []string{owner.User.Id, member.User.Id}
		for _, m := range teamMates {
			want = append(want, m.User.Id)
		}
		var got []string
		for page := 0; ; page++ {
			users, _, err := member.GetUsersInTeam(ctx, team.Id, page, 2, "")
			require.NoError(t, err)
			require.LessOrEqual(t, len(users), 2)
			got = append(got, userIDs(users)...)
			if len(users) < 2 {
				break
			}
			require.Less(t, page, 10, "paging does not end")
		}
		require.ElementsMatch(t, want, got)
		require.NotContains(t, got, outsider.User.Id)
	})

	t.Run("InChannel", func(t *testing.T) {
		users, _, err := member.GetUsersInChannel(ctx, ch.Id, 0, 60, "")
		require.NoError(t, err)
		require.ElementsMatch(t, []string{owner.User.Id, member.User.Id}, userIDs(users))
	})

	t.Run("NotInChannel", func(t *testing.T) {
		users, _, err := member.GetUsersNotInChannel(ctx, team.Id, ch.Id, 0, 60, "")
		require.NoError(t, err)
		got := userIDs(users)
		for _, m := range teamMates {
			require.Contains(t, got, m.User.Id)
		}
		require.NotContains(t, got, owner.User.Id)
		require.NotContains(t, got, member.User.Id)
		require.NotContains(t, got, outsider.User.Id, "not in the team")
	})
}

func TestPatchUser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newUser(t)

	nick, position := "the-nick", "engineer"
	u, resp, err := a.PatchUser(ctx, a.User.Id, &model.UserPatch{Nickname: &nick, Position: &position})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, nick, u.Nickname)
	require.Equal(t, position, u.Position)
	require.Equal(t, a.User.FirstName, u.FirstName, "fields left out of the patch are untouched")
	require.Empty(t, u.Password)

	got, _, err := a.GetMe(ctx, "")
	require.NoError(t, err)
	require.Equal(t, nick, got.Nickname)
	require.Equal(t, position, got.Position)
	require.Equal(t, a.User.LastName, got.LastName)
}

func TestUpdateUserPassword(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newUser(t)
	newPassword := "New-" + model.NewId()

	resp, err := a.UpdateUserPassword(ctx, a.User.Id, "wrong-"+a.Password, newPassword)
	requireAppError(t, resp, err, http.StatusBadRequest, "api.user.update_password.incorrect.app_error")

	resp, err = a.UpdateUserPassword(ctx, a.User.Id, a.Password, newPassword)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, resp, err = model.NewAPIv4Client(srv.url).Login(ctx, a.User.Username, a.Password)
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username")
	_, _, err = model.NewAPIv4Client(srv.url).Login(ctx, a.User.Username, newPassword)
	require.NoError(t, err)
}

func TestAutocompleteUsers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner, inChannel, inTeam, outsider := newUser(t), newUser(t), newUser(t), newUser(t)
	team := teamWith(t, owner, inChannel, inTeam)
	ch := channelWith(t, owner, team.Id, model.ChannelTypeOpen, inChannel)

	t.Run("InTeam", func(t *testing.T) {
		got, resp, err := owner.AutocompleteUsersInTeam(ctx, team.Id, inTeam.User.Username, 10, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, []string{inTeam.User.Id}, userIDs(got.Users))

		got, _, err = owner.AutocompleteUsersInTeam(ctx, team.Id, outsider.User.Username, 10, "")
		require.NoError(t, err)
		require.Empty(t, got.Users, "a user outside the team is not suggested")
	})

	t.Run("InChannel", func(t *testing.T) {
		got, _, err := owner.AutocompleteUsersInChannel(ctx, team.Id, ch.Id, inChannel.User.Username, 10, "")
		require.NoError(t, err)
		require.Equal(t, []string{inChannel.User.Id}, userIDs(got.Users))
		require.Empty(t, got.OutOfChannel)

		// A team member outside the channel is offered as out_of_channel.
		got, _, err = owner.AutocompleteUsersInChannel(ctx, team.Id, ch.Id, inTeam.User.Username, 10, "")
		require.NoError(t, err)
		require.Empty(t, got.Users)
		require.Equal(t, []string{inTeam.User.Id}, userIDs(got.OutOfChannel))
	})
}

func TestSessions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newUser(t) // one session: a's own client

	before, resp, err := a.GetSessions(ctx, a.User.Id, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, before, 1)

	second := model.NewAPIv4Client(srv.url)
	_, _, err = second.Login(ctx, a.User.Username, a.Password)
	require.NoError(t, err)

	after, _, err := a.GetSessions(ctx, a.User.Id, "")
	require.NoError(t, err)
	require.Len(t, after, 2)
	var secondID string
	for _, s := range after {
		require.Equal(t, a.User.Id, s.UserId)
		require.Empty(t, s.Token, "session tokens are never listed")
		require.True(t, model.IsValidId(s.Id), "session id %q", s.Id)
		require.NotZero(t, s.CreateAt)
		if s.Id != before[0].Id {
			secondID = s.Id
		}
	}
	require.NotEmpty(t, secondID)

	// Another user may not list or revoke them.
	other := newUser(t)
	_, resp, err = other.GetSessions(ctx, a.User.Id, "")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	resp, err = other.RevokeSession(ctx, a.User.Id, secondID)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	resp, err = a.RevokeSession(ctx, a.User.Id, secondID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, resp, err = second.GetMe(ctx, "")
	requireAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
	_, _, err = a.GetMe(ctx, "")
	require.NoError(t, err, "revoking one session leaves the others")

	left, _, err := a.GetSessions(ctx, a.User.Id, "")
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.False(t, slices.ContainsFunc(left, func(s *model.Session) bool { return s.Id == secondID }))
}
