package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/push"
	"github.com/garrison-chat/garrison/server/internal/push/pushtest"
)

// fakeProxy serves the proxy's /api/v1 routes from a Fake, shaped as
// garrison-pushproxy answers them, so the HTTP sender passes the suite
// without the binary. secret is required as basic auth password or
// bearer token.
func fakeProxy(t *testing.T, f *push.Fake, secret string) *httptest.Server {
	t.Helper()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, status int, msg string) {
		writeJSON(w, status, push.Response{Status: push.StatusFail, Error: msg})
	}
	authorized := func(r *http.Request) bool {
		if _, pw, ok := r.BasicAuth(); ok {
			return pw == secret
		}
		return r.Header.Get("Authorization") == "Bearer "+secret
	}
	// rejected renders a Fake's refusal as the proxy does: 4xx + FAIL.
	rejected := func(w http.ResponseWriter, err error) {
		var pe *push.Error
		if errors.As(err, &pe) && pe.Kind == push.ErrRejected {
			fail(w, http.StatusBadRequest, pe.Msg)
			return
		}
		fail(w, http.StatusInternalServerError, "internal error")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/send_push", func(w http.ResponseWriter, r *http.Request) {
		var n push.Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			fail(w, http.StatusOK, "bad request")
			return
		}
		resp, err := f.Send(r.Context(), &n)
		if err != nil {
			rejected(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("POST /api/v1/ack", func(w http.ResponseWriter, r *http.Request) {
		var a push.Ack
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			fail(w, http.StatusBadRequest, "bad request")
			return
		}
		if err := f.Ack(r.Context(), &a); err != nil {
			rejected(w, err)
			return
		}
		writeJSON(w, http.StatusOK, push.Response{Status: push.StatusOK})
	})
	mux.HandleFunc("GET /api/v1/webpush/vapid_public_key", func(w http.ResponseWriter, r *http.Request) {
		key, _ := f.VAPIDPublicKey(r.Context())
		writeJSON(w, http.StatusOK, map[string]string{"vapid_public_key": key})
	})
	mux.HandleFunc("POST /api/v1/webpush/registrations", func(w http.ResponseWriter, r *http.Request) {
		var s push.Subscription
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			fail(w, http.StatusBadRequest, "malformed subscription")
			return
		}
		id, err := f.Register(r.Context(), s)
		if err != nil {
			rejected(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	})
	mux.HandleFunc("DELETE /api/v1/webpush/registrations/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !f.Registered(id) {
			fail(w, http.StatusNotFound, "unknown registration")
			return
		}
		_ = f.Unregister(r.Context(), id)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v1/") && !authorized(r) {
			fail(w, http.StatusUnauthorized, "bad sender secret")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// proxyURL puts secret into base's user information.
func proxyURL(base, secret string) string {
	return strings.Replace(base, "://", "://garrison:"+secret+"@", 1)
}

func newHTTP(t *testing.T, url string) *push.HTTP {
	t.Helper()
	h, err := push.NewHTTP(push.HTTPOptions{URL: url, Timeout: 10 * time.Second})
	require.NoError(t, err)
	return h
}

func TestHTTPConformanceWithFakeProxy(t *testing.T) {
	t.Parallel()
	pushtest.Run(t, func(t *testing.T) pushtest.Env {
		const secret = "proxy-secret"
		srv := fakeProxy(t, push.NewFake(push.FakeOptions{AllowedHosts: []string{"push.site.example"}}), secret)
		return pushtest.Env{
			Sender:          newHTTP(t, proxyURL(srv.URL, secret)),
			WithSecret:      func(s string) push.Sender { return newHTTP(t, proxyURL(srv.URL, s)) },
			Endpoint:        endpoints("https://push.site.example"),
			ForeignEndpoint: "https://updates.push.services.mozilla.com/wpush/v2/abc",
		}
	})
}

func TestNewHTTPRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"", "push.internal:8066", "ftp://push.internal", "https://", "https://push.internal/?q=1",
		"https://SECRETUSER@push.internal", "%zz://x",
	} {
		_, err := push.NewHTTP(push.HTTPOptions{URL: u})
		require.Error(t, err, u)
		require.NotContains(t, err.Error(), "SECRETUSER", "the user name may be a secret written in the wrong place")
	}
	h, err := push.NewHTTP(push.HTTPOptions{URL: "https://garrison:hunter2@push.internal:8066/"})
	require.NoError(t, err)
	require.NotContains(t, h.URL(), "hunter2")
	require.Contains(t, h.URL(), "push.internal:8066")
}

// scripted is a proxy answering every request with status, header and
// body; seen returns the last request it received.
func scripted(t *testing.T, status int, header map[string]string, body string) (srv *httptest.Server, seen func() *http.Request) {
	t.Helper()
	var (
		mu   sync.Mutex
		last *http.Request
	)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Clone(context.Background())
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() *http.Request {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

func TestHTTPMapsAnswers(t *testing.T) {
	t.Parallel()
	ok := `{"status":"OK"}`
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		body     string
		want     push.Response
		kind     error
		retry    time.Duration
		msg      string
		httpCode int
	}{
		{name: "ok", status: 200, body: ok, want: push.Response{Status: push.StatusOK}},
		{name: "remove", status: 200, body: `{"status":"REMOVE"}`, want: push.Response{Status: push.StatusRemove}},
		{name: "fail", status: 200, body: `{"status":"FAIL","error":"boom"}`, want: push.Response{Status: push.StatusFail, Error: "boom"}},
		{name: "fail with a 400 is still an answer", status: 400, body: `{"status":"FAIL","error":"missing server Id"}`,
			want: push.Response{Status: push.StatusFail, Error: "missing server Id"}},
		{name: "throttled", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"status":"FAIL","error":"slow down"}`,
			kind: push.ErrThrottled, retry: 7 * time.Second, msg: "slow down", httpCode: 429},
		{name: "throttled by plain text", status: 429, body: "Too many requests", kind: push.ErrThrottled, httpCode: 429},
		{name: "bad secret", status: 401, body: `{"status":"FAIL","error":"unauthorized"}`, kind: push.ErrUnauthorized, msg: "unauthorized", httpCode: 401},
		{name: "server error", status: 502, body: "<html>bad gateway</html>", kind: push.ErrUnavailable, httpCode: 502},
		{name: "not JSON", status: 200, body: "<html>hello</html>", kind: push.ErrUnavailable, httpCode: 200},
		{name: "unknown status", status: 200, body: `{"status":"MAYBE"}`, kind: push.ErrUnavailable, httpCode: 200},
		{name: "too large", status: 200, body: `{"status":"OK","error":"` + strings.Repeat("x", 70<<10) + `"}`, kind: push.ErrUnavailable, httpCode: 200},
		{name: "redirect not followed", status: 307, header: map[string]string{"Location": "http://elsewhere.invalid/"}, body: "",
			kind: push.ErrRejected, httpCode: 307},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, seen := scripted(t, tt.status, tt.header, tt.body)
			h := newHTTP(t, proxyURL(srv.URL, "hunter2"))
			r, err := h.Send(context.Background(), &push.Notification{Platform: "webpush", DeviceID: "d", ServerID: "s"})
			req := seen()
			require.Equal(t, "/api/v1/send_push", req.URL.Path)
			user, pw, hasAuth := req.BasicAuth()
			require.True(t, hasAuth, "the secret goes as basic auth")
			require.Equal(t, "garrison", user)
			require.Equal(t, "hunter2", pw)
			if tt.kind == nil {
				require.NoError(t, err)
				require.Equal(t, tt.want, r)
				return
			}
			require.ErrorIs(t, err, tt.kind)
			var pe *push.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.httpCode, pe.Status)
			require.Equal(t, tt.msg, pe.Msg)
			require.Equal(t, "send_push", pe.Op)
			if tt.retry > 0 {
				d, ok := push.RetryAfter(err)
				require.True(t, ok)
				require.Equal(t, tt.retry, d)
			}
			require.NotContains(t, err.Error(), "hunter2", "the secret is redacted")
			require.Contains(t, err.Error(), strings.TrimPrefix(srv.URL, "http://"), "the error names the proxy")
		})
	}
}

func TestHTTPUnreachableAndTimeout(t *testing.T) {
	t.Parallel()
	// A closed server: connection refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := newHTTP(t, proxyURL(url, "hunter2"))
	_, err := h.Send(context.Background(), &push.Notification{})
	require.ErrorIs(t, err, push.ErrUnavailable)
	require.NotContains(t, err.Error(), "hunter2")

	// A proxy that never answers: the per-request timeout ends the call.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	h, err = push.NewHTTP(push.HTTPOptions{URL: slow.URL, Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = h.VAPIDPublicKey(context.Background())
	require.ErrorIs(t, err, push.ErrUnavailable)
}

func TestHTTPOtherOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("unregister of a gone registration", func(t *testing.T) {
		t.Parallel()
		for _, code := range []int{404, 410, 204, 200} {
			srv, seen := scripted(t, code, nil, `{"status":"FAIL","error":"unknown registration"}`)
			require.NoError(t, newHTTP(t, srv.URL).Unregister(ctx, "reg-1"), code)
			require.Equal(t, http.MethodDelete, seen().Method)
			require.Equal(t, "/api/v1/webpush/registrations/reg-1", seen().URL.Path)
		}
		srv, _ := scripted(t, 500, nil, "")
		require.ErrorIs(t, newHTTP(t, srv.URL).Unregister(ctx, "reg-1"), push.ErrUnavailable)
		require.ErrorIs(t, newHTTP(t, srv.URL).Unregister(ctx, "../../etc"), push.ErrRejected, "ids are checked before use")
	})
	t.Run("register returns a usable id", func(t *testing.T) {
		t.Parallel()
		sub := pushtest.Subscription(t, "https://push.site.example/push/1")
		srv, seen := scripted(t, 201, nil, `{"id":"abc_DEF-123"}`)
		id, err := newHTTP(t, srv.URL).Register(ctx, sub)
		require.NoError(t, err)
		require.Equal(t, "abc_DEF-123", id)
		require.Equal(t, "application/json", seen().Header.Get("Content-Type"))
		for _, body := range []string{`{"id":""}`, `{"id":"a/b"}`, `{}`, `[]`} {
			srv, _ := scripted(t, 200, nil, body)
			_, err := newHTTP(t, srv.URL).Register(ctx, sub)
			require.ErrorIs(t, err, push.ErrUnavailable, body)
		}
		srv, _ = scripted(t, 403, nil, `{"status":"FAIL","error":"push host not allowed"}`)
		_, err = newHTTP(t, srv.URL).Register(ctx, sub)
		require.ErrorIs(t, err, push.ErrUnauthorized, "403 is the secret's refusal")
		srv, _ = scripted(t, 422, nil, `{"status":"FAIL","error":"push host not allowed"}`)
		_, err = newHTTP(t, srv.URL).Register(ctx, sub)
		require.ErrorIs(t, err, push.ErrRejected)
		require.Contains(t, err.Error(), "push host not allowed")
	})
	t.Run("vapid key is checked", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{`{"vapid_public_key":""}`, `{"vapid_public_key":"AAAA"}`, `nope`} {
			srv, _ := scripted(t, 200, nil, body)
			_, err := newHTTP(t, srv.URL).VAPIDPublicKey(ctx)
			require.ErrorIs(t, err, push.ErrUnavailable, body)
		}
	})
	t.Run("bearer-less proxy gets no auth", func(t *testing.T) {
		t.Parallel()
		srv, seen := scripted(t, 200, nil, `{"status":"OK"}`)
		require.NoError(t, newHTTP(t, srv.URL).Ack(ctx, &push.Ack{ID: "a", Platform: "android", Type: "message"}))
		require.Empty(t, seen().Header.Get("Authorization"))
		require.Equal(t, "/api/v1/ack", seen().URL.Path)
	})
}
