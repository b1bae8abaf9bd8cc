-- +goose Up
-- File search (Mattermost's SearchFiles): the names of files attached to
-- posts, word by word.
--
-- An expression index rather than a generated column: adding a stored
-- column would rewrite file_infos, and an index needs nothing of the
-- binaries that write the table, old or new. The expression must stay the
-- one postgres.fileNameTSV spells, or searches do not use the index. The
-- punctuation of a name becomes spaces, so "q3_report-final.pdf" is the
-- words q3, report, final and pdf instead of one file-path token; 'simple'
-- as for posts (no stemming, no stop words, any language). pg_trgm would
-- also match inside words, but is an extension a managed database may not
-- offer.
CREATE INDEX file_infos_name_tsv_idx ON file_infos
    USING gin (to_tsvector('simple'::regconfig, translate(name, '.,-_@:', '      ')))
    WHERE post_id <> '' AND delete_at = 0;

-- Newest attached files first: searches by from:, in:, ext: or a date
-- alone, or for a word most names hold, walk this and stop after a page.
CREATE INDEX file_infos_create_at_idx ON file_infos (create_at DESC, id DESC)
    WHERE post_id <> '' AND delete_at = 0;

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
