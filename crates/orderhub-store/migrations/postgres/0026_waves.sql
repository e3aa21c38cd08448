-- Waves (issue 28): a warehouse's released orders grouped into waves with pick lists, started and
-- closed by a person. The policy used, the pick list and who created, started and closed the wave
-- are kept on its row (JSON: no personal data, a wave names orders and SKUs only).
CREATE TABLE waves (
    tenant_id        text NOT NULL,
    wave_id          uuid NOT NULL,
    warehouse_id     text NOT NULL,
    status           text NOT NULL,
    policy           jsonb NOT NULL,
    lines            integer NOT NULL,
    picks            jsonb NOT NULL,
    earliest_ship_by timestamptz,
    created_by       jsonb NOT NULL,
    created_at       timestamptz NOT NULL,
    started_by       jsonb,
    started_at       timestamptz,
    closed_by        jsonb,
    closed_at        timestamptz,
    PRIMARY KEY (tenant_id, wave_id)
);
-- The list: newest first, by warehouse and status.
CREATE INDEX waves_by_warehouse ON waves (tenant_id, warehouse_id, wave_id);
-- Each order of a wave, in the order it was waved; `active` is 1 while the wave is open or
-- started, 0 once it is closed.
CREATE TABLE wave_orders (
    tenant_id  text NOT NULL,
    wave_id    uuid NOT NULL,
    order_id   uuid NOT NULL,
    position   integer NOT NULL,
    active     smallint NOT NULL,
    PRIMARY KEY (tenant_id, wave_id, position)
);
-- An order is in at most one open or started wave: two creations racing for the same orders
-- cannot both commit them.
CREATE UNIQUE INDEX wave_orders_active ON wave_orders (tenant_id, order_id) WHERE active = 1;
-- Candidates are released orders in no wave yet.
CREATE INDEX wave_orders_by_order ON wave_orders (tenant_id, order_id);
