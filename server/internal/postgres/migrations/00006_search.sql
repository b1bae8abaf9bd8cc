-- +goose Up
-- Full-text search of posts (issue 3).
--
-- message_tsv is kept by the database itself (a stored generated column),
-- so every writer, including binaries older than this migration during a
-- rolling upgrade, keeps it right without knowing about it. The 'simple'
-- configuration lower-cases words and does not stem or drop stop words:
-- a site's messages are in any language, a trailing-* prefix search then
-- matches exactly the words that start with the prefix (with English
-- stemming "connecti*" would miss "connection", indexed as "connect"), and
-- the query parser and the database split words the same way.
ALTER TABLE posts ADD COLUMN message_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, message)) STORED;
CREATE INDEX posts_message_tsv_idx ON posts USING gin (message_tsv);

-- #hashtag searches match whole hashtags of the stored hashtags column,
-- case-insensitively.
CREATE INDEX posts_hashtags_idx ON posts USING gin (string_to_array(lower(hashtags), ' ')) WHERE hashtags <> '';

-- Newest-first across channels: a search for a common word reads this
-- index backwards and stops after a page of matches instead of sorting
-- every match.
CREATE INDEX posts_create_at_idx ON posts (create_at DESC, id DESC) WHERE delete_at = 0;

-- from: reads one author's posts newest first; without this a search for
-- a common word by a quiet author walks most of the table.
CREATE INDEX posts_user_id_create_at_idx ON posts (user_id, create_at DESC) WHERE delete_at = 0;

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
