package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/config"
)

// valid returns the defaults plus the one setting that has no default.
func valid() *config.Config {
	c := config.Default()
	c.SqlSettings.DataSource = testDSN
	return c
}

// tlsOn makes the API listener serve HTTPS.
func tlsOn(c *config.Config) {
	s := &c.ServiceSettings
	s.ConnectionSecurity, s.TLSCertFile, s.TLSKeyFile = config.ConnectionSecurityTLS, "/etc/garrison/tls/app1.crt", "/etc/garrison/tls/app1.key"
}

func TestDefaultValidatesExceptDataSource(t *testing.T) {
	t.Parallel()
	err := config.Default().Validate()
	require.Equal(t, []string{"SqlSettings.DataSource"}, fieldErrors(t, err).Fields())
	require.NoError(t, valid().Validate())
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *config.Config)
		want   []string // bad fields; nil means valid
	}{
		{"defaults", func(*config.Config) {}, nil},
		{"https site URL with a path", func(c *config.Config) { c.ServiceSettings.SiteURL = "https://chat.example.mil/team" }, nil},
		{"http site URL with a port", func(c *config.Config) { c.ServiceSettings.SiteURL = "http://10.0.0.1:8065" }, nil},
		{"relative site URL", func(c *config.Config) { c.ServiceSettings.SiteURL = "chat.example.mil" }, []string{"ServiceSettings.SiteURL"}},
		{"ftp site URL", func(c *config.Config) { c.ServiceSettings.SiteURL = "ftp://chat.example.mil" }, []string{"ServiceSettings.SiteURL"}},
		{"site URL with a query", func(c *config.Config) { c.ServiceSettings.SiteURL = "https://chat.example.mil/?a=b" }, []string{"ServiceSettings.SiteURL"}},
		{"site URL with user info", func(c *config.Config) { c.ServiceSettings.SiteURL = "https://u:p@chat.example.mil" }, []string{"ServiceSettings.SiteURL"}},
		{"site URL without host", func(c *config.Config) { c.ServiceSettings.SiteURL = "https:///x" }, []string{"ServiceSettings.SiteURL"}},
		{"listen on host and port", func(c *config.Config) { c.ServiceSettings.ListenAddress = "[::1]:0" }, nil},
		{"listen without port", func(c *config.Config) { c.ServiceSettings.ListenAddress = "localhost" }, []string{"ServiceSettings.ListenAddress"}},
		// TLS on the API listener.
		{"tls", tlsOn, nil},
		{"tls 1.3 only", func(c *config.Config) { tlsOn(c); c.ServiceSettings.TLSMinVer = "1.3" }, nil},
		{"tls in lower case", func(c *config.Config) { tlsOn(c); c.ServiceSettings.ConnectionSecurity = "tls" },
			[]string{"ServiceSettings.ConnectionSecurity"}},
		{"starttls", func(c *config.Config) { c.ServiceSettings.ConnectionSecurity = "STARTTLS" },
			[]string{"ServiceSettings.ConnectionSecurity"}},
		{"tls without files", func(c *config.Config) { c.ServiceSettings.ConnectionSecurity = "TLS" },
			[]string{"ServiceSettings.TLSCertFile", "ServiceSettings.TLSKeyFile"}},
		{"tls without key", func(c *config.Config) { tlsOn(c); c.ServiceSettings.TLSKeyFile = " " },
			[]string{"ServiceSettings.TLSKeyFile"}},
		{"tls 1.1", func(c *config.Config) { tlsOn(c); c.ServiceSettings.TLSMinVer = "1.1" },
			[]string{"ServiceSettings.TLSMinVer"}},
		{"tls without version", func(c *config.Config) { tlsOn(c); c.ServiceSettings.TLSMinVer = "" },
			[]string{"ServiceSettings.TLSMinVer"}},
		{"tls settings ignored when off", func(c *config.Config) {
			tlsOn(c)
			c.ServiceSettings.ConnectionSecurity, c.ServiceSettings.TLSMinVer, c.ServiceSettings.TLSKeyFile = "", "1.0", ""
		}, nil},
		{"webserver mode", func(c *config.Config) { c.ServiceSettings.WebserverMode = "brotli" }, []string{"ServiceSettings.WebserverMode"}},
		{"timeouts", func(c *config.Config) {
			c.ServiceSettings.ReadTimeout, c.ServiceSettings.WriteTimeout, c.ServiceSettings.IdleTimeout = 0, -1, 0
		}, []string{"ServiceSettings.ReadTimeout", "ServiceSettings.WriteTimeout", "ServiceSettings.IdleTimeout"}},
		{"post edit limit below -1", func(c *config.Config) { c.ServiceSettings.PostEditTimeLimit = -2 }, []string{"ServiceSettings.PostEditTimeLimit"}},
		{"empty site name", func(c *config.Config) { c.TeamSettings.SiteName = "" }, []string{"TeamSettings.SiteName"}},
		{"no users per team", func(c *config.Config) { c.TeamSettings.MaxUsersPerTeam = 0 }, []string{"TeamSettings.MaxUsersPerTeam"}},
		{"mysql", func(c *config.Config) { c.SqlSettings.DriverName = "mysql" }, []string{"SqlSettings.DriverName"}},
		{"blank data source", func(c *config.Config) { c.SqlSettings.DataSource = "  " }, []string{"SqlSettings.DataSource"}},
		{"empty replica", func(c *config.Config) {
			c.SqlSettings.DataSourceReplicas = []string{"postgres://u@r1/db", ""}
			c.SqlSettings.DataSourceSearchReplicas = []string{""}
		}, []string{"SqlSettings.DataSourceReplicas", "SqlSettings.DataSourceSearchReplicas"}},
		{"cluster", func(c *config.Config) {
			k := &c.ClusterSettings
			k.Enable, k.ClusterName, k.BindAddress, k.AdvertiseAddress = true, "site", "0.0.0.0", "10.0.0.11"
			k.EnableGossipEncryption, k.GossipEncryptionKey = true, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		}, nil},
		{"metrics", func(c *config.Config) { c.MetricsSettings.Enable = true }, nil},
		{"metrics on the API port", func(c *config.Config) {
			c.MetricsSettings.Enable, c.MetricsSettings.ListenAddress = true, ":8065"
		}, []string{"MetricsSettings.ListenAddress"}},
		{"metrics without port", func(c *config.Config) {
			c.MetricsSettings.Enable, c.MetricsSettings.ListenAddress = true, "localhost"
		}, []string{"MetricsSettings.ListenAddress"}},
		{"cluster settings ignored when off", func(c *config.Config) { c.ClusterSettings.GossipPort = 0 }, nil},
		{"bad cluster", func(c *config.Config) {
			k := &c.ClusterSettings
			k.Enable, k.GossipPort, k.BindAddress, k.AdvertiseAddress = true, 70000, "eth0", "node1"
			k.EnableGossipEncryption, k.GossipEncryptionKey = true, "c2hvcnQ="
		}, []string{"ClusterSettings.ClusterName", "ClusterSettings.GossipPort", "ClusterSettings.BindAddress",
			"ClusterSettings.AdvertiseAddress", "ClusterSettings.GossipEncryptionKey"}},
		{"gossip key not base64", func(c *config.Config) {
			k := &c.ClusterSettings
			k.Enable, k.ClusterName, k.EnableGossipEncryption, k.GossipEncryptionKey = true, "site", true, "not base64!"
		}, []string{"ClusterSettings.GossipEncryptionKey"}},
		{"no open conns", func(c *config.Config) { c.SqlSettings.MaxOpenConns = 0 }, []string{"SqlSettings.MaxOpenConns"}},
		{"no query timeout", func(c *config.Config) { c.SqlSettings.QueryTimeout = 0 }, []string{"SqlSettings.QueryTimeout"}},
		{"replica reads off", func(c *config.Config) { c.SqlSettings.ReplicaLagMaxMilliseconds = 0 }, nil},
		{"negative replica lag", func(c *config.Config) { c.SqlSettings.ReplicaLagMaxMilliseconds = -1 }, []string{"SqlSettings.ReplicaLagMaxMilliseconds"}},
		{"s3", func(c *config.Config) {
			c.FileSettings.DriverName, c.FileSettings.Directory, c.FileSettings.AmazonS3Bucket = "amazons3", "", "files"
		}, nil},
		{"s3 without bucket and endpoint", func(c *config.Config) {
			c.FileSettings.DriverName, c.FileSettings.AmazonS3Endpoint = "amazons3", ""
		}, []string{"FileSettings.AmazonS3Bucket", "FileSettings.AmazonS3Endpoint"}},
		{"s3 endpoint with a scheme", func(c *config.Config) {
			c.FileSettings.DriverName, c.FileSettings.AmazonS3Bucket, c.FileSettings.AmazonS3Endpoint = "amazons3", "b", "https://minio:9000"
		}, []string{"FileSettings.AmazonS3Endpoint"}},
		{"s3 access key without secret", func(c *config.Config) {
			c.FileSettings.DriverName, c.FileSettings.AmazonS3Bucket, c.FileSettings.AmazonS3AccessKeyId = "amazons3", "b", "AKIA"
		}, []string{"FileSettings.AmazonS3SecretAccessKey"}},
		{"s3 limits", func(c *config.Config) {
			c.FileSettings.AmazonS3RequestTimeoutMilliseconds, c.FileSettings.AmazonS3UploadPartSizeBytes = 0, 1<<20
			c.FileSettings.MaxImageDecoderConcurrency = 0
		}, []string{"FileSettings.MaxImageDecoderConcurrency", "FileSettings.AmazonS3RequestTimeoutMilliseconds", "FileSettings.AmazonS3UploadPartSizeBytes"}},
		{"file driver", func(c *config.Config) { c.FileSettings.DriverName = "gcs" }, []string{"FileSettings.DriverName"}},
		{"local without directory", func(c *config.Config) { c.FileSettings.Directory = "" }, []string{"FileSettings.Directory"}},
		{"password length bounds", func(c *config.Config) { c.PasswordSettings.MinimumLength = 5 }, nil},
		{"password too short", func(c *config.Config) { c.PasswordSettings.MinimumLength = 4 }, []string{"PasswordSettings.MinimumLength"}},
		{"password too long", func(c *config.Config) { c.PasswordSettings.MinimumLength = 73 }, []string{"PasswordSettings.MinimumLength"}},
		{"rate limits", func(c *config.Config) {
			c.RateLimitSettings.PerSec, c.RateLimitSettings.MaxBurst, c.RateLimitSettings.MemoryStoreSize = 0, -1, 0
		}, []string{"RateLimitSettings.PerSec", "RateLimitSettings.MaxBurst", "RateLimitSettings.MemoryStoreSize"}},
		{"log levels in any case", func(c *config.Config) { c.LogSettings.ConsoleLevel, c.LogSettings.FileLevel = "debug", "Warn" }, nil},
		{"bad log levels", func(c *config.Config) { c.LogSettings.ConsoleLevel, c.LogSettings.FileLevel = "TRACE", "" },
			[]string{"LogSettings.ConsoleLevel", "LogSettings.FileLevel"}},
		// Push notifications (issue 5).
		{"push off ignores the server", func(c *config.Config) { c.EmailSettings.PushNotificationServer = "not a url" }, nil},
		{"push on with a proxy and its secret", func(c *config.Config) {
			c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, "https://garrison:s3cret@push.site.example:8066"
		}, nil},
		{"push on over http without a secret", func(c *config.Config) {
			c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, "http://10.0.0.5:8066/"
		}, nil},
		{"push on without a server", func(c *config.Config) { c.EmailSettings.SendPushNotifications = true },
			[]string{"EmailSettings.PushNotificationServer"}},
		{"push server without scheme", func(c *config.Config) {
			c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, "push.site.example:8066"
		}, []string{"EmailSettings.PushNotificationServer"}},
		{"push server over ws", func(c *config.Config) {
			c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, "wss://push.site.example"
		}, []string{"EmailSettings.PushNotificationServer"}},
		{"push server without host", func(c *config.Config) {
			c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, "https:///api"
		}, []string{"EmailSettings.PushNotificationServer"}},
		{"push server with the secret as user name", func(c *config.Config) {
			c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, "https://s3cret@push.site.example"
		}, []string{"EmailSettings.PushNotificationServer"}},
		{"push server with a query", func(c *config.Config) {
			c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, "https://push.site.example/?x=1"
		}, []string{"EmailSettings.PushNotificationServer"}},
		{"push contents", func(c *config.Config) { c.EmailSettings.PushNotificationContents = "everything" },
			[]string{"EmailSettings.PushNotificationContents"}},
		{"push contents of Mattermost", func(c *config.Config) { c.EmailSettings.PushNotificationContents = "generic_no_channel" }, nil},
		{"push buffer", func(c *config.Config) { c.EmailSettings.PushNotificationBuffer = 0 },
			[]string{"EmailSettings.PushNotificationBuffer"}},
		{"everything at once", func(c *config.Config) {
			c.ServiceSettings.WebserverMode = ""
			c.SqlSettings.DataSource = ""
			c.FileSettings.MaxFileSize = 0
		}, []string{"ServiceSettings.WebserverMode", "SqlSettings.DataSource", "FileSettings.MaxFileSize"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.modify(c)
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.want, fieldErrors(t, err).Fields())
		})
	}
}

func TestFieldErrorsMessage(t *testing.T) {
	t.Parallel()
	errs := config.FieldErrors{
		{Field: "SqlSettings.DataSource", Msg: "is required"},
		{Field: "ServiceSettings.ReadTimeout", Msg: "must be at least 1, got 0"},
	}
	require.Equal(t, "SqlSettings.DataSource: is required\nServiceSettings.ReadTimeout: must be at least 1, got 0", errs.Error())
}

func TestTLSErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *config.Config)
		want   string
	}{
		{"bad value", func(c *config.Config) { c.ServiceSettings.ConnectionSecurity = "SSL" },
			`ServiceSettings.ConnectionSecurity: must be "" (plain HTTP) or "TLS" (HTTPS), got "SSL"`},
		{"missing certificate", func(c *config.Config) { tlsOn(c); c.ServiceSettings.TLSCertFile = "" },
			`ServiceSettings.TLSCertFile: is required when ConnectionSecurity is "TLS"`},
		{"missing key", func(c *config.Config) { tlsOn(c); c.ServiceSettings.TLSKeyFile = "" },
			`ServiceSettings.TLSKeyFile: is required when ConnectionSecurity is "TLS"`},
		{"old version", func(c *config.Config) { tlsOn(c); c.ServiceSettings.TLSMinVer = "1.0" },
			`ServiceSettings.TLSMinVer: must be one of 1.2, 1.3, got "1.0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.modify(c)
			require.ErrorContains(t, c.Validate(), tt.want)
		})
	}
}

func TestPushServerErrorsHideTheSecret(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"ftp://garrison:s3cret@push.site.example", "https://garrison:s3cret@push.site.example/?q", "https://s3cret@push.site.example",
		"https://garrison:s3cret@[::1", "garrison:s3cret@push.site.example",
	} {
		c := valid()
		c.EmailSettings.SendPushNotifications, c.EmailSettings.PushNotificationServer = true, u
		err := c.Validate()
		require.Equal(t, []string{"EmailSettings.PushNotificationServer"}, fieldErrors(t, err).Fields(), u)
		require.NotContains(t, err.Error(), "s3cret", u)
	}
}
