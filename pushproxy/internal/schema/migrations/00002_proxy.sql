-- +goose Up
-- The Mattermost-facing front of the push proxy (pushproxy/internal/proxy):
-- Web Push registrations and the durable outbox of notifications to them.
-- No plaintext message content is ever stored here: an outbox row holds
-- either an id-only payload (ids, no text) or RFC 8291 ciphertext that only
-- the device can open.

-- A browser PushSubscription registered by a garrison node. The id is what
-- the server puts after "webpush:" in the session's device id.
CREATE TABLE pushproxy_registrations (
    id          text PRIMARY KEY,          -- 128 random bits, base64url
    endpoint    text NOT NULL UNIQUE,      -- the push service URL (a capability)
    p256dh      text NOT NULL,             -- user agent public key, base64url
    auth        text NOT NULL,             -- auth secret, base64url
    vapid_key   text NOT NULL,             -- our VAPID public key when it registered
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz                -- PushSubscription.expirationTime, if any
);

-- One notification to one registration, from acceptance until it is sent,
-- refused, removed or expired. Several proxies share the table: a worker
-- claims due rows with FOR UPDATE SKIP LOCKED and moves next_attempt_at to
-- the end of its lease, so a claim of a killed worker runs out and the row
-- is due again. claims fences a worker's outcome to its own claim.
CREATE TABLE pushproxy_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registration_id  text NOT NULL REFERENCES pushproxy_registrations (id) ON DELETE CASCADE,
    ack_id           text NOT NULL,
    type             text NOT NULL,
    urgency          text NOT NULL,
    topic            text NOT NULL,        -- '' for none
    payload          bytea,                -- id_only: the id-only JSON, re-encrypted per attempt
    ciphertext       bytea,                -- full: the RFC 8291 body sealed at acceptance
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL, -- created_at + TTL
    next_attempt_at  timestamptz NOT NULL, -- due time, or the end of the current lease
    attempts         integer NOT NULL DEFAULT 0, -- failed attempts so far (the backoff exponent)
    claims           bigint NOT NULL DEFAULT 0,
    lease_owner      text NOT NULL DEFAULT '',   -- the proxy holding the claim, '' when none
    last_status      integer NOT NULL DEFAULT 0, -- HTTP status of the last attempt, 0 for none or a network error
    CONSTRAINT pushproxy_outbox_one_body CHECK ((payload IS NULL) <> (ciphertext IS NULL))
);

CREATE INDEX pushproxy_outbox_due ON pushproxy_outbox (next_attempt_at);
CREATE INDEX pushproxy_outbox_registration_topic ON pushproxy_outbox (registration_id, topic);

-- +goose Down
DROP TABLE pushproxy_outbox;
DROP TABLE pushproxy_registrations;
