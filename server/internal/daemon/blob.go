package daemon

import (
	"time"

	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/config"
)

// blobOptions maps FileSettings to the blob store's options.
func blobOptions(f config.FileSettings) blob.Options {
	return blob.Options{
		DriverName: f.DriverName,
		Directory:  f.Directory,
		S3: blob.S3Options{
			Endpoint:       f.AmazonS3Endpoint,
			AccessKey:      f.AmazonS3AccessKeyId,
			SecretKey:      f.AmazonS3SecretAccessKey,
			Bucket:         f.AmazonS3Bucket,
			PathPrefix:     f.AmazonS3PathPrefix,
			Region:         f.AmazonS3Region,
			SSL:            f.AmazonS3SSL,
			SignV2:         f.AmazonS3SignV2,
			SSE:            f.AmazonS3SSE,
			Trace:          f.AmazonS3Trace,
			RequestTimeout: time.Duration(f.AmazonS3RequestTimeoutMilliseconds) * time.Millisecond,
			PartSize:       f.AmazonS3UploadPartSizeBytes,
		},
	}
}
