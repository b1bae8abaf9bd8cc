package api_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/model"
)

// fileEnv is a postEnv with uploads enabled and a file store the test
// can inspect.
type fileEnv struct {
	*postEnv
	files blob.Store
}

func newFileEnv(t *testing.T, n int, mutate ...func(*app.Settings, *api.Options)) *fileEnv {
	t.Helper()
	dir := t.TempDir()
	set := func(s *app.Settings, o *api.Options) {
		s.EnableFileAttachments, s.FileDirectory, s.MaxFileSize = true, dir, 1<<20
	}
	e := &fileEnv{postEnv: newPostEnv(t, n, append([]func(*app.Settings, *api.Options){set}, mutate...)...)}
	st, err := blob.NewLocal(dir)
	require.NoError(t, err)
	e.files = st
	return e
}

// objects lists every stored key.
func (e *fileEnv) objects() []string {
	e.ts.t.Helper()
	infos, err := e.files.List(context.Background(), "")
	require.NoError(e.ts.t, err)
	var keys []string
	for _, i := range infos {
		keys = append(keys, i.Key)
	}
	return keys
}

// fileRows counts file_infos rows.
func (e *fileEnv) fileRows() int {
	e.ts.t.Helper()
	var n int
	require.NoError(e.ts.t, e.ts.Store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM file_infos`).Scan(&n))
	return n
}

func testPNG(t *testing.T, w, h int, alpha bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if alpha && x < w/2 {
				a = 0
			}
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 100, a})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// bombPNG is a PNG header claiming w×h pixels, with a valid IHDR checksum
// and no pixel data: a decompression bomb as far as DecodeConfig can tell.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

type part struct {
	field, filename string
	data            []byte
}

// multipartBody encodes parts in order.
func multipartBody(t *testing.T, parts ...part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		var pw io.Writer
		var err error
		if p.filename != "" {
			pw, err = w.CreateFormFile(p.field, p.filename)
		} else {
			pw, err = w.CreateFormField(p.field)
		}
		require.NoError(t, err)
		_, err = pw.Write(p.data)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return w.FormDataContentType(), buf.Bytes()
}

// upload posts a multipart body and returns the response and its body.
func (c *client) upload(ctype string, body []byte) (*http.Response, []byte) {
	c.ts.t.Helper()
	return c.do("POST", "/files", body, "Content-Type", ctype)
}

func (c *client) mustUpload(t *testing.T, channelID, name string, data []byte) *model.FileInfo {
	t.Helper()
	ctype, body := multipartBody(t, part{"channel_id", "", []byte(channelID)}, part{"files", name, data})
	resp, b := c.upload(ctype, body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	var out model.FileUploadResponse
	require.NoError(t, json.Unmarshal(b, &out))
	require.Len(t, out.FileInfos, 1)
	return out.FileInfos[0]
}

func requireAppErrorBody(t *testing.T, resp *http.Response, body []byte, status int, id string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, string(body))
	var ae model.AppError
	require.NoError(t, json.Unmarshal(body, &ae), string(body))
	require.Equal(t, id, ae.ID, string(body))
}

func TestUploadForms(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 1)
	u := e.users[0]
	img := testPNG(t, 300, 200, false)
	txt := []byte("hello, world\n")
	tests := []struct {
		name    string
		parts   []part
		files   []string
		clients []string
	}{
		{"channel first, streamed", []part{{"channel_id", "", []byte(e.ch.ID)}, {"files", "a.txt", txt}}, []string{"a.txt"}, []string{}},
		{"file first, buffered", []part{{"files", "b.png", img}, {"channel_id", "", []byte(e.ch.ID)}}, []string{"b.png"}, []string{}},
		{"client ids, two files", []part{{"channel_id", "", []byte(e.ch.ID)}, {"client_ids", "", []byte("c1")},
			{"client_ids", "", []byte("c2")}, {"files", "c.txt", txt}, {"files", "d.png", img}}, []string{"c.txt", "d.png"}, []string{"c1", "c2"}},
		{"buffered with client ids", []part{{"client_ids", "", []byte("x")}, {"files", "e.txt", txt}, {"channel_id", "", []byte(e.ch.ID)}},
			[]string{"e.txt"}, []string{"x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctype, body := multipartBody(t, tc.parts...)
			resp, b := u.upload(ctype, body)
			require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
			var out model.FileUploadResponse
			require.NoError(t, json.Unmarshal(b, &out))
			require.Equal(t, tc.clients, out.ClientIDs)
			require.Len(t, out.FileInfos, len(tc.files))
			for i, f := range out.FileInfos {
				require.Equal(t, tc.files[i], f.Name)
				require.Equal(t, u.User.ID, f.CreatorID)
				require.Equal(t, e.ch.ID, f.ChannelID)
				require.Empty(t, f.PostID)
			}
			require.NotContains(t, string(b), `"path"`)
		})
	}

	t.Run("simple body", func(t *testing.T) {
		q := url.Values{"channel_id": {e.ch.ID}, "filename": {"raw.png"}, "client_id": {"k"}}
		var out model.FileUploadResponse
		resp, b := u.do("POST", "/files?"+q.Encode(), img, "Content-Type", "image/png")
		require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
		require.NoError(t, json.Unmarshal(b, &out))
		require.Equal(t, []string{"k"}, out.ClientIDs)
		f := out.FileInfos[0]
		require.Equal(t, "png", f.Extension)
		require.Equal(t, "image/png", f.MimeType)
		require.Equal(t, int64(len(img)), f.Size)
		require.Equal(t, 300, f.Width)
		require.Equal(t, 200, f.Height)
		require.True(t, f.HasPreviewImage)
		require.NotNil(t, f.MiniPreview)
		// The storage layout is Mattermost's.
		keys := e.objects()
		want := "/teams/noteam/channels/" + e.ch.ID + "/users/" + u.User.ID + "/" + f.ID + "/"
		var found []string
		for _, k := range keys {
			if strings.Contains(k, want) {
				found = append(found, k[strings.LastIndex(k, "/")+1:])
			}
		}
		require.ElementsMatch(t, []string{"raw.png", "raw_thumb.jpg", "raw_preview.jpg"}, found)
	})
}

func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 1, func(s *app.Settings, o *api.Options) { s.MaxImageResolution = 4000 * 4000 })
	u := e.users[0]
	outsider := e.outsider()
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	img := testPNG(t, 50, 50, false)
	mp := func(name string, data []byte) (string, []byte) {
		return multipartBody(t, part{"channel_id", "", []byte(e.ch.ID)}, part{"files", name, data})
	}
	tests := []struct {
		name   string
		c      *client
		body   func() (string, []byte)
		status int
		id     string
	}{
		{"oversize", u, func() (string, []byte) { return mp("big.txt", big) }, 413, "api.file.upload_file.too_large_detailed.app_error"},
		{"oversize image", u, func() (string, []byte) { return mp("big.png", append(append([]byte{}, img...), big...)) },
			413, "api.file.upload_file.too_large_detailed.app_error"},
		{"decompression bomb", u, func() (string, []byte) { return mp("bomb.png", bombPNG(100000, 100000)) },
			400, "api.file.upload_file.large_image_detailed.app_error"},
		{"wrong extension", u, func() (string, []byte) { return mp("evil.png", []byte("<html><script>alert(1)</script>")) },
			400, "api.file.upload_file.mismatched_type.app_error"},
		{"jpeg named png", u, func() (string, []byte) { return mp("x.jpg", img) }, 400, "api.file.upload_file.mismatched_type.app_error"},
		{"non-member", outsider, func() (string, []byte) { return mp("a.txt", []byte("hi")) }, 403, "api.context.permissions.app_error"},
		{"unknown channel", u, func() (string, []byte) {
			return multipartBody(t, part{"channel_id", "", []byte(model.NewID())}, part{"files", "a.txt", []byte("hi")})
		}, 403, "api.context.permissions.app_error"},
		{"no channel", u, func() (string, []byte) { return multipartBody(t, part{"files", "a.txt", []byte("hi")}) },
			400, "api.context.invalid_url_param.app_error"},
		{"too few client ids", u, func() (string, []byte) {
			return multipartBody(t, part{"channel_id", "", []byte(e.ch.ID)}, part{"client_ids", "", []byte("a")},
				part{"files", "a.txt", []byte("hi")}, part{"files", "b.txt", []byte("hi")})
		}, 400, "api.context.invalid_url_param.app_error"},
		{"unknown field", u, func() (string, []byte) {
			return multipartBody(t, part{"channel_id", "", []byte(e.ch.ID)}, part{"bogus", "", []byte("a")})
		}, 400, "api.context.invalid_url_param.app_error"},
		{"anonymous", e.ts.anon(), func() (string, []byte) { return mp("a.txt", []byte("hi")) }, 401, "api.context.session_expired.app_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctype, body := tc.body()
			resp, b := tc.c.upload(ctype, body)
			requireAppErrorBody(t, resp, b, tc.status, tc.id)
		})
	}
	t.Run("empty body", func(t *testing.T) {
		resp, b := u.do("POST", "/files?channel_id="+e.ch.ID+"&filename=a.txt", nil)
		requireAppErrorBody(t, resp, b, 400, "api.file.upload_file.read_request.app_error")
	})
	t.Run("simple oversize", func(t *testing.T) {
		resp, b := u.do("POST", "/files?channel_id="+e.ch.ID+"&filename=a.txt", big)
		requireAppErrorBody(t, resp, b, 413, "api.file.upload_file.too_large_detailed.app_error")
	})
	// Nothing of a refused upload remains.
	require.Empty(t, e.objects())
	require.Zero(t, e.fileRows())
}

func TestUploadDisabled(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 1, func(s *app.Settings, o *api.Options) { s.EnableFileAttachments = false })
	ctype, body := multipartBody(t, part{"channel_id", "", []byte(e.ch.ID)}, part{"files", "a.txt", []byte("hi")})
	resp, b := e.users[0].upload(ctype, body)
	requireAppErrorBody(t, resp, b, 403, "api.file.attachments.disabled.app_error")
}

// A failure after some objects were written removes them all and leaves
// no row: here a good image and its renditions, then an oversize file.
func TestUploadFailureCleansUp(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 1)
	u := e.users[0]
	for _, streamed := range []bool{true, false} {
		t.Run(fmt.Sprintf("streamed=%v", streamed), func(t *testing.T) {
			good := part{"files", "ok.png", testPNG(t, 200, 200, false)}
			bad := part{"files", "big.bin", bytes.Repeat([]byte{0}, 1<<20+10)}
			ch := part{"channel_id", "", []byte(e.ch.ID)}
			parts := []part{ch, good, bad}
			if !streamed {
				parts = []part{good, bad, ch}
			}
			ctype, body := multipartBody(t, parts...)
			resp, b := u.upload(ctype, body)
			requireAppErrorBody(t, resp, b, 413, "api.file.upload_file.too_large_detailed.app_error")
			require.Empty(t, e.objects())
			require.Zero(t, e.fileRows())
		})
	}
}

// Uploads are bounded by MaxFileSize, not MaximumPayloadSizeBytes; other
// routes keep the payload limit.
func TestUploadBodyLimits(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 1, func(s *app.Settings, o *api.Options) { o.MaxPayload = 1000 })
	u := e.users[0]
	data := bytes.Repeat([]byte("abc"), 100000)
	f := u.mustUpload(t, e.ch.ID, "large.txt", data)
	require.Equal(t, int64(len(data)), f.Size)
	resp, b := u.do("POST", "/posts", map[string]any{"channel_id": e.ch.ID, "message": strings.Repeat("x", 2000)})
	requireAppErrorBody(t, resp, b, 413, "api.context.request_body_too_large.app_error")
}

func TestDownload(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 1)
	u, admin := e.users[0], e.admin
	img := testPNG(t, 2500, 100, true)
	f := u.mustUpload(t, e.ch.ID, "wide.png", img)
	txt := u.mustUpload(t, e.ch.ID, "notes.txt", []byte("0123456789abcdef"))
	html := u.mustUpload(t, e.ch.ID, "page.html", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"))

	get := func(c *client, path string, hdr ...string) (*http.Response, []byte) {
		return c.do("GET", path, nil, hdr...)
	}

	t.Run("original inline", func(t *testing.T) {
		resp, b := get(u, "/files/"+f.ID)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, img, b)
		require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline;"))
		require.Equal(t, "private, max-age=86400", resp.Header.Get("Cache-Control"))
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
		require.Equal(t, "Frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"))
	})
	t.Run("download forces attachment", func(t *testing.T) {
		resp, _ := get(u, "/files/"+f.ID+"?download=1")
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;"))
	})
	t.Run("text is an attachment", func(t *testing.T) {
		resp, _ := get(u, "/files/"+txt.ID)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;"))
	})
	t.Run("html is served as plain text", func(t *testing.T) {
		resp, _ := get(u, "/files/"+html.ID)
		require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;"))
	})
	t.Run("range", func(t *testing.T) {
		resp, b := get(u, "/files/"+txt.ID, "Range", "bytes=2-5")
		require.Equal(t, http.StatusPartialContent, resp.StatusCode)
		require.Equal(t, "2345", string(b))
		require.Equal(t, "bytes 2-5/16", resp.Header.Get("Content-Range"))
	})
	t.Run("thumbnail and preview", func(t *testing.T) {
		resp, b := get(u, "/files/"+f.ID+"/thumbnail")
		require.Equal(t, 200, resp.StatusCode, string(b))
		require.Equal(t, "image/png", resp.Header.Get("Content-Type")) // transparent: PNG
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		require.NoError(t, err)
		require.LessOrEqual(t, cfg.Width, 120)
		require.LessOrEqual(t, cfg.Height, 100)
		resp, b = get(u, "/files/"+f.ID+"/preview")
		require.Equal(t, 200, resp.StatusCode)
		cfg, _, err = image.DecodeConfig(bytes.NewReader(b))
		require.NoError(t, err)
		require.Equal(t, 1920, cfg.Width)
	})
	t.Run("no thumbnail for text", func(t *testing.T) {
		resp, b := get(u, "/files/"+txt.ID+"/thumbnail")
		requireAppErrorBody(t, resp, b, 400, "api.file.get_file_thumbnail.no_thumbnail.app_error")
		resp, b = get(u, "/files/"+txt.ID+"/preview")
		requireAppErrorBody(t, resp, b, 400, "api.file.get_file_preview.no_preview.app_error")
	})
	t.Run("info", func(t *testing.T) {
		var info model.FileInfo
		u.mustDo("GET", "/files/"+f.ID+"/info", nil, 200, &info)
		require.Equal(t, f.ID, info.ID)
		require.Equal(t, 2500, info.Width)
	})
	t.Run("unknown and malformed ids", func(t *testing.T) {
		u.requireAppError("GET", "/files/"+model.NewID(), nil, 404, "app.file_info.get.app_error")
		u.requireAppError("GET", "/files/nope/info", nil, 400, "api.context.invalid_url_param.app_error")
	})
	t.Run("unattached files are their creator's", func(t *testing.T) {
		other := e.member(e.ch.ID)
		other.requireAppError("GET", "/files/"+f.ID, nil, 403, "api.context.permissions.app_error")
		other.requireAppError("GET", "/files/"+f.ID+"/info", nil, 403, "api.context.permissions.app_error")
		resp, _ := get(admin, "/files/"+f.ID)
		require.Equal(t, 200, resp.StatusCode)
	})
	t.Run("cookie session needs no csrf token", func(t *testing.T) {
		req, err := http.NewRequest("GET", e.ts.URL+"/api/v4/files/"+txt.ID, nil)
		require.NoError(t, err)
		req.AddCookie(&http.Cookie{Name: "MMAUTHTOKEN", Value: u.Token})
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	})
}

func TestPostFiles(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 2)
	u, other := e.users[0], e.users[1]
	priv := e.admin.createChannel(e.team.ID, model.ChannelPrivate)
	e.admin.addToChannel(priv.ID, u)
	f1 := u.mustUpload(t, priv.ID, "a.png", testPNG(t, 10, 10, false))
	f2 := u.mustUpload(t, priv.ID, "b.txt", []byte("bee"))
	foreign := other.mustUpload(t, e.ch.ID, "c.txt", []byte("sea"))
	elsewhere := u.mustUpload(t, e.ch.ID, "d.txt", []byte("dee"))

	p := u.post(priv.ID, "files", map[string]any{"file_ids": []string{f1.ID, foreign.ID, f2.ID, elsewhere.ID}})
	require.Equal(t, []string{f1.ID, f2.ID}, p.FileIDs, "only the poster's unattached files of the channel")
	require.NotNil(t, p.Metadata)
	require.Len(t, p.Metadata.Files, 2)

	var got model.Post
	u.mustDo("GET", "/posts/"+p.ID, nil, 200, &got)
	require.Equal(t, []string{f1.ID, f2.ID}, got.FileIDs)
	require.Len(t, got.Metadata.Files, 2)
	var infos []*model.FileInfo
	b, _ := json.Marshal(got.Metadata.Files)
	require.NoError(t, json.Unmarshal(b, &infos))
	require.Equal(t, p.ID, infos[0].PostID)
	require.NotContains(t, string(b), "path")

	var list model.PostList
	u.mustDo("GET", "/channels/"+priv.ID+"/posts", nil, 200, &list)
	require.Len(t, list.Posts[p.ID].Metadata.Files, 2)

	u.mustDo("GET", "/posts/"+p.ID+"/files/info", nil, 200, &infos)
	require.Len(t, infos, 2)

	// A file attaches once.
	again := u.post(priv.ID, "again", map[string]any{"file_ids": []string{f1.ID}})
	require.Empty(t, again.FileIDs)

	// Readers of the channel read its files; others do not.
	e.admin.addToChannel(priv.ID, other)
	resp, _ := other.do("GET", "/files/"+f1.ID, nil)
	require.Equal(t, 200, resp.StatusCode)
	outsider := e.outsider()
	outsider.requireAppError("GET", "/files/"+f1.ID, nil, 403, "api.context.permissions.app_error")
	outsider.requireAppError("GET", "/files/"+f1.ID+"/thumbnail", nil, 403, "api.context.permissions.app_error")
	outsider.requireAppError("GET", "/posts/"+p.ID+"/files/info", nil, 403, "api.context.permissions.app_error")

	// Deleting the post takes its files with it.
	u.mustDo("DELETE", "/posts/"+p.ID, nil, 200, nil)
	other.requireAppError("GET", "/files/"+f1.ID, nil, 404, "app.file_info.get.app_error")
}

func TestEditPostFiles(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 2)
	u, other := e.users[0], e.users[1]
	f1 := u.mustUpload(t, e.ch.ID, "a.txt", []byte("a"))
	f2 := u.mustUpload(t, e.ch.ID, "b.txt", []byte("b"))
	f3 := u.mustUpload(t, e.ch.ID, "c.txt", []byte("c"))
	foreign := other.mustUpload(t, e.ch.ID, "d.txt", []byte("d"))
	p := u.post(e.ch.ID, "files", map[string]any{"file_ids": []string{f1.ID, f2.ID}})
	require.Equal(t, []string{f1.ID, f2.ID}, p.FileIDs)

	// Dropping f1 and adding f3 (and someone else's file, which is ignored).
	var patched model.Post
	u.mustDo("PUT", "/posts/"+p.ID+"/patch", map[string]any{"file_ids": []string{f3.ID, f2.ID, foreign.ID}}, 200, &patched)
	require.Equal(t, []string{f3.ID, f2.ID}, patched.FileIDs)
	require.Len(t, patched.Metadata.Files, 2)

	var infos []*model.FileInfo
	u.mustDo("GET", "/posts/"+p.ID+"/files/info", nil, 200, &infos)
	ids := []string{infos[0].ID, infos[1].ID}
	require.ElementsMatch(t, []string{f2.ID, f3.ID}, ids)
	u.requireAppError("GET", "/files/"+f1.ID, nil, 404, "app.file_info.get.app_error")
	resp, body := u.do("GET", "/files/"+f3.ID, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "c", string(body))

	// The foreign file is still its owner's to attach.
	q := other.post(e.ch.ID, "mine", map[string]any{"file_ids": []string{foreign.ID}})
	require.Equal(t, []string{foreign.ID}, q.FileIDs)

	// A removed file cannot come back, and a file of another post cannot be taken.
	u.mustDo("PUT", "/posts/"+p.ID+"/patch", map[string]any{"file_ids": []string{f1.ID, f2.ID, foreign.ID}}, 200, &patched)
	require.Equal(t, []string{f2.ID}, patched.FileIDs)

	// Editing the message alone leaves the files be.
	u.mustDo("PUT", "/posts/"+p.ID+"/patch", map[string]any{"message": "edited"}, 200, &patched)
	require.Equal(t, []string{f2.ID}, patched.FileIDs)
	var got model.Post
	u.mustDo("GET", "/posts/"+p.ID, nil, 200, &got)
	require.Equal(t, []string{f2.ID}, got.FileIDs)
	require.Len(t, got.Metadata.Files, 1)
}

func TestFileLink(t *testing.T) {
	t.Parallel()
	salt := strings.Repeat("s", 32)
	e := newFileEnv(t, 1, func(s *app.Settings, o *api.Options) {
		s.EnablePublicLink, s.PublicLinkSalt, s.SiteURL = true, salt, "http://example.com"
	})
	u := e.users[0]
	f := u.mustUpload(t, e.ch.ID, "a.txt", []byte("public"))
	u.requireAppError("GET", "/files/"+f.ID+"/link", nil, 400, "api.file.get_public_link.no_post.app_error")
	u.post(e.ch.ID, "with file", map[string]any{"file_ids": []string{f.ID}})
	var link map[string]string
	u.mustDo("GET", "/files/"+f.ID+"/link", nil, 200, &link)
	require.True(t, strings.HasPrefix(link["link"], "http://example.com/files/"+f.ID+"/public?h="), link["link"])

	pub := strings.TrimPrefix(link["link"], "http://example.com")
	resp, err := http.Get(e.ts.URL + pub)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "public", string(b))

	resp, err = http.Get(e.ts.URL + "/files/" + f.ID + "/public?h=forged")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)

	off := newFileEnv(t, 1)
	g := off.users[0].mustUpload(t, off.ch.ID, "a.txt", []byte("x"))
	off.users[0].requireAppError("GET", "/files/"+g.ID+"/link", nil, 403, "api.file.get_public_link.disabled.app_error")
}

func TestUnattachedUploadsAreCleanedUp(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t, 1)
	u := e.users[0]
	ctx := context.Background()
	kept := u.mustUpload(t, e.ch.ID, "kept.png", testPNG(t, 40, 30, false))
	u.post(e.ch.ID, "with a file", map[string]any{"file_ids": []string{kept.ID}})
	orphan := u.mustUpload(t, e.ch.ID, "orphan.png", testPNG(t, 40, 30, false))
	require.Len(t, e.objects(), 6, "original, thumbnail and preview of each")

	// Younger than a day: nothing goes.
	n, err := e.ts.App.CleanupOrphanFiles(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	e.ts.advance(25 * time.Hour)
	n, err = e.ts.App.CleanupOrphanFiles(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, e.fileRows())
	for _, key := range e.objects() {
		require.Contains(t, key, "/"+kept.ID+"/", "only the attached file's objects remain")
	}
	require.Len(t, e.objects(), 3)
	u = e.ts.login(u.User.Username, "password1") // a day later: a new session
	u.requireAppError("GET", "/files/"+orphan.ID+"/info", nil, http.StatusNotFound, "app.file_info.get.app_error")
	u.mustDo("GET", "/files/"+kept.ID+"/info", nil, http.StatusOK, nil)

	// A second run finds nothing.
	n, err = e.ts.App.CleanupOrphanFiles(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}
