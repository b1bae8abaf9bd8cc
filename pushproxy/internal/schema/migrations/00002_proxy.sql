-- +goose Up
-- Owned by pushproxy/internal/proxy (placeholder until it lands).
SELECT 1;

-- +goose Down
SELECT 1;
