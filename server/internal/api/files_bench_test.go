package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// benchFileSize is the file size of BenchmarkUploadDownload10MB (issue 3:
// upload and download throughput of a 10 MB file).
const benchFileSize = 10 << 20

// BenchmarkUploadDownload10MB measures POST /api/v4/files (multipart, one
// 10 MB file) and GET /api/v4/files/{id} through the real HTTP API on the
// local file store. Run with `make bench-files`; the MB/s column is the
// throughput of the file bytes.
func BenchmarkUploadDownload10MB(b *testing.B) {
	dir := b.TempDir()
	ts := newTestServer(b, func(s *app.Settings, _ *api.Options) {
		s.EnableFileAttachments, s.FileDirectory, s.MaxFileSize = true, dir, 4*benchFileSize
	})
	admin := ts.newUser()
	team := admin.createTeam(true)
	ch := admin.createChannel(team.ID, model.ChannelOpen)

	data := make([]byte, benchFileSize)
	_, _ = rand.Read(data) // incompressible and not an image: no thumbnail work
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(b, mw.WriteField("channel_id", ch.ID))
	fw, err := mw.CreateFormFile("files", "10mb.bin")
	require.NoError(b, err)
	_, err = fw.Write(data)
	require.NoError(b, err)
	require.NoError(b, mw.Close())
	body, ctype := buf.Bytes(), mw.FormDataContentType()

	upload := func(b *testing.B) string {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, ts.URL+"/api/v4/files", bytes.NewReader(body))
		require.NoError(b, err)
		req.Header.Set("Authorization", "Bearer "+admin.Token)
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		require.NoError(b, err)
		require.Equal(b, http.StatusCreated, resp.StatusCode, string(out))
		var up model.FileUploadResponse
		require.NoError(b, json.Unmarshal(out, &up))
		require.Len(b, up.FileInfos, 1)
		require.Equal(b, int64(benchFileSize), up.FileInfos[0].Size)
		return up.FileInfos[0].ID
	}

	b.Run("upload", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for b.Loop() {
			upload(b)
		}
	})
	id := upload(b)
	b.Run("download", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for b.Loop() {
			req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, ts.URL+"/api/v4/files/"+id, nil)
			require.NoError(b, err)
			req.Header.Set("Authorization", "Bearer "+admin.Token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(b, err)
			n, err := io.Copy(io.Discard, resp.Body)
			require.NoError(b, resp.Body.Close())
			require.NoError(b, err)
			require.Equal(b, http.StatusOK, resp.StatusCode)
			require.Equal(b, int64(benchFileSize), n)
		}
	})
}
