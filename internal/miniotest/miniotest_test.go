package miniotest_test

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/miniotest"
)

func TestStartStop(t *testing.T) {
	t.Parallel()
	bin, err := miniotest.Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s, err := miniotest.StartServer(t.Context(), bin)
	require.NoError(t, err)
	require.NotEmpty(t, s.AccessKey)
	require.NotEmpty(t, s.SecretKey)

	resp, err := http.Get("http://" + s.Endpoint + "/minio/health/live")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, s.Stop(context.Background()))
	_, err = http.Get("http://" + s.Endpoint + "/minio/health/live")
	require.Error(t, err, "the server is gone")
}

// Not parallel: t.Setenv.
func TestBinaryMissing(t *testing.T) {
	t.Setenv("GARRISON_MINIO", "/nonexistent/minio")
	_, err := miniotest.Binary()
	require.ErrorIs(t, err, miniotest.ErrNotFound)
	require.ErrorContains(t, err, "make minio")
}
