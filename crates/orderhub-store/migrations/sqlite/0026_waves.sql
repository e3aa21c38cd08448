-- Waves (issue 28): a warehouse's released orders grouped into waves with pick lists, started and
-- closed by a person. The policy used, the pick list and who created, started and closed the wave
-- are kept on its row (JSON: no personal data, a wave names orders and SKUs only).
CREATE TABLE waves (
    tenant_id        TEXT NOT NULL,
    wave_id          TEXT NOT NULL,
    warehouse_id     TEXT NOT NULL,
    status           TEXT NOT NULL,
    policy           TEXT NOT NULL,
    lines            INTEGER NOT NULL,
    picks            TEXT NOT NULL,
    earliest_ship_by INTEGER,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    started_by       TEXT,
    started_at       INTEGER,
    closed_by        TEXT,
    closed_at        INTEGER,
    PRIMARY KEY (tenant_id, wave_id)
);
-- The list: newest first, by warehouse and status.
CREATE INDEX waves_by_warehouse ON waves (tenant_id, warehouse_id, wave_id);
-- Each order of a wave, in the order it was waved; `active` is 1 while the wave is open or
-- started, 0 once it is closed.
CREATE TABLE wave_orders (
    tenant_id  TEXT NOT NULL,
    wave_id    TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    position   INTEGER NOT NULL,
    active     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, wave_id, position)
);
-- An order is in at most one open or started wave: two creations racing for the same orders
-- cannot both commit them.
CREATE UNIQUE INDEX wave_orders_active ON wave_orders (tenant_id, order_id) WHERE active = 1;
-- Candidates are released orders in no wave yet.
CREATE INDEX wave_orders_by_order ON wave_orders (tenant_id, order_id);
