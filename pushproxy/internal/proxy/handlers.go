package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// sendPush is POST /api/v1/send_push. Validation and answers follow
// mattermost-push-proxy; only a body that is not JSON (400) or too large
// (413) is answered with another status than 200.
func (p *Proxy) sendPush(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxPushBody)
	if err != nil {
		p.m.badRequest.Inc()
		return err
	}
	n, err := parseNotification(body)
	if err != nil {
		p.m.badRequest.Inc()
		p.log.Warn("failed to read message body", "err", err)
		return &httpError{status: http.StatusBadRequest, msg: "Failed to read message body: " + err.Error()}
	}
	if n.ServerID == "" {
		p.m.badRequest.Inc()
		p.log.Warn("missing server id")
		writeJSON(w, http.StatusOK, failResponse(errMissingServerID))
		return nil
	}
	if n.DeviceID == "" {
		p.m.badRequest.Inc()
		p.log.Warn("missing device id", "server_id", redact(n.ServerID))
		writeJSON(w, http.StatusOK, failResponse(errMissingDeviceID(n.ServerID)))
		return nil
	}

	platform, _ := splitPlatform(n.Platform)
	var resp PushResponse
	switch {
	case platform == PlatformWebPush:
		resp = p.acceptWebPush(r.Context(), &n)
	case legacyPlatform(platform):
		pl, ty, tr := platformLabel(platform), typeLabel(n.Type), transportLabel(n.Transport)
		p.m.notifications.WithLabelValues(pl, ty, tr).Inc()
		p.m.failure.WithLabelValues(pl, ty, tr).Inc()
		p.m.failureReason.WithLabelValues(pl, ty, tr, "platform_unavailable").Inc()
		p.log.Debug("legacy platform not available", "platform", platform, "ack_id", n.AckID)
		resp = failResponse(errLegacyPlatform)
	default:
		p.m.badRequest.Inc()
		p.log.Warn("no push target for platform", "platform", platformLabel(platform), "server_id", redact(n.ServerID))
		resp = failResponse(errUnknownPlatform(platform, n.ServerID))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// acceptWebPush queues n for its registration and waits a little for the
// first attempt. Only REMOVE and FAIL need that wait; OK means "queued".
func (p *Proxy) acceptWebPush(ctx context.Context, n *PushNotification) PushResponse {
	ty := typeLabel(n.Type)
	log := p.log.With("ack_id", n.AckID, "registration", redact(n.DeviceID), "type", n.Type)
	p.m.notifications.WithLabelValues(PlatformWebPush, ty, "").Inc()

	fail := func(reason, msg string) PushResponse {
		p.m.failure.WithLabelValues(PlatformWebPush, ty, "").Inc()
		p.m.failureReason.WithLabelValues(PlatformWebPush, ty, "", reason).Inc()
		return failResponse(msg)
	}
	remove := func(reason string) PushResponse {
		p.m.removal.WithLabelValues(PlatformWebPush, "", reason).Inc()
		log.Info("device reported removed", "reason", reason)
		return removeResponse()
	}

	if !validRegistrationID(n.DeviceID) {
		return remove("unknown_registration")
	}
	reg, err := p.getRegistration(ctx, n.DeviceID)
	if errors.Is(err, errNotFound) {
		return remove("unknown_registration")
	}
	if err != nil {
		log.Error("cannot queue the notification", "err", err)
		return fail("internal", "push proxy cannot queue the notification now; see its log")
	}
	now := p.now()
	if reg.ExpiresAt != nil && !now.Before(*reg.ExpiresAt) {
		if err := p.deleteRegistration(ctx, reg.ID); err != nil && !errors.Is(err, errNotFound) {
			log.Error("cannot delete the expired registration", "err", err)
		}
		return remove("registration_expired")
	}
	if reg.VAPIDKey != p.keys.PublicKey {
		// Every proxy of a site must share one key pair; a browser's
		// subscription is bound to the key it subscribed with.
		p.logKeyMismatch.Do(func() {
			log.Warn("registration was made with another VAPID key; its push service may refuse it (logged at most every 10 s)",
				"registration_vapid_key", redact(reg.VAPIDKey), "vapid_key", redact(p.keys.PublicKey))
		})
	}

	payload, err := buildPayload(n, p.policy)
	if err != nil {
		log.Warn("notification refused", "err", err)
		return fail("payload", err.Error())
	}
	ttl, urgency, topic := deliveryParams(n)
	j := job{
		Reg: reg, AckID: n.AckID, Type: n.Type, Urgency: urgency, Topic: topic,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if p.policy == ContentFull {
		// Seal now: the content reaches the database only as ciphertext.
		sctx, cancel := context.WithTimeout(ctx, p.sendTimeout)
		j.Ciphertext, err = p.sealBody(sctx, reg, payload, int(math.Ceil(ttl.Seconds())), urgency, topic)
		cancel()
		if err != nil {
			log.Error("cannot encrypt the notification", "err", err)
			return fail("encrypt", "cannot encrypt for this registration")
		}
	} else {
		j.Payload = payload
	}

	inline := p.firstWait >= 0 && p.startDelivery(true)
	if err := p.insert(ctx, &j, inline); err != nil {
		if inline {
			p.endDelivery(true, false)
		}
		if errors.Is(err, errNotFound) {
			return remove("unknown_registration")
		}
		log.Error("cannot queue the notification", "err", err)
		return fail("internal", "push proxy cannot queue the notification now; see its log")
	}
	log.Debug("notification queued", "outbox_id", j.ID)
	if !inline {
		p.kick()
		return okResponse()
	}

	// The attempt outlives this request if it must: its context is the
	// proxy's, bounded by SendTimeout, not the request's.
	done := make(chan outcome, 1)
	go func() {
		defer p.endDelivery(true, false)
		done <- p.deliver(j)
	}()
	timer := time.NewTimer(p.firstWait)
	defer timer.Stop()
	select {
	case o := <-done:
		return o.response()
	case <-timer.C:
		return okResponse() // still trying: queued
	case <-ctx.Done():
		return okResponse() // the sender hung up; the attempt goes on
	}
}

// ack is POST /api/v1/ack: a device acknowledged a notification.
func (p *Proxy) ack(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxAckBody)
	if err != nil {
		p.m.badRequest.Inc()
		return err
	}
	var a PushNotificationAck
	if err := json.Unmarshal(body, &a); err != nil {
		p.m.badRequest.Inc()
		p.log.Warn("failed to read ack body", "err", err)
		return &httpError{status: http.StatusBadRequest, msg: "Failed to read ack body: " + err.Error()}
	}
	var msg string
	switch {
	case a.ID == "":
		msg = errMissingAckID
	case a.Platform == "":
		msg = errMissingAckPlat
	case a.Type == "":
		msg = errMissingAckType
	}
	if msg != "" {
		p.m.badRequest.Inc()
		p.log.Warn("invalid ack", "err", msg, "ack_id", a.ID)
		writeJSON(w, http.StatusOK, failResponse(msg))
		return nil
	}
	p.m.delivered.WithLabelValues(platformLabel(a.Platform), typeLabel(a.Type), "").Inc()
	p.log.Debug("Acknowledged delivery receipt", "ack_id", a.ID, "platform", platformLabel(a.Platform))
	writeJSON(w, http.StatusOK, okResponse())
	return nil
}

// vapidPublicKey is GET /api/v1/webpush/vapid_public_key.
func (p *Proxy) vapidPublicKey(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"vapid_public_key": p.keys.PublicKey})
	return nil
}

// register is POST /api/v1/webpush/registrations: 201 {"id"} for a new
// subscription, 200 {"id"} for one already registered (same endpoint; its
// keys are updated).
func (p *Proxy) register(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxRegistrationBody)
	if err != nil {
		return err
	}
	var s subscriptionJSON
	if err := json.Unmarshal(body, &s); err != nil {
		return badRegistration("invalid_json", "the body must be a PushSubscription as JSON: %v", err)
	}
	reg, err := p.validateSubscription(s, p.now())
	if err != nil {
		p.log.Info("registration refused", "err", err)
		return err
	}
	id, created, err := p.saveRegistration(r.Context(), reg)
	if err != nil {
		return err
	}
	p.log.Info("registered a Web Push subscription", "registration", redact(id), "push_host", hostOf(reg.Endpoint), "new", created)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]string{"id": id})
	return nil
}

// unregister is DELETE /api/v1/webpush/registrations/{id}; its pending
// notifications go with it.
func (p *Proxy) unregister(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if !validRegistrationID(id) {
		return &httpError{status: http.StatusNotFound, id: "pushproxy.registration.not_found", msg: "no such registration"}
	}
	if err := p.deleteRegistration(r.Context(), id); err != nil {
		if errors.Is(err, errNotFound) {
			return &httpError{status: http.StatusNotFound, id: "pushproxy.registration.not_found", msg: "no such registration"}
		}
		return err
	}
	p.log.Info("unregistered a Web Push subscription", "registration", redact(id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
