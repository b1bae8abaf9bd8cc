package compat

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	_ "image/jpeg" // thumbnails and previews are JPEG
	"image/png"
	"net/http"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

func compatPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func TestFiles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	img := compatPNG(t, 640, 480)

	up, resp, err := f.alice.UploadFile(ctx, img, f.ch.Id, "photo.png")
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Len(t, up.FileInfos, 1)
	info := up.FileInfos[0]
	require.Equal(t, "photo.png", info.Name)
	require.Equal(t, "png", info.Extension)
	require.Equal(t, "image/png", info.MimeType)
	require.Equal(t, int64(len(img)), info.Size)
	require.Equal(t, 640, info.Width)
	require.Equal(t, 480, info.Height)
	require.True(t, info.HasPreviewImage)
	require.NotNil(t, info.MiniPreview)
	require.Equal(t, f.alice.User.Id, info.CreatorId)
	require.Empty(t, info.Path, "storage paths are never sent")

	text := []byte("plain words\n")
	up2, _, err := f.alice.UploadFileAsRequestBody(ctx, text, f.ch.Id, "notes.txt")
	require.NoError(t, err)
	require.Len(t, up2.FileInfos, 1)
	txt := up2.FileInfos[0]

	data, _, err := f.alice.GetFile(ctx, info.Id)
	require.NoError(t, err)
	require.Equal(t, img, data)
	data, _, err = f.alice.GetFile(ctx, txt.Id)
	require.NoError(t, err)
	require.Equal(t, text, data)

	got, _, err := f.alice.GetFileInfo(ctx, info.Id)
	require.NoError(t, err)
	require.Equal(t, info.Id, got.Id)
	require.Equal(t, info.Size, got.Size)

	thumb, _, err := f.alice.GetFileThumbnail(ctx, info.Id)
	require.NoError(t, err)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(thumb))
	require.NoError(t, err)
	require.LessOrEqual(t, cfg.Width, 120)
	require.LessOrEqual(t, cfg.Height, 100)
	preview, _, err := f.alice.GetFilePreview(ctx, info.Id)
	require.NoError(t, err)
	cfg, _, err = image.DecodeConfig(bytes.NewReader(preview))
	require.NoError(t, err)
	require.Equal(t, 640, cfg.Width)
	_, resp, err = f.alice.GetFileThumbnail(ctx, txt.Id)
	requireAppError(t, resp, err, http.StatusBadRequest, "api.file.get_file_thumbnail.no_thumbnail.app_error")

	// Until it is posted, a file is its uploader's alone.
	_, resp, err = f.bob.GetFile(ctx, info.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")

	post, _, err := f.alice.CreatePost(ctx, &model.Post{ChannelId: f.ch.Id, Message: "look", FileIds: model.StringArray{info.Id, txt.Id}})
	require.NoError(t, err)
	require.Equal(t, model.StringArray{info.Id, txt.Id}, post.FileIds)

	p, _, err := f.bob.GetPost(ctx, post.Id, "")
	require.NoError(t, err)
	require.Equal(t, model.StringArray{info.Id, txt.Id}, p.FileIds)
	require.NotNil(t, p.Metadata)
	require.Len(t, p.Metadata.Files, 2)
	ids := []string{p.Metadata.Files[0].Id, p.Metadata.Files[1].Id}
	require.ElementsMatch(t, []string{info.Id, txt.Id}, ids)
	require.Equal(t, post.Id, p.Metadata.Files[0].PostId)

	infos, _, err := f.bob.GetFileInfosForPost(ctx, post.Id, "")
	require.NoError(t, err)
	require.Len(t, infos, 2)

	data, _, err = f.bob.GetFile(ctx, info.Id)
	require.NoError(t, err)
	require.Equal(t, img, data)

	outsider := newUser(t)
	_, resp, err = outsider.GetFile(ctx, info.Id)
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	_, resp, err = outsider.UploadFile(ctx, img, f.ch.Id, "x.png")
	requireAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
}

func TestFileUploadRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newPostFixture(t)
	tests := []struct {
		name   string
		data   []byte
		file   string
		status int
		id     string
	}{
		{"wrong extension", []byte("<html><body>hi</body></html>"), "fake.png", http.StatusBadRequest,
			"api.file.upload_file.mismatched_type.app_error"},
		{"decompression bomb", pngHeader(100000, 100000), "bomb.png", http.StatusBadRequest,
			"api.file.upload_file.large_image_detailed.app_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := f.alice.UploadFile(ctx, tc.data, f.ch.Id, tc.file)
			requireAppError(t, resp, err, tc.status, tc.id)
			_, resp, err = f.alice.UploadFileAsRequestBody(ctx, tc.data, f.ch.Id, tc.file)
			requireAppError(t, resp, err, tc.status, tc.id)
		})
	}
}

// pngHeader is a PNG signature and IHDR chunk (with a valid checksum)
// claiming w×h pixels, and nothing else.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32([]byte("IHDR"), w), h)
	chunk = append(chunk, 8, 2, 0, 0, 0) // 8-bit RGB
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(chunk)-4)))
	b.Write(chunk)
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(chunk)))
	return b.Bytes()
}
