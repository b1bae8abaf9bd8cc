-- +goose Up
-- The core schema: users, sessions, teams, channels, posts, reactions.
-- Names are lower-case snake_case; ids are Mattermost's 26-character ids;
-- timestamps are milliseconds since the epoch, as on the wire.

CREATE TABLE systems (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- The oldest binary version that can run against this schema. A migration
-- that contracts the schema (drops something older binaries still use)
-- raises it; binaries older than it refuse to start.
INSERT INTO systems (name, value) VALUES ('min_binary_version', '0.1.0');

CREATE TABLE users (
    id                   text PRIMARY KEY,
    create_at            bigint NOT NULL,
    update_at            bigint NOT NULL,
    delete_at            bigint NOT NULL DEFAULT 0,
    username             text NOT NULL,
    password_hash        text NOT NULL DEFAULT '',
    auth_service         text NOT NULL DEFAULT '',
    email                text NOT NULL,
    email_verified       boolean NOT NULL DEFAULT false,
    nickname             text NOT NULL DEFAULT '',
    first_name           text NOT NULL DEFAULT '',
    last_name            text NOT NULL DEFAULT '',
    position             text NOT NULL DEFAULT '',
    roles                text NOT NULL DEFAULT 'system_user',
    props                jsonb NOT NULL DEFAULT '{}',
    notify_props         jsonb NOT NULL DEFAULT '{}',
    last_password_update bigint NOT NULL DEFAULT 0,
    last_picture_update  bigint NOT NULL DEFAULT 0,
    failed_attempts      integer NOT NULL DEFAULT 0,
    locale               text NOT NULL DEFAULT 'en',
    timezone             jsonb NOT NULL DEFAULT '{}',
    is_bot               boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- Sessions keep only a SHA-256 of the bearer token, so a database dump
-- cannot be replayed as logins.
CREATE TABLE sessions (
    id               text PRIMARY KEY,
    token_hash       bytea NOT NULL UNIQUE,
    csrf             text NOT NULL,
    create_at        bigint NOT NULL,
    expires_at       bigint NOT NULL,
    last_activity_at bigint NOT NULL,
    user_id          text NOT NULL REFERENCES users (id),
    device_id        text NOT NULL DEFAULT '',
    roles            text NOT NULL,
    props            jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE teams (
    id                text PRIMARY KEY,
    create_at         bigint NOT NULL,
    update_at         bigint NOT NULL,
    delete_at         bigint NOT NULL DEFAULT 0,
    display_name      text NOT NULL,
    name              text NOT NULL,
    description       text NOT NULL DEFAULT '',
    email             text NOT NULL DEFAULT '',
    type              text NOT NULL,
    company_name      text NOT NULL DEFAULT '',
    allowed_domains   text NOT NULL DEFAULT '',
    invite_id         text NOT NULL,
    allow_open_invite boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX teams_name_key ON teams (name);
-- Joining by invite link looks the team up by invite_id.
CREATE INDEX teams_invite_id_idx ON teams (invite_id);

CREATE TABLE team_members (
    team_id      text NOT NULL REFERENCES teams (id),
    user_id      text NOT NULL REFERENCES users (id),
    scheme_user  boolean NOT NULL DEFAULT true,
    scheme_admin boolean NOT NULL DEFAULT false,
    create_at    bigint NOT NULL,
    delete_at    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_id_idx ON team_members (user_id);

CREATE TABLE channels (
    id                   text PRIMARY KEY,
    create_at            bigint NOT NULL,
    update_at            bigint NOT NULL,
    delete_at            bigint NOT NULL DEFAULT 0,
    team_id              text NOT NULL DEFAULT '',
    type                 text NOT NULL,
    display_name         text NOT NULL DEFAULT '',
    name                 text NOT NULL,
    header               text NOT NULL DEFAULT '',
    purpose              text NOT NULL DEFAULT '',
    last_post_at         bigint NOT NULL DEFAULT 0,
    last_root_post_at    bigint NOT NULL DEFAULT 0,
    total_msg_count      bigint NOT NULL DEFAULT 0,
    total_msg_count_root bigint NOT NULL DEFAULT 0,
    extra_update_at      bigint NOT NULL DEFAULT 0,
    creator_id           text NOT NULL DEFAULT '',
    props                jsonb NOT NULL DEFAULT '{}',
    -- Raised in the transaction of every change to the channel's posts or
    -- their reactions, so a node can tell whether a cached page of posts
    -- is still current with one primary-key read.
    post_version         bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX channels_team_id_name_key ON channels (team_id, name);

CREATE TABLE channel_members (
    channel_id           text NOT NULL REFERENCES channels (id),
    user_id              text NOT NULL REFERENCES users (id),
    scheme_user          boolean NOT NULL DEFAULT true,
    scheme_admin         boolean NOT NULL DEFAULT false,
    last_viewed_at       bigint NOT NULL DEFAULT 0,
    msg_count            bigint NOT NULL DEFAULT 0,
    msg_count_root       bigint NOT NULL DEFAULT 0,
    mention_count        bigint NOT NULL DEFAULT 0,
    mention_count_root   bigint NOT NULL DEFAULT 0,
    urgent_mention_count bigint NOT NULL DEFAULT 0,
    notify_props         jsonb NOT NULL DEFAULT '{}',
    last_update_at       bigint NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user_id_idx ON channel_members (user_id);

CREATE TABLE posts (
    id              text PRIMARY KEY,
    create_at       bigint NOT NULL,
    update_at       bigint NOT NULL,
    edit_at         bigint NOT NULL DEFAULT 0,
    delete_at       bigint NOT NULL DEFAULT 0,
    is_pinned       boolean NOT NULL DEFAULT false,
    user_id         text NOT NULL,
    channel_id      text NOT NULL REFERENCES channels (id),
    root_id         text NOT NULL DEFAULT '',
    original_id     text NOT NULL DEFAULT '',
    message         text NOT NULL DEFAULT '',
    type            text NOT NULL DEFAULT '',
    props           jsonb NOT NULL DEFAULT '{}',
    hashtags        text NOT NULL DEFAULT '',
    file_ids        jsonb NOT NULL DEFAULT '[]',
    pending_post_id text NOT NULL DEFAULT '',
    has_reactions   boolean NOT NULL DEFAULT false,
    -- Thread counters kept on the root post, updated with each reply.
    reply_count     bigint NOT NULL DEFAULT 0,
    last_reply_at   bigint NOT NULL DEFAULT 0
);
CREATE INDEX posts_channel_id_create_at_idx ON posts (channel_id, create_at DESC, id DESC) WHERE delete_at = 0;
CREATE INDEX posts_channel_id_update_at_idx ON posts (channel_id, update_at);
CREATE INDEX posts_root_id_idx ON posts (root_id) WHERE root_id <> '';
CREATE UNIQUE INDEX posts_pending_post_id_key ON posts (user_id, pending_post_id) WHERE pending_post_id <> '';

CREATE TABLE reactions (
    post_id    text NOT NULL REFERENCES posts (id),
    user_id    text NOT NULL,
    emoji_name text NOT NULL,
    channel_id text NOT NULL,
    create_at  bigint NOT NULL,
    PRIMARY KEY (post_id, user_id, emoji_name)
);

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
