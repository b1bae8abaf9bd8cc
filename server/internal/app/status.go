package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"time"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/ws"
)

// Statuses follow Mattermost's platform/status.go:
//
//   - a user with a live socket, or who acts, is online, unless their
//     status is manual (away, offline or dnd chosen by hand);
//   - when their last socket on any node closes they are offline, unless
//     manual;
//   - online users idle for UserStatusAwayTimeout become away (the sweep);
//   - a timed dnd returns to the status it replaced when it ends (the sweep);
//   - choosing online clears manual; choosing anything else sets it.
//
// The database is the source of truth; every change runs in one
// transaction under the row's lock and publishes status_change to the
// user's own connections. Activity is written back at most once per
// activityInterval per user, so a chatty client costs no writes.

const (
	// defaultAwayTimeout is TeamSettings.UserStatusAwayTimeout's default.
	defaultAwayTimeout = 300 * time.Second
	// maxActivityInterval bounds how stale a written last_activity_at
	// may be (Mattermost's StatusMinUpdateTime is 2 minutes).
	maxActivityInterval = time.Minute
	// maxActiveStatuses bounds get_statuses' reply.
	maxActiveStatuses = 10000
	// maxStatusIDs bounds a by-ids lookup.
	maxStatusIDs = 1000
	// sweepBatch is how many users a sweep changes per query.
	sweepBatch = 500
	// statusMemoMax bounds the activity memo.
	statusMemoMax = 100000
	// dndGranularity is how DND end times are rounded (Mattermost's
	// DNDExpiryInterval).
	dndGranularity = time.Minute
)

// inputKind is what happened to a user's status.
type inputKind int

const (
	inActivity     inputKind = iota // a live socket or an action: online unless manual
	inDisconnected                  // the last live socket closed: offline unless manual
	inIdle                          // the away sweep: automatic online and idle → away
	inInactive                      // the client says the user is inactive: away if idle, unless manual
	inDNDExpired                    // the DND sweep: a timed dnd that has ended → its previous status
	inSet                           // a manual choice of status
)

// statusInput is one input to the state machine.
type statusInput struct {
	kind   inputKind
	status string // inSet: online, away, offline or dnd
	dndEnd int64  // inSet dnd: seconds since the epoch, 0 for no end
}

// statusTiming are the durations the state machine depends on.
type statusTiming struct {
	away     time.Duration // idle time before away
	activity time.Duration // least time between two writes of activity
}

// nextStatus is the state machine: given the user's current status (nil:
// none, that is offline) and an input at now, it returns the status to
// store, or nil when nothing changes. It never modifies cur.
func nextStatus(cur *model.Status, userID string, in statusInput, now time.Time, tm statusTiming) *model.Status {
	ms := now.UnixMilli()
	base := model.Status{UserID: userID, Status: model.StatusOffline}
	if cur != nil {
		base = *cur
	}
	next := base
	automaticOnly := func() bool { return cur == nil || !cur.Manual }
	idle := ms-base.LastActivityAt >= tm.away.Milliseconds()

	switch in.kind {
	case inActivity:
		if !automaticOnly() {
			return nil // a manual status wins over automatic changes
		}
		if cur != nil && cur.Status == model.StatusOnline && ms-cur.LastActivityAt < tm.activity.Milliseconds() {
			return nil // recorded recently enough
		}
		next.Status, next.Manual, next.LastActivityAt = model.StatusOnline, false, ms
	case inDisconnected:
		if !automaticOnly() || base.Status == model.StatusOffline {
			return nil
		}
		next.Status, next.Manual, next.LastActivityAt = model.StatusOffline, false, ms
	case inIdle:
		if cur == nil || cur.Manual || cur.Status != model.StatusOnline || !idle {
			return nil
		}
		next.Status = model.StatusAway
	case inInactive:
		if !automaticOnly() || base.Status == model.StatusAway || !idle {
			return nil
		}
		next.Status, next.Manual = model.StatusAway, false
	case inDNDExpired:
		if cur == nil || cur.Status != model.StatusDND || cur.DNDEndTime == 0 || cur.DNDEndTime > now.Unix() {
			return nil
		}
		next.Status, next.Manual = cur.PrevStatus, cur.PrevManual
		if next.Status == "" || next.Status == model.StatusDND {
			next.Status, next.Manual = model.StatusOffline, false
		}
		next.PrevStatus, next.PrevManual = "", false
	case inSet:
		switch in.status {
		case model.StatusOnline:
			next.Status, next.Manual, next.LastActivityAt = model.StatusOnline, false, ms
		case model.StatusAway:
			next.Status, next.Manual = model.StatusAway, true
		case model.StatusOffline:
			next.Status, next.Manual, next.LastActivityAt = model.StatusOffline, true, ms
		case model.StatusDND:
			if base.Status != model.StatusDND {
				// What a timed dnd returns to; an earlier dnd's is kept.
				next.PrevStatus, next.PrevManual = base.Status, base.Manual
			}
			next.Status, next.Manual = model.StatusDND, true
			next.DNDEndTime = 0
			if in.dndEnd > 0 {
				next.DNDEndTime = time.Unix(in.dndEnd, 0).Truncate(dndGranularity).Unix()
			}
			return &next
		default:
			return nil
		}
	default:
		return nil
	}
	if next.Status != model.StatusDND {
		next.DNDEndTime, next.PrevStatus, next.PrevManual = 0, "", false
	}
	return &next
}

// statusTracker is the node-local part of statuses: per-user ordering of
// changes and a memo that lets activity skip the database.
type statusTracker struct {
	seed  maphash.Seed
	locks [64]sync.Mutex // a user's changes on this node run under locks[hash(user)]

	mu   sync.Mutex // guards memo
	memo map[string]statusMemo
}

// statusMemo is the last status this node stored or read for a user.
type statusMemo struct {
	status       string
	manual       bool
	lastActivity int64 // ms, as stored
}

func newStatusTracker() *statusTracker {
	return &statusTracker{seed: maphash.MakeSeed(), memo: make(map[string]statusMemo)}
}

func (t *statusTracker) lock(userID string) *sync.Mutex {
	return &t.locks[maphash.String(t.seed, userID)%uint64(len(t.locks))]
}

func (t *statusTracker) remember(s *model.Status) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.memo[s.UserID]; !ok && len(t.memo) >= statusMemoMax {
		clear(t.memo) // forgetting costs one write per user, nothing more
	}
	t.memo[s.UserID] = statusMemo{status: s.Status, manual: s.Manual, lastActivity: s.LastActivityAt}
}

// activityIsNoop reports whether activity at ms would change nothing, as
// far as this node knows: the status is manual, or online and recorded
// less than interval ago.
func (t *statusTracker) activityIsNoop(userID string, ms int64, interval time.Duration) bool {
	t.mu.Lock()
	m, ok := t.memo[userID]
	t.mu.Unlock()
	return ok && (m.manual || m.status == model.StatusOnline && ms-m.lastActivity < interval.Milliseconds())
}

func (a *App) statusTiming() statusTiming {
	away := a.set.UserStatusAwayTimeout
	if away <= 0 {
		away = defaultAwayTimeout
	}
	return statusTiming{away: away, activity: max(min(maxActivityInterval, away/3), time.Second)}
}

// offlineStatus is the status of a user without one.
func offlineStatus(userID string) *model.Status {
	return &model.Status{UserID: userID, Status: model.StatusOffline}
}

// applyStatus runs one input through the state machine in a transaction
// and publishes status_change when the status changed (or was chosen by
// hand, which Mattermost always announces). It returns the resulting
// status and whether its status value changed.
func (a *App) applyStatus(ctx context.Context, userID string, in statusInput) (*model.Status, bool, error) {
	mu := a.statuses.lock(userID)
	mu.Lock()
	defer mu.Unlock()
	now := a.now()
	tm := a.statusTiming()
	before, after, err := a.store.UpdateStatus(ctx, userID, func(cur *model.Status) *model.Status {
		return nextStatus(cur, userID, in, now, tm)
	})
	if err != nil {
		return nil, false, err
	}
	if after == nil {
		return offlineStatus(userID), false, nil
	}
	a.statuses.remember(after)
	changed := after != before && (before == nil || before.Status != after.Status)
	if changed || after != before && in.kind == inSet {
		// Under the user's lock, so that their connections see the
		// changes in the order they were stored.
		a.publish(ctx, &ws.Event{
			Name:      "status_change",
			Data:      map[string]any{"status": after.Status, "user_id": userID},
			Broadcast: ws.Broadcast{UserID: userID},
		})
	}
	return after, changed, nil
}

// automatic applies an automatic input, if automatic changes are enabled;
// failures are logged: nobody waits for them.
func (a *App) automatic(ctx context.Context, userID string, in statusInput) {
	if !a.set.EnableUserStatuses {
		return
	}
	if in.kind == inActivity && a.statuses.activityIsNoop(userID, a.millis(), a.statusTiming().activity) {
		return
	}
	if _, _, err := a.applyStatus(ctx, userID, in); err != nil {
		a.log.Warn("status: automatic change", "user_id", userID, "input", int(in.kind), "err", err)
	}
}

// RecordActivity marks the user active: online unless their status is
// manual. It is cheap to call often.
func (a *App) RecordActivity(ctx context.Context, userID string) {
	a.automatic(ctx, userID, statusInput{kind: inActivity})
}

// UserConnections implements the hub's OnConnections: a user with a live
// socket is online, one whose last socket closed is offline.
//
// In a cluster the count is this node's alone: the other nodes are told
// it, and a user whose last socket here closes stays online while they
// have one on another node.
//
// The others are told after the status is written, so a node that hears
// of the change sees its effect.
func (a *App) UserConnections(ctx context.Context, userID string, live int) {
	gone := a.presence.setLocal(userID, live)
	defer a.sendConns(connsMessage{Counts: map[string]int{userID: live}})
	if live > 0 {
		a.automatic(ctx, userID, statusInput{kind: inActivity})
		return
	}
	if gone {
		a.automatic(ctx, userID, statusInput{kind: inDisconnected})
	}
}

// UserActivity implements the hub's OnActivity. Keep-alives and status
// polls are not the user doing anything, and user_update_active_status
// says for itself whether the user is active.
func (a *App) UserActivity(ctx context.Context, userID, action string) {
	switch action {
	case "ping", "get_statuses", "get_statuses_by_ids", "user_update_active_status", "posted_notify_ack":
		return
	}
	a.RecordActivity(ctx, userID)
}

// GetUserStatus returns a user's status; a user without one (or an
// unknown id) is offline, as in Mattermost. Any session may read it.
func (a *App) GetUserStatus(ctx context.Context, _ *model.Session, userID string) (*model.Status, *model.AppError) {
	st, err := a.store.GetStatus(ctx, userID)
	if errors.Is(err, postgres.ErrNotFound) {
		return offlineStatus(userID), nil
	}
	if err != nil {
		return nil, internalErr("app.get_user_status", err)
	}
	return st, nil
}

// GetUserStatusesByIDs returns the statuses of the given users, in the
// order asked, each once; users without one are offline.
func (a *App) GetUserStatusesByIDs(ctx context.Context, _ *model.Session, userIDs []string) ([]*model.Status, *model.AppError) {
	byID, err := a.statusesByID(ctx, userIDs)
	if err != nil {
		return nil, internalErr("app.get_user_statuses_by_ids", err)
	}
	out := make([]*model.Status, 0, len(byID))
	seen := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		if !seen[id] {
			seen[id] = true
			out = append(out, byID[id])
		}
	}
	return out, nil
}

func (a *App) statusesByID(ctx context.Context, userIDs []string) (map[string]*model.Status, error) {
	found, err := a.store.GetStatuses(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*model.Status, len(userIDs))
	for _, id := range userIDs {
		byID[id] = offlineStatus(id)
	}
	for _, s := range found {
		byID[s.UserID] = s
	}
	return byID, nil
}

// UpdateUserStatus sets a user's status by hand (PUT /users/{id}/status):
// online, away, offline or dnd, with dndEnd (seconds, 0 for none) for a
// timed dnd. Users set their own; system admins anyone's.
func (a *App) UpdateUserStatus(ctx context.Context, s *model.Session, userID, status string, dndEnd int64) (*model.Status, *model.AppError) {
	const where = "app.update_user_status"
	if err := a.requireSelfOrAdmin(s, userID, "edit_other_users"); err != nil {
		return nil, err
	}
	switch status {
	case model.StatusOnline, model.StatusAway, model.StatusOffline, model.StatusDND:
	default:
		// "ooo" is only set by the auto-responder, as in Mattermost.
		return nil, model.ErrInvalidBody(where, "status")
	}
	if status != model.StatusDND {
		dndEnd = 0
	}
	if dndEnd < 0 || dndEnd > 0 && dndEnd <= a.now().Unix() {
		return nil, model.ErrInvalidBody(where, "dnd_end_time").Detail("must be in the future, in seconds since the epoch")
	}
	if userID != s.UserID {
		if _, err := a.store.GetUser(ctx, userID); err != nil {
			return nil, storeErr(where, err, userMissing, "user")
		}
	}
	st, _, err := a.applyStatus(ctx, userID, statusInput{kind: inSet, status: status, dndEnd: dndEnd})
	if err != nil {
		return nil, internalErr(where, err)
	}
	return st, nil
}

// SweepStatuses makes idle online users away (when automatic statuses are
// enabled) and ends timed dnd statuses that are over. The status jobs run
// it periodically; tests call it with a moved clock.
func (a *App) SweepStatuses(ctx context.Context) error {
	now := a.now()
	if a.set.EnableUserStatuses {
		before := now.Add(-a.statusTiming().away).UnixMilli()
		if err := a.sweep(ctx, inIdle, func() ([]string, error) {
			return a.store.ListIdleOnline(ctx, before, sweepBatch)
		}); err != nil {
			return err
		}
	}
	return a.sweep(ctx, inDNDExpired, func() ([]string, error) {
		return a.store.ListExpiredDND(ctx, now.Unix(), sweepBatch)
	})
}

// sweep applies kind to the users list returns, batch after batch, until
// a batch changes nobody.
func (a *App) sweep(ctx context.Context, kind inputKind, list func() ([]string, error)) error {
	for {
		ids, err := list()
		if err != nil {
			return fmt.Errorf("status sweep: %w", err)
		}
		changed := 0
		for _, id := range ids {
			_, ok, err := a.applyStatus(ctx, id, statusInput{kind: kind})
			if err != nil {
				return fmt.Errorf("status sweep: %w", err)
			}
			if ok {
				changed++
			}
		}
		if len(ids) < sweepBatch || changed == 0 {
			return nil
		}
	}
}

// handleStatusAction serves the status WebSocket actions.
func (a *App) handleStatusAction(ctx context.Context, s ws.Session, action string, data json.RawMessage) (any, error) {
	const where = "app.status_action"
	switch action {
	case "get_statuses":
		list, err := a.store.ListActiveStatuses(ctx, maxActiveStatuses)
		if err != nil {
			return nil, internalErr(where, err)
		}
		out := make(map[string]any, len(list))
		for _, st := range list {
			out[st.UserID] = st.Status
		}
		return out, nil
	case "get_statuses_by_ids":
		var d struct {
			UserIDs []string `json:"user_ids"`
		}
		if err := json.Unmarshal(data, &d); err != nil || len(d.UserIDs) == 0 || len(d.UserIDs) > maxStatusIDs {
			return nil, invalidWSParam(action, "user_ids")
		}
		for _, id := range d.UserIDs {
			if !model.IsValidID(id) {
				return nil, invalidWSParam(action, "user_ids")
			}
		}
		byID, err := a.statusesByID(ctx, d.UserIDs)
		if err != nil {
			return nil, internalErr(where, err)
		}
		out := make(map[string]any, len(byID))
		for id, st := range byID {
			out[id] = st.Status
		}
		return out, nil
	case "user_update_active_status":
		var d struct {
			Active *bool `json:"user_is_active"`
			Manual bool  `json:"manual"`
		}
		if err := json.Unmarshal(data, &d); err != nil || d.Active == nil {
			return nil, invalidWSParam(action, "user_is_active")
		}
		var in statusInput
		switch {
		case *d.Active && d.Manual:
			in = statusInput{kind: inSet, status: model.StatusOnline}
		case *d.Active:
			a.RecordActivity(ctx, s.UserID)
			return nil, nil
		case d.Manual:
			in = statusInput{kind: inSet, status: model.StatusAway}
		default:
			a.automatic(ctx, s.UserID, statusInput{kind: inInactive})
			return nil, nil
		}
		if _, _, err := a.applyStatus(ctx, s.UserID, in); err != nil {
			return nil, internalErr(where, err)
		}
		return nil, nil
	}
	return nil, model.NewAppError(where, "api.web_socket_router.bad_action.app_error", http.StatusBadRequest, "Unknown WebSocket action.")
}

// isStatusAction reports whether handleStatusAction serves action.
func isStatusAction(action string) bool {
	switch action {
	case "get_statuses", "get_statuses_by_ids", "user_update_active_status":
		return true
	}
	return false
}

// StatusJobs runs SweepStatuses on a ticker: one goroutine, owned by
// whoever calls Start and Stop (the daemon).
type StatusJobs struct {
	a        *App
	interval time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewStatusJobs returns the status sweeper; interval 0 means a quarter
// of the away timeout, at most 30 s (DND ends are rounded to the minute).
func (a *App) NewStatusJobs(interval time.Duration) *StatusJobs {
	if interval <= 0 {
		interval = max(min(a.statusTiming().away/4, 30*time.Second), time.Second)
	}
	return &StatusJobs{a: a, interval: interval}
}

// Start launches the sweeper.
func (j *StatusJobs) Start(ctx context.Context) error {
	if j.done != nil {
		return errors.New("status jobs: already started")
	}
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j.cancel, j.done = cancel, make(chan struct{})
	go j.run(jctx)
	return nil
}

func (j *StatusJobs) run(ctx context.Context) {
	defer close(j.done)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Once per cluster: the node holding the lock sweeps.
			if _, err := j.a.store.RunExclusive(ctx, "status-sweep", j.a.SweepStatuses); err != nil && ctx.Err() == nil {
				j.a.log.Warn("status sweep", "err", err)
			}
		}
	}
}

// Stop ends the sweeper and waits for it, bounded by ctx.
func (j *StatusJobs) Stop(ctx context.Context) error {
	if j.done == nil {
		return nil
	}
	j.cancel()
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("status jobs: stop: %w", ctx.Err())
	}
}
