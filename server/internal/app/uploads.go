package app

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"net/http"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

const (
	// defaultMaxFileSize is FileSettings.MaxFileSize's default.
	defaultMaxFileSize = 104857600
	// MaxUploadFiles bounds the files of one POST /files request: a post
	// takes at most ten (PostFileidsMaxRunes).
	MaxUploadFiles = 10
	// maxFilenameRunes is Mattermost's MaxFilenameLength.
	maxFilenameRunes = 256
	// maxFilenameBytes keeps storage keys (prefix, name, rendition suffix)
	// within what every blob store accepts.
	maxFilenameBytes = 600
	// fileTeamID is the team segment of every storage key, as Mattermost's
	// api4.FileTeamId.
	fileTeamID = "noteam"
	// sniffLen is what http.DetectContentType reads.
	sniffLen = 512
	// cleanupTimeout bounds deleting the objects of a failed upload.
	cleanupTimeout = 30 * time.Second
)

// initFiles sets up the file store: the one given, or a local one in
// Settings.FileDirectory. Without either, uploads fail with 500.
func (a *App) initFiles(o Options) {
	if a.set.MaxFileSize <= 0 {
		a.set.MaxFileSize = defaultMaxFileSize
	}
	if a.set.MaxImageResolution <= 0 {
		a.set.MaxImageResolution = defaultMaxImageResolution
	}
	a.imageWork = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	a.files = o.Files
	if a.files == nil && a.set.FileDirectory != "" {
		a.files, a.filesErr = blob.NewLocal(a.set.FileDirectory)
		if a.filesErr != nil {
			a.files = nil
		}
	}
	if a.files == nil && a.filesErr == nil {
		a.filesErr = errors.New("files: no file store configured")
	}
}

// MaxFileSize is FileSettings.MaxFileSize, the bound of one file.
func (a *App) MaxFileSize() int64 { return a.set.MaxFileSize }

func fileNotFound(where string) *model.AppError {
	return model.ErrNotFound(where, "app.file_info.get.app_error", "file")
}

// ErrFileTooLarge is the 413 for a file over FileSettings.MaxFileSize.
func ErrFileTooLarge(where, name string, limit int64) *model.AppError {
	return model.NewAppError(where, "api.file.upload_file.too_large_detailed.app_error", http.StatusRequestEntityTooLarge,
		fmt.Sprintf("Unable to upload file %s. The file exceeds the maximum allowed %d bytes.", name, limit))
}

// Upload is one POST /files request: files are stored one by one with
// Add, then recorded all together by Commit. Until Commit succeeds, Abort
// removes every object written; nothing of a failed upload remains.
type Upload struct {
	a         *App
	userID    string
	channelID string
	prefix    string // storage key prefix up to the user segment
	now       int64
	written   []string
	files     []*model.FileInfo
	done      bool
}

// StartUpload checks that the caller may upload to the channel: file
// attachments are enabled and the caller is a member (Mattermost's
// upload_file permission), and the channel is not archived.
func (a *App) StartUpload(ctx context.Context, s *model.Session, channelID string) (*Upload, *model.AppError) {
	const where = "app.start_upload"
	if !a.set.EnableFileAttachments {
		return nil, model.NewAppError(where, "api.file.attachments.disabled.app_error", http.StatusForbidden,
			"File attachments have been disabled on this server.")
	}
	if !model.IsValidID(channelID) {
		return nil, model.ErrInvalidURLParam(where, "channel_id")
	}
	if a.files == nil {
		return nil, internalErr(where, a.filesErr)
	}
	ch, appErr := a.memberChannel(ctx, s, channelID, "upload_file")
	if appErr != nil {
		if appErr.StatusCode == http.StatusNotFound {
			// As Mattermost: no channel, no permission; its existence
			// does not show.
			return nil, model.ErrPermission(where, s.UserID, "upload_file")
		}
		return nil, appErr
	}
	if ch.DeleteAt != 0 {
		return nil, badRequest(where, "api.file.upload_file.incorrect_channelId.app_error",
			"Unable to upload the file: the channel is archived.")
	}
	now := a.now()
	return &Upload{
		a: a, userID: s.UserID, channelID: channelID, now: now.UnixMilli(),
		prefix: now.UTC().Format("20060102") + "/teams/" + fileTeamID + "/channels/" + channelID + "/users/" + s.UserID + "/",
	}, nil
}

// errTooLarge is returned by a sizeLimit reader past its limit.
var errTooLarge = errors.New("file too large")

// sizeLimit reads from r and fails with errTooLarge once more than limit
// bytes have come; n counts them.
type sizeLimit struct {
	r     io.Reader
	limit int64
	n     int64
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	k, err := l.r.Read(p)
	l.n += int64(k)
	if l.n > l.limit {
		return k, errTooLarge
	}
	return k, err
}

// sanitizeFilename is Mattermost's model.SanitizeFilename without the
// Unicode normalisation: no control characters, no directories, at most
// maxFilenameRunes; "" when nothing usable remains.
func sanitizeFilename(name string) string {
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "\uFFFD")
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == ".." || name == "/" {
		return ""
	}
	if utf8.RuneCountInString(name) > maxFilenameRunes {
		name = string([]rune(name)[:maxFilenameRunes])
	}
	// Storage keys are bounded in bytes: keep the name within its share.
	for len(name) > maxFilenameBytes {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	return name
}

// fileExtension is FileInfo.Extension: lower case, without the dot.
func fileExtension(name string) string {
	return strings.TrimPrefix(strings.ToLower(path.Ext(name)), ".")
}

// unsafeTypes are served as text/plain attachments, never as themselves.
var unsafeTypes = []string{"application/javascript", "application/ecmascript", "text/javascript", "text/ecmascript",
	"application/x-javascript", "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"}

// IsUnsafeContentType reports whether a browser would run content of
// type t (scripts, markup).
func IsUnsafeContentType(t string) bool {
	t = strings.ToLower(t)
	for _, u := range unsafeTypes {
		if strings.HasPrefix(t, u) {
			return true
		}
	}
	return false
}

// contentType decides a file's MIME type from its content: the sniffed
// type, unless sniffing found only a generic type and the extension names
// a more precise one that is not an image (images are always what their
// bytes are) — office documents sniff as zip, CSV as text.
func contentType(sniffed, ext string) string {
	generic := sniffed == "application/octet-stream" || sniffed == "application/zip" ||
		strings.HasPrefix(sniffed, "text/plain")
	if !generic || ext == "" {
		return sniffed
	}
	byExt := mime.TypeByExtension("." + ext)
	if byExt == "" || strings.HasPrefix(byExt, "image/") {
		return sniffed
	}
	if strings.HasPrefix(sniffed, "text/plain") != strings.HasPrefix(byExt, "text/") && sniffed != "application/octet-stream" {
		return sniffed // zip content is not text, text content is not a zip
	}
	return byExt
}

// Add stores one file read from r; size is its length if known, else -1.
// It refuses files over MaxFileSize (413), images whose content does not
// match their extension, and images over MaxImageResolution (400). Images
// also get a thumbnail, a preview and a mini preview.
func (u *Upload) Add(ctx context.Context, filename string, r io.Reader, size int64) (*model.FileInfo, *model.AppError) {
	const where = "app.upload_file"
	a := u.a
	if u.done {
		return nil, internalErr(where, errors.New("upload already finished"))
	}
	if len(u.files) >= MaxUploadFiles {
		return nil, badRequest(where, "api.file.upload_file.too_many_files.app_error",
			fmt.Sprintf("At most %d files can be uploaded at once.", MaxUploadFiles))
	}
	name := sanitizeFilename(filename)
	if name == "" {
		return nil, model.ErrInvalidURLParam(where, "filename")
	}
	limit := a.set.MaxFileSize
	if size > limit {
		return nil, ErrFileTooLarge(where, name, limit)
	}
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, readErr(where, name, limit, err)
	}
	head = head[:n]
	sniffed := http.DetectContentType(head)
	ext := fileExtension(name)
	want, isImage := imageExtTypes[ext]
	if isImage && sniffed != want {
		return nil, badRequest(where, "api.file.upload_file.mismatched_type.app_error",
			"The file's content does not match its extension.").Detail("name %q, content %s", name, sniffed)
	}
	id := model.NewID()
	dir := u.prefix + id + "/"
	f := &model.FileInfo{
		ID: id, CreatorID: u.userID, ChannelID: u.channelID, CreateAt: u.now, UpdateAt: u.now,
		Path: dir + name, Name: name, Extension: ext, MimeType: contentType(sniffed, ext),
	}
	if isImage {
		if appErr := u.addImage(ctx, f, dir, io.MultiReader(bytes.NewReader(head), r)); appErr != nil {
			return nil, appErr
		}
	} else {
		body := &sizeLimit{r: io.MultiReader(bytes.NewReader(head), r), limit: limit}
		if appErr := u.put(ctx, f.Path, body, size, f.MimeType); appErr != nil {
			return nil, appErr.errFor(where, name, limit)
		}
		f.Size = body.n
	}
	remote := ""
	f.RemoteID = &remote
	u.files = append(u.files, f)
	return f, nil
}

// putErr is a failed Put: the reader's error (too large, bad request
// body) or the store's.
type putErr struct{ err error }

func (e *putErr) errFor(where, name string, limit int64) *model.AppError {
	return readErr(where, name, limit, e.err)
}

// readErr maps a failure while reading or storing an upload: the size
// limits give 413, a broken request body 400, anything else 500.
func readErr(where, name string, limit int64, err error) *model.AppError {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errTooLarge), errors.As(err, &mbe):
		return ErrFileTooLarge(where, name, limit).Wrap(err)
	case errors.Is(err, blob.ErrInvalidKey):
		return model.ErrInvalidURLParam(where, "filename").Wrap(err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errBadBody):
		return badRequest(where, "api.file.upload_file.read_request.app_error", "Unable to read the uploaded file.").Wrap(err)
	default:
		return internalErr(where, err)
	}
}

// errBadBody marks a request body that could not be read: callers wrap
// the readers they hand to Add with BadBody so their failures are 400s.
var errBadBody = errors.New("bad request body")

// BadBody wraps a request body reader: its read errors (other than EOF and
// the size limit) become 400s in Add rather than 500s.
func BadBody(r io.Reader) io.Reader { return badBody{r} }

type badBody struct{ r io.Reader }

func (b badBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && err != io.EOF && !errors.As(err, &mbe) {
		err = fmt.Errorf("%w: %w", errBadBody, err)
	}
	return n, err
}

// put stores one object, remembering its key first so Abort removes it
// whatever happens.
func (u *Upload) put(ctx context.Context, key string, r io.Reader, size int64, contentType string) *putErr {
	u.written = append(u.written, key)
	if err := u.a.files.Put(ctx, key, r, size, contentType); err != nil {
		return &putErr{err}
	}
	return nil
}

// addImage reads the whole image (bounded by MaxFileSize), refuses one
// whose dimensions exceed MaxImageResolution before decoding its pixels,
// stores it and its renditions. An image that does not decode is stored
// as it is, without renditions, as Mattermost does.
func (u *Upload) addImage(ctx context.Context, f *model.FileInfo, dir string, r io.Reader) *model.AppError {
	const where = "app.upload_file"
	a := u.a
	limit := a.set.MaxFileSize
	data, err := io.ReadAll(&sizeLimit{r: r, limit: limit})
	if err != nil {
		return readErr(where, f.Name, limit, err)
	}
	f.Size = int64(len(data))
	cfg, _, cerr := image.DecodeConfig(bytes.NewReader(data))
	if cerr == nil {
		f.Width, f.Height = cfg.Width, cfg.Height
		if int64(cfg.Width)*int64(cfg.Height) > a.set.MaxImageResolution {
			return badRequest(where, "api.file.upload_file.large_image_detailed.app_error",
				fmt.Sprintf("%s dimensions (%d by %d pixels) exceed the limits.", f.Name, cfg.Width, cfg.Height))
		}
	}
	if pe := u.put(ctx, f.Path, bytes.NewReader(data), f.Size, f.MimeType); pe != nil {
		return pe.errFor(where, f.Name, limit)
	}
	if cerr != nil {
		return nil
	}
	rend, err := a.renditions(ctx, data)
	if err != nil {
		if ctx.Err() != nil {
			return internalErr(where, err)
		}
		a.log.Warn("image renditions", "file_id", f.ID, "err", err)
		return nil
	}
	base := strings.TrimSuffix(f.Name, path.Ext(f.Name))
	thumb, preview := dir+base+"_thumb."+rend.ext, dir+base+"_preview."+rend.ext
	if pe := u.put(ctx, thumb, bytes.NewReader(rend.thumb), int64(len(rend.thumb)), rend.contentType); pe != nil {
		return internalErr(where, pe.err)
	}
	if pe := u.put(ctx, preview, bytes.NewReader(rend.preview), int64(len(rend.preview)), rend.contentType); pe != nil {
		return internalErr(where, pe.err)
	}
	f.ThumbnailPath, f.PreviewPath, f.HasPreviewImage, f.MiniPreview = thumb, preview, true, &rend.mini
	return nil
}

// renditions decodes an image, with at most GOMAXPROCS decodes at once
// (each may take width×height×4 bytes), and makes its renditions.
func (a *App) renditions(ctx context.Context, data []byte) (*renditions, error) {
	select {
	case a.imageWork <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-a.imageWork }()
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return makeRenditions(img)
}

// Commit records the upload's files in one transaction and returns them.
// On failure the stored objects are removed.
func (u *Upload) Commit(ctx context.Context) ([]*model.FileInfo, *model.AppError) {
	const where = "app.upload_commit"
	if u.done {
		return nil, internalErr(where, errors.New("upload already finished"))
	}
	if err := u.a.store.CreateFileInfos(ctx, u.files); err != nil {
		u.Abort(ctx)
		return nil, internalErr(where, err)
	}
	u.done = true
	return u.files, nil
}

// Abort removes every object the upload wrote. It is a no-op after a
// successful Commit, so callers may defer it.
func (u *Upload) Abort(ctx context.Context) {
	if u.done {
		return
	}
	u.done = true
	// The client may be gone; the objects must go anyway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, key := range u.written {
		if err := u.a.files.Delete(ctx, key); err != nil {
			u.a.log.Error("remove object of failed upload", "key", key, "err", err)
		}
	}
}

// fileForReader returns a live file the caller may read: its creator
// always; anyone else once it is attached to a post in a channel they
// can read (Mattermost's rule: an unattached upload is its creator's).
func (a *App) fileForReader(ctx context.Context, s *model.Session, id string) (*model.FileInfo, *model.AppError) {
	const where = "app.get_file"
	f, err := a.store.GetFileInfo(ctx, id)
	if err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, fileNotFound(where)
		}
		return nil, internalErr(where, err)
	}
	if f.CreatorID == s.UserID {
		return f, nil
	}
	if f.PostID == "" && !s.IsSystemAdmin() {
		return nil, model.ErrPermission(where, s.UserID, "read_channel")
	}
	if appErr := a.checkChannelRead(ctx, s, f.ChannelID); appErr != nil {
		if appErr.StatusCode == http.StatusNotFound {
			return nil, model.ErrPermission(where, s.UserID, "read_channel")
		}
		return nil, appErr
	}
	return f, nil
}

// GetFileInfo returns the metadata of a file the caller may read.
func (a *App) GetFileInfo(ctx context.Context, s *model.Session, id string) (*model.FileInfo, *model.AppError) {
	return a.fileForReader(ctx, s, id)
}

// FileRendition names what of a file to open.
type FileRendition int

// The renditions of a file.
const (
	FileOriginal FileRendition = iota
	FileThumbnail
	FilePreview
)

// OpenFile opens the contents (or a rendition) of a file the caller may
// read and returns them with the file's metadata and their MIME type. The
// caller closes the object.
func (a *App) OpenFile(ctx context.Context, s *model.Session, id string, which FileRendition) (*model.FileInfo, blob.Object, string, *model.AppError) {
	const where = "app.open_file"
	f, appErr := a.fileForReader(ctx, s, id)
	if appErr != nil {
		return nil, nil, "", appErr
	}
	key, ctype := f.Path, f.MimeType
	switch which {
	case FileThumbnail:
		if f.ThumbnailPath == "" {
			return nil, nil, "", badRequest(where, "api.file.get_file_thumbnail.no_thumbnail.app_error",
				"The file doesn't have a thumbnail image.")
		}
		key = f.ThumbnailPath
	case FilePreview:
		if f.PreviewPath == "" {
			return nil, nil, "", badRequest(where, "api.file.get_file_preview.no_preview.app_error",
				"The file doesn't have a preview image.")
		}
		key = f.PreviewPath
	}
	if which != FileOriginal {
		ctype = "image/jpeg"
		if strings.HasSuffix(key, ".png") {
			ctype = "image/png"
		}
	}
	if a.files == nil {
		return nil, nil, "", internalErr(where, a.filesErr)
	}
	obj, err := a.files.Open(ctx, key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return nil, nil, "", model.ErrNotFound(where, "api.file.file_reader.app_error", "file contents").Wrap(err)
		}
		return nil, nil, "", internalErr(where, err)
	}
	return f, obj, ctype, nil
}

// GetFileLink returns the public link of a file attached to a post, when
// FileSettings.EnablePublicLink is on.
func (a *App) GetFileLink(ctx context.Context, s *model.Session, id string) (string, *model.AppError) {
	const where = "app.get_file_link"
	if !a.set.EnablePublicLink {
		return "", model.NewAppError(where, "api.file.get_public_link.disabled.app_error", http.StatusForbidden,
			"Public links have been disabled.")
	}
	f, appErr := a.fileForReader(ctx, s, id)
	if appErr != nil {
		return "", appErr
	}
	if f.PostID == "" {
		return "", badRequest(where, "api.file.get_public_link.no_post.app_error",
			"Unable to get the public link: the file must be attached to a post.")
	}
	return strings.TrimSuffix(a.set.SiteURL, "/") + "/files/" + f.ID + "/public?h=" + a.publicLinkHash(f.ID), nil
}

// publicLinkHash authenticates a public link: HMAC-SHA256 of the file id
// keyed by FileSettings.PublicLinkSalt.
func (a *App) publicLinkHash(id string) string {
	m := hmac.New(sha256.New, []byte(a.set.PublicLinkSalt))
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// GetFileInfosForPost returns the files of a post the caller may read.
func (a *App) GetFileInfosForPost(ctx context.Context, s *model.Session, postID string) ([]*model.FileInfo, *model.AppError) {
	const where = "app.get_file_infos_for_post"
	p, appErr := a.GetPost(ctx, s, postID, false)
	if appErr != nil {
		return nil, appErr
	}
	files, err := a.store.FileInfosForPosts(ctx, []string{p.ID})
	if err != nil {
		return nil, internalErr(where, err)
	}
	out := files[p.ID]
	if out == nil {
		out = []*model.FileInfo{}
	}
	return out, nil
}

// addFileMetadata sets metadata.files on the live posts that list files,
// with one query for all of them.
func (a *App) addFileMetadata(ctx context.Context, posts []*model.Post) error {
	var ids []string
	for _, p := range posts {
		if len(p.FileIDs) > 0 && p.DeleteAt == 0 {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	files, err := a.store.FileInfosForPosts(ctx, ids)
	if err != nil {
		return err
	}
	for _, p := range posts {
		fs, ok := files[p.ID]
		if !ok {
			continue
		}
		if p.Metadata == nil {
			p.Metadata = &model.PostMetadata{}
		}
		// In the order of the post's file_ids.
		slices.SortStableFunc(fs, func(x, y *model.FileInfo) int {
			return cmp.Compare(slices.Index(p.FileIDs, x.ID), slices.Index(p.FileIDs, y.ID))
		})
		p.Metadata.Files = make([]any, len(fs))
		for i, f := range fs {
			p.Metadata.Files[i] = f
		}
	}
	return nil
}

// OpenPublicFile opens a file by its public link: public links must be
// enabled, hash must be the link's, and the file attached to a live post.
func (a *App) OpenPublicFile(ctx context.Context, id, hash string) (*model.FileInfo, blob.Object, *model.AppError) {
	const where = "app.open_public_file"
	if !a.set.EnablePublicLink {
		return nil, nil, model.NewAppError(where, "api.file.get_public_link.disabled.app_error", http.StatusForbidden,
			"Public links have been disabled.")
	}
	invalid := badRequest(where, "api.file.get_file.public_invalid.app_error", "The public link does not appear to be valid.")
	if hash == "" || !hmac.Equal([]byte(hash), []byte(a.publicLinkHash(id))) {
		return nil, nil, invalid
	}
	f, err := a.store.GetFileInfo(ctx, id)
	if err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, nil, fileNotFound(where)
		}
		return nil, nil, internalErr(where, err)
	}
	if f.PostID == "" {
		return nil, nil, invalid
	}
	if a.files == nil {
		return nil, nil, internalErr(where, a.filesErr)
	}
	obj, err := a.files.Open(ctx, f.Path)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return nil, nil, model.ErrNotFound(where, "api.file.file_reader.app_error", "file contents").Wrap(err)
		}
		return nil, nil, internalErr(where, err)
	}
	return f, obj, nil
}
