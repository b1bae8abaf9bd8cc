-- +goose Up
-- File attachments: one row per uploaded file (Mattermost's FileInfo). The
-- contents live in the blob store under path, thumbnail_path and
-- preview_path. A file belongs to no post (post_id '') until a post lists
-- it in file_ids; files never attached are removed later by a cleanup job.

CREATE TABLE file_infos (
    id                text PRIMARY KEY,
    creator_id        text NOT NULL,
    post_id           text NOT NULL DEFAULT '',
    channel_id        text NOT NULL,
    create_at         bigint NOT NULL,
    update_at         bigint NOT NULL,
    delete_at         bigint NOT NULL DEFAULT 0,
    path              text NOT NULL,
    thumbnail_path    text NOT NULL DEFAULT '',
    preview_path      text NOT NULL DEFAULT '',
    name              text NOT NULL,
    extension         text NOT NULL DEFAULT '',
    size              bigint NOT NULL,
    mime_type         text NOT NULL DEFAULT '',
    width             integer NOT NULL DEFAULT 0,
    height            integer NOT NULL DEFAULT 0,
    has_preview_image boolean NOT NULL DEFAULT false,
    -- NULL means no mini preview (not an image).
    mini_preview      bytea,
    remote_id         text NOT NULL DEFAULT '',
    archived          boolean NOT NULL DEFAULT false
);
-- metadata.files of a page of posts.
CREATE INDEX file_infos_post_id_idx ON file_infos (post_id) WHERE post_id <> '';
-- The orphan cleanup job: unattached files by age.
CREATE INDEX file_infos_unattached_idx ON file_infos (create_at) WHERE post_id = '';

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
