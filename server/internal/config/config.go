// Package config is Garrison's typed configuration in the shape of Mattermost's config.json.
//
// Sections and fields carry Mattermost's names so that an existing config.json and the
// MM_<SECTION>_<FIELD> environment variables keep working. Only the settings Garrison acts on
// are modelled; Load ignores the rest with one warning. Leaf fields are plain values rather
// than Mattermost's pointers: Default supplies every value and Load only overwrites what the
// file or the environment sets.
package config

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
	// EmailSettings controls email sign-up and sign-in.
	EmailSettings EmailSettings `json:"EmailSettings"`
}

// ServiceSettings is Mattermost's ServiceSettings section.
type ServiceSettings struct {
	// SiteURL is the public URL users reach the server at; empty means unknown.
	SiteURL string `json:"SiteURL"`
	// ListenAddress is the host:port the API and WebSocket listener binds.
	ListenAddress string `json:"ListenAddress"`
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
}

// FileSettings is Mattermost's FileSettings section.
type FileSettings struct {
	// EnableFileAttachments allows uploads.
	EnableFileAttachments bool `json:"EnableFileAttachments"`
	// MaxFileSize caps one upload, in bytes.
	MaxFileSize int64 `json:"MaxFileSize"`
	// DriverName is "local" or "amazons3".
	DriverName string `json:"DriverName"`
	// Directory is where the local driver keeps files.
	Directory string `json:"Directory"`
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
}

// Default returns the configuration used for every setting that neither the file nor the
// environment sets. It does not validate: SqlSettings.DataSource has no default.
func Default() *Config {
	return &Config{
		ServiceSettings: ServiceSettings{
			ListenAddress:                            ":8065",
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
		},
		TeamSettings: TeamSettings{
			SiteName:           "Garrison",
			EnableUserCreation: true,
			// Mattermost's default of 50 is for trials; an appliance serves a whole site.
			MaxUsersPerTeam:             100000,
			MaxChannelsPerTeam:          100000,
			ExperimentalDefaultChannels: []string{},
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
		},
		FileSettings: FileSettings{
			EnableFileAttachments: true,
			MaxFileSize:           104857600,
			DriverName:            "local",
			Directory:             "./data/",
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
		},
	}
}
