package config_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/config"
)

func TestFileStoreSettings(t *testing.T) {
	t.Parallel()
	d := config.Default().FileSettings
	// Mattermost's defaults.
	require.Equal(t, "s3.amazonaws.com", d.AmazonS3Endpoint)
	require.True(t, d.AmazonS3SSL)
	require.Equal(t, int64(30000), d.AmazonS3RequestTimeoutMilliseconds)
	require.Equal(t, int64(5242880), d.AmazonS3UploadPartSizeBytes)
	require.Equal(t, int64(33177600), d.MaxImageResolution)
	require.Equal(t, int64(-1), d.MaxImageDecoderConcurrency)
	require.True(t, d.EnableMobileUpload)
	require.True(t, d.EnableMobileDownload)

	c := valid()
	c.FileSettings.AmazonS3AccessKeyId = "garrison-access"
	c.FileSettings.AmazonS3SecretAccessKey = "very-secret-s3-key"
	r := c.Redacted()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.NotContains(t, string(b), "very-secret-s3-key")
	require.Equal(t, config.FakeSetting, r.FileSettings.AmazonS3SecretAccessKey)
	require.Equal(t, "garrison-access", r.FileSettings.AmazonS3AccessKeyId)
}
