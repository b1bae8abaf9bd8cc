package config_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/config"
)

const fake = config.FakeSetting

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dsn, want string
	}{
		{"empty", "", ""},
		{
			"URL",
			"postgres://mmuser:mostest@localhost/mattermost?sslmode=disable&connect_timeout=10",
			"postgres://mmuser:" + fake + "@localhost/mattermost?sslmode=disable&connect_timeout=10",
		},
		{
			"URL with several hosts",
			"postgresql://garrison:s3cret@db1:5432,db2:5432/garrison?target_session_attrs=read-write",
			"postgresql://garrison:" + fake + "@db1:5432,db2:5432/garrison?target_session_attrs=read-write",
		},
		{
			"URL with escaped password",
			"postgres://u:p%40ss%3Aw%2Fo@h/db",
			"postgres://u:" + fake + "@h/db",
		},
		{
			"URL with password in the query",
			"postgres://u@h/db?sslmode=verify-full&password=s3cret&sslpassword=k3y#frag",
			"postgres://u@h/db?sslmode=verify-full&password=" + fake + "&sslpassword=" + fake + "#frag",
		},
		{"URL without password", "postgres://u@h/db?sslmode=disable", "postgres://u@h/db?sslmode=disable"},
		{"URL with empty password", "postgres://u:@/db?host=/run/postgresql", "postgres://u:" + fake + "@/db?host=/run/postgresql"},
		{"URL that does not parse", "postgres://u:p%zz@h/db", fake},
		{"key=value", "host=db user=garrison password=s3cret dbname=garrison", "host=db user=garrison password=" + fake + " dbname=garrison"},
		{
			"key=value quoted with spaces and escapes",
			`host = db  password = 'it\'s a s3cret' sslpassword=k\ 3y sslmode=verify-full`,
			`host = db  password = ` + fake + ` sslpassword=` + fake + ` sslmode=verify-full`,
		},
		{"key=value without password", "host=/run/postgresql dbname=garrison", "host=/run/postgresql dbname=garrison"},
		{"key=value unterminated quote", "host=db password='s3cret", fake},
		{"not a DSN", "s3cret", fake},
		{"mysql style", "mmuser:s3cret@tcp(db:3306)/mattermost?charset=utf8mb4", fake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := config.RedactDSN(tt.dsn)
			require.Equal(t, tt.want, got)
			require.NotRegexp(t, regexp.MustCompile(`s3cret|k3y|mostest|p%40ss`), got)
		})
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	c := valid()
	c.SqlSettings.DataSource = "postgres://garrison:primary-pw@db1,db2/garrison"
	c.SqlSettings.DataSourceReplicas = []string{"host=r1 user=garrison password='replica pw'"}
	c.SqlSettings.DataSourceSearchReplicas = []string{"postgres://garrison:search-pw@r2/garrison"}
	c.EmailSettings.PushNotificationServer = "https://garrison:push-secret@push.site.example:8066" // Push (issue 5)
	before := c.Hash()

	r := c.Redacted()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	for _, pw := range []string{"primary-pw", "replica pw", "search-pw", "push-secret"} {
		require.NotContains(t, string(b), pw)
	}
	require.Equal(t, "postgres://garrison:"+fake+"@db1,db2/garrison", r.SqlSettings.DataSource)
	require.Equal(t, "https://garrison:"+fake+"@push.site.example:8066", r.EmailSettings.PushNotificationServer)
	require.Equal(t, []string{"host=r1 user=garrison password=" + fake}, r.SqlSettings.DataSourceReplicas)
	require.Equal(t, []string{"postgres://garrison:" + fake + "@r2/garrison"}, r.SqlSettings.DataSourceSearchReplicas)

	// The original is untouched: the copy shares no slices.
	require.Equal(t, before, c.Hash())
	require.Equal(t, "host=r1 user=garrison password='replica pw'", c.SqlSettings.DataSourceReplicas[0])

	// Logging a *Config logs the redacted copy.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config loaded", "config", c)
	require.Contains(t, buf.String(), "db1,db2")
	for _, pw := range []string{"primary-pw", "replica pw", "search-pw", "push-secret"} {
		require.NotContains(t, buf.String(), pw)
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	a, b := valid(), valid()
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), a.Hash())
	require.Equal(t, a.Hash(), b.Hash())

	// A nil list and an empty one are the same setting.
	b.SqlSettings.DataSourceReplicas = nil
	require.Equal(t, a.Hash(), b.Hash())

	b.ServiceSettings.EnableDeveloper = true
	require.NotEqual(t, a.Hash(), b.Hash())

	// The secret is part of the hash: nodes with different databases must not agree.
	c := valid()
	c.SqlSettings.DataSource = strings.Replace(testDSN, "s3cret", "other", 1)
	require.NotEqual(t, a.Hash(), c.Hash())

	// Per-node cluster settings do not count; shared ones do.
	d := valid()
	d.ClusterSettings.AdvertiseAddress, d.ClusterSettings.BindAddress, d.ClusterSettings.OverrideHostname = "10.0.0.12", "10.0.0.12", "app2"
	d.ServiceSettings.ListenAddress = "10.0.0.12:8065"
	d.ServiceSettings.TLSCertFile, d.ServiceSettings.TLSKeyFile = "/etc/garrison/tls/app2.crt", "/etc/garrison/tls/app2.key"
	require.Equal(t, a.Hash(), d.Hash())
	require.Equal(t, "10.0.0.12", d.ClusterSettings.AdvertiseAddress, "hashing leaves the config alone")
	d.ClusterSettings.ClusterName = "other"
	require.NotEqual(t, a.Hash(), d.Hash())

	// A node left on plain HTTP, or on another TLS floor, differs.
	for _, f := range []func(s *config.ServiceSettings){
		func(s *config.ServiceSettings) { s.ConnectionSecurity = config.ConnectionSecurityTLS },
		func(s *config.ServiceSettings) { s.TLSMinVer = "1.3" },
	} {
		e := valid()
		f(&e.ServiceSettings)
		require.NotEqual(t, a.Hash(), e.Hash())
	}
}

// FuzzRedactDSN checks that RedactDSN never panics and that redacting twice changes nothing.
func FuzzRedactDSN(f *testing.F) {
	for _, seed := range []string{
		"", testDSN, "host=db password='a\\'b'", "postgres://u:p@h/db?password=x#y", "a://", "x=", "password=\\",
		"postgres://[::1]:5432/db", "?password=a://",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		once := config.RedactDSN(dsn)
		if twice := config.RedactDSN(once); twice != once {
			t.Fatalf("RedactDSN(%q) = %q, but RedactDSN of that = %q", dsn, once, twice)
		}
	})
}
