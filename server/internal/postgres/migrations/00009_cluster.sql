-- +goose Up
-- Cluster discovery (Mattermost's ClusterDiscovery): each node records
-- itself and refreshes last_ping_at every few seconds; nodes read the
-- fresh rows of their cluster to find each other and to know whom they
-- must hear from before trusting cached security state. Times come from
-- the database's clock, so node clocks do not matter.

CREATE TABLE cluster_discovery (
    id            text PRIMARY KEY,
    cluster_name  text NOT NULL,
    hostname      text NOT NULL DEFAULT '',
    gossip_addr   text NOT NULL,
    create_at     bigint NOT NULL,
    last_ping_at  bigint NOT NULL
);
CREATE INDEX cluster_discovery_name_idx ON cluster_discovery (cluster_name, last_ping_at);

-- +goose Down
-- Garrison's migrations are forward-only; see docs/operations.md.
SELECT 'down migrations are not supported';
