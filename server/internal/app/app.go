// Package app holds Garrison's rules: who may do what, what a request
// changes, and which events it publishes. Handlers in package api call it;
// it calls the database through package postgres and publishes WebSocket
// events through a Publisher (the ws hub).
package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/garrison-chat/garrison/server/internal/blob"
	"github.com/garrison-chat/garrison/server/internal/cluster"
	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/push"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// Publisher delivers WebSocket events and ends sockets. The ws hub is the
// implementation; it is set after construction (the hub needs the App as
// its authenticator, so the two are wired in two steps by the daemon).
type Publisher interface {
	Publish(ctx context.Context, ev *ws.Event) error
	CloseSession(sessionID string)
	CloseUser(userID string)
}

// Settings are the configuration values the rules depend on.
type Settings struct {
	SiteURL                  string
	EnableUserCreation       bool
	EnableOpenServer         bool
	EnableSignInWithEmail    bool
	EnableSignInWithUsername bool
	MaxUsersPerTeam          int
	MaxChannelsPerTeam       int64
	DefaultChannels          []string
	SessionLengthWeb         time.Duration
	SessionLengthMobile      time.Duration
	SessionCacheTTL          time.Duration
	ExtendSessionWithUse     bool
	MaxLoginAttempts         int
	Password                 PasswordRules
	ShowEmailAddress         bool
	ShowFullName             bool
	// PostEditTimeLimit is how long after posting an author may edit; <0
	// means no limit.
	PostEditTimeLimit        time.Duration
	EnableAPIPostDeletion    bool
	EnableUserTypingMessages bool
	// TypingThrottle is the least time between two typing events of one
	// user in one channel; 0 means one second.
	TypingThrottle      time.Duration
	EnableChannelViewed bool
	MaxPostSize         int
	// FileDirectory is FileSettings.Directory (local driver).
	FileDirectory string

	// Files (issue 3, uploads): FileSettings.
	// EnableFileAttachments allows uploads.
	EnableFileAttachments bool
	// MaxFileSize bounds one file, in bytes; 0 means 100 MiB.
	MaxFileSize int64
	// MaxImageResolution bounds width×height of an image; 0 means
	// Mattermost's default, 7680×4320.
	MaxImageResolution int64
	// EnablePublicLink allows GET /files/{id}/link.
	EnablePublicLink bool
	// PublicLinkSalt keys the public link hash.
	PublicLinkSalt string

	// Integrations (issue 3): ServiceSettings.
	// EnableIncomingWebhooks allows incoming webhooks.
	EnableIncomingWebhooks bool
	// EnablePostUsernameOverride and EnablePostIconOverride let webhook
	// posts show another name and icon.
	EnablePostUsernameOverride bool
	EnablePostIconOverride     bool
	// EnableUserAccessTokens allows personal access tokens.
	EnableUserAccessTokens bool

	// Administration (issue 3): TeamSettings.
	// EnableUserDeactivation lets users deactivate their own account.
	EnableUserDeactivation bool

	// Statuses and typing (issue 3).
	// EnableUserStatuses turns on automatic status changes
	// (ServiceSettings.EnableUserStatuses); manual ones always work.
	EnableUserStatuses bool
	// UserStatusAwayTimeout is how long an online user may be idle before
	// becoming away (TeamSettings.UserStatusAwayTimeout); 0 means 300 s.
	UserStatusAwayTimeout time.Duration

	// Push notifications (issue 5): EmailSettings.
	// PushContents is PushNotificationContents: id_loaded (also for ""),
	// generic_no_channel, generic or full.
	PushContents string
	// PushBuffer is PushNotificationBuffer, the push queue's size; 0
	// means 1000.
	PushBuffer int
}

// PasswordRules are PasswordSettings.
type PasswordRules struct {
	MinimumLength                        int
	Lowercase, Uppercase, Number, Symbol bool
}

// Options configure an App.
type Options struct {
	Store    *postgres.Store
	Logger   *slog.Logger
	Settings Settings
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NodeID names this server in health checks and logs.
	NodeID string
	// BcryptCost is the password hashing cost; 0 means bcrypt.DefaultCost.
	BcryptCost int

	// Files (issue 3, uploads) holds file contents; nil means a local
	// store in Settings.FileDirectory.
	Files blob.Store

	// Cluster (issue 4) connects this node to the others; nil means a
	// server on its own. It must not be started yet: New registers its
	// handlers.
	Cluster cluster.Cluster

	// Push (issue 5) sends push notifications to the push proxy; nil
	// means push notifications are off. The queue's workers run between
	// PushQueue().Start and Stop.
	Push push.Sender
	// PushWorkers is how many jobs are worked on at once; 0 means 4.
	PushWorkers int
	// ServerID is the push server_id: the DiagnosticId.
	ServerID string
}

// App implements the rules.
type App struct {
	store    *postgres.Store
	log      *slog.Logger
	set      Settings
	now      func() time.Time
	nodeID   string
	pub      Publisher
	sessions *sessionCache
	members  *memberCache
	typing   *typingThrottle
	bcrypt   int
	pw       passwords // bounds password work; zero value ready

	// Files (issue 3, uploads).
	files     blob.Store
	filesErr  error         // why files is nil, reported on upload
	imageWork chan struct{} // bounds concurrent image decodes

	// Statuses and typing (issue 3).
	statuses *statusTracker

	// Cluster (issue 4).
	cluster    cluster.Cluster
	presence   *presence
	nodeStatus nodeStatuses

	// Push notifications (issue 5); pushq is nil when they are off.
	pushq    *PushQueue
	serverID string
	vapid    vapidCache
}

// MaxPostSizeDefault is Mattermost's post size limit in characters.
const MaxPostSizeDefault = 16383

// New returns an App. Call SetPublisher before serving requests.
func New(o Options) *App {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.Settings.MaxPostSize == 0 {
		o.Settings.MaxPostSize = MaxPostSizeDefault
	}
	a := &App{
		store: o.Store, log: o.Logger, set: o.Settings, now: now, nodeID: o.NodeID, bcrypt: o.BcryptCost,
	}
	a.cluster = o.Cluster
	a.presence = newPresence()
	a.nodeStatus.nodes = map[string][]DatabaseReplica{}
	if a.cluster == nil {
		// On its own, the server is a cluster of one.
		solo := cluster.NewBus().Join(cluster.Node{ID: o.NodeID})
		a.cluster = solo
		a.registerCluster()
		a.registerReadYourWrites()
		_ = solo.Start(context.Background()) // cannot fail for a new bus
	} else {
		a.registerCluster()
		a.registerReadYourWrites()
	}
	a.sessions = newSessionCache(o.Settings.SessionCacheTTL, 50000, now, a.cluster.Sync)
	a.members = newMemberCache(o.Store, a.cluster.Sync)
	interval := o.Settings.TypingThrottle
	if interval <= 0 {
		interval = typingMinInterval
	}
	a.typing = newTypingThrottle(interval, typingThrottleMax)
	a.initFiles(o) // Files (issue 3, uploads)
	// Statuses and typing (issue 3).
	a.statuses = newStatusTracker()
	// Push notifications (issue 5).
	a.serverID = o.ServerID
	if o.Push != nil {
		a.pushq = newPushQueue(a, o.Push, o.Settings.PushBuffer, o.PushWorkers)
	}
	return a
}

// SetPublisher sets where events go. It must be called before serving.
func (a *App) SetPublisher(p Publisher) { a.pub = p }

// Settings returns the rules' settings.
func (a *App) Settings() Settings { return a.set }

func (a *App) millis() int64 { return a.now().UnixMilli() }

// publishTimeout bounds resolving an event's audience.
const publishTimeout = 10 * time.Second

// publish sends ev; delivery problems are logged, never returned to the
// caller whose write already succeeded. The write has committed, so the
// event must go out even if the client that caused it has gone away: the
// request's cancellation is not passed on.
func (a *App) publish(ctx context.Context, ev *ws.Event) {
	if a.pub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := a.pub.Publish(ctx, ev); err != nil {
		a.log.Warn("publish event", "event", ev.Name, "err", err)
	}
	a.sendEvent(ctx, ev) // Cluster (issue 4): the other nodes' sockets
}

// Cluster returns this node's view of the cluster.
func (a *App) Cluster() cluster.Cluster { return a.cluster }

// Ping checks the database, as the health endpoint reports it.
func (a *App) Ping(ctx context.Context) error { return a.store.Ping(ctx, a.nodeID) }

// storeErr turns a storage error into an AppError: not-found becomes the
// given 404, anything else a 500 carrying the cause for the log.
func storeErr(where string, err error, notFoundID, kind string) *model.AppError {
	if errors.Is(err, postgres.ErrNotFound) && notFoundID != "" {
		return model.ErrNotFound(where, notFoundID, kind).Wrap(err)
	}
	return internalErr(where, err)
}

// internalErr wraps an unexpected failure as a 500, or as a 503 when the
// database was unavailable (down, failing over, out of reach): the
// request may be retried.
func internalErr(where string, err error) *model.AppError {
	if postgres.IsUnavailable(err) {
		return model.NewAppError(where, "app.database.unavailable.app_error", http.StatusServiceUnavailable,
			"The database is unavailable. Please try again.").Wrap(err)
	}
	e := model.NewAppError(where, "app.internal_error", http.StatusInternalServerError, "An internal error occurred.")
	return e.Wrap(err)
}

// badRequest builds a 400 with id and message.
func badRequest(where, id, msg string) *model.AppError {
	return model.NewAppError(where, id, http.StatusBadRequest, msg)
}
