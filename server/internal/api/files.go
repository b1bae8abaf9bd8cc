package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/model"
)

const (
	// uploadOverhead is what a multipart request may carry besides its
	// files: part headers, channel_id, client_ids.
	uploadOverhead = 1 << 20
	// maxFormValueBytes bounds one non-file multipart field, as
	// Mattermost's maxMultipartFormDataBytes.
	maxFormValueBytes = 10 * 1024
	// legacyFormMemory is what a buffered (file before channel_id)
	// multipart upload keeps in memory; the rest goes to temporary files.
	legacyFormMemory = 10 << 20
)

func readRequestErr(where string, err error) *model.AppError {
	return model.NewAppError(where, "api.file.upload_file.read_request.app_error", http.StatusBadRequest,
		"Unable to upload file(s). Error reading or parsing request data.").Wrap(err)
}

// partErr maps a failure to read the multipart stream: the body limit is
// 413, anything else 400.
func (a *API) partErr(where string, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return app.ErrFileTooLarge(where, "", a.app.MaxFileSize()).Wrap(err)
	}
	return readRequestErr(where, err)
}

// uploadFiles is POST /files: either the simple form (query channel_id
// and filename, the file as the body) or multipart/form-data with
// channel_id, client_ids and file parts. A multipart request whose
// channel_id comes first is processed as a stream; one whose first file
// comes before channel_id is buffered first, as in Mattermost.
func (a *API) uploadFiles(w http.ResponseWriter, r *http.Request) error {
	const where = "api.upload_files"
	if r.ContentLength == 0 {
		return readRequestErr(where, errors.New("Content-Length should not be 0"))
	}
	maxFile := a.app.MaxFileSize()
	limit := maxFile*app.MaxUploadFiles + uploadOverhead
	if r.ContentLength > limit {
		return app.ErrFileTooLarge(where, "", maxFile)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var resp *model.FileUploadResponse
	var err error
	mt, params, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case perr == nil && mt == "multipart/form-data":
		if params["boundary"] == "" {
			return readRequestErr(where, http.ErrMissingBoundary)
		}
		resp, err = a.uploadMultipart(r, params["boundary"])
	case r.Header.Get("Content-Type") != "" && perr != nil:
		return readRequestErr(where, perr)
	default:
		resp, err = a.uploadSimple(r)
	}
	if err != nil {
		return err
	}
	return created(w, resp)
}

// uploadSimple stores the request body as one file.
func (a *API) uploadSimple(r *http.Request) (*model.FileUploadResponse, error) {
	q := r.URL.Query()
	s, ctx := sessionFrom(r), r.Context()
	if q.Get("filename") == "" {
		return nil, model.ErrInvalidURLParam("api.upload_simple", "filename")
	}
	up, appErr := a.app.StartUpload(ctx, s, q.Get("channel_id"))
	if appErr != nil {
		return nil, appErr
	}
	defer up.Abort(ctx)
	size := r.ContentLength
	if size < 0 {
		size = -1
	}
	if _, appErr := up.Add(ctx, q.Get("filename"), app.BadBody(r.Body), size); appErr != nil {
		return nil, appErr
	}
	infos, appErr := up.Commit(ctx)
	if appErr != nil {
		return nil, appErr
	}
	resp := &model.FileUploadResponse{FileInfos: infos, ClientIDs: []string{}}
	if id := q.Get("client_id"); id != "" {
		resp.ClientIDs = []string{id}
	}
	return resp, nil
}

// uploadMultipart reads the parts up to channel_id or the first file.
// channel_id first: the whole body is then processed as a stream (the few
// bytes read so far are replayed). A file first: the form is buffered.
func (a *API) uploadMultipart(r *http.Request, boundary string) (*model.FileUploadResponse, error) {
	const where = "api.upload_multipart"
	var seen bytes.Buffer
	mr := multipart.NewReader(io.TeeReader(r.Body, &seen), boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, model.ErrInvalidURLParam(where, "channel_id")
		}
		if err != nil {
			return nil, a.partErr(where, err)
		}
		if seen.Len() > uploadOverhead {
			return nil, readRequestErr(where, errors.New("too much form data before channel_id or the first file"))
		}
		replay := io.MultiReader(&seen, r.Body)
		if part.FileName() != "" {
			return a.uploadMultipartBuffered(r, multipart.NewReader(replay, boundary))
		}
		if part.FormName() == "channel_id" {
			return a.uploadMultipartStream(r, multipart.NewReader(replay, boundary))
		}
	}
}

// formValue reads a non-file part, at most maxFormValueBytes.
func formValue(part *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(part, maxFormValueBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFormValueBytes {
		return "", model.NewAppError("api.form_value", "api.file.upload_file.read_form_value.app_error",
			http.StatusBadRequest, "Unable to upload file(s). Error reading the value for "+part.FormName()+".")
	}
	return string(b), nil
}

// uploadMultipartStream stores each file part as it arrives.
func (a *API) uploadMultipartStream(r *http.Request, mr *multipart.Reader) (*model.FileUploadResponse, error) {
	const where = "api.upload_multipart_stream"
	s, ctx := sessionFrom(r), r.Context()
	var (
		channelID string
		clientIDs []string
		up        *app.Upload
		nFiles    int
	)
	expectClientIDs := true
	resp := &model.FileUploadResponse{FileInfos: []*model.FileInfo{}, ClientIDs: []string{}}
	defer func() {
		if up != nil {
			up.Abort(ctx)
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, a.partErr(where, err)
		}
		if part.FormName() == "" {
			continue
		}
		if part.FileName() == "" {
			v, err := formValue(part)
			if err != nil {
				var ae *model.AppError
				if errors.As(err, &ae) {
					return nil, ae
				}
				return nil, a.partErr(where, err)
			}
			switch part.FormName() {
			case "channel_id":
				if channelID != "" && v != channelID {
					return nil, model.NewAppError(where, "api.file.upload_file.multiple_channel_ids.app_error",
						http.StatusBadRequest, "Unable to upload file(s). Multiple conflicting channel_ids.")
				}
				channelID = v
			case "client_ids":
				if !expectClientIDs {
					return nil, model.ErrInvalidURLParam(where, "client_ids")
				}
				clientIDs = append(clientIDs, v)
			default:
				return nil, model.ErrInvalidURLParam(where, part.FormName())
			}
			continue
		}
		if up == nil {
			var appErr *model.AppError
			if up, appErr = a.app.StartUpload(ctx, s, channelID); appErr != nil {
				return nil, appErr
			}
		}
		// No client ids before the first file: none are expected.
		if nFiles == 0 && len(clientIDs) == 0 {
			expectClientIDs = false
		}
		clientID := ""
		if expectClientIDs {
			if nFiles >= len(clientIDs) {
				return nil, model.ErrInvalidURLParam(where, "client_ids")
			}
			clientID = clientIDs[nFiles]
		}
		info, appErr := up.Add(ctx, part.FileName(), app.BadBody(part), -1)
		if appErr != nil {
			return nil, appErr
		}
		resp.FileInfos = append(resp.FileInfos, info)
		if expectClientIDs {
			resp.ClientIDs = append(resp.ClientIDs, clientID)
		}
		nFiles++
	}
	if expectClientIDs && len(clientIDs) != nFiles {
		return nil, badClientIDs(where)
	}
	if up == nil {
		return resp, nil
	}
	infos, appErr := up.Commit(ctx)
	if appErr != nil {
		return nil, appErr
	}
	resp.FileInfos = infos
	return resp, nil
}

func badClientIDs(where string) *model.AppError {
	return model.NewAppError(where, "api.file.upload_file.incorrect_number_of_client_ids.app_error",
		http.StatusBadRequest, "Unable to upload file(s). Have client_ids for a different number of files.")
}

// uploadMultipartBuffered parses the whole form (the channel_id comes
// after a file) and then stores its "files" parts.
func (a *API) uploadMultipartBuffered(r *http.Request, mr *multipart.Reader) (*model.FileUploadResponse, error) {
	const where = "api.upload_multipart_buffered"
	s, ctx := sessionFrom(r), r.Context()
	form, err := mr.ReadForm(legacyFormMemory)
	if err != nil {
		return nil, a.partErr(where, err)
	}
	defer func() { _ = form.RemoveAll() }()
	if len(form.Value["channel_id"]) == 0 {
		return nil, model.ErrInvalidURLParam(where, "channel_id")
	}
	clientIDs, headers := form.Value["client_ids"], form.File["files"]
	if len(clientIDs) != 0 && len(clientIDs) != len(headers) {
		return nil, badClientIDs(where)
	}
	up, appErr := a.app.StartUpload(ctx, s, form.Value["channel_id"][0])
	if appErr != nil {
		return nil, appErr
	}
	defer up.Abort(ctx)
	for _, fh := range headers {
		f, err := fh.Open()
		if err != nil {
			return nil, readRequestErr(where, err)
		}
		_, appErr := up.Add(ctx, fh.Filename, f, fh.Size)
		f.Close()
		if appErr != nil {
			return nil, appErr
		}
	}
	infos, appErr := up.Commit(ctx)
	if appErr != nil {
		return nil, appErr
	}
	if clientIDs == nil {
		clientIDs = []string{}
	}
	return &model.FileUploadResponse{FileInfos: infos, ClientIDs: clientIDs}, nil
}

// serveFile returns the handler of GET /files/{file_id} and its
// renditions.
func (a *API) serveFile(which app.FileRendition) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := idParam(r, "file_id")
		if err != nil {
			return err
		}
		f, obj, ctype, appErr := a.app.OpenFile(r.Context(), sessionFrom(r), id, which)
		if appErr != nil {
			return appErr
		}
		defer obj.Close()
		writeFile(w, r, f.Name, ctype, time.UnixMilli(f.UpdateAt), obj, boolQuery(r, "download"))
		return nil
	}
}

// mediaTypes are shown inline; everything else is an attachment.
var mediaTypes = []string{"image/", "audio/", "video/"}

// writeFile serves content as Mattermost's web.WriteFileResponse does:
// Range requests through http.ServeContent; types a browser would run
// become text/plain attachments; no framing.
func writeFile(w http.ResponseWriter, r *http.Request, name, ctype string, mod time.Time, content io.ReadSeeker, download bool) {
	h := w.Header()
	h.Set("Cache-Control", "private, max-age=86400")
	h.Set("X-Content-Type-Options", "nosniff")
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if app.IsUnsafeContentType(ctype) {
		ctype, download = "text/plain", true
	}
	h.Set("Content-Type", ctype)
	if !download {
		download = true
		for _, m := range mediaTypes {
			if strings.HasPrefix(ctype, m) && !app.IsUnsafeContentType(ctype) {
				download = false
			}
		}
	}
	escaped := url.PathEscape(name)
	disposition := "inline"
	if download {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition+";filename=\""+escaped+"\"; filename*=UTF-8''"+escaped)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "Frame-ancestors 'none'")
	h.Del("Expires")
	http.ServeContent(w, r, name, mod, content)
}

// getFileInfo is GET /files/{file_id}/info.
func (a *API) getFileInfo(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "file_id")
	if err != nil {
		return err
	}
	f, appErr := a.app.GetFileInfo(r.Context(), sessionFrom(r), id)
	if appErr != nil {
		return appErr
	}
	w.Header().Set("Cache-Control", "max-age=2592000, private")
	return ok(w, f)
}

// getFileLink is GET /files/{file_id}/link.
func (a *API) getFileLink(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "file_id")
	if err != nil {
		return err
	}
	link, appErr := a.app.GetFileLink(r.Context(), sessionFrom(r), id)
	if appErr != nil {
		return appErr
	}
	return ok(w, map[string]string{"link": link})
}

// getPublicFile is GET /files/{file_id}/public?h=: a file served by its
// public link, without a session.
func (a *API) getPublicFile(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "file_id")
	if err != nil {
		return err
	}
	f, obj, appErr := a.app.OpenPublicFile(r.Context(), id, r.URL.Query().Get("h"))
	if appErr != nil {
		return appErr
	}
	defer obj.Close()
	writeFile(w, r, f.Name, f.MimeType, time.UnixMilli(f.UpdateAt), obj, false)
	return nil
}

// getFileInfosForPost is GET /posts/{post_id}/files/info.
func (a *API) getFileInfosForPost(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "post_id")
	if err != nil {
		return err
	}
	files, appErr := a.app.GetFileInfosForPost(r.Context(), sessionFrom(r), id)
	return reply(w, http.StatusOK, files, appErr)
}
