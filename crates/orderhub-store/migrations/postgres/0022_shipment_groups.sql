-- Merge and split (issue 21): a shipment group is orders of one buyer to one address that the
-- warehouse ships as one parcel. Each member order keeps its own row, lines and write-back; its
-- document names the group and holds its parcels (a split order's parcels live there too). The
-- group document (JSON: parcel id, members, who left and why, origin, reason, who merged) holds no
-- personal data.
CREATE TABLE shipment_groups (
    tenant_id   text NOT NULL,
    group_id    uuid NOT NULL,
    state       text NOT NULL,
    version     bigint NOT NULL,
    doc         jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);
-- Open groups only: what the console lists as waiting to ship together.
CREATE INDEX shipment_groups_open ON shipment_groups (tenant_id, group_id) WHERE state = 'open';

-- The tenant's merge settings (JSON: window_minutes, cross_shop); no row: the defaults.
CREATE TABLE merge_rules (
    tenant_id   text PRIMARY KEY,
    rules       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);
