-- +goose Up
-- The on-premise push service (pushproxy/internal/pushservice): devices that
-- hold a Firefox push WebSocket, their subscriptions (capability URLs), and
-- the mailbox of messages not yet acknowledged. The mailbox holds RFC 8291
-- ciphertext only; the service cannot read it.

-- One row per device (a Firefox profile), keyed by the uaid the service
-- assigned at its first hello. node and conn_gen say which proxy process
-- holds the device's socket: node is NULL while the device is offline, and
-- conn_gen grows at every hello so that a newer socket supersedes an older
-- one on any process. Every change to a device's subscriptions or mailbox
-- first locks this row, which orders a device's messages (seq) by commit.
CREATE TABLE ps_devices (
    uaid       text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    node       text,
    conn_gen   bigint NOT NULL DEFAULT 0
);
CREATE INDEX ps_devices_last_seen ON ps_devices (last_seen);

-- One row per push subscription. cap is the capability in the push
-- endpoint <PublicURL>/push/<cap>; vapid_key is the applicationServerKey
-- (an uncompressed P-256 point) the subscription is bound to, if any.
-- Unregistered subscriptions stay as tombstones (removed_at set) so that
-- their endpoint answers 410 rather than 404; they are pruned later.
-- uaid has no foreign key: tombstones outlive their device.
CREATE TABLE ps_subscriptions (
    cap        text PRIMARY KEY,
    uaid       text NOT NULL,
    channel_id text NOT NULL,
    vapid_key  bytea CHECK (vapid_key IS NULL OR octet_length(vapid_key) = 65),
    created_at timestamptz NOT NULL,
    removed_at timestamptz
);
CREATE UNIQUE INDEX ps_subscriptions_live ON ps_subscriptions (uaid, channel_id) WHERE removed_at IS NULL;
CREATE INDEX ps_subscriptions_removed ON ps_subscriptions (removed_at) WHERE removed_at IS NOT NULL;

-- The mailbox. id is the message resource (/m/<id>) and the notification's
-- version; seq is the receive order that replay follows. uaid repeats the
-- subscription's so that a device's messages are read in one index scan.
CREATE TABLE ps_messages (
    id          text PRIMARY KEY,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    cap         text NOT NULL REFERENCES ps_subscriptions (cap) ON DELETE CASCADE,
    uaid        text NOT NULL,
    topic       text,
    urgency     text NOT NULL,
    received_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    body        bytea NOT NULL CHECK (octet_length(body) BETWEEN 1 AND 4096)
);
CREATE UNIQUE INDEX ps_messages_topic ON ps_messages (cap, topic) WHERE topic IS NOT NULL;
CREATE INDEX ps_messages_uaid_seq ON ps_messages (uaid, seq);
CREATE INDEX ps_messages_cap ON ps_messages (cap);
CREATE INDEX ps_messages_expires_at ON ps_messages (expires_at);

-- +goose Down
DROP TABLE ps_messages;
DROP TABLE ps_subscriptions;
DROP TABLE ps_devices;
