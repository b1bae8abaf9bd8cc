// Package blob stores file contents (attachments, thumbnails, previews,
// profile images) under slash-separated keys. Two implementations share one
// interface and one conformance suite (package blobtest): Local, a directory
// on disk (a NAS mount when several nodes share it), and S3, any
// S3-compatible object store such as MinIO, through minio-go.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Store keeps file contents under keys (slash-separated paths such as
// "20260101/teams/x/channels/y/users/z/fileid/name.png").
type Store interface {
	// Put stores the contents of r under key, replacing any object there.
	// size is the number of bytes r yields, or -1 when unknown. Readers
	// never see a partly written object, and a Put that fails (including
	// when r returns an error) leaves no new object behind.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open returns the object stored under key, or ErrNotFound. The
	// caller closes it.
	Open(ctx context.Context, key string) (Object, error)
	// Stat returns the object's metadata, or ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every object whose key starts with prefix, sorted by
	// key. It reads the whole listing into memory: for bounded use only
	// (tests, cleanup of one upload), never for a user-sized listing.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Check is the health check: it writes, reads back and deletes a
	// small probe object.
	Check(ctx context.Context) error
}

// Info describes a stored object.
type Info struct {
	// Key is the object's key as given to Put.
	Key string
	// Size is the length of the contents in bytes.
	Size int64
	// ModTime is when the object was last written.
	ModTime time.Time
	// ContentType is the type given to Put; Local does not keep it and
	// reports "".
	ContentType string
}

// Object is an open stored object. It is seekable so http.ServeContent can
// answer Range requests from it.
type Object interface {
	io.ReadSeekCloser
	// Info is the object's metadata as of Open.
	Info() Info
}

// ErrNotFound is returned (possibly wrapped) when a key has no object.
var ErrNotFound = errors.New("blob: not found")

// ErrInvalidKey is returned (wrapped) for a key that is empty, absolute,
// contains "..", a NUL byte, a backslash or an empty path segment.
var ErrInvalidKey = errors.New("blob: invalid key")

// Driver names, as in Mattermost's FileSettings.DriverName.
const (
	DriverLocal = "local"
	DriverS3    = "amazons3"
)

// Options selects and configures a Store; it mirrors FileSettings.
type Options struct {
	// DriverName is DriverLocal or DriverS3.
	DriverName string
	// Directory is the local driver's root directory.
	Directory string
	// S3 configures the amazons3 driver.
	S3 S3Options
}

// New opens the store that opts.DriverName names.
func New(ctx context.Context, opts Options) (Store, error) {
	switch opts.DriverName {
	case DriverLocal:
		return NewLocal(opts.Directory)
	case DriverS3:
		return NewS3(ctx, opts.S3)
	default:
		return nil, fmt.Errorf("blob: unknown driver %q", opts.DriverName)
	}
}
