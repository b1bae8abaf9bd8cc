package blob_test

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/miniotest"
	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/blob/blobtest"
)

// bucketSeq makes bucket names unique within the test process.
var bucketSeq atomic.Int64

func s3Options(srv *miniotest.Server, prefix string) blob.S3Options {
	return blob.S3Options{
		Endpoint:       srv.Endpoint,
		AccessKey:      srv.AccessKey,
		SecretKey:      srv.SecretKey,
		Bucket:         fmt.Sprintf("garrison-test-%d", bucketSeq.Add(1)),
		PathPrefix:     prefix,
		RequestTimeout: 20 * time.Second,
	}
}

func TestS3(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	for _, prefix := range []string{"", "garrison/data/"} {
		t.Run(fmt.Sprintf("prefix=%q", prefix), func(t *testing.T) {
			t.Parallel()
			blobtest.Run(t, func(t *testing.T) blob.Store {
				s, err := blob.NewS3(t.Context(), s3Options(srv, prefix))
				require.NoError(t, err)
				return s
			})
		})
	}
}

func TestS3Settings(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)

	t.Run("prefix confines keys", func(t *testing.T) {
		t.Parallel()
		opts := s3Options(srv, "/one/")
		one, err := blob.NewS3(t.Context(), opts)
		require.NoError(t, err)
		opts.PathPrefix = ""
		root, err := blob.NewS3(t.Context(), opts)
		require.NoError(t, err)
		opts.PathPrefix = "two"
		two, err := blob.NewS3(t.Context(), opts)
		require.NoError(t, err)

		require.NoError(t, one.Put(t.Context(), "k", bytes.NewReader([]byte("1")), 1, ""))
		require.NoError(t, two.Put(t.Context(), "k", bytes.NewReader([]byte("22")), 2, ""))
		list, err := root.List(t.Context(), "")
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "one/k", list[0].Key)
		require.Equal(t, "two/k", list[1].Key)
		list, err = one.List(t.Context(), "")
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "k", list[0].Key)
		require.Equal(t, int64(1), list[0].Size)
	})

	t.Run("bucket is created once and reused", func(t *testing.T) {
		t.Parallel()
		opts := s3Options(srv, "")
		a, err := blob.NewS3(t.Context(), opts)
		require.NoError(t, err)
		require.NoError(t, a.Put(t.Context(), "k", bytes.NewReader([]byte("x")), 1, ""))
		b, err := blob.NewS3(t.Context(), opts)
		require.NoError(t, err)
		_, err = b.Stat(t.Context(), "k")
		require.NoError(t, err)
	})

	t.Run("wrong credentials fail at start", func(t *testing.T) {
		t.Parallel()
		opts := s3Options(srv, "")
		opts.SecretKey = "wrong-secret-key"
		_, err := blob.NewS3(t.Context(), opts)
		require.Error(t, err)
	})

	t.Run("server-side encryption is requested", func(t *testing.T) {
		t.Parallel()
		// MinIO without a KMS refuses SSE-S3, which shows the header is sent.
		opts := s3Options(srv, "")
		opts.SSE = true
		s, err := blob.NewS3(t.Context(), opts)
		require.NoError(t, err)
		err = s.Put(t.Context(), "k", bytes.NewReader([]byte("x")), 1, "")
		require.Error(t, err)
	})

	t.Run("unreachable endpoint fails within the timeout", func(t *testing.T) {
		t.Parallel()
		opts := s3Options(srv, "")
		opts.Endpoint = "127.0.0.1:1"
		opts.RequestTimeout = 500 * time.Millisecond
		_, err := blob.NewS3(t.Context(), opts)
		require.Error(t, err)
	})

	t.Run("bad options", func(t *testing.T) {
		t.Parallel()
		for _, mod := range []func(*blob.S3Options){
			func(o *blob.S3Options) { o.Endpoint = "" },
			func(o *blob.S3Options) { o.Endpoint = "http://" + srv.Endpoint },
			func(o *blob.S3Options) { o.Bucket = "" },
			func(o *blob.S3Options) { o.PartSize = 1024 },
			func(o *blob.S3Options) { o.PathPrefix = "a/../b" },
		} {
			opts := s3Options(srv, "")
			mod(&opts)
			_, err := blob.NewS3(t.Context(), opts)
			require.Error(t, err)
		}
	})

	t.Run("stalled upload is cut after the timeout", func(t *testing.T) {
		t.Parallel()
		opts := s3Options(srv, "")
		opts.RequestTimeout = 300 * time.Millisecond
		s, err := blob.NewS3(t.Context(), opts)
		require.NoError(t, err)
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() { _, _ = pw.Write([]byte("first bytes, then nothing")) }()
		err = s.Put(t.Context(), "stalled", pr, -1, "")
		require.ErrorContains(t, err, "no progress")
		_, err = s.Stat(t.Context(), "stalled")
		require.ErrorIs(t, err, blob.ErrNotFound)
	})
}
