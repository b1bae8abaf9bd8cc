package daemon

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/config"
)

func TestBlobOptions(t *testing.T) {
	t.Parallel()
	f := config.Default().FileSettings
	f.DriverName, f.AmazonS3Bucket, f.AmazonS3PathPrefix, f.AmazonS3Region = "amazons3", "files", "g/", "eu-west-1"
	f.AmazonS3AccessKeyId, f.AmazonS3SecretAccessKey = "ak", "sk"
	f.AmazonS3SignV2, f.AmazonS3SSE, f.AmazonS3Trace = true, true, true
	require.Equal(t, blob.Options{
		DriverName: "amazons3",
		Directory:  "./data/",
		S3: blob.S3Options{
			Endpoint: "s3.amazonaws.com", AccessKey: "ak", SecretKey: "sk", Bucket: "files", PathPrefix: "g/",
			Region: "eu-west-1", SSL: true, SignV2: true, SSE: true, Trace: true,
			RequestTimeout: 30 * time.Second, PartSize: 5 << 20,
		},
	}, blobOptions(f))
}
