package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBoundedLimitsBodyAndTime(t *testing.T) {
	t.Parallel()
	a := &API{o: Options{MaxPayload: 10, RequestTimeout: time.Minute}}
	var deadline time.Time
	var readErr error
	h := a.bounded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline, _ = r.Context().Deadline()
		_, readErr = io.ReadAll(r.Body)
	}))
	before := time.Now()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/api/v4/posts", strings.NewReader(strings.Repeat("x", 11))))
	var mbe *http.MaxBytesError
	require.True(t, errors.As(readErr, &mbe), "an 11-byte body is over the 10-byte limit: %v", readErr)
	require.False(t, deadline.IsZero(), "the request has a deadline")
	require.False(t, deadline.Before(before.Add(time.Minute)), "the deadline is the configured timeout away")

	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/api/v4/posts", strings.NewReader("0123456789")))
	require.NoError(t, readErr, "a body at the limit passes")
}
