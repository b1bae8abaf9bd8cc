package model

// FileInfo describes an uploaded file, as Mattermost's model.FileInfo. The
// storage keys (Path, ThumbnailPath, PreviewPath) are never sent.
type FileInfo struct {
	ID              string  `json:"id"`
	CreatorID       string  `json:"user_id"`
	PostID          string  `json:"post_id,omitempty"`
	ChannelID       string  `json:"channel_id"`
	CreateAt        int64   `json:"create_at"`
	UpdateAt        int64   `json:"update_at"`
	DeleteAt        int64   `json:"delete_at"`
	Path            string  `json:"-"`
	ThumbnailPath   string  `json:"-"`
	PreviewPath     string  `json:"-"`
	Name            string  `json:"name"`
	Extension       string  `json:"extension"`
	Size            int64   `json:"size"`
	MimeType        string  `json:"mime_type"`
	Width           int     `json:"width,omitempty"`
	Height          int     `json:"height,omitempty"`
	HasPreviewImage bool    `json:"has_preview_image,omitempty"`
	MiniPreview     *[]byte `json:"mini_preview"`
	RemoteID        *string `json:"remote_id"`
	Archived        bool    `json:"archived"`
}

// IsImage reports whether the file is an image (by MIME type).
func (f *FileInfo) IsImage() bool { return len(f.MimeType) > 6 && f.MimeType[:6] == "image/" }

// FileUploadResponse is the body of POST /files.
type FileUploadResponse struct {
	FileInfos []*FileInfo `json:"file_infos"`
	ClientIDs []string    `json:"client_ids"`
}

// FileInfoList is the answer to a file search, as Mattermost's: Order
// lists the ids newest first. The cursors and FirstInaccessibleFileTime
// are always empty: Garrison has neither cursors nor plan limits.
type FileInfoList struct {
	Order                     []string             `json:"order"`
	FileInfos                 map[string]*FileInfo `json:"file_infos"`
	NextFileInfoID            string               `json:"next_file_info_id"`
	PrevFileInfoID            string               `json:"prev_file_info_id"`
	FirstInaccessibleFileTime int64                `json:"first_inaccessible_file_time"`
}

// NewFileInfoList returns an empty list that encodes as Mattermost's does.
func NewFileInfoList() *FileInfoList {
	return &FileInfoList{Order: []string{}, FileInfos: map[string]*FileInfo{}}
}
