package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLocalDoerRoutesOwnOrigin(t *testing.T) {
	t.Parallel()
	var local []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		local = append(local, r.Method+" "+r.URL.Path+" "+string(body)+" "+r.Header.Get("TTL"))
		w.Header().Set("Location", "/m/abc")
		w.WriteHeader(http.StatusCreated)
	})
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(remote.Close)
	pub, _ := url.Parse("https://Push.Site.Example")
	d := newLocalDoer(pub, h, newPushClient(5*time.Second, nil))

	for _, target := range []string{"https://push.site.example/push/cap1", "https://push.site.example:443/push/cap1"} {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader("ciphertext"))
		req.Header.Set("TTL", "60")
		resp, err := d.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, "/m/abc", resp.Header.Get("Location"))
		require.NoError(t, resp.Body.Close())
	}
	require.Equal(t, []string{"POST /push/cap1 ciphertext 60", "POST /push/cap1 ciphertext 60"}, local)

	// Another origin (here an http one on the same host name would differ
	// too) goes over the network.
	req, _ := http.NewRequest(http.MethodPost, remote.URL+"/push/x", strings.NewReader("c"))
	resp, err := d.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusTeapot, resp.StatusCode)
	require.NoError(t, resp.Body.Close())
	require.Len(t, local, 2)
}

func TestPushClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	resp, err := newPushClient(5*time.Second, nil).Post(srv.URL+"/push/x", "application/octet-stream", strings.NewReader("c"))
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.NoError(t, resp.Body.Close())
}
