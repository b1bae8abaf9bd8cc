package app

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
	"github.com/garrison-chat/garrison/server/internal/push"
)

// Push notifications (issue 5). A new post, a channel view and a few
// other changes queue a job; a few workers decide, build and send the
// pushes to the push proxy, one per session with a device, as Mattermost
// does. Posting never waits for any of it: the queue is bounded
// (EmailSettings.PushNotificationBuffer) and a full queue drops the job,
// counted. Only the node that handled the request queues its jobs, so in
// a cluster each push is sent once.

const (
	// defaultPushWorkers drain the queue when Options.PushWorkers is 0.
	defaultPushWorkers = 4
	// defaultPushBuffer is PushNotificationBuffer's default.
	defaultPushBuffer = 1000
	// pushJobTimeout bounds one job: its queries and all its sends.
	pushJobTimeout = 60 * time.Second
	// pushCallTimeout bounds a call to the proxy made while a client
	// waits (registration, the VAPID key).
	pushCallTimeout = 15 * time.Second
	// pushAttempts and pushMaxRetryWait bound the retries of a send the
	// proxy throttled.
	pushAttempts     = 3
	pushMaxRetryWait = 10 * time.Second
	// pushSendConcurrency bounds the sends of one job in flight at once.
	pushSendConcurrency = 8
	// vapidKeyTTL is how long the proxy's VAPID key is reused.
	vapidKeyTTL = 5 * time.Minute
	// pushDropLogInterval spaces the warnings about dropped jobs.
	pushDropLogInterval = 10 * time.Second
	// webPushPrefix starts the device id of a browser registration.
	webPushPrefix = push.PlatformWebPush + ":"
)

// pushJobKind is what a push job does.
type pushJobKind int

const (
	jobPosted     pushJobKind = iota // a new post's message pushes
	jobClear                         // clear a channel's pushes from a user's devices
	jobBadge                         // update a user's badge
	jobAck                           // forward a device's receipt to the proxy
	jobUnregister                    // drop a browser registration at the proxy
)

func (k pushJobKind) String() string {
	return [...]string{"posted", "clear", "update_badge", "ack", "unregister"}[k]
}

// pushJob is one unit of work for the workers.
type pushJob struct {
	kind pushJobKind
	post *postForPush // jobPosted
	// userID, channelID and skipSession: jobClear and jobBadge (the
	// session that caused a clear has nothing to clear).
	userID, channelID, skipSession string
	ack                            *push.Ack // jobAck
	registration                   string    // jobUnregister
}

// PushStats are a node's push counters since it started.
type PushStats struct {
	// Queued is the number of jobs waiting now.
	Queued int
	// OK, Fail and Remove count the proxy's answers; Errors the sends it
	// did not answer; Dropped the jobs a full queue refused.
	OK, Fail, Remove, Errors, Dropped uint64
}

// PushQueue is the bounded queue of push jobs and its workers. Start and
// Stop it with the daemon; a nil *PushQueue (push off) accepts nothing.
type PushQueue struct {
	a       *App
	sender  push.Sender
	jobs    chan pushJob
	workers int

	ok, fail, remove, errs, dropped atomic.Uint64
	stopped                         atomic.Bool

	mu        sync.Mutex // guards the fields below
	started   bool
	quit      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	lastDrop  time.Time
	dropsSeen uint64 // dropped at the last warning
}

func newPushQueue(a *App, sender push.Sender, buffer, workers int) *PushQueue {
	if buffer <= 0 {
		buffer = defaultPushBuffer
	}
	if workers <= 0 {
		workers = defaultPushWorkers
	}
	return &PushQueue{a: a, sender: sender, jobs: make(chan pushJob, buffer), workers: workers}
}

// PushQueue returns the push queue; nil when push notifications are off.
func (a *App) PushQueue() *PushQueue { return a.pushq }

// pushOn reports whether push notifications are on.
func (a *App) pushOn() bool { return a.pushq != nil }

// Start launches the workers.
func (q *PushQueue) Start(ctx context.Context) error {
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return errors.New("push: already started")
	}
	q.started = true
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.quit, q.cancel, q.done = make(chan struct{}), cancel, make(chan struct{})
	var wg sync.WaitGroup
	for range q.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.work(wctx)
		}()
	}
	go func() { wg.Wait(); close(q.done) }()
	return nil
}

// Stop stops taking jobs and lets the workers finish the queued ones;
// when ctx ends first, the sends in flight are cancelled and the rest
// dropped.
func (q *PushQueue) Stop(ctx context.Context) error {
	if q == nil {
		return nil
	}
	q.stopped.Store(true)
	q.mu.Lock()
	started := q.started
	if started && q.quit != nil {
		select {
		case <-q.quit:
		default:
			close(q.quit)
		}
	}
	q.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		q.cancel()
		<-q.done // every call honours the cancelled context
		return fmt.Errorf("push: stop: %d jobs not sent: %w", len(q.jobs), ctx.Err())
	}
}

// Stats returns the counters.
func (q *PushQueue) Stats() PushStats {
	if q == nil {
		return PushStats{}
	}
	return PushStats{Queued: len(q.jobs), OK: q.ok.Load(), Fail: q.fail.Load(), Remove: q.remove.Load(),
		Errors: q.errs.Load(), Dropped: q.dropped.Load()}
}

// enqueue queues j without waiting; a full (or stopped) queue drops it,
// counted, with a warning at most every pushDropLogInterval.
func (q *PushQueue) enqueue(j pushJob) bool {
	if q == nil {
		return false
	}
	if !q.stopped.Load() {
		select {
		case q.jobs <- j:
			return true
		default:
		}
	}
	n := q.dropped.Add(1)
	now := q.a.now()
	q.mu.Lock()
	warn := now.Sub(q.lastDrop) >= pushDropLogInterval
	var since uint64
	if warn {
		since = n - q.dropsSeen
		q.lastDrop, q.dropsSeen = now, n
	}
	q.mu.Unlock()
	if warn {
		q.a.log.Warn("push: queue full or stopped, jobs dropped (raise EmailSettings.PushNotificationBuffer if this recurs)",
			"job", j.kind.String(), "dropped", since, "dropped_total", n, "buffer", cap(q.jobs))
	}
	return false
}

// work runs jobs until Stop: then it drains what is queued, unless the
// context ends first.
func (q *PushQueue) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-q.jobs:
			q.run(ctx, j)
		case <-q.quit:
			for ctx.Err() == nil {
				select {
				case j := <-q.jobs:
					q.run(ctx, j)
				default:
					return
				}
			}
			return
		}
	}
}

// run does one job; a panic is logged, not allowed to end the worker.
func (q *PushQueue) run(ctx context.Context, j pushJob) {
	defer func() {
		if r := recover(); r != nil {
			q.a.log.Error("push: job panicked", "job", j.kind.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, pushJobTimeout)
	defer cancel()
	var err error
	switch j.kind {
	case jobPosted:
		err = q.a.pushPosted(ctx, j.post)
	case jobClear:
		err = q.a.pushToUser(ctx, j.userID, j.skipSession, &push.Notification{
			Type: push.TypeClear, Version: push.MessageV2, ChannelID: j.channelID, ContentAvailable: 1})
	case jobBadge:
		err = q.a.pushToUser(ctx, j.userID, "", &push.Notification{
			Type: push.TypeUpdateBadge, Version: push.MessageV2, Sound: "none", ContentAvailable: 1})
	case jobAck:
		err = q.sender.Ack(ctx, j.ack)
	case jobUnregister:
		// The proxy keeps one registration per browser: another user's
		// session on the same browser may have registered it again since
		// this job was queued. Drop it only when no session holds it.
		var held bool
		if held, err = q.a.store.DeviceHeld(ctx, push.PlatformWebPush+":"+j.registration); err == nil && !held {
			err = q.sender.Unregister(ctx, j.registration)
		}
	}
	if err != nil {
		q.a.log.Warn("push: job failed", "job", j.kind.String(), "user_id", j.userID, "err", err)
	}
}

// queuePosted queues the pushes of a new post. m is how the post
// mentions; mentioned whose mention counts it raised.
func (a *App) queuePosted(p *model.Post, ch *model.Channel, senderUsername string, m postgres.PostMentions, mentioned []string) {
	if !a.pushOn() {
		return
	}
	fromWebhook, _ := p.Props["from_webhook"].(string)
	overrideName, _ := p.Props["override_username"].(string)
	overrideIcon, _ := p.Props["override_icon_url"].(string)
	a.pushq.enqueue(pushJob{kind: jobPosted, post: &postForPush{
		ID: p.ID, ChannelID: p.ChannelID, RootID: p.RootID, UserID: p.UserID, Type: p.Type,
		Message: p.Message + attachmentText(p.Props), HasFiles: len(p.FileIDs) > 0,
		FromWebhook: fromWebhook == "true", OverrideUsername: overrideName, OverrideIconURL: overrideIcon,
		SenderUsername: senderUsername, ChannelType: ch.Type, ChannelDisplayName: ch.DisplayName, TeamID: ch.TeamID,
		Explicit: m.UserIDs, Mentioned: mentioned, ChannelWide: m.ChannelWide || m.Here, CreateAt: p.CreateAt,
	}})
}

// queueClear queues clearing a channel's pushes from a user's devices
// other than skipSession's.
func (a *App) queueClear(userID, channelID, skipSession string) {
	if a.pushOn() {
		a.pushq.enqueue(pushJob{kind: jobClear, userID: userID, channelID: channelID, skipSession: skipSession})
	}
}

// queueBadge queues an update of a user's badge.
func (a *App) queueBadge(userID string) {
	if a.pushOn() {
		a.pushq.enqueue(pushJob{kind: jobBadge, userID: userID})
	}
}

// queueUnregister queues dropping the browser registration of a
// session's device id, if it is one.
func (a *App) queueUnregister(deviceID string) {
	if id, ok := webPushRegistration(deviceID); ok && a.pushOn() {
		a.pushq.enqueue(pushJob{kind: jobUnregister, registration: id})
	}
}

// webPushRegistration returns the registration id of a webpush device id.
func webPushRegistration(deviceID string) (string, bool) {
	platform, token, ok := push.SplitDeviceID(deviceID)
	if !ok || platform != push.PlatformWebPush {
		return "", false
	}
	return token, true
}

// pushSettings returns the settings building a push depends on.
func (a *App) pushSettings() pushSettings {
	contents := a.set.PushContents
	if contents == "" {
		contents = pushContentsIDLoaded
	}
	return pushSettings{contents: contents, overrideUsername: a.set.EnablePostUsernameOverride,
		overrideIcon: a.set.EnablePostIconOverride}
}

// pushPosted decides and sends the pushes of a new post.
func (a *App) pushPosted(ctx context.Context, p *postForPush) error {
	now := a.millis()
	exclude := p.UserID
	if p.FromWebhook {
		exclude = "" // a webhook's post may notify its creator
	}
	recipients, err := a.store.PushRecipients(ctx, p.ChannelID, exclude, now)
	if err != nil || len(recipients) == 0 {
		return err
	}
	var th threadPosters
	if p.RootID != "" {
		if th.author, th.repliers, err = a.store.ThreadPosters(ctx, p.RootID); err != nil && !errors.Is(err, postgres.ErrNotFound) {
			return err
		}
	}
	type chosen struct {
		r    *postgres.PushRecipient
		kind mentionKind
	}
	var send []chosen
	var ids []string
	for i := range recipients {
		r := &recipients[i]
		d := decidePush(p, th, r, now)
		if !d.send {
			a.log.Debug("push: not sent", "post_id", p.ID, "user_id", r.UserID, "reason", d.reason)
			continue
		}
		send = append(send, chosen{r, d.kind})
		ids = append(ids, r.UserID)
	}
	if len(send) == 0 {
		return nil
	}
	badges, err := a.store.BadgeCounts(ctx, ids)
	if err != nil {
		return err
	}
	sessions, err := a.store.DeviceSessions(ctx, ids, now)
	if err != nil {
		return err
	}
	set := a.pushSettings()
	var groupNames map[string]string
	if p.ChannelType == model.ChannelGroup && set.contents != pushContentsIDLoaded {
		if groupNames, err = a.store.ChannelMemberUsernames(ctx, p.ChannelID); err != nil {
			return err
		}
	}
	byUser := map[string][]postgres.DeviceSession{}
	for _, s := range sessions {
		byUser[s.UserID] = append(byUser[s.UserID], s)
	}
	for _, c := range send {
		n := buildPostPush(set, p, c.kind, pushChannelName(p, c.r.UserID, groupNames), badges[c.r.UserID])
		a.sendToSessions(ctx, n, byUser[c.r.UserID], "")
	}
	return nil
}

// pushToUser sends n, with the user's badge, to every device session of
// the user but skipSession.
func (a *App) pushToUser(ctx context.Context, userID, skipSession string, n *push.Notification) error {
	sessions, err := a.store.DeviceSessions(ctx, []string{userID}, a.millis())
	if err != nil || len(sessions) == 0 || len(sessions) == 1 && sessions[0].ID == skipSession {
		return err
	}
	badges, err := a.store.BadgeCounts(ctx, []string{userID})
	if err != nil {
		return err
	}
	n.Badge = badges[userID]
	a.sendToSessions(ctx, n, sessions, skipSession)
	return nil
}

// sendToSessions sends a copy of base to each session, with the session's
// device and a fresh ack id (Mattermost's
// sendPushNotificationToAllSessions). A device the proxy reports removed
// is taken off its session. Up to pushSendConcurrency sends run at once,
// so one slow device (the proxy waits a few seconds for a first attempt)
// does not hold up a user's other devices or use up the job's time; the
// sessions left when the job's time runs out are counted as errors and
// logged.
func (a *App) sendToSessions(ctx context.Context, base *push.Notification, sessions []postgres.DeviceSession, skipSession string) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, pushSendConcurrency)
	skipped := 0
	for _, s := range sessions {
		if s.ID == skipSession {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			skipped++
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a.sendToSession(ctx, base, s)
		}()
	}
	wg.Wait()
	if skipped > 0 {
		a.pushq.errs.Add(uint64(skipped))
		a.log.Warn("push: the job ran out of time before sending to every device", "push_type", base.Type, "sessions_skipped", skipped)
	}
}

// sendToSession sends one session its copy of base.
func (a *App) sendToSession(ctx context.Context, base *push.Notification, s postgres.DeviceSession) {
	q := a.pushq
	n := *base
	if !n.SetDevice(s.DeviceID) {
		a.log.Debug("push: session device id has no platform", "session_id", s.ID)
		return
	}
	n.AckID, n.ServerID = model.NewID(), a.serverID
	attrs := []any{"user_id", s.UserID, "session_id", s.ID, "platform", n.Platform,
		"device", push.Redact(n.DeviceID), "ack_id", n.AckID, "push_type", n.Type}
	r, err := a.sendPush(ctx, &n)
	switch {
	case err != nil:
		q.errs.Add(1)
		a.log.Warn("push: send failed", append(attrs, "err", err)...)
	case r.Status == push.StatusOK:
		q.ok.Add(1)
	case r.Status == push.StatusRemove:
		q.remove.Add(1)
		a.log.Info("push: device was reported as removed", attrs...)
		a.removeDevice(ctx, s)
	default:
		q.fail.Add(1)
		a.log.Warn("push: the proxy could not deliver", append(attrs, "err", r.Error)...)
	}
}

// sendPush sends one notification, waiting out the proxy's throttling a
// few times.
func (a *App) sendPush(ctx context.Context, n *push.Notification) (push.Response, error) {
	for attempt := 1; ; attempt++ {
		r, err := a.pushq.sender.Send(ctx, n)
		wait, throttled := push.RetryAfter(err)
		if !throttled || attempt == pushAttempts {
			return r, err
		}
		if wait <= 0 {
			wait = time.Second
		}
		t := time.NewTimer(min(wait, pushMaxRetryWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return r, err
		case <-t.C:
		}
	}
}

// removeDevice takes a dead device off its session (Mattermost clears it
// on REMOVE; the app registers again on its next start).
func (a *App) removeDevice(ctx context.Context, s postgres.DeviceSession) {
	cleared, err := a.store.ClearDeviceID(ctx, s.ID, s.DeviceID)
	if err != nil {
		a.log.Warn("push: clear a removed device", "session_id", s.ID, "err", err)
		return
	}
	if cleared {
		// Cached copies of the session hold the old device; nothing
		// depends on it for long, so the other nodes are not waited for.
		a.refresh(invalidation{Users: []string{s.UserID}})
	}
}
