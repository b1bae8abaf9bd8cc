package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Defaults of the S3 settings, as Mattermost's.
const (
	DefaultS3RequestTimeout = 30 * time.Second
	DefaultS3PartSize       = 5 << 20 // S3's minimum part size
)

// S3Options configures an S3 store; the fields mirror FileSettings'
// AmazonS3* settings.
type S3Options struct {
	// Endpoint is host[:port] of the S3 service, without a scheme.
	Endpoint string
	// AccessKey and SecretKey are static credentials; both empty means
	// the IAM role of the machine (EC2 instance metadata), as Mattermost.
	AccessKey string
	SecretKey string
	// Bucket holds the objects; it is created at start-up when missing.
	Bucket string
	// PathPrefix is prepended, with a "/", to every key.
	PathPrefix string
	// Region is the bucket's region; empty lets the client discover it
	// (and creates a missing bucket in the server's default region).
	Region string
	// SSL uses https.
	SSL bool
	// SignV2 uses AWS signature version 2 instead of 4 (old S3 clones).
	SignV2 bool
	// SSE asks for server-side encryption with keys the server manages
	// (SSE-S3) for every object written.
	SSE bool
	// Trace writes every HTTP exchange (signatures redacted) to stderr;
	// for debugging only.
	Trace bool
	// RequestTimeout bounds every call that moves no file contents (stat,
	// delete, list, bucket checks), the wait for each response, and a
	// stall of an upload or download; 0 means DefaultS3RequestTimeout.
	RequestTimeout time.Duration
	// PartSize is the size of the parts of a multipart upload, which an
	// upload of unknown size always is; also the memory each such upload
	// buffers. 0 means DefaultS3PartSize; at least 5 MiB.
	PartSize int64
}

// S3 is a Store in a bucket of an S3-compatible service (AWS S3, MinIO,
// Ceph...). Keys become object names under PathPrefix.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ends in "/"
	timeout  time.Duration
	partSize uint64
	sse      encrypt.ServerSide
}

// NewS3 connects to the bucket, creating it if it does not exist (which
// needs the s3:CreateBucket permission; without it a missing bucket is an
// error naming the bucket).
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Endpoint == "" {
		return nil, errors.New("blob: s3: no endpoint configured")
	}
	if o.Bucket == "" {
		return nil, errors.New("blob: s3: no bucket configured")
	}
	if strings.Contains(o.Endpoint, "://") {
		return nil, fmt.Errorf("blob: s3: endpoint %q must be host[:port] without a scheme; use AmazonS3SSL for https", o.Endpoint)
	}
	s := &S3{
		bucket:   o.Bucket,
		timeout:  o.RequestTimeout,
		partSize: uint64(o.PartSize),
	}
	if s.timeout <= 0 {
		s.timeout = DefaultS3RequestTimeout
	}
	if o.PartSize <= 0 {
		s.partSize = DefaultS3PartSize
	}
	if s.partSize < DefaultS3PartSize {
		return nil, fmt.Errorf("blob: s3: part size %d is below the 5 MiB S3 minimum", o.PartSize)
	}
	if p := strings.Trim(o.PathPrefix, "/"); p != "" {
		if err := checkKey(p); err != nil {
			return nil, fmt.Errorf("blob: s3: path prefix: %w", err)
		}
		s.prefix = p + "/"
	}
	if o.SSE {
		s.sse = encrypt.NewSSE()
	}

	var creds *credentials.Credentials
	switch {
	case o.AccessKey == "" && o.SecretKey == "":
		creds = credentials.NewIAM("")
	case o.SignV2:
		creds = credentials.NewStaticV2(o.AccessKey, o.SecretKey, "")
	default:
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	}
	tr, err := minio.DefaultTransport(o.SSL)
	if err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	tr.ResponseHeaderTimeout = s.timeout
	client, err := minio.New(o.Endpoint, &minio.Options{
		Creds:     creds,
		Secure:    o.SSL,
		Region:    o.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	if o.Trace {
		client.TraceOn(os.Stderr)
	}
	s.client = client

	if err := s.ensureBucket(ctx, o.Region); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *S3) ensureBucket(ctx context.Context, region string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob: s3: bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		// Another node may have created it at the same moment.
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return fmt.Errorf("blob: s3: bucket %s does not exist and could not be created: %w", s.bucket, err)
	}
	return nil
}

func (s *S3) object(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put uploads r. A known size of up to PartSize goes in one PUT; larger or
// unknown sizes go in a multipart upload, which minio-go aborts when r
// fails, so no object appears.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wd := newWatchdog(s.timeout, cancel)
	defer wd.stop()

	src := io.Reader(&progressReader{r: r, wd: wd})
	if size >= 0 {
		// minio-go would otherwise send a short body with a long
		// Content-Length; make a short reader an error instead.
		src = &exactReader{r: src, left: size}
	}
	// Read r in its own goroutine, so that a Read blocked on a stalled
	// client does not hold the upload past ctx: the pipe fails as soon as
	// ctx ends (or the watchdog fires). Put waits for the goroutine unless
	// ctx has ended; then r may still be in one Read, which ends when the
	// caller closes r.
	pr, pw := io.Pipe()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, err := io.Copy(pw, src)
		pw.CloseWithError(err)
	}()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(context.Cause(ctx)) })
	defer func() {
		stop()
		pr.Close()
		select {
		case <-copied:
		case <-ctx.Done():
		}
	}()
	_, err = s.client.PutObject(ctx, s.bucket, name, pr, size, minio.PutObjectOptions{
		ContentType:          contentType,
		PartSize:             s.partSize,
		NumThreads:           1, // bounds memory to one part per upload
		ServerSideEncryption: s.sse,
	})
	if err != nil {
		if wd.fired() {
			err = fmt.Errorf("no progress for %s: %w", s.timeout, err)
		}
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	return nil
}

// Open fetches the object's metadata at once (so a missing key is
// ErrNotFound here) and its contents lazily: each Read after a Seek is a
// ranged GET, bounded by ctx and the request timeout per response.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	info, etag, err := s.stat(ctx, key)
	if err != nil {
		return nil, err
	}
	// Pin reads to the version stat saw, so a concurrent overwrite fails
	// the read instead of mixing two versions.
	var opts minio.GetObjectOptions
	if etag != "" {
		_ = opts.SetMatchETag(etag)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		return nil, s.mapErr("open", key, err)
	}
	return &s3Object{Object: obj, info: info}, nil
}

type s3Object struct {
	*minio.Object
	info Info
}

func (o *s3Object) Info() Info { return o.info }

// Read maps a vanished object to ErrNotFound.
func (o *s3Object) Read(p []byte) (int, error) {
	n, err := o.Object.Read(p)
	if err != nil && err != io.EOF && isNotFound(err) {
		err = fmt.Errorf("blob: read %s: %w", o.info.Key, ErrNotFound)
	}
	return n, err
}

// Stat heads the object.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	info, _, err := s.stat(ctx, key)
	return info, err
}

// stat returns the object's Info and ETag.
func (s *S3) stat(ctx context.Context, key string) (Info, string, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	oi, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, "", s.mapErr("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, ContentType: oi.ContentType}, oi.ETag, nil
}

// Delete removes the object; S3 itself treats a missing key as success.
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// List lists the objects under prefix.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var out []Info
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("blob: list %q: %w", prefix, oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if strings.HasSuffix(key, "/") || checkKey(key) != nil {
			continue // a directory marker or a foreign object
		}
		out = append(out, Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, ContentType: oi.ContentType})
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Check writes, reads and deletes a probe object.
func (s *S3) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return check(ctx, s)
}

func (s *S3) mapErr(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("blob: %s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("blob: %s %s: %w", op, key, err)
}

func isNotFound(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket
}

// exactReader fails with io.ErrUnexpectedEOF when r ends before left bytes
// and stops after them.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && e.left == 0 {
		err = io.EOF
	}
	return n, err
}

// watchdog calls cancel when kick has not been called for d.
type watchdog struct {
	t    *time.Timer
	d    time.Duration
	mu   sync.Mutex // guards done
	done bool
}

func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
		cancel()
	})
	return w
}

func (w *watchdog) kick() { w.t.Reset(w.d) }
func (w *watchdog) stop() { w.t.Stop() }
func (w *watchdog) fired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}

// progressReader kicks the watchdog whenever data arrives.
type progressReader struct {
	r  io.Reader
	wd *watchdog
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.wd.kick()
	}
	return n, err
}
