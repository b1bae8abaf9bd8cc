package compat

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/miniotest"
)

// s3Bucket is the bucket the amazons3 server is configured with; it does
// not exist beforehand, so the server must create it.
const s3Bucket = "garrison"

// startExtraServer starts a second garrison, separate from the suite's,
// with its own database in the suite's cluster and env added to the base
// settings. It is stopped (gracefully, or the test fails) when t ends. It
// returns the server's URL.
func startExtraServer(t *testing.T, name string, env []string) string {
	t.Helper()
	ctx := t.Context()
	db := dbName + "_" + name
	require.NoError(t, srv.pg.CreateDatabase(ctx, db, ""))
	port, err := freePort()
	require.NoError(t, err)
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	h := &harness{dir: t.TempDir()}
	require.NoError(t, h.startServer(srv.bin, append([]string{
		"MM_SQLSETTINGS_DATASOURCE=" + srv.pg.DSN(db),
		"MM_SERVICESETTINGS_LISTENADDRESS=" + strings.TrimPrefix(url, "http://"),
		"MM_SERVICESETTINGS_SITEURL=" + url,
		"MM_TEAMSETTINGS_ENABLEOPENSERVER=true",
		"MM_LOGSETTINGS_CONSOLELEVEL=WARN",
	}, env...)))
	t.Cleanup(func() {
		// t.Context is done by now.
		if err := h.stop(context.Background()); err != nil {
			t.Errorf("%s server: %v", name, err)
		}
		if t.Failed() {
			h.printLog()
		}
	})
	if err := h.waitReady(ctx, url); err != nil {
		h.printLog()
		t.Fatal(err)
	}
	return url
}

// TestS3FileStore runs the real binary with FileSettings.DriverName
// amazons3 against a real MinIO: files uploaded through the driver come
// back byte-equal, images get a thumbnail, and the objects are in the
// bucket. Skipped without the MinIO binary (`make minio`), except under
// CI=true where that is a failure.
func TestS3FileStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mio := miniotest.Start(t)
	url := startExtraServer(t, "s3", []string{
		"MM_FILESETTINGS_DRIVERNAME=amazons3",
		"MM_FILESETTINGS_AMAZONS3ENDPOINT=" + mio.Endpoint,
		"MM_FILESETTINGS_AMAZONS3ACCESSKEYID=" + mio.AccessKey,
		"MM_FILESETTINGS_AMAZONS3SECRETACCESSKEY=" + mio.SecretKey,
		"MM_FILESETTINGS_AMAZONS3BUCKET=" + s3Bucket,
		"MM_FILESETTINGS_AMAZONS3SSL=false",
	})

	// The first user on the new server is its admin.
	name := uniqueName("s3a")
	password := "Pw-" + model.NewId()
	_, _, err := model.NewAPIv4Client(url).CreateUser(ctx, &model.User{Username: name, Email: name + "@example.com", Password: password})
	require.NoError(t, err)
	c := model.NewAPIv4Client(url)
	_, _, err = c.Login(ctx, name, password)
	require.NoError(t, err)

	status, _, err := c.GetPingWithFullServerStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, "OK", status["status"])
	require.Equal(t, "OK", status["filestore_status"])
	require.Equal(t, "OK", status["database_status"])

	team, _, err := c.CreateTeam(ctx, &model.Team{Name: uniqueName("t"), DisplayName: "S3", Type: model.TeamOpen})
	require.NoError(t, err)
	ch, _, err := c.CreateChannel(ctx, &model.Channel{TeamId: team.Id, Name: uniqueName("c"), DisplayName: "S3", Type: model.ChannelTypeOpen})
	require.NoError(t, err)

	img := compatPNG(t, 640, 480)
	text := bytes.Repeat([]byte("stored in S3\n"), 1000)
	uploads := []struct {
		name string
		data []byte
	}{
		{"photo.png", img},
		{"notes.txt", text},
	}
	infos := make(map[string]*model.FileInfo)
	for _, u := range uploads {
		up, resp, err := c.UploadFile(ctx, u.data, ch.Id, u.name)
		require.NoError(t, err, u.name)
		require.Equal(t, http.StatusCreated, resp.StatusCode, u.name)
		require.Len(t, up.FileInfos, 1, u.name)
		infos[u.name] = up.FileInfos[0]

		got, _, err := c.GetFile(ctx, up.FileInfos[0].Id)
		require.NoError(t, err, u.name)
		require.True(t, bytes.Equal(u.data, got), "%s: downloaded %d bytes differ from the %d uploaded", u.name, len(got), len(u.data))
	}
	photo := infos["photo.png"]
	require.True(t, photo.HasPreviewImage)
	thumb, _, err := c.GetFileThumbnail(ctx, photo.Id)
	require.NoError(t, err)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(thumb))
	require.NoError(t, err)
	require.LessOrEqual(t, cfg.Width, 120)
	require.LessOrEqual(t, cfg.Height, 100)
	_, resp, err := c.GetFileThumbnail(ctx, infos["notes.txt"].Id)
	requireAppError(t, resp, err, http.StatusBadRequest, "api.file.get_file_thumbnail.no_thumbnail.app_error")

	// The objects are in the bucket, under keys naming the file ids.
	mc, err := minio.New(mio.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(mio.AccessKey, mio.SecretKey, "")})
	require.NoError(t, err)
	sizes := make(map[string]int64)
	for obj := range mc.ListObjects(ctx, s3Bucket, minio.ListObjectsOptions{Recursive: true}) {
		require.NoError(t, obj.Err)
		sizes[obj.Key] = obj.Size
	}
	find := func(fileID, base string) (string, int64) {
		t.Helper()
		for k, n := range sizes {
			if strings.Contains(k, "/"+fileID+"/") && filepath.Base(k) == base {
				return k, n
			}
		}
		require.Failf(t, "object missing", "no %s/…/%s in bucket %s; have %v", fileID, base, s3Bucket, keys(sizes))
		return "", 0
	}
	for _, u := range uploads {
		_, n := find(infos[u.name].Id, u.name)
		require.Equal(t, int64(len(u.data)), n, u.name)
	}
	_, n := find(photo.Id, "photo_thumb.jpg")
	require.Equal(t, int64(len(thumb)), n)
	find(photo.Id, "photo_preview.jpg")
	// Two originals, the photo's thumbnail and preview, and nothing else
	// (no health-check probe left behind).
	require.Len(t, sizes, 4, "objects: %v", keys(sizes))
}

func keys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, fmt.Sprintf("%s (%d bytes)", k, m[k]))
	}
	return out
}
