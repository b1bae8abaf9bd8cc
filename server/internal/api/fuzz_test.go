package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/garrison-chat/garrison/internal/pgtest"
	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// fuzzTarget is the API router on a fresh database, called in-process
// with httptest.NewRecorder: a listener per input would be too slow. The
// benchmarks use it too.
type fuzzTarget struct {
	h         http.Handler
	token     string
	channelID string
}

func newFuzzTarget(tb testing.TB, mutate ...func(*api.Options)) *fuzzTarget {
	tb.Helper()
	dsn := pgtest.New(tb)
	store, err := postgres.Open(context.Background(), postgres.PoolOptions{DataSource: dsn, MaxOpenConns: 4, QueryTimeout: 30 * time.Second})
	require.NoError(tb, err)
	tb.Cleanup(store.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := app.New(app.Options{Store: store, Logger: logger, NodeID: "fuzz", BcryptCost: bcrypt.MinCost, Settings: app.Settings{
		EnableUserCreation: true, EnableOpenServer: true, EnableSignInWithEmail: true, EnableSignInWithUsername: true,
		MaxUsersPerTeam: 100000, MaxChannelsPerTeam: 1000, SessionLengthWeb: time.Hour, SessionLengthMobile: time.Hour,
		SessionCacheTTL: time.Minute, MaxLoginAttempts: 1000, Password: app.PasswordRules{MinimumLength: 8},
		PostEditTimeLimit: -1,
	}})
	opts := api.Options{App: a, Logger: logger, MaxPayload: 300000, Version: "0.1.0", MattermostVersion: "10.11.0"}
	for _, f := range mutate {
		f(&opts)
	}
	ft := &fuzzTarget{h: api.New(opts)}

	rec := ft.do(tb, "POST", "/users", `{"username":"fuzzer","email":"fuzzer@example.com","password":"password1"}`)
	require.Equal(tb, http.StatusCreated, rec.Code, rec.Body.String())
	rec = ft.do(tb, "POST", "/users/login", `{"login_id":"fuzzer","password":"password1"}`)
	require.Equal(tb, http.StatusOK, rec.Code, rec.Body.String())
	ft.token = rec.Header().Get("Token")

	var team model.Team
	rec = ft.do(tb, "POST", "/teams", `{"name":"fuzzteam","display_name":"Fuzz","type":"O"}`)
	require.Equal(tb, http.StatusCreated, rec.Code, rec.Body.String())
	require.NoError(tb, json.Unmarshal(rec.Body.Bytes(), &team))
	var ch model.Channel
	rec = ft.do(tb, "POST", "/channels", `{"team_id":"`+team.ID+`","name":"fuzz","display_name":"Fuzz","type":"O"}`)
	require.Equal(tb, http.StatusCreated, rec.Code, rec.Body.String())
	require.NoError(tb, json.Unmarshal(rec.Body.Bytes(), &ch))
	ft.channelID = ch.ID
	return ft
}

func (ft *fuzzTarget) do(tb testing.TB, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/api/v4"+path, strings.NewReader(body))
	if ft.token != "" {
		req.Header.Set("Authorization", "Bearer "+ft.token)
	}
	rec := httptest.NewRecorder()
	ft.h.ServeHTTP(rec, req)
	return rec
}

// requireWellFormed checks a reply: a success is JSON; anything else is
// an AppError whose status matches the response's. With clientErrorsOnly,
// a 5xx fails too: bad input must be refused with a 4xx.
func requireWellFormed(t *testing.T, rec *httptest.ResponseRecorder, clientErrorsOnly bool) {
	t.Helper()
	body := rec.Body.Bytes()
	if rec.Code >= 200 && rec.Code < 300 {
		require.True(t, json.Valid(body), "%d: %s", rec.Code, body)
		return
	}
	var ae model.AppError
	require.NoError(t, json.Unmarshal(body, &ae), "%d: %s", rec.Code, body)
	require.NotEmpty(t, ae.ID, "%s", body)
	require.NotEmpty(t, ae.Message, "%s", body)
	require.NotEmpty(t, ae.RequestID, "%s", body)
	require.Equal(t, rec.Code, ae.StatusCode, "%s", body)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	if clientErrorsOnly {
		require.Less(t, rec.Code, 500, "bad input is a 4xx: %s", body)
	}
}

func FuzzDecodePost(f *testing.F) {
	ft := newFuzzTarget(f)
	ch := ft.channelID
	for _, s := range []string{
		`{"channel_id":"` + ch + `","message":"hello @fuzzer #tag"}`,
		`{"channel_id":"` + ch + `","message":"x","root_id":"` + model.NewID() + `"}`,
		`{"channel_id":"` + ch + `","message":"x","props":{"a":[1,{"b":null}]},"file_ids":["` + model.NewID() + `"]}`,
		`{"channel_id":"` + ch + `","message":"x","pending_post_id":"p:1","create_at":-5,"type":"custom_x"}`,
		`{"channel_id":"` + ch + `","message":"` + strings.Repeat("é", 20000) + `"}`,
		`{"channel_id":5}`,
		`{"channel_id":"` + ch + `","message":"\u0000"}`,
		`[]`, `null`, `{`, ``, `"x"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		requireWellFormed(t, ft.do(t, "POST", "/posts", body), true)
	})
}

func FuzzDecodeUser(f *testing.F) {
	ft := newFuzzTarget(f)
	ft.token = "" // sign-up is anonymous
	for _, s := range []string{
		`{"username":"someone","email":"someone@example.com","password":"password1"}`,
		`{"username":"x","email":"bad","password":""}`,
		`{"username":"okname","email":"ok@example.com","password":"password1","props":{"a":"b"},"notify_props":{"email":"false"}}`,
		`{"username":"okname2","email":"ok2@example.com","password":"password1","nickname":"\u0000"}`,
		`{"username":5}`, `[]`, `null`, `{`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		requireWellFormed(t, ft.do(t, "POST", "/users", body), true)
	})
}
