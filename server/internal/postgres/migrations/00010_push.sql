-- +goose Up
-- Push notifications (issue 5). Expand only: older binaries name their
-- columns, so they keep working beside these.

-- The channel a user last viewed and when, so a push is not sent for a
-- post in the channel the user is reading (Mattermost keeps this as the
-- status's ActiveChannel in its cluster-wide status cache).
ALTER TABLE status
    ADD COLUMN active_channel    text NOT NULL DEFAULT '',
    ADD COLUMN active_channel_at bigint NOT NULL DEFAULT 0;

-- Pushes go only to the sessions that have a device; most have none.
CREATE INDEX sessions_device_idx ON sessions (user_id) WHERE device_id <> '';

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
