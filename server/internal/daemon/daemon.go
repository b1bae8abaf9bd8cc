// Package daemon wires Garrison's parts together and owns their start and
// stop order: database (and migrations), rules, WebSocket hub, HTTP
// listener; stopped in reverse.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-chat/garrison/internal/buildinfo"
	"github.com/garrison-chat/garrison/internal/sdnotify"
	"github.com/garrison-chat/garrison/server/internal/api"
	"github.com/garrison-chat/garrison/server/internal/app"
	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/metrics"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/push"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// MattermostVersion is the Mattermost server version whose API v4
// Garrison speaks; clients read it from X-Version-Id and hello.
const MattermostVersion = "10.11.0"

// Daemon is a running Garrison server.
type Daemon struct {
	cfg    *config.Config
	log    *slog.Logger
	nodeID string

	store *postgres.Store
	app   *app.App
	hub   *ws.Hub
	srv   *http.Server
	ln    net.Listener
	tls   *tls.Config // the API and metrics listeners'; nil when they serve plain HTTP

	statusJobs *app.StatusJobs // Statuses (issue 3): away and DND sweeps
	cluster    cluster.Cluster // Cluster (issue 4)
	metrics    *metrics.Server
	pushQueue  *app.PushQueue     // Push notifications (issue 5); nil when off
	notify     *sdnotify.Notifier // systemd (issue 6)
	watchdog   *sdnotify.Watchdog // systemd (issue 6); nil until ready

	stopJobs context.CancelFunc
	jobs     sync.WaitGroup
	served   chan error
	stopping atomic.Bool
}

// New prepares a daemon; nothing runs until Start.
func New(cfg *config.Config, logger *slog.Logger) *Daemon {
	return &Daemon{cfg: cfg, log: logger, nodeID: model.NewID(), notify: sdnotify.New(logger.With("component", "systemd"))}
}

// Addr is the bound API address (useful with ListenAddress ":0").
func (d *Daemon) Addr() net.Addr { return d.ln.Addr() }

// URL is the base URL of the bound API listener: https:// when
// ServiceSettings.ConnectionSecurity is "TLS", http:// otherwise. Anything
// that reaches the listener from the same host builds its URLs from this,
// never from "http://" and Addr.
func (d *Daemon) URL() string {
	scheme := "http"
	if d.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + d.ln.Addr().String()
}

// App returns the rules (for the all-in-one bootstrap).
func (d *Daemon) App() *app.App { return d.app }

// OpenStore connects to the configured database: the primary (several
// hosts follow a failover) and the replicas, whose lag monitor runs until
// the store is closed.
func OpenStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*postgres.Store, error) {
	o := poolOptions(cfg.SqlSettings)
	o.Logger = logger
	return postgres.Open(ctx, o)
}

// poolOptions derives the database pool options from SqlSettings; the
// connection timeouts keep their defaults (postgres.PoolOptions).
func poolOptions(s config.SqlSettings) postgres.PoolOptions {
	return postgres.PoolOptions{
		DataSource:      s.DataSource,
		MaxOpenConns:    s.MaxOpenConns,
		MaxConnLifetime: time.Duration(s.ConnMaxLifetimeMilliseconds) * time.Millisecond,
		MaxConnIdleTime: time.Duration(s.ConnMaxIdleTimeMilliseconds) * time.Millisecond,
		QueryTimeout:    time.Duration(s.QueryTimeout) * time.Second,
		ApplicationName: "garrison",
		Replicas:        s.DataSourceReplicas,
		SearchReplicas:  s.DataSourceSearchReplicas,
		ReplicaLagMax:   time.Duration(s.ReplicaLagMaxMilliseconds) * time.Millisecond,
	}
}

// Start connects, migrates, and starts serving. When it returns nil the
// listener is bound.
func (d *Daemon) Start(ctx context.Context) error {
	cfg := d.cfg
	// The listener's certificate and key first: a bad file stops the
	// start-up before anything is connected or migrated.
	tlsConfig, err := d.listenerTLS(time.Now())
	if err != nil {
		return err
	}
	d.tls = tlsConfig
	d.status("connecting to the database")
	store, err := OpenStore(ctx, cfg, d.log.With("component", "database"))
	if err != nil {
		return err
	}
	d.store = store
	d.status("applying database migrations")
	if err := migrate(ctx, store, d.log); err != nil {
		store.Close()
		return err
	}
	diagID, err := store.EnsureSystemValue(ctx, "DiagnosticId", model.NewID())
	if err != nil {
		store.Close()
		return err
	}
	// A missing local file directory is an error, not created here: it is
	// more likely an unmounted NAS than a new install (docs/storage.md).

	// Files (issue 3): the blob store of FileSettings.
	files, err := blob.New(ctx, blobOptions(cfg.FileSettings))
	if err != nil {
		store.Close()
		return fmt.Errorf("daemon: file store: %w", err)
	}

	// Cluster (issue 4): joined once the hub can take the other nodes'
	// events, before the listener opens.
	host, _ := os.Hostname()
	clu, err := d.newCluster(store, host)
	if err != nil {
		store.Close()
		return err
	}
	d.cluster = clu
	// Push notifications (issue 5): the push proxy's client.
	sender, err := d.pushSender()
	if err != nil {
		store.Close()
		return err
	}
	d.app = app.New(app.Options{Store: store, Logger: d.log, Settings: Settings(cfg), NodeID: d.nodeID, Files: files,
		Cluster: clu, Push: sender, ServerID: diagID})
	d.hub = ws.New(ws.Options{
		Auth: d.app, Audience: d.app, Actions: d.app, TokenFromRequest: api.WSToken,
		SiteURL: cfg.ServiceSettings.SiteURL, Logger: d.log.With("component", "ws"),
		ServerVersion: MattermostVersion + "." + buildinfo.Version() + "." + cfg.Hash() + ".false", Hostname: host,
		OnConnections: d.app.UserConnections, OnActivity: d.app.UserActivity, // Statuses (issue 3)
	})
	d.app.SetPublisher(d.hub)
	if err := d.hub.Start(ctx); err != nil {
		store.Close()
		return err
	}
	if err := d.cluster.Start(ctx); err != nil {
		_ = d.hub.Stop(ctx)
		store.Close()
		return fmt.Errorf("daemon: cluster: %w", err)
	}
	d.statusJobs = d.app.NewStatusJobs(0) // Statuses (issue 3)
	if err := d.statusJobs.Start(ctx); err != nil {
		_ = d.hub.Stop(ctx)
		store.Close()
		return err
	}
	d.pushQueue = d.app.PushQueue() // Push notifications (issue 5)
	if err := d.pushQueue.Start(ctx); err != nil {
		_ = d.statusJobs.Stop(ctx)
		_ = d.hub.Stop(ctx)
		store.Close()
		return err
	}

	handler := api.New(APIOptions(cfg, d.app, d.hub, d.log, diagID))
	ln, err := net.Listen("tcp", cfg.ServiceSettings.ListenAddress)
	if err != nil {
		_ = d.pushQueue.Stop(ctx)
		_ = d.hub.Stop(ctx)
		store.Close()
		return fmt.Errorf("daemon: listen on %s: %w", cfg.ServiceSettings.ListenAddress, err)
	}
	d.ln = ln
	ss := cfg.ServiceSettings
	d.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		ReadTimeout:       time.Duration(ss.ReadTimeout) * time.Second,
		WriteTimeout:      time.Duration(ss.WriteTimeout) * time.Second,
		IdleTimeout:       time.Duration(ss.IdleTimeout) * time.Second,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
		// A clone: the server writes its protocols into its settings
		// while the metrics listener clones d.tls for its own.
		TLSConfig: d.tls.Clone(),
	}
	d.served = make(chan error, 1)
	if d.tls != nil {
		// ServeTLS offers HTTP/2 and HTTP/1.1 over ALPN. WebSocket
		// upgrades stay on HTTP/1.1: Go's HTTP/2 server does not offer
		// extended CONNECT (RFC 8441), so clients open an HTTP/1.1
		// connection for the socket. The certificate comes from
		// TLSConfig.GetCertificate, hence no file names here.
		go func() { d.served <- d.srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { d.served <- d.srv.Serve(ln) }()
	}

	if m := cfg.MetricsSettings; m.Enable {
		// The API listener's TLS settings: metrics leave the node in the
		// clear only when the API does too.
		if d.metrics, err = metrics.Start(m.ListenAddress, d.tls, d.metricSources(), d.log); err != nil {
			_ = d.Stop(ctx)
			return err
		}
		d.log.Info("metrics listening", "listen", d.metrics.Addr().String(), "tls", d.tls != nil)
	}

	jctx, cancel := context.WithCancel(context.Background())
	d.stopJobs = cancel
	d.jobs.Add(1)
	go d.cleanup(jctx)
	d.jobs.Add(1)
	go d.shareNodeStatus(jctx)

	d.log.Info("garrison started", "listen", ln.Addr().String(), "tls", d.tls != nil, "version", buildinfo.Read().String(), "node", d.nodeID)

	// systemd (issue 6): ready now that every listener is bound; the
	// watchdog is fed only while the database takes writes, the check
	// behind /system/ping?get_server_status=true's database_status.
	status := "serving on " + ln.Addr().String()
	if err := d.notify.Ready(status); err != nil {
		d.log.Warn("systemd: ready", "err", err)
	}
	d.watchdog = d.notify.Watchdog(sdnotify.WatchdogOptions{Check: d.app.Ping, Status: status})
	if err := d.watchdog.Start(ctx); err != nil {
		_ = d.Stop(ctx)
		return err
	}
	return nil
}

// status tells systemd what the daemon is doing; a failure only logs.
func (d *Daemon) status(s string) {
	if err := d.notify.Status(s); err != nil {
		d.log.Warn("systemd: status", "err", err)
	}
}

// Serving returns a channel that receives the HTTP server's exit error.
func (d *Daemon) Serving() <-chan error { return d.served }

// Stop budgets, each also bounded by the caller's context.
const (
	httpDrainTimeout = 15 * time.Second
	hubStopTimeout   = 10 * time.Second
	// pushDrainTimeout bounds sending the pushes still queued.
	pushDrainTimeout = 10 * time.Second
)

// Stop drains and stops everything, in reverse start order:
//
//  1. the listener closes and requests in flight finish, still publishing
//     their events to the running hub, so every acknowledged write reaches
//     the sockets;
//  2. the sockets close with 1001 (going away), so clients reconnect
//     elsewhere and resynchronise;
//  3. the node leaves the cluster;
//  4. the database pool closes once every connection is back, or Stop
//     gives up on it when ctx ends.
//
// Stop may be called more than once; later calls do nothing.
func (d *Daemon) Stop(ctx context.Context) error {
	if !d.stopping.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	// systemd (issue 6): no more watchdog pings, and shutdown has begun.
	if d.watchdog != nil {
		errs = append(errs, d.watchdog.Stop(ctx))
	}
	if err := d.notify.Stopping("stopping: draining requests"); err != nil {
		d.log.Warn("systemd: stopping", "err", err)
	}
	if d.stopJobs != nil {
		d.stopJobs()
		d.jobs.Wait()
	}
	if d.srv != nil {
		hctx, cancel := context.WithTimeout(ctx, httpDrainTimeout)
		if err := d.srv.Shutdown(hctx); err != nil {
			errs = append(errs, fmt.Errorf("daemon: http shutdown: %w", err))
		}
		cancel()
		if err := <-d.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if d.metrics != nil {
		errs = append(errs, d.metrics.Stop(ctx))
	}
	if d.statusJobs != nil { // Statuses (issue 3)
		errs = append(errs, d.statusJobs.Stop(ctx))
	}
	if d.pushQueue != nil { // Push notifications (issue 5): after the requests that queue them
		pctx, cancel := context.WithTimeout(ctx, pushDrainTimeout)
		errs = append(errs, d.pushQueue.Stop(pctx))
		cancel()
	}
	if d.hub != nil {
		hctx, cancel := context.WithTimeout(ctx, hubStopTimeout)
		errs = append(errs, d.hub.Stop(hctx))
		cancel()
	}
	if d.cluster != nil {
		// Leave only now: the drained requests' invalidations and events
		// still had to reach the other nodes.
		errs = append(errs, d.cluster.Stop(ctx))
	}
	if d.store != nil {
		// pgxpool.Close waits for every acquired connection; a handler
		// cut off by the drain timeout may still hold one until its
		// statement_timeout fires.
		closed := make(chan struct{})
		go func() { d.store.Close(); close(closed) }()
		select {
		case <-closed:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("daemon: database pool still busy at shutdown: %w", ctx.Err()))
		}
	}
	d.log.Info("garrison stopped")
	return errors.Join(errs...)
}

// cleanup deletes, every hour, expired sessions, day-old unattached
// uploads and the discovery rows of nodes gone for an hour.
func (d *Daemon) cleanup(ctx context.Context) {
	defer d.jobs.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Once per cluster: whichever node takes the lock does it.
			if _, err := d.store.RunExclusive(ctx, "cleanup", d.runCleanup); err != nil && ctx.Err() == nil {
				d.log.Warn("cleanup", "err", err)
			}
		}
	}
}

// MetricsAddr is the bound metrics address, nil when metrics are off.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.metrics == nil {
		return nil
	}
	return d.metrics.Addr()
}

// MetricsURL is the base URL of the bound metrics listener (https://
// when the API listener serves TLS), "" when metrics are off.
func (d *Daemon) MetricsURL() string {
	if d.metrics == nil {
		return ""
	}
	return d.metrics.URL()
}

// metricSources are what /metrics reads at each scrape.
func (d *Daemon) metricSources() metrics.Sources {
	return metrics.Sources{
		ClusterNodes:         func() int { return len(d.cluster.Nodes()) },
		ClusterInSync:        func() bool { _, ok := d.cluster.Sync(); return ok },
		WebSocketConnections: d.hub.ConnectionCount,
		Push: func() metrics.Push {
			p := d.pushQueue.Stats() // zero when push is off
			return metrics.Push{Queued: p.Queued, OK: p.OK, Fail: p.Fail, Remove: p.Remove, Error: p.Errors, Dropped: p.Dropped}
		},
		Replicas: func() []metrics.Replica {
			var out []metrics.Replica
			for _, r := range d.store.ReplicaStatus() {
				out = append(out, metrics.Replica{Name: r.Name, Lag: r.Lag, InRotation: r.InRotation})
			}
			return out
		},
	}
}

// pushSender returns the push proxy's client, or nil when push
// notifications are off.
func (d *Daemon) pushSender() (push.Sender, error) {
	es := d.cfg.EmailSettings
	if !es.SendPushNotifications {
		return nil, nil
	}
	h, err := push.NewHTTP(push.HTTPOptions{URL: es.PushNotificationServer})
	if err != nil {
		return nil, fmt.Errorf("daemon: EmailSettings.PushNotificationServer: %w", err)
	}
	d.log.Info("push notifications on", "push_proxy", h.URL(), "contents", es.PushNotificationContents,
		"buffer", es.PushNotificationBuffer)
	return h, nil
}

// nodeStatusInterval is how often a node tells the others how it sees
// the database replicas (shown in cluster status).
const nodeStatusInterval = 5 * time.Second

func (d *Daemon) shareNodeStatus(ctx context.Context) {
	defer d.jobs.Done()
	t := time.NewTicker(nodeStatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.app.ShareNodeStatus()
		}
	}
}

func (d *Daemon) runCleanup(ctx context.Context) error {
	n, err := d.app.CleanupSessions(ctx)
	if err != nil {
		d.log.Warn("session cleanup", "err", err)
	} else if n > 0 {
		d.log.Info("expired sessions removed", "count", n)
	}
	files, err := d.app.CleanupOrphanFiles(ctx)
	if err != nil {
		d.log.Warn("unattached file cleanup", "removed", files, "err", err)
	} else if files > 0 {
		d.log.Info("unattached uploads removed", "count", files)
	}
	if _, err := d.store.Discovery().Prune(ctx, time.Hour); err != nil {
		d.log.Warn("cluster discovery cleanup", "err", err)
	}
	return nil
}

// newCluster makes this node's cluster: memberlist gossip when
// ClusterSettings.Enable is set, otherwise a cluster of one.
func (d *Daemon) newCluster(store *postgres.Store, hostname string) (cluster.Cluster, error) {
	k := d.cfg.ClusterSettings
	if k.OverrideHostname != "" {
		hostname = k.OverrideHostname
	}
	self := cluster.Node{ID: d.nodeID, Version: buildinfo.Version(), SchemaVersion: strconv.FormatInt(postgres.SchemaVersion(), 10),
		ConfigHash: d.cfg.Hash(), Hostname: hostname}
	if !k.Enable {
		// host:port with no scheme, as Mattermost's cluster status shows
		// it (with clustering on it is the gossip address). Nothing dials
		// it: clients and nginx take the API's address and scheme from
		// their own configuration.
		self.Address = d.cfg.ServiceSettings.ListenAddress
		return cluster.NewBus().Join(self), nil
	}
	var key []byte
	if k.EnableGossipEncryption {
		var err error
		if key, err = k.GossipKey(); err != nil { // validated at load; kept for callers that skip it
			return nil, fmt.Errorf("daemon: ClusterSettings.GossipEncryptionKey: %w", err)
		}
	} else {
		d.log.Warn("cluster gossip is not encrypted: set ClusterSettings.EnableGossipEncryption outside a lab")
	}
	return cluster.NewGossip(cluster.GossipOptions{
		Self: self, ClusterName: k.ClusterName, BindAddress: k.BindAddress, BindPort: k.GossipPort,
		AdvertiseAddress: k.AdvertiseAddress, SecretKey: key, Discovery: store.Discovery(), Logger: d.log,
	})
}

// migrate applies pending migrations, refusing to run a binary older than
// the schema supports.
func migrate(ctx context.Context, store *postgres.Store, logger *slog.Logger) error {
	m, err := postgres.NewMigrator(store.Pool(), logger)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(ctx, buildinfo.Version()); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return nil
}

// Settings derives the rules' settings from the configuration.
func Settings(cfg *config.Config) app.Settings {
	ss, ts := cfg.ServiceSettings, cfg.TeamSettings
	editLimit := time.Duration(ss.PostEditTimeLimit) * time.Second
	if ss.PostEditTimeLimit < 0 {
		editLimit = -1
	}
	return app.Settings{
		SiteURL:                  ss.SiteURL,
		EnableUserCreation:       ts.EnableUserCreation,
		EnableOpenServer:         ts.EnableOpenServer,
		EnableSignInWithEmail:    cfg.EmailSettings.EnableSignInWithEmail,
		EnableSignInWithUsername: cfg.EmailSettings.EnableSignInWithUsername,
		MaxUsersPerTeam:          ts.MaxUsersPerTeam,
		MaxChannelsPerTeam:       ts.MaxChannelsPerTeam,
		DefaultChannels:          ts.ExperimentalDefaultChannels,
		SessionLengthWeb:         time.Duration(ss.SessionLengthWebInHours) * time.Hour,
		SessionLengthMobile:      time.Duration(ss.SessionLengthMobileInHours) * time.Hour,
		SessionCacheTTL:          time.Duration(ss.SessionCacheInMinutes) * time.Minute,
		ExtendSessionWithUse:     ss.ExtendSessionLengthWithActivity,
		MaxLoginAttempts:         ss.MaximumLoginAttempts,
		Password: app.PasswordRules{
			MinimumLength: cfg.PasswordSettings.MinimumLength,
			Lowercase:     cfg.PasswordSettings.Lowercase, Uppercase: cfg.PasswordSettings.Uppercase,
			Number: cfg.PasswordSettings.Number, Symbol: cfg.PasswordSettings.Symbol,
		},
		ShowEmailAddress:         cfg.PrivacySettings.ShowEmailAddress,
		ShowFullName:             cfg.PrivacySettings.ShowFullName,
		PostEditTimeLimit:        editLimit,
		EnableAPIPostDeletion:    ss.EnableAPIPostDeletion,
		EnableUserTypingMessages: ss.EnableUserTypingMessages,
		EnableChannelViewed:      ss.EnableChannelViewedMessages,
		FileDirectory:            cfg.FileSettings.Directory,
		EnableUserDeactivation:   ts.EnableUserDeactivation, // administration
		// Statuses (issue 3).
		EnableUserStatuses: ss.EnableUserStatuses, UserStatusAwayTimeout: time.Duration(ts.UserStatusAwayTimeout) * time.Second,
		// Files (issue 3).
		EnableFileAttachments: cfg.FileSettings.EnableFileAttachments, MaxFileSize: cfg.FileSettings.MaxFileSize,
		MaxImageResolution: cfg.FileSettings.MaxImageResolution,
		EnablePublicLink:   cfg.FileSettings.EnablePublicLink, PublicLinkSalt: cfg.FileSettings.PublicLinkSalt,
		// Integrations (issue 3).
		EnableIncomingWebhooks: ss.EnableIncomingWebhooks, EnablePostUsernameOverride: ss.EnablePostUsernameOverride,
		EnablePostIconOverride: ss.EnablePostIconOverride, EnableUserAccessTokens: ss.EnableUserAccessTokens,
		// Push notifications (issue 5).
		PushContents: cfg.EmailSettings.PushNotificationContents, PushBuffer: cfg.EmailSettings.PushNotificationBuffer,
	}
}

// APIOptions derives the HTTP edge's options from the configuration.
func APIOptions(cfg *config.Config, a *app.App, hub *ws.Hub, logger *slog.Logger, diagID string) api.Options {
	ss := cfg.ServiceSettings
	o := api.Options{
		App: a, Logger: logger, WebSocket: hub, SiteURL: ss.SiteURL,
		MaxPayload: ss.MaximumPayloadSizeBytes, StrictCSRF: ss.ExperimentalStrictCSRFEnforcement,
		Developer: ss.EnableDeveloper, Gzip: ss.WebserverMode == "gzip",
		Version: buildinfo.Version(), MattermostVersion: MattermostVersion, ConfigHash: cfg.Hash(),
		ClientConfig:           ClientConfig(cfg, diagID),
		LoginFailuresPerMinute: 30,
		// Past the database's statement_timeout, with room for the rest.
		RequestTimeout:       time.Duration(cfg.SqlSettings.QueryTimeout)*time.Second + 10*time.Second,
		TrustedProxyIPHeader: ss.TrustedProxyIPHeader,
	}
	if rl := cfg.RateLimitSettings; rl.Enable {
		o.RateLimit = &api.RateLimitOptions{PerSec: rl.PerSec, MaxBurst: rl.MaxBurst, MemoryStoreSize: rl.MemoryStoreSize,
			VaryByRemoteAddr: rl.VaryByRemoteAddr, VaryByUser: rl.VaryByUser, VaryByHeader: rl.VaryByHeader}
	}
	return o
}

// ClientConfig is the map GET /config/client?format=old returns: what
// Mattermost clients read at start-up.
func ClientConfig(cfg *config.Config, diagID string) map[string]string {
	b := strconv.FormatBool
	ss, ts, ps, fs, es := cfg.ServiceSettings, cfg.TeamSettings, cfg.PasswordSettings, cfg.FileSettings, cfg.EmailSettings
	return map[string]string{
		"Version": MattermostVersion, "BuildNumber": buildinfo.Version(), "BuildDate": "", "BuildHash": buildinfo.Read().Revision,
		"BuildHashEnterprise": "none", "BuildEnterpriseReady": "false", "IsLicensed": "false",
		"SiteURL": ss.SiteURL, "SiteName": ts.SiteName, "DiagnosticId": diagID, "DiagnosticsEnabled": "false",
		"EnableSignUpWithEmail": b(es.EnableSignUpWithEmail), "EnableSignInWithEmail": b(es.EnableSignInWithEmail),
		"EnableSignInWithUsername": b(es.EnableSignInWithUsername), "EnableOpenServer": b(ts.EnableOpenServer),
		"EnableUserCreation": b(ts.EnableUserCreation), "EnableUserTypingMessages": b(ss.EnableUserTypingMessages),
		"EnableChannelViewedMessages": b(ss.EnableChannelViewedMessages), "PasswordMinimumLength": strconv.Itoa(ps.MinimumLength),
		"PasswordRequireLowercase": b(ps.Lowercase), "PasswordRequireUppercase": b(ps.Uppercase),
		"PasswordRequireNumber": b(ps.Number), "PasswordRequireSymbol": b(ps.Symbol),
		"EnableFileAttachments": b(fs.EnableFileAttachments), "MaxFileSize": strconv.FormatInt(fs.MaxFileSize, 10),
		"EnablePublicLink": b(fs.EnablePublicLink), "EnableMobileFileUpload": "true", "EnableMobileFileDownload": "true",
		"MaxPostSize": strconv.Itoa(app.MaxPostSizeDefault), "PostEditTimeLimit": strconv.Itoa(ss.PostEditTimeLimit),
		"RestrictDirectMessage": "any", "TeammateNameDisplay": "username", "ShowEmailAddress": b(cfg.PrivacySettings.ShowEmailAddress),
		"ShowFullName": b(cfg.PrivacySettings.ShowFullName), "EnableCustomEmoji": "false", "EnableLdap": "false",
		"EnableSaml": "false", "EnableMultifactorAuthentication": "false", "EnforceMultifactorAuthentication": "false",
		"SendPushNotifications": b(es.SendPushNotifications), "EnablePostUsernameOverride": b(ss.EnablePostUsernameOverride), "EnablePostIconOverride": b(ss.EnablePostIconOverride),
		"ExperimentalEnableAuthenticationTransfer": "false", "CollapsedThreads": "disabled", "EnableReliableWebSockets": "true",
		"FeatureFlagCollapsedThreads": "false", "WebsocketURL": "", "WebsocketPort": "80", "WebsocketSecurePort": "443",
		"EnableDeveloper": b(ss.EnableDeveloper), "NoAccounts": "false",
		"TimeBetweenUserTypingUpdatesMilliseconds": strconv.FormatInt(ss.TimeBetweenUserTypingUpdatesMilliseconds, 10),
		"EnableUserDeactivation":                   b(ts.EnableUserDeactivation), // administration
		"EnableIncomingWebhooks":                   b(ss.EnableIncomingWebhooks), // integrations
		"EnableUserAccessTokens":                   b(ss.EnableUserAccessTokens), // integrations
	}
}
