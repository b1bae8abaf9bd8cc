package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func prefsPath(userID string, rest ...string) string {
	return "/users/" + userID + "/preferences" + strings.Join(rest, "")
}

func eventPreferences(t *testing.T, ev wsEvent) []model.Preference {
	t.Helper()
	var ps []model.Preference
	require.NoError(t, json.Unmarshal([]byte(ev.Data["preferences"].(string)), &ps))
	return ps
}

func TestPreferences(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.newUser()
	u := ts.newUser()
	other := ts.newUser()
	w := u.ws()
	wOther := other.ws()

	var got []model.Preference
	u.mustDo("GET", prefsPath("me"), nil, http.StatusOK, &got)
	require.Empty(t, got)
	resp, body := u.do("GET", prefsPath("me"), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, "[]", string(body), "an empty list, not null")

	id := u.User.ID
	prefs := []model.Preference{
		{UserID: id, Category: "display_settings", Name: "use_military_time", Value: "true"},
		{UserID: id, Category: "display_settings", Name: "name_format", Value: "username"},
		{UserID: id, Category: "favorite_channel", Name: model.NewID(), Value: "true"},
	}
	u.mustDo("PUT", prefsPath(id), prefs, http.StatusOK, nil)
	ev := w.next("preferences_changed")
	require.Equal(t, id, ev.Broadcast["user_id"])
	require.ElementsMatch(t, prefs, eventPreferences(t, ev))

	u.mustDo("GET", prefsPath(id), nil, http.StatusOK, &got)
	require.ElementsMatch(t, prefs, got)
	u.mustDo("GET", prefsPath(id, "/display_settings"), nil, http.StatusOK, &got)
	require.ElementsMatch(t, prefs[:2], got)
	var one model.Preference
	u.mustDo("GET", prefsPath("me", "/display_settings/name/name_format"), nil, http.StatusOK, &one)
	require.Equal(t, prefs[1], one)

	// An update replaces the value; a theme's bad colours are neutralised.
	prefs[1].Value = "full_name"
	theme := model.Preference{UserID: id, Category: "theme", Name: "", Value: `{"sidebarBg":"red;}","type":"Custom","buttonBg":"#abc"}`}
	u.mustDo("PUT", prefsPath(id), []model.Preference{prefs[1], theme}, http.StatusOK, nil)
	w.next("preferences_changed")
	u.mustDo("GET", prefsPath(id, "/display_settings/name/name_format"), nil, http.StatusOK, &one)
	require.Equal(t, "full_name", one.Value)
	u.mustDo("GET", prefsPath(id, "/theme"), nil, http.StatusOK, &got)
	require.Len(t, got, 1)
	require.JSONEq(t, `{"sidebarBg":"#ffffff","type":"Custom","buttonBg":"#abc"}`, got[0].Value)

	// A system admin may read and change anyone's; nobody else may.
	admin.mustDo("GET", prefsPath(id), nil, http.StatusOK, &got)
	require.Len(t, got, 4)
	const perm = "api.context.permissions.app_error"
	other.requireAppError("GET", prefsPath(id), nil, 403, perm)
	other.requireAppError("GET", prefsPath(id, "/display_settings"), nil, 403, perm)
	other.requireAppError("GET", prefsPath(id, "/display_settings/name/name_format"), nil, 403, perm)
	other.requireAppError("PUT", prefsPath(id), prefs, 403, perm)
	other.requireAppError("POST", prefsPath(id, "/delete"), prefs, 403, perm)
	ts.anon().requireAppError("GET", prefsPath(id), nil, 401, "api.context.session_expired.app_error")

	// Every entry must belong to the user in the URL.
	mixed := []model.Preference{{UserID: other.User.ID, Category: "display_settings", Name: "x", Value: "y"}}
	u.requireAppError("PUT", prefsPath(id), mixed, 403, "api.preference.update_preferences.set.app_error")
	u.requireAppError("POST", prefsPath(id, "/delete"), mixed, 403, "api.preference.delete_preferences.delete.app_error")

	// Missing ones: a category is 404, a name 400, as in Mattermost.
	u.requireAppError("GET", prefsPath(id, "/nothing"), nil, 404, "api.preference.preferences_category.get.app_error")
	u.requireAppError("GET", prefsPath(id, "/display_settings/name/nothing"), nil, 400, "app.preference.get.app_error")
	u.requireAppError("GET", prefsPath(id, "/bad%20category"), nil, 400, "api.context.invalid_url_param.app_error")
	u.requireAppError("GET", prefsPath("nope"), nil, 400, "api.context.invalid_url_param.app_error")

	// Bad input, all or nothing.
	long := strings.Repeat("x", 33)
	many := make([]model.Preference, 101)
	for i := range many {
		many[i] = model.Preference{UserID: id, Category: "c", Name: fmt.Sprint(i), Value: "v"}
	}
	cases := []struct {
		name string
		body any
		id   string
	}{
		{"empty list", []model.Preference{}, "api.context.invalid_body_param.app_error"},
		{"too many", many, "api.context.invalid_body_param.app_error"},
		{"not json", "{", "api.context.invalid_body_param.app_error"},
		{"object", map[string]any{"user_id": id}, "api.context.invalid_body_param.app_error"},
		{"null entry", []any{nil}, "api.context.invalid_body_param.app_error"},
		{"no category", []model.Preference{{UserID: id, Name: "n"}}, "model.preference.is_valid.category.app_error"},
		{"long category", []model.Preference{{UserID: id, Category: long}}, "model.preference.is_valid.category.app_error"},
		{"long name", []model.Preference{{UserID: id, Category: "c", Name: long}}, "model.preference.is_valid.name.app_error"},
		{"long value", []model.Preference{{UserID: id, Category: "c", Value: strings.Repeat("é", 20001)}},
			"model.preference.is_valid.value.app_error"},
		{"NUL", []model.Preference{{UserID: id, Category: "c", Value: "a\x00b"}}, "model.preference.is_valid.value.app_error"},
		{"bad theme", []model.Preference{{UserID: id, Category: "theme", Value: "not json"}}, "model.preference.is_valid.theme.app_error"},
		{"bad dm limit", []model.Preference{{UserID: id, Category: "sidebar_settings", Name: "limit_visible_dms_gms", Value: "41"}},
			"model.preference.is_valid.limit_visible_dms_gms.app_error"},
		{"valid then invalid", []model.Preference{{UserID: id, Category: "c", Name: "ok", Value: "1"}, {UserID: id, Category: "c", Name: long}},
			"model.preference.is_valid.name.app_error"},
		{"unknown flagged post", []model.Preference{{UserID: id, Category: "flagged_post", Name: model.NewID(), Value: "true"}},
			"api.context.invalid_body_param.app_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := u.do("PUT", prefsPath(id), tc.body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
			var ae model.AppError
			require.NoError(t, json.Unmarshal(b, &ae))
			require.Equal(t, tc.id, ae.ID, string(b))
		})
	}
	u.requireAppError("GET", prefsPath(id, "/c"), nil, 404, "api.preference.preferences_category.get.app_error")
	u.requireAppError("POST", prefsPath(id, "/delete"), []model.Preference{}, 400, "api.context.invalid_body_param.app_error")

	// Flagging a post needs read access to it.
	team := admin.createTeam(false)
	private := admin.createChannel(team.ID, model.ChannelPrivate)
	secret := admin.post(private.ID, "secret")
	u.requireAppError("PUT", prefsPath(id), []model.Preference{{UserID: id, Category: "flagged_post", Name: secret.ID, Value: "true"}},
		403, perm)
	admin.addToTeam(team.ID, u)
	admin.addToChannel(private.ID, u)
	flag := model.Preference{UserID: id, Category: "flagged_post", Name: secret.ID, Value: "true"}
	u.mustDo("PUT", prefsPath(id), []model.Preference{flag}, http.StatusOK, nil)
	w.next("preferences_changed")

	// Deleting: the listed ones go, unknown ones are ignored.
	del := []model.Preference{prefs[0], flag, {UserID: id, Category: "never", Name: "set"}}
	u.mustDo("POST", prefsPath(id, "/delete"), del, http.StatusOK, nil)
	ev = w.next("preferences_deleted")
	require.Equal(t, id, ev.Broadcast["user_id"])
	require.ElementsMatch(t, del, eventPreferences(t, ev))
	u.mustDo("GET", prefsPath(id), nil, http.StatusOK, &got)
	require.Len(t, got, 3)
	require.Equal(t, []model.Preference{prefs[1], prefs[2]}, got[:2], "in category, name order")
	require.Equal(t, "theme", got[2].Category)
	u.requireAppError("GET", prefsPath(id, "/flagged_post"), nil, 404, "api.preference.preferences_category.get.app_error")

	// Another user heard nothing of it.
	other.mustDo("PUT", prefsPath("me"), []model.Preference{{UserID: other.User.ID, Category: "marker", Name: "m"}}, http.StatusOK, nil)
	ev = wOther.until(func(ev wsEvent) bool { return ev.Event == "preferences_changed" }, func(ev wsEvent) bool {
		return strings.HasPrefix(ev.Event, "preferences_")
	})
	require.Equal(t, "marker", eventPreferences(t, ev)[0].Category)
}
