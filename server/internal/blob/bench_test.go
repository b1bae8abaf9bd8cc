package blob_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/miniotest"
	"github.com/garrison-chat/garrison/server/internal/blob"
)

// benchSize is the object size of BenchmarkPutGet10MB (issue 3: upload and
// download throughput of a 10 MB file).
const benchSize = 10 << 20

// BenchmarkPutGet10MB measures Put and Open+read of one 10 MB object on the
// local store and on S3 against a real MinIO (skipped when the binary is
// missing, a failure under CI=true). Run with `make bench-files`; the MB/s
// column is the throughput.
func BenchmarkPutGet10MB(b *testing.B) {
	data := make([]byte, benchSize)
	_, _ = rand.Read(data) // incompressible, like most attachments
	stores := []struct {
		name string
		open func(b *testing.B) blob.Store
	}{
		{"local", func(b *testing.B) blob.Store {
			s, err := blob.NewLocal(b.TempDir())
			require.NoError(b, err)
			return s
		}},
		{"s3", func(b *testing.B) blob.Store {
			srv := miniotest.Start(b)
			s, err := blob.NewS3(b.Context(), blob.S3Options{
				Endpoint:       srv.Endpoint,
				AccessKey:      srv.AccessKey,
				SecretKey:      srv.SecretKey,
				Bucket:         fmt.Sprintf("garrison-bench-%d", bucketSeq.Add(1)),
				RequestTimeout: time.Minute,
			})
			require.NoError(b, err)
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			const key = "bench/10mb.bin"
			b.Run("put", func(b *testing.B) {
				b.SetBytes(benchSize)
				for b.Loop() {
					require.NoError(b, s.Put(b.Context(), key, bytes.NewReader(data), benchSize, "application/octet-stream"))
				}
			})
			// get reads what put left (or writes it when only get runs).
			require.NoError(b, s.Put(b.Context(), key, bytes.NewReader(data), benchSize, "application/octet-stream"))
			b.Run("get", func(b *testing.B) {
				b.SetBytes(benchSize)
				for b.Loop() {
					obj, err := s.Open(b.Context(), key)
					require.NoError(b, err)
					n, err := io.Copy(io.Discard, obj)
					require.NoError(b, obj.Close())
					require.NoError(b, err)
					require.Equal(b, int64(benchSize), n)
				}
			})
		})
	}
}
