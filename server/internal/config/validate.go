package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// FieldError is one bad setting.
type FieldError struct {
	// Field is "Section.Field", e.g. "SqlSettings.DataSource", or just "Section" when the whole
	// section is malformed.
	Field string
	// Msg says what is wrong; it never contains a secret.
	Msg string
}

// Error implements error.
func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrors is every bad setting found by Load or Validate, in the order found.
type FieldErrors []FieldError

// Error lists each bad setting on its own line.
func (e FieldErrors) Error() string {
	lines := make([]string, len(e))
	for i, fe := range e {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Fields lists the names of the bad settings, e.g. ["SqlSettings.DataSource"].
func (e FieldErrors) Fields() []string {
	fields := make([]string, len(e))
	for i, fe := range e {
		fields[i] = fe.Field
	}
	return fields
}

func (e *FieldErrors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// err returns e as an error, or nil when it is empty (never a nil FieldErrors in an error).
func (e FieldErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Limits Garrison enforces besides Mattermost's.
const (
	maxSiteNameLength = 30 // Mattermost's model.SiteNameMaxLength
	minPasswordLength = 5
	maxPasswordLength = 72 // bcrypt ignores bytes after the 72nd
)

var (
	webserverModes = []string{"gzip", "uncompressed", "disabled"}
	fileDrivers    = []string{"local", "amazons3"}
	pushContents   = []string{PushContentsIDLoaded, PushContentsGenericNoChannel, PushContentsGeneric, PushContentsFull}
	logLevels      = []string{"DEBUG", "INFO", "WARN", "ERROR"}
	tlsVersions    = []string{"1.2", "1.3"} // TLS 1.0 and 1.1 are not offered
)

// Validate checks every setting and reports all bad ones at once as FieldErrors.
func (c *Config) Validate() error {
	var errs FieldErrors
	atLeast := func(field string, v, lo int64) {
		if v < lo {
			errs.add(field, "must be at least %d, got %d", lo, v)
		}
	}
	oneOf := func(field, v string, valid []string) {
		if !slices.Contains(valid, v) {
			errs.add(field, "must be one of %s, got %q", strings.Join(valid, ", "), v)
		}
	}
	level := func(field, v string) {
		if !slices.Contains(logLevels, strings.ToUpper(v)) {
			errs.add(field, "must be one of %s (any case), got %q", strings.Join(logLevels, ", "), v)
		}
	}
	dsns := func(field string, list []string) {
		for i, dsn := range list {
			if strings.TrimSpace(dsn) == "" {
				errs.add(field, "entry %d is empty", i)
			}
		}
	}

	s := &c.ServiceSettings
	if msg := checkSiteURL(s.SiteURL); msg != "" {
		errs.add("ServiceSettings.SiteURL", "%s", msg)
	}
	if _, _, err := net.SplitHostPort(s.ListenAddress); err != nil {
		errs.add("ServiceSettings.ListenAddress", "must be host:port or :port, got %q", s.ListenAddress)
	}
	switch s.ConnectionSecurity {
	case ConnectionSecurityNone:
		// The TLS settings are ignored, as in Mattermost.
	case ConnectionSecurityTLS:
		if strings.TrimSpace(s.TLSCertFile) == "" {
			errs.add("ServiceSettings.TLSCertFile", "is required when ConnectionSecurity is %q (the PEM certificate the API listener presents)", ConnectionSecurityTLS)
		}
		if strings.TrimSpace(s.TLSKeyFile) == "" {
			errs.add("ServiceSettings.TLSKeyFile", "is required when ConnectionSecurity is %q (the PEM private key of TLSCertFile)", ConnectionSecurityTLS)
		}
		if !slices.Contains(tlsVersions, s.TLSMinVer) {
			errs.add("ServiceSettings.TLSMinVer", "must be one of %s, got %q", strings.Join(tlsVersions, ", "), s.TLSMinVer)
		}
	default:
		errs.add("ServiceSettings.ConnectionSecurity", "must be %q (plain HTTP) or %q (HTTPS), got %q",
			ConnectionSecurityNone, ConnectionSecurityTLS, s.ConnectionSecurity)
	}
	atLeast("ServiceSettings.MaximumPayloadSizeBytes", s.MaximumPayloadSizeBytes, 1)
	atLeast("ServiceSettings.SessionLengthWebInHours", int64(s.SessionLengthWebInHours), 1)
	atLeast("ServiceSettings.SessionLengthMobileInHours", int64(s.SessionLengthMobileInHours), 1)
	atLeast("ServiceSettings.SessionCacheInMinutes", int64(s.SessionCacheInMinutes), 0)
	atLeast("ServiceSettings.SessionIdleTimeoutInMinutes", int64(s.SessionIdleTimeoutInMinutes), 0)
	oneOf("ServiceSettings.WebserverMode", s.WebserverMode, webserverModes)
	atLeast("ServiceSettings.TimeBetweenUserTypingUpdatesMilliseconds", s.TimeBetweenUserTypingUpdatesMilliseconds, 1)
	atLeast("ServiceSettings.ReadTimeout", int64(s.ReadTimeout), 1)
	atLeast("ServiceSettings.WriteTimeout", int64(s.WriteTimeout), 1)
	atLeast("ServiceSettings.IdleTimeout", int64(s.IdleTimeout), 1)
	atLeast("ServiceSettings.MaximumLoginAttempts", int64(s.MaximumLoginAttempts), 1)
	atLeast("ServiceSettings.PostEditTimeLimit", int64(s.PostEditTimeLimit), -1)

	t := &c.TeamSettings
	if n := utf8.RuneCountInString(t.SiteName); n == 0 || n > maxSiteNameLength {
		errs.add("TeamSettings.SiteName", "must be 1 to %d characters, got %d", maxSiteNameLength, n)
	}
	atLeast("TeamSettings.MaxUsersPerTeam", int64(t.MaxUsersPerTeam), 1)
	atLeast("TeamSettings.MaxChannelsPerTeam", t.MaxChannelsPerTeam, 1)
	atLeast("TeamSettings.UserStatusAwayTimeout", t.UserStatusAwayTimeout, 1) // Statuses (issue 3)

	q := &c.SqlSettings
	oneOf("SqlSettings.DriverName", q.DriverName, []string{"postgres"})
	if strings.TrimSpace(q.DataSource) == "" {
		errs.add("SqlSettings.DataSource", "is required (set it in the file or MM_SQLSETTINGS_DATASOURCE)")
	}
	dsns("SqlSettings.DataSourceReplicas", q.DataSourceReplicas)
	dsns("SqlSettings.DataSourceSearchReplicas", q.DataSourceSearchReplicas)
	atLeast("SqlSettings.MaxIdleConns", int64(q.MaxIdleConns), 0)
	atLeast("SqlSettings.MaxOpenConns", int64(q.MaxOpenConns), 1)
	atLeast("SqlSettings.ConnMaxLifetimeMilliseconds", int64(q.ConnMaxLifetimeMilliseconds), 0)
	atLeast("SqlSettings.ConnMaxIdleTimeMilliseconds", int64(q.ConnMaxIdleTimeMilliseconds), 0)
	atLeast("SqlSettings.QueryTimeout", int64(q.QueryTimeout), 1)
	atLeast("SqlSettings.ReplicaLagMaxMilliseconds", int64(q.ReplicaLagMaxMilliseconds), 0)

	f := &c.FileSettings
	atLeast("FileSettings.MaxFileSize", f.MaxFileSize, 1)
	atLeast("FileSettings.MaxImageResolution", f.MaxImageResolution, 1)
	if f.EnablePublicLink && len(f.PublicLinkSalt) < 32 {
		errs.add("FileSettings.PublicLinkSalt", "must be at least 32 characters when EnablePublicLink is set")
	}
	oneOf("FileSettings.DriverName", f.DriverName, fileDrivers)
	if f.DriverName == "local" && strings.TrimSpace(f.Directory) == "" {
		errs.add("FileSettings.Directory", "is required when DriverName is local")
	}
	// Blob store settings.
	if f.MaxImageDecoderConcurrency < -1 || f.MaxImageDecoderConcurrency == 0 {
		errs.add("FileSettings.MaxImageDecoderConcurrency", "must be -1 (one per CPU) or at least 1, got %d", f.MaxImageDecoderConcurrency)
	}
	atLeast("FileSettings.AmazonS3RequestTimeoutMilliseconds", f.AmazonS3RequestTimeoutMilliseconds, 1)
	atLeast("FileSettings.AmazonS3UploadPartSizeBytes", f.AmazonS3UploadPartSizeBytes, 5242880)
	if f.DriverName == "amazons3" {
		if strings.TrimSpace(f.AmazonS3Bucket) == "" {
			errs.add("FileSettings.AmazonS3Bucket", "is required when DriverName is amazons3")
		}
		if strings.TrimSpace(f.AmazonS3Endpoint) == "" {
			errs.add("FileSettings.AmazonS3Endpoint", "is required when DriverName is amazons3")
		} else if strings.Contains(f.AmazonS3Endpoint, "://") {
			errs.add("FileSettings.AmazonS3Endpoint", "must be host[:port] without a scheme (use AmazonS3SSL for https)")
		}
		if (f.AmazonS3AccessKeyId == "") != (f.AmazonS3SecretAccessKey == "") {
			errs.add("FileSettings.AmazonS3SecretAccessKey", "AmazonS3AccessKeyId and AmazonS3SecretAccessKey must be set together (both empty uses the IAM role)")
		}
	}

	if n := c.PasswordSettings.MinimumLength; n < minPasswordLength || n > maxPasswordLength {
		errs.add("PasswordSettings.MinimumLength", "must be %d to %d, got %d", minPasswordLength, maxPasswordLength, n)
	}

	r := &c.RateLimitSettings
	atLeast("RateLimitSettings.PerSec", int64(r.PerSec), 1)
	atLeast("RateLimitSettings.MaxBurst", int64(r.MaxBurst), 0)
	atLeast("RateLimitSettings.MemoryStoreSize", int64(r.MemoryStoreSize), 1)

	level("LogSettings.ConsoleLevel", c.LogSettings.ConsoleLevel)
	level("LogSettings.FileLevel", c.LogSettings.FileLevel)

	e := &c.EmailSettings
	oneOf("EmailSettings.PushNotificationContents", e.PushNotificationContents, pushContents)
	atLeast("EmailSettings.PushNotificationBuffer", int64(e.PushNotificationBuffer), 1)
	if e.SendPushNotifications {
		if msg := checkPushServer(e.PushNotificationServer); msg != "" {
			errs.add("EmailSettings.PushNotificationServer", "%s", msg)
		}
	}

	if m := &c.MetricsSettings; m.Enable {
		if _, _, err := net.SplitHostPort(m.ListenAddress); err != nil {
			errs.add("MetricsSettings.ListenAddress", "must be host:port or :port, got %q", m.ListenAddress)
		} else if m.ListenAddress == s.ListenAddress {
			errs.add("MetricsSettings.ListenAddress", "must differ from ServiceSettings.ListenAddress: metrics are never served on the API port")
		}
	}

	if k := &c.ClusterSettings; k.Enable {
		if strings.TrimSpace(k.ClusterName) == "" {
			errs.add("ClusterSettings.ClusterName", "is required when Enable is set")
		} else if len(k.ClusterName) > 200 {
			errs.add("ClusterSettings.ClusterName", "must be at most 200 bytes")
		}
		if k.GossipPort < 1 || k.GossipPort > 65535 {
			errs.add("ClusterSettings.GossipPort", "must be 1 to 65535, got %d", k.GossipPort)
		}
		if k.BindAddress != "" && net.ParseIP(k.BindAddress) == nil {
			errs.add("ClusterSettings.BindAddress", "must be an IP address, got %q", k.BindAddress)
		}
		if k.AdvertiseAddress != "" && net.ParseIP(k.AdvertiseAddress) == nil {
			errs.add("ClusterSettings.AdvertiseAddress", "must be an IP address, got %q", k.AdvertiseAddress)
		}
		if k.EnableGossipEncryption {
			if _, err := k.GossipKey(); err != nil {
				errs.add("ClusterSettings.GossipEncryptionKey", "%s", err.Error())
			}
		}
	}

	return errs.err()
}

// checkPushServer returns why u is not a valid PushNotificationServer, or
// "". Messages quote the URL only with its password redacted: that is
// the sender secret.
func checkPushServer(u string) string {
	if strings.TrimSpace(u) == "" {
		return "is required when SendPushNotifications is set (the push proxy's URL, e.g. https://garrison:SECRET@push.example:8066)"
	}
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() {
		return "must be an absolute http or https URL"
	}
	shown := p.Redacted()
	switch {
	// Neither of the first two quotes the URL: without an authority the
	// parser cannot tell a password from the rest.
	case p.Scheme != "http" && p.Scheme != "https":
		return "must start with http:// or https://"
	case p.Host == "" || p.Hostname() == "":
		return "must include a host (http://host:port)"
	case p.RawQuery != "" || p.ForceQuery:
		return fmt.Sprintf("must not have a query, got %q", shown)
	case p.Fragment != "":
		return fmt.Sprintf("must not have a fragment, got %q", shown)
	}
	if p.User != nil {
		if _, ok := p.User.Password(); !ok {
			// Not quoted: the user name may be the secret, written in the
			// wrong place.
			return "carries a user name but no password: the sender secret is the password (https://garrison:SECRET@host)"
		}
	}
	return ""
}

// checkSiteURL returns why u is not a valid SiteURL, or "".
func checkSiteURL(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	switch {
	case err != nil:
		// Not quoting u: a malformed URL may hold credentials.
		return "must be an absolute http or https URL"
	case p.User != nil:
		return "must not contain user information"
	case p.Scheme != "http" && p.Scheme != "https":
		return fmt.Sprintf("must start with http:// or https://, got %q", u)
	case p.Host == "":
		return fmt.Sprintf("must include a host, got %q", u)
	case p.RawQuery != "" || p.ForceQuery:
		return fmt.Sprintf("must not have a query, got %q", u)
	case p.Fragment != "":
		return fmt.Sprintf("must not have a fragment, got %q", u)
	}
	return ""
}
