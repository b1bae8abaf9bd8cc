-- +goose Up
-- Owned by pushproxy/internal/pushservice (placeholder until it lands).
SELECT 1;

-- +goose Down
SELECT 1;
