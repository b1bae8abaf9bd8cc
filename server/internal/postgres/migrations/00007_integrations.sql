-- +goose Up
-- Integrations: incoming webhooks and personal access tokens.

-- A deleted hook keeps its row (delete_at set), as in Mattermost, so its
-- id is never reused and old posts still name it.
CREATE TABLE incoming_webhooks (
    id             text PRIMARY KEY,
    create_at      bigint NOT NULL,
    update_at      bigint NOT NULL,
    delete_at      bigint NOT NULL DEFAULT 0,
    user_id        text NOT NULL REFERENCES users (id),
    channel_id     text NOT NULL REFERENCES channels (id),
    team_id        text NOT NULL,
    display_name   text NOT NULL DEFAULT '',
    description    text NOT NULL DEFAULT '',
    username       text NOT NULL DEFAULT '',
    icon_url       text NOT NULL DEFAULT '',
    channel_locked boolean NOT NULL DEFAULT false,
    last_used      bigint NOT NULL DEFAULT 0
);
CREATE INDEX incoming_webhooks_team_id_idx ON incoming_webhooks (team_id, create_at, id) WHERE delete_at = 0;
CREATE INDEX incoming_webhooks_user_id_idx ON incoming_webhooks (user_id, create_at, id) WHERE delete_at = 0;

-- Personal access tokens keep only a SHA-256 of the token, like sessions.
CREATE TABLE user_access_tokens (
    id          text PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    user_id     text NOT NULL REFERENCES users (id),
    description text NOT NULL,
    is_active   boolean NOT NULL DEFAULT true,
    create_at   bigint NOT NULL
);
CREATE INDEX user_access_tokens_user_id_idx ON user_access_tokens (user_id, create_at, id);

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
