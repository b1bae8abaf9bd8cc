// Package config is Garrison's typed configuration in the shape of Mattermost's config.json.
//
// Sections and fields carry Mattermost's names so that an existing config.json and the
// MM_<SECTION>_<FIELD> environment variables keep working. Only the settings Garrison acts on
// are modelled; Load ignores the rest with one warning. Leaf fields are plain values rather
// than Mattermost's pointers: Default supplies every value and Load only overwrites what the
// file or the environment sets.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// FakeSetting replaces secrets in Redacted, as Mattermost's model.FakeSetting does.
const FakeSetting = "********************************"

// Config is the whole configuration of one garrison server. Each field is a config.json section.
type Config struct {
	// ServiceSettings configures the HTTP server, sessions and WebSocket behaviour.
	ServiceSettings ServiceSettings `json:"ServiceSettings"`
	// TeamSettings configures sign-up and team limits.
	TeamSettings TeamSettings `json:"TeamSettings"`
	// SqlSettings configures the Postgres connection.
	SqlSettings SqlSettings `json:"SqlSettings"`
	// FileSettings configures attachments and the blob store.
	FileSettings FileSettings `json:"FileSettings"`
	// PasswordSettings is the password policy.
	PasswordSettings PasswordSettings `json:"PasswordSettings"`
	// RateLimitSettings configures API rate limiting.
	RateLimitSettings RateLimitSettings `json:"RateLimitSettings"`
	// LogSettings configures logging.
	LogSettings LogSettings `json:"LogSettings"`
	// PrivacySettings controls what user data other users see.
	PrivacySettings PrivacySettings `json:"PrivacySettings"`
	// EmailSettings controls email sign-up and sign-in, and push
	// notifications (issue 5).
	EmailSettings EmailSettings `json:"EmailSettings"`
	// ClusterSettings joins several servers into one (issue 4).
	ClusterSettings ClusterSettings `json:"ClusterSettings"`
	// MetricsSettings serves Prometheus metrics.
	MetricsSettings MetricsSettings `json:"MetricsSettings"`
}

// MetricsSettings is Mattermost's MetricsSettings section. The metrics
// listener serves HTTPS exactly when the API listener does: with
// ServiceSettings.ConnectionSecurity "TLS" it presents the same
// TLSCertFile and TLSKeyFile and accepts the same TLSMinVer, so scrapes
// that cross the network are encrypted; with "" it serves plain HTTP.
type MetricsSettings struct {
	// Enable serves GET /metrics on ListenAddress.
	Enable bool `json:"Enable"`
	// ListenAddress is the metrics listener's host:port; never the API's.
	ListenAddress string `json:"ListenAddress" node:"local"`
}

// GossipKey decodes GossipEncryptionKey (standard base64, 16, 24 or 32
// bytes).
func (k *ClusterSettings) GossipKey() ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k.GossipEncryptionKey))
	if err != nil {
		return nil, errors.New("must be standard base64 (e.g. from: openssl rand -base64 32)")
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("must decode to 16, 24 or 32 bytes, got %d", len(key))
}

// ClusterSettings is Mattermost's ClusterSettings section. Settings tagged
// `node:"local"` differ from node to node by design and are left out of
// the config hash that cluster status compares.
type ClusterSettings struct {
	// Enable makes this server a cluster node.
	Enable bool `json:"Enable"`
	// ClusterName keeps clusters on one network apart; nodes of one
	// cluster must share it.
	ClusterName string `json:"ClusterName"`
	// OverrideHostname replaces the host name shown in cluster status.
	OverrideHostname string `json:"OverrideHostname" node:"local"`
	// GossipPort is where gossip and the nodes' streams listen (TCP and UDP).
	GossipPort int `json:"GossipPort"`
	// BindAddress is the address gossip binds; empty means all.
	BindAddress string `json:"BindAddress" node:"local"`
	// AdvertiseAddress is the address other nodes reach this one at; empty
	// means the bound address, or the first private address if that is
	// all of them.
	AdvertiseAddress string `json:"AdvertiseAddress" node:"local"`
	// EnableGossipEncryption encrypts gossip and the nodes' streams with
	// GossipEncryptionKey.
	EnableGossipEncryption bool `json:"EnableGossipEncryption"`
	// GossipEncryptionKey is a base64 AES key of 16, 24 or 32 bytes, the
	// same on every node. (Mattermost keeps it in the database; Garrison
	// keeps it in the config the installer renders.)
	GossipEncryptionKey string `json:"GossipEncryptionKey" secret:"full"`
	// ReadOnlyConfig is accepted for compatibility: Garrison's config is
	// always read from the file and the environment.
	ReadOnlyConfig bool `json:"ReadOnlyConfig"`
}

// ServiceSettings is Mattermost's ServiceSettings section.
type ServiceSettings struct {
	// SiteURL is the public URL users reach the server at; empty means unknown.
	SiteURL string `json:"SiteURL"`
	// ListenAddress is the host:port the API and WebSocket listener binds.
	ListenAddress string `json:"ListenAddress" node:"local"`
	// ConnectionSecurity is "" (ConnectionSecurityNone: plain HTTP) or
	// "TLS" (ConnectionSecurityTLS: HTTPS on ListenAddress, and on
	// MetricsSettings.ListenAddress, with TLSCertFile and TLSKeyFile), as
	// in Mattermost. It is shared by every node, so a node left on plain
	// HTTP shows in cluster status as a different configuration.
	ConnectionSecurity string `json:"ConnectionSecurity"`
	// TLSCertFile is the PEM certificate (chain, leaf first) the API and
	// metrics listeners present when ConnectionSecurity is "TLS"; each
	// node has its own.
	TLSCertFile string `json:"TLSCertFile" node:"local"`
	// TLSKeyFile is the PEM private key of TLSCertFile. The setting is a
	// path, not a secret; the file is read once, at start.
	TLSKeyFile string `json:"TLSKeyFile" node:"local"`
	// TLSMinVer is the lowest TLS version the listeners accept: "1.2" or
	// "1.3". (Mattermost also takes "1.0" and "1.1"; Garrison does not.)
	TLSMinVer string `json:"TLSMinVer"`
	// MaximumPayloadSizeBytes caps request bodies other than file uploads.
	MaximumPayloadSizeBytes int64 `json:"MaximumPayloadSizeBytes"`
	// SessionLengthWebInHours is the lifetime of browser sessions.
	SessionLengthWebInHours int `json:"SessionLengthWebInHours"`
	// SessionLengthMobileInHours is the lifetime of mobile sessions.
	SessionLengthMobileInHours int `json:"SessionLengthMobileInHours"`
	// SessionCacheInMinutes is how long a session stays in the in-memory cache.
	SessionCacheInMinutes int `json:"SessionCacheInMinutes"`
	// SessionIdleTimeoutInMinutes logs out idle web sessions; 0 disables it.
	SessionIdleTimeoutInMinutes int `json:"SessionIdleTimeoutInMinutes"`
	// ExtendSessionLengthWithActivity renews sessions while they are used.
	ExtendSessionLengthWithActivity bool `json:"ExtendSessionLengthWithActivity"`
	// ExperimentalStrictCSRFEnforcement rejects cookie-authenticated requests without a CSRF token.
	ExperimentalStrictCSRFEnforcement bool `json:"ExperimentalStrictCSRFEnforcement"`
	// EnableDeveloper shows detailed errors to clients.
	EnableDeveloper bool `json:"EnableDeveloper"`
	// WebserverMode is "gzip", "uncompressed" or "disabled".
	WebserverMode string `json:"WebserverMode"`
	// AllowCorsFrom is a space-separated list of allowed cross-origin origins, or "*".
	AllowCorsFrom string `json:"AllowCorsFrom"`
	// EnableUserTypingMessages relays typing events.
	EnableUserTypingMessages bool `json:"EnableUserTypingMessages"`
	// TimeBetweenUserTypingUpdatesMilliseconds is how often clients send typing events.
	TimeBetweenUserTypingUpdatesMilliseconds int64 `json:"TimeBetweenUserTypingUpdatesMilliseconds"`
	// EnableChannelViewedMessages sends channel_viewed events.
	EnableChannelViewedMessages bool `json:"EnableChannelViewedMessages"`
	// EnableAPIPostDeletion makes DELETE /posts remove posts permanently.
	EnableAPIPostDeletion bool `json:"EnableAPIPostDeletion"`
	// ReadTimeout is the HTTP read timeout in seconds.
	ReadTimeout int `json:"ReadTimeout"`
	// WriteTimeout is the HTTP write timeout in seconds.
	WriteTimeout int `json:"WriteTimeout"`
	// IdleTimeout is the HTTP keep-alive idle timeout in seconds.
	IdleTimeout int `json:"IdleTimeout"`
	// MaximumLoginAttempts locks an account after this many failed logins.
	MaximumLoginAttempts int `json:"MaximumLoginAttempts"`
	// TrustedProxyIPHeader lists headers that carry the client IP behind a proxy.
	TrustedProxyIPHeader []string `json:"TrustedProxyIPHeader"`
	// PostEditTimeLimit is how many seconds a post stays editable; -1 means forever.
	PostEditTimeLimit int `json:"PostEditTimeLimit"`
	// EnableUserAccessTokens allows personal access tokens.
	EnableUserAccessTokens bool `json:"EnableUserAccessTokens"`

	// Integrations (issue 3).

	// EnableIncomingWebhooks allows incoming webhooks (POST /hooks/{id}).
	EnableIncomingWebhooks bool `json:"EnableIncomingWebhooks"`
	// EnablePostUsernameOverride lets webhook posts show another user name.
	EnablePostUsernameOverride bool `json:"EnablePostUsernameOverride"`
	// EnablePostIconOverride lets webhook posts show another icon.
	EnablePostIconOverride bool `json:"EnablePostIconOverride"`

	// Statuses (issue 3).

	// EnableUserStatuses turns on automatic status changes (online on
	// connect and activity, away when idle, offline on disconnect).
	EnableUserStatuses bool `json:"EnableUserStatuses"`
}

// TeamSettings is Mattermost's TeamSettings section.
type TeamSettings struct {
	// SiteName is shown in the UI and in emails.
	SiteName string `json:"SiteName"`
	// EnableUserCreation allows new accounts.
	EnableUserCreation bool `json:"EnableUserCreation"`
	// EnableOpenServer allows sign-up without an invitation.
	EnableOpenServer bool `json:"EnableOpenServer"`
	// MaxUsersPerTeam caps team membership.
	MaxUsersPerTeam int `json:"MaxUsersPerTeam"`
	// MaxChannelsPerTeam caps the channels of one team.
	MaxChannelsPerTeam int64 `json:"MaxChannelsPerTeam"`
	// ExperimentalDefaultChannels are channel names new team members join besides town-square.
	ExperimentalDefaultChannels []string `json:"ExperimentalDefaultChannels"`
	// RestrictCreationToDomains is a comma-separated list of allowed email domains.
	RestrictCreationToDomains string `json:"RestrictCreationToDomains"`
	// EnableUserDeactivation lets users deactivate their own account.
	EnableUserDeactivation bool `json:"EnableUserDeactivation"`
	// UserStatusAwayTimeout is how many seconds an online user may be idle
	// before becoming away (Statuses, issue 3).
	UserStatusAwayTimeout int64 `json:"UserStatusAwayTimeout"`
}

// SqlSettings is Mattermost's SqlSettings section.
type SqlSettings struct {
	// DriverName must be "postgres".
	DriverName string `json:"DriverName"`
	// DataSource is the primary's DSN, URL or key=value form; it may list several hosts.
	DataSource string `json:"DataSource" secret:"dsn"`
	// DataSourceReplicas are DSNs of read replicas.
	DataSourceReplicas []string `json:"DataSourceReplicas" secret:"dsn"`
	// DataSourceSearchReplicas are DSNs of replicas used for search.
	DataSourceSearchReplicas []string `json:"DataSourceSearchReplicas" secret:"dsn"`
	// MaxIdleConns is the number of idle connections kept open.
	MaxIdleConns int `json:"MaxIdleConns"`
	// MaxOpenConns caps the connections of the pool.
	MaxOpenConns int `json:"MaxOpenConns"`
	// ConnMaxLifetimeMilliseconds recycles connections older than this.
	ConnMaxLifetimeMilliseconds int `json:"ConnMaxLifetimeMilliseconds"`
	// ConnMaxIdleTimeMilliseconds closes connections idle for longer than this.
	ConnMaxIdleTimeMilliseconds int `json:"ConnMaxIdleTimeMilliseconds"`
	// QueryTimeout is the statement timeout in seconds.
	QueryTimeout int `json:"QueryTimeout"`
	// ReplicaLagMaxMilliseconds is the most a read sent to a replica may
	// lag the primary: a replica serves reads only while it has replayed
	// everything committed on the primary this long ago; 0 keeps every
	// read on the primary. A Garrison setting (Mattermost only measures
	// lag, with ReplicaLagSettings).
	ReplicaLagMaxMilliseconds int `json:"ReplicaLagMaxMilliseconds"`
}

// FileSettings is Mattermost's FileSettings section.
type FileSettings struct {
	// EnableFileAttachments allows uploads.
	EnableFileAttachments bool `json:"EnableFileAttachments"`
	// MaxFileSize caps one upload, in bytes.
	MaxFileSize int64 `json:"MaxFileSize"`
	// MaxImageResolution caps width×height of an uploaded image, checked
	// before it is decoded.
	MaxImageResolution int64 `json:"MaxImageResolution"`
	// EnablePublicLink allows links that fetch a file without a session.
	EnablePublicLink bool `json:"EnablePublicLink"`
	// PublicLinkSalt keys public links (at least 32 characters).
	PublicLinkSalt string `json:"PublicLinkSalt" secret:"full"`
	// DriverName is "local" or "amazons3".
	DriverName string `json:"DriverName"`
	// Directory is where the local driver keeps files.
	Directory string `json:"Directory"`

	// Blob store (amazons3 driver) and client limits; see docs/storage.md.

	// MaxImageDecoderConcurrency caps images decoded at once; -1 means one
	// per CPU.
	MaxImageDecoderConcurrency int64 `json:"MaxImageDecoderConcurrency"`
	// EnableMobileUpload lets mobile apps upload files.
	EnableMobileUpload bool `json:"EnableMobileUpload"`
	// EnableMobileDownload lets mobile apps download files.
	EnableMobileDownload bool `json:"EnableMobileDownload"`
	// AmazonS3AccessKeyId is the S3 access key; empty (with an empty
	// secret) uses the machine's IAM role.
	AmazonS3AccessKeyId string `json:"AmazonS3AccessKeyId"`
	// AmazonS3SecretAccessKey is the S3 secret key.
	AmazonS3SecretAccessKey string `json:"AmazonS3SecretAccessKey" secret:"full"`
	// AmazonS3Bucket is the bucket; created at start-up when missing.
	AmazonS3Bucket string `json:"AmazonS3Bucket"`
	// AmazonS3PathPrefix is prepended to every object name.
	AmazonS3PathPrefix string `json:"AmazonS3PathPrefix"`
	// AmazonS3Region is the bucket's region; empty to discover it.
	AmazonS3Region string `json:"AmazonS3Region"`
	// AmazonS3Endpoint is host[:port] of the S3 service, without a scheme.
	AmazonS3Endpoint string `json:"AmazonS3Endpoint"`
	// AmazonS3SSL talks https to the endpoint.
	AmazonS3SSL bool `json:"AmazonS3SSL"`
	// AmazonS3SignV2 uses signature version 2 instead of 4.
	AmazonS3SignV2 bool `json:"AmazonS3SignV2"`
	// AmazonS3SSE asks for server-side encryption (SSE-S3) of each object.
	AmazonS3SSE bool `json:"AmazonS3SSE"`
	// AmazonS3Trace logs every S3 request to stderr (debugging only).
	AmazonS3Trace bool `json:"AmazonS3Trace"`
	// AmazonS3RequestTimeoutMilliseconds bounds each S3 call (and a stall
	// of an upload or download).
	AmazonS3RequestTimeoutMilliseconds int64 `json:"AmazonS3RequestTimeoutMilliseconds"`
	// AmazonS3UploadPartSizeBytes is the multipart part size (at least 5 MiB).
	AmazonS3UploadPartSizeBytes int64 `json:"AmazonS3UploadPartSizeBytes"`
}

// PasswordSettings is Mattermost's PasswordSettings section.
type PasswordSettings struct {
	// MinimumLength is the shortest allowed password, 5 to 72.
	MinimumLength int `json:"MinimumLength"`
	// Lowercase requires a lower-case letter.
	Lowercase bool `json:"Lowercase"`
	// Number requires a digit.
	Number bool `json:"Number"`
	// Uppercase requires an upper-case letter.
	Uppercase bool `json:"Uppercase"`
	// Symbol requires a symbol.
	Symbol bool `json:"Symbol"`
}

// RateLimitSettings is Mattermost's RateLimitSettings section.
type RateLimitSettings struct {
	// Enable turns rate limiting on.
	Enable bool `json:"Enable"`
	// PerSec is the sustained request rate per key.
	PerSec int `json:"PerSec"`
	// MaxBurst is the burst allowed above PerSec.
	MaxBurst int `json:"MaxBurst"`
	// MemoryStoreSize is the number of keys tracked.
	MemoryStoreSize int `json:"MemoryStoreSize"`
	// VaryByRemoteAddr keys limits by client IP.
	VaryByRemoteAddr bool `json:"VaryByRemoteAddr"`
	// VaryByUser keys limits by user.
	VaryByUser bool `json:"VaryByUser"`
	// VaryByHeader keys limits by this request header, if set.
	VaryByHeader string `json:"VaryByHeader"`
}

// LogSettings is Mattermost's LogSettings section.
type LogSettings struct {
	// EnableConsole logs to stderr.
	EnableConsole bool `json:"EnableConsole"`
	// ConsoleLevel is DEBUG, INFO, WARN or ERROR.
	ConsoleLevel string `json:"ConsoleLevel"`
	// ConsoleJson writes console logs as JSON.
	ConsoleJson bool `json:"ConsoleJson"`
	// EnableFile logs to FileLocation.
	EnableFile bool `json:"EnableFile"`
	// FileLevel is DEBUG, INFO, WARN or ERROR.
	FileLevel string `json:"FileLevel"`
	// FileJson writes file logs as JSON.
	FileJson bool `json:"FileJson"`
	// FileLocation is the log directory or file; empty means the default.
	FileLocation string `json:"FileLocation"`
}

// PrivacySettings is Mattermost's PrivacySettings section.
type PrivacySettings struct {
	// ShowEmailAddress shows email addresses to other users.
	ShowEmailAddress bool `json:"ShowEmailAddress"`
	// ShowFullName shows first and last names to other users.
	ShowFullName bool `json:"ShowFullName"`
}

// EmailSettings is Mattermost's EmailSettings section (the parts Garrison uses).
type EmailSettings struct {
	// EnableSignUpWithEmail allows sign-up with an email address.
	EnableSignUpWithEmail bool `json:"EnableSignUpWithEmail"`
	// EnableSignInWithEmail allows logging in with an email address.
	EnableSignInWithEmail bool `json:"EnableSignInWithEmail"`
	// EnableSignInWithUsername allows logging in with a username.
	EnableSignInWithUsername bool `json:"EnableSignInWithUsername"`

	// Push notifications (issue 5).

	// SendPushNotifications sends push notifications through
	// PushNotificationServer.
	SendPushNotifications bool `json:"SendPushNotifications"`
	// PushNotificationServer is the push proxy's URL (garrison-pushproxy,
	// e.g. https://garrison:SECRET@push.site.example:8066); the password
	// of its user information is the proxy's sender secret.
	PushNotificationServer string `json:"PushNotificationServer" secret:"dsn"`
	// PushNotificationContents is what a push carries: "id_loaded" (ids
	// only; the device fetches the message from the server),
	// "generic_no_channel", "generic" or "full".
	PushNotificationContents string `json:"PushNotificationContents"`
	// PushNotificationBuffer is how many push jobs wait for the senders
	// before new ones are dropped.
	PushNotificationBuffer int `json:"PushNotificationBuffer"`
}

// Push notification contents, as Mattermost names them.
const (
	PushContentsIDLoaded         = "id_loaded"
	PushContentsGenericNoChannel = "generic_no_channel"
	PushContentsGeneric          = "generic"
	PushContentsFull             = "full"
)

// ServiceSettings.ConnectionSecurity values, as Mattermost names them
// (model.ConnSecurityNone, model.ConnSecurityTLS).
const (
	ConnectionSecurityNone = ""
	ConnectionSecurityTLS  = "TLS"
)

// Default returns the configuration used for every setting that neither the file nor the
// environment sets. It does not validate: SqlSettings.DataSource has no default.
func Default() *Config {
	return &Config{
		ServiceSettings: ServiceSettings{
			ListenAddress:                            ":8065",
			TLSMinVer:                                "1.2",
			MaximumPayloadSizeBytes:                  300000,
			SessionLengthWebInHours:                  720,
			SessionLengthMobileInHours:               720,
			SessionCacheInMinutes:                    10,
			SessionIdleTimeoutInMinutes:              43200,
			ExtendSessionLengthWithActivity:          true,
			WebserverMode:                            "gzip",
			EnableUserTypingMessages:                 true,
			TimeBetweenUserTypingUpdatesMilliseconds: 5000,
			EnableChannelViewedMessages:              true,
			ReadTimeout:                              300,
			WriteTimeout:                             300,
			IdleTimeout:                              60,
			MaximumLoginAttempts:                     10,
			TrustedProxyIPHeader:                     []string{},
			PostEditTimeLimit:                        -1,
			// An appliance's own scripts post through webhooks (Mattermost's default too).
			EnableIncomingWebhooks: true,
			EnableUserStatuses:     true, // Statuses (issue 3)
		},
		TeamSettings: TeamSettings{
			SiteName:           "Garrison",
			EnableUserCreation: true,
			// Mattermost's default of 50 is for trials; an appliance serves a whole site.
			MaxUsersPerTeam:             100000,
			MaxChannelsPerTeam:          100000,
			ExperimentalDefaultChannels: []string{},
			UserStatusAwayTimeout:       300, // Statuses (issue 3)
		},
		SqlSettings: SqlSettings{
			DriverName:                  "postgres",
			DataSourceReplicas:          []string{},
			DataSourceSearchReplicas:    []string{},
			MaxIdleConns:                20,
			MaxOpenConns:                100,
			ConnMaxLifetimeMilliseconds: 3600000,
			ConnMaxIdleTimeMilliseconds: 300000,
			QueryTimeout:                30,
			ReplicaLagMaxMilliseconds:   1000,
		},
		FileSettings: FileSettings{
			EnableFileAttachments: true,
			MaxFileSize:           104857600,
			MaxImageResolution:    33177600,
			DriverName:            "local",
			Directory:             "./data/",

			MaxImageDecoderConcurrency:         -1,
			EnableMobileUpload:                 true,
			EnableMobileDownload:               true,
			AmazonS3Endpoint:                   "s3.amazonaws.com",
			AmazonS3SSL:                        true,
			AmazonS3RequestTimeoutMilliseconds: 30000,
			AmazonS3UploadPartSizeBytes:        5242880,
		},
		PasswordSettings: PasswordSettings{
			MinimumLength: 8,
		},
		RateLimitSettings: RateLimitSettings{
			PerSec:           10,
			MaxBurst:         100,
			MemoryStoreSize:  10000,
			VaryByRemoteAddr: true,
		},
		LogSettings: LogSettings{
			EnableConsole: true,
			ConsoleLevel:  "INFO",
			ConsoleJson:   true,
			FileLevel:     "INFO",
			FileJson:      true,
		},
		PrivacySettings: PrivacySettings{
			ShowEmailAddress: true,
			ShowFullName:     true,
		},
		EmailSettings: EmailSettings{
			EnableSignUpWithEmail:    true,
			EnableSignInWithEmail:    true,
			EnableSignInWithUsername: true,
			// Push (issue 5): off until a proxy is configured; ids only on
			// the push path, Mattermost's id-loaded mode.
			PushNotificationContents: PushContentsIDLoaded,
			PushNotificationBuffer:   1000,
		},
		ClusterSettings: ClusterSettings{
			GossipPort:     8074,
			ReadOnlyConfig: true,
		},
		MetricsSettings: MetricsSettings{
			ListenAddress: ":8067",
		},
	}
}
