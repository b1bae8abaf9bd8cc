-- +goose Up
-- User statuses (presence). One row per user that has ever had a status;
-- a user without a row is offline. dnd_end_time is in seconds, as on the
-- wire; prev_status and prev_manual are what a timed DND returns to.

CREATE TABLE status (
    user_id          text PRIMARY KEY,
    status           text NOT NULL,
    manual           boolean NOT NULL DEFAULT false,
    last_activity_at bigint NOT NULL DEFAULT 0,
    dnd_end_time     bigint NOT NULL DEFAULT 0,
    prev_status      text NOT NULL DEFAULT '',
    prev_manual      boolean NOT NULL DEFAULT false
);
-- get_statuses lists the users who are not offline; the away sweep scans
-- the automatic online ones, the DND sweep the timed DNDs.
CREATE INDEX status_not_offline_idx ON status (last_activity_at) WHERE status <> 'offline';
CREATE INDEX status_dnd_end_idx ON status (dnd_end_time) WHERE status = 'dnd' AND dnd_end_time > 0;

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
