-- +goose Up
-- Preferences, and thread participants kept on root posts.

-- A user's client settings (Mattermost's Preferences): display settings,
-- favourite channels, direct channels shown, flagged posts and so on.
CREATE TABLE preferences (
    user_id  text NOT NULL REFERENCES users (id),
    category text NOT NULL,
    name     text NOT NULL,
    value    text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, category, name)
);

-- The ids of the users who replied in a thread, in the order of their
-- first reply, kept on the root post with reply_count. Adding a column
-- with a constant default rewrites nothing, and binaries that do not know
-- the column keep working.
ALTER TABLE posts ADD COLUMN participants text[] NOT NULL DEFAULT '{}';

-- Parsing a post's mentions reads the channel members who have mention
-- keywords; few users set any, so this index lets that read start from
-- them instead of from every member of a large channel.
CREATE INDEX users_mention_keywords_idx ON users (id)
    WHERE notify_props->>'mention_keys' <> '' OR (notify_props->>'first_name' = 'true' AND first_name <> '');

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
