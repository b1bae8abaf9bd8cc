package config_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/config"
)

const testDSN = "postgres://garrison:s3cret@db1:5432,db2:5432/garrison?target_session_attrs=read-write"

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes data to a config file in a fresh directory and returns its path.
func writeFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	return path
}

// fieldErrors extracts the FieldErrors from err.
func fieldErrors(t *testing.T, err error) config.FieldErrors {
	t.Helper()
	var fe config.FieldErrors
	require.ErrorAs(t, err, &fe)
	return fe
}

// logRecords decodes the JSON log lines in buf.
func logRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var records []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var r map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		records = append(records, r)
	}
	require.NoError(t, sc.Err())
	return records
}

func TestLoadMattermostConfig(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	path := filepath.Join("testdata", "mattermost-config.json")

	cfg, err := config.Load(path, env(nil), logger)
	require.NoError(t, err)

	// Values from the file.
	require.Equal(t, "https://chat.example.mil", cfg.ServiceSettings.SiteURL)
	require.Equal(t, []string{"X-Forwarded-For", "X-Real-IP"}, cfg.ServiceSettings.TrustedProxyIPHeader)
	require.Equal(t, "Mattermost", cfg.TeamSettings.SiteName)
	require.Equal(t, 50, cfg.TeamSettings.MaxUsersPerTeam)
	require.Equal(t, int64(2000), cfg.TeamSettings.MaxChannelsPerTeam)
	require.Equal(t, "postgres://mmuser:mostest@localhost/mattermost_test?sslmode=disable&connect_timeout=10&binary_parameters=yes", cfg.SqlSettings.DataSource)
	require.Equal(t, 300, cfg.SqlSettings.MaxOpenConns)
	require.Equal(t, "debug", cfg.LogSettings.ConsoleLevel)
	require.True(t, cfg.LogSettings.EnableFile)
	// null keeps the default.
	require.Equal(t, []string{}, cfg.SqlSettings.DataSourceSearchReplicas)
	require.True(t, cfg.PrivacySettings.ShowFullName)
	// Mattermost's listener TLS settings, off as in a stock file.
	require.Equal(t, config.ConnectionSecurityNone, cfg.ServiceSettings.ConnectionSecurity)
	require.Equal(t, "1.2", cfg.ServiceSettings.TLSMinVer)

	records := logRecords(t, &buf)
	require.Len(t, records, 1, "exactly one log record")
	rec := records[0]
	require.Equal(t, "WARN", rec["level"])
	require.Equal(t, path, rec["path"])
	var ignored []string
	for _, v := range rec["ignored"].([]any) {
		ignored = append(ignored, v.(string))
	}
	require.True(t, slices.IsSorted(ignored), "ignored is sorted: %v", ignored)
	for _, want := range []string{
		"AnnouncementSettings", "CloudSettings", "PluginSettings", "ClusterSettings.UseIPAddress",
		"ServiceSettings.WebsocketURL", "ServiceSettings.SessionLengthSSOInHours",
		"ServiceSettings.TLSStrictTransport", "ServiceSettings.TLSOverwriteCiphers", "ServiceSettings.UseLetsEncrypt",
		"SqlSettings.AtRestEncryptKey", "LogSettings.AdvancedLoggingJSON", "EmailSettings.SMTPPassword",
	} {
		require.Contains(t, ignored, want)
	}
	for _, name := range ignored {
		// A wholly unknown section is named once, without its fields.
		require.False(t, strings.HasPrefix(name, "PluginSettings."), name)
		// Nothing Garrison reads is reported as ignored.
		require.NotContains(t, []string{"ServiceSettings", "SqlSettings", "ServiceSettings.SiteURL", "SqlSettings.DataSourceSearchReplicas", "PrivacySettings.ShowFullName",
			"ServiceSettings.ConnectionSecurity", "ServiceSettings.TLSCertFile", "ServiceSettings.TLSKeyFile", "ServiceSettings.TLSMinVer"}, name)
	}
}

func TestLoadWithoutUnknownSettingsDoesNotWarn(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	path := writeFile(t, `{"SqlSettings": {"DataSource": "postgres://u@h/db"}, "TeamSettings": null}`)

	cfg, err := config.Load(path, env(nil), logger)
	require.NoError(t, err)
	require.Equal(t, "postgres://u@h/db", cfg.SqlSettings.DataSource)
	require.Empty(t, logRecords(t, &buf))
}

func TestLoadEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string // "" means no file
		env   map[string]string
		check func(t *testing.T, c *config.Config)
	}{
		{
			name: "string",
			env:  map[string]string{"MM_SERVICESETTINGS_LISTENADDRESS": "127.0.0.1:9000"},
			check: func(t *testing.T, c *config.Config) {
				require.Equal(t, "127.0.0.1:9000", c.ServiceSettings.ListenAddress)
			},
		},
		{
			name: "string overrides the file",
			file: `{"SqlSettings": {"DataSource": "postgres://file@h/db"}, "ServiceSettings": {"SiteURL": "https://file.example"}}`,
			env:  map[string]string{"MM_SERVICESETTINGS_SITEURL": "https://env.example/chat"},
			check: func(t *testing.T, c *config.Config) {
				require.Equal(t, "https://env.example/chat", c.ServiceSettings.SiteURL)
				require.Equal(t, "postgres://file@h/db", c.SqlSettings.DataSource)
			},
		},
		{
			name: "bool",
			env:  map[string]string{"MM_SERVICESETTINGS_ENABLEDEVELOPER": "true", "MM_PRIVACYSETTINGS_SHOWEMAILADDRESS": "0"},
			check: func(t *testing.T, c *config.Config) {
				require.True(t, c.ServiceSettings.EnableDeveloper)
				require.False(t, c.PrivacySettings.ShowEmailAddress)
			},
		},
		{
			name: "int and int64",
			env:  map[string]string{"MM_SQLSETTINGS_MAXOPENCONNS": "7", "MM_FILESETTINGS_MAXFILESIZE": "5000000000", "MM_SERVICESETTINGS_POSTEDITTIMELIMIT": "-1"},
			check: func(t *testing.T, c *config.Config) {
				require.Equal(t, 7, c.SqlSettings.MaxOpenConns)
				require.Equal(t, int64(5000000000), c.FileSettings.MaxFileSize)
				require.Equal(t, -1, c.ServiceSettings.PostEditTimeLimit)
			},
		},
		{
			name: "list split on white space",
			file: `{"SqlSettings": {"DataSourceReplicas": ["postgres://file@r/db"]}}`,
			env: map[string]string{
				"MM_SQLSETTINGS_DATASOURCEREPLICAS":           "postgres://u@r1/db  postgres://u@r2/db",
				"MM_TEAMSETTINGS_EXPERIMENTALDEFAULTCHANNELS": "off-topic\tannouncements",
			},
			check: func(t *testing.T, c *config.Config) {
				require.Equal(t, []string{"postgres://u@r1/db", "postgres://u@r2/db"}, c.SqlSettings.DataSourceReplicas)
				require.Equal(t, []string{"off-topic", "announcements"}, c.TeamSettings.ExperimentalDefaultChannels)
			},
		},
		{
			name: "push settings",
			env: map[string]string{
				"MM_EMAILSETTINGS_SENDPUSHNOTIFICATIONS":    "true",
				"MM_EMAILSETTINGS_PUSHNOTIFICATIONSERVER":   "https://garrison:s3cret@push.site.example:8066",
				"MM_EMAILSETTINGS_PUSHNOTIFICATIONCONTENTS": "full",
				"MM_EMAILSETTINGS_PUSHNOTIFICATIONBUFFER":   "50",
			},
			check: func(t *testing.T, c *config.Config) {
				e := c.EmailSettings
				require.True(t, e.SendPushNotifications)
				require.Equal(t, "https://garrison:s3cret@push.site.example:8066", e.PushNotificationServer)
				require.Equal(t, "full", e.PushNotificationContents)
				require.Equal(t, 50, e.PushNotificationBuffer)
			},
		},
		{
			name: "push defaults",
			check: func(t *testing.T, c *config.Config) {
				e := c.EmailSettings
				require.False(t, e.SendPushNotifications)
				require.Empty(t, e.PushNotificationServer)
				require.Equal(t, config.PushContentsIDLoaded, e.PushNotificationContents)
				require.Equal(t, 1000, e.PushNotificationBuffer)
			},
		},
		{
			name: "tls",
			env: map[string]string{
				"MM_SERVICESETTINGS_CONNECTIONSECURITY": "TLS",
				"MM_SERVICESETTINGS_TLSCERTFILE":        "/etc/garrison/tls/app1.crt",
				"MM_SERVICESETTINGS_TLSKEYFILE":         "/etc/garrison/tls/app1.key",
				"MM_SERVICESETTINGS_TLSMINVER":          "1.3",
			},
			check: func(t *testing.T, c *config.Config) {
				s := c.ServiceSettings
				require.Equal(t, config.ConnectionSecurityTLS, s.ConnectionSecurity)
				require.Equal(t, "/etc/garrison/tls/app1.crt", s.TLSCertFile)
				require.Equal(t, "/etc/garrison/tls/app1.key", s.TLSKeyFile)
				require.Equal(t, "1.3", s.TLSMinVer)
			},
		},
		{
			name: "tls turned on over the file's files",
			file: `{"ServiceSettings": {"ConnectionSecurity": "", "TLSCertFile": "/srv/tls/a.crt", "TLSKeyFile": "/srv/tls/a.key"}}`,
			env:  map[string]string{"MM_SERVICESETTINGS_CONNECTIONSECURITY": "TLS"},
			check: func(t *testing.T, c *config.Config) {
				s := c.ServiceSettings
				require.Equal(t, config.ConnectionSecurityTLS, s.ConnectionSecurity)
				require.Equal(t, "/srv/tls/a.crt", s.TLSCertFile)
				require.Equal(t, "1.2", s.TLSMinVer, "the default")
			},
		},
		{
			name: "plain http by default",
			check: func(t *testing.T, c *config.Config) {
				require.Equal(t, config.ConnectionSecurityNone, c.ServiceSettings.ConnectionSecurity)
				require.Equal(t, "1.2", c.ServiceSettings.TLSMinVer)
			},
		},
		{
			name: "empty variable counts as unset",
			env:  map[string]string{"MM_SERVICESETTINGS_LISTENADDRESS": ""},
			check: func(t *testing.T, c *config.Config) {
				require.Equal(t, ":8065", c.ServiceSettings.ListenAddress)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			vars := map[string]string{"MM_SQLSETTINGS_DATASOURCE": testDSN}
			for k, v := range tt.env {
				vars[k] = v
			}
			if strings.Contains(tt.file, `"DataSource"`) {
				delete(vars, "MM_SQLSETTINGS_DATASOURCE")
			}
			cfg, err := config.Load(path, env(vars), nil)
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestLoadReportsEveryBadField(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `{
		"ServiceSettings": {"ReadTimeout": "300", "EnableDeveloper": 1, "TrustedProxyIPHeader": "X-Real-IP", "ListenAddress": "8065"},
		"TeamSettings": {"MaxUsersPerTeam": 1.5, "ExperimentalDefaultChannels": [1]},
		"SqlSettings": {"DataSource": 42, "MaxOpenConns": 0},
		"FileSettings": [],
		"LogSettings": {"ConsoleLevel": "verbose"},
		"ClusterSettings": {"Enable": "yes"},
		"PluginSettings": {"Enable": "yes"}
	}`)
	vars := map[string]string{
		"MM_SERVICESETTINGS_WRITETIMEOUT":       "5m",
		"MM_SERVICESETTINGS_ENABLEDEVELOPER":    "yes",
		"MM_FILESETTINGS_MAXFILESIZE":           "99999999999999999999",
		"MM_PASSWORDSETTINGS_MINIMUMLENGTH":     "4",
		"MM_RATELIMITSETTINGS_VARYBYREMOTEADDR": "maybe",
	}

	cfg, err := config.Load(path, env(vars), nil)
	require.Nil(t, cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), path)

	want := []string{
		// From the file.
		"ServiceSettings.ReadTimeout",
		"ServiceSettings.EnableDeveloper",
		"ServiceSettings.TrustedProxyIPHeader",
		"TeamSettings.MaxUsersPerTeam",
		"TeamSettings.ExperimentalDefaultChannels",
		"SqlSettings.DataSource",
		"FileSettings",
		"ClusterSettings.Enable",
		// From the environment (EnableDeveloper is bad in both places).
		"ServiceSettings.WriteTimeout",
		"ServiceSettings.EnableDeveloper",
		"FileSettings.MaxFileSize",
		"RateLimitSettings.VaryByRemoteAddr",
		// From validation.
		"ServiceSettings.ListenAddress",
		"SqlSettings.MaxOpenConns",
		"PasswordSettings.MinimumLength",
		"LogSettings.ConsoleLevel",
	}
	fe := fieldErrors(t, err)
	require.ElementsMatch(t, want, fe.Fields())
	require.Len(t, strings.Split(fe.Error(), "\n"), len(want), "one line per bad field")

	msg := err.Error()
	for _, s := range []string{
		"ServiceSettings.ReadTimeout: expected integer, got string",
		"ServiceSettings.TrustedProxyIPHeader: expected array of strings, got string",
		"TeamSettings.MaxUsersPerTeam: expected integer, got 1.5",
		"SqlSettings.DataSource: expected string, got number",
		"FileSettings: expected object, got array",
		"MM_SERVICESETTINGS_WRITETIMEOUT",
		"MM_SERVICESETTINGS_ENABLEDEVELOPER",
		"MM_FILESETTINGS_MAXFILESIZE",
		"MM_RATELIMITSETTINGS_VARYBYREMOTEADDR",
	} {
		require.Contains(t, msg, s)
	}
	// The unknown section is ignored, not validated.
	require.NotContains(t, msg, "PluginSettings")
}

// TestLoadTLSErrors: every bad TLS setting, from the file or the
// environment, is named at once.
func TestLoadTLSErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string // "" means no file
		env  map[string]string
		want []string // bad fields
		msgs []string
	}{
		{
			name: "bad value from the environment",
			env:  map[string]string{"MM_SERVICESETTINGS_CONNECTIONSECURITY": "tls"},
			want: []string{"ServiceSettings.ConnectionSecurity"},
			msgs: []string{`ServiceSettings.ConnectionSecurity: must be "" (plain HTTP) or "TLS" (HTTPS), got "tls"`},
		},
		{
			name: "tls from the environment without files",
			env:  map[string]string{"MM_SERVICESETTINGS_CONNECTIONSECURITY": "TLS"},
			want: []string{"ServiceSettings.TLSCertFile", "ServiceSettings.TLSKeyFile"},
			msgs: []string{"ServiceSettings.TLSCertFile: is required", "ServiceSettings.TLSKeyFile: is required"},
		},
		{
			name: "tls in the file without a key, an old version and a bad list",
			file: `{"ServiceSettings": {"ConnectionSecurity": "TLS", "TLSCertFile": "/srv/tls/a.crt", "TLSMinVer": "1.1", "TrustedProxyIPHeader": "X"}}`,
			want: []string{"ServiceSettings.TrustedProxyIPHeader", "ServiceSettings.TLSKeyFile", "ServiceSettings.TLSMinVer"},
			msgs: []string{`ServiceSettings.TLSMinVer: must be one of 1.2, 1.3, got "1.1"`},
		},
		{
			name: "wrong type in the file",
			file: `{"ServiceSettings": {"ConnectionSecurity": true}}`,
			want: []string{"ServiceSettings.ConnectionSecurity"},
			msgs: []string{"ServiceSettings.ConnectionSecurity: expected string, got boolean"},
		},
		{
			name: "version from the environment",
			env: map[string]string{
				"MM_SERVICESETTINGS_CONNECTIONSECURITY": "TLS", "MM_SERVICESETTINGS_TLSMINVER": "1.0",
				"MM_SERVICESETTINGS_TLSCERTFILE": "/a.crt", "MM_SERVICESETTINGS_TLSKEYFILE": "/a.key",
			},
			want: []string{"ServiceSettings.TLSMinVer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			vars := map[string]string{"MM_SQLSETTINGS_DATASOURCE": testDSN}
			for k, v := range tt.env {
				vars[k] = v
			}
			cfg, err := config.Load(path, env(vars), nil)
			require.Nil(t, cfg)
			require.ElementsMatch(t, tt.want, fieldErrors(t, err).Fields())
			for _, m := range tt.msgs {
				require.ErrorContains(t, err, m)
			}
		})
	}
}

func TestLoadBadFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want string
	}{
		{"array", `[{"SqlSettings": {}}]`, "must be a JSON object, got array"},
		{"null", `null`, "must be a JSON object, got null"},
		{"string", `"config"`, "must be a JSON object, got string"},
		{"empty", ``, "must be a JSON object, got nothing"},
		{"syntax error", "{\n  \"SqlSettings\": {,}\n}", "invalid JSON at line 2, column 19"},
		{"truncated", `{"SqlSettings": {`, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.data)
			cfg, err := config.Load(path, env(map[string]string{"MM_SQLSETTINGS_DATASOURCE": testDSN}), nil)
			require.Nil(t, cfg)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := config.Load(path, env(nil), nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, path)
}

func TestLoadAcceptsByteOrderMark(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "\xef\xbb\xbf"+`{"SqlSettings": {"DataSource": "host=db"}}`)
	cfg, err := config.Load(path, env(nil), nil)
	require.NoError(t, err)
	require.Equal(t, "host=db", cfg.SqlSettings.DataSource)
}

func TestLoadDefaultsAndEnvOnly(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", env(map[string]string{"MM_SQLSETTINGS_DATASOURCE": testDSN}), nil)
	require.NoError(t, err)
	want := config.Default()
	want.SqlSettings.DataSource = testDSN
	require.Equal(t, want, cfg)

	_, err = config.Load("", env(nil), nil)
	require.Equal(t, []string{"SqlSettings.DataSource"}, fieldErrors(t, err).Fields())
	require.ErrorContains(t, err, "MM_SQLSETTINGS_DATASOURCE")
}

func TestLookup(t *testing.T) {
	t.Parallel()
	errDenied := errors.New("permission denied")
	stat := func(existing ...string) func(string) error {
		return func(p string) error {
			if slices.Contains(existing, p) {
				return nil
			}
			if p == "denied" || slices.Contains(existing, "denied:"+p) {
				return errDenied
			}
			return fs.ErrNotExist
		}
	}
	tests := []struct {
		name    string
		flag    string
		env     map[string]string
		stat    func(string) error
		want    string
		wantErr string
	}{
		{"flag first", "/srv/a.json", map[string]string{"MM_CONFIG": "/srv/b.json"}, stat(config.LocalPath, config.SystemPath), "/srv/a.json", ""},
		{"then MM_CONFIG", "", map[string]string{"MM_CONFIG": "/srv/b.json"}, stat(config.LocalPath, config.SystemPath), "/srv/b.json", ""},
		{"then ./config/config.json", "", nil, stat(config.LocalPath, config.SystemPath), config.LocalPath, ""},
		{"then /etc/garrison/config.json", "", nil, stat(config.SystemPath), config.SystemPath, ""},
		{"else defaults", "", nil, stat(), "", ""},
		{"database DSN in MM_CONFIG", "", map[string]string{"MM_CONFIG": "postgres://u:hunter2@db/mm"}, stat(), "", "MM_CONFIG is a database DSN"},
		{"database DSN in the flag", "postgresql://u:hunter2@db/mm", nil, stat(), "", "--config is a database DSN"},
		{"stat error other than not-exist", "", nil, stat("denied:" + config.LocalPath), "", "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Lookup(tt.flag, env(tt.env), tt.stat)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// FuzzLoad feeds arbitrary bytes as the config file: Load must not panic, and whatever it
// accepts must validate.
func FuzzLoad(f *testing.F) {
	stock, err := os.ReadFile(filepath.Join("testdata", "mattermost-config.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(stock),
		`{}`, `null`, `[]`, `""`, `{"SqlSettings": null}`, `{"SqlSettings": []}`,
		`{"SqlSettings": {"DataSource": 1, "DataSourceReplicas": [null, 1]}}`,
		`{"ServiceSettings": {"ReadTimeout": 1e99, "TrustedProxyIPHeader": {}}}`,
		"\xef\xbb\xbf{}", `{"a": {"b": {"c": [1, 2, {"d": null}]}}}`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	getenv := env(map[string]string{"MM_SQLSETTINGS_DATASOURCE": "host=db password=x"})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path, getenv, nil)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a config that does not validate: %v", err)
		}
		_ = cfg.Hash()
		_ = cfg.Redacted()
	})
}
