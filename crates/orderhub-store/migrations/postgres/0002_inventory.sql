-- Inventory: SKU master (with kits), warehouses, stock per (sku, warehouse), the append-only ledger,
-- and reservations. The CHECKs restate the domain's invariants: a bug that slips past the code
-- fails the transaction instead of overselling. Keys lead with tenant_id (Citus-ready).
CREATE TABLE skus (
    tenant_id   text NOT NULL,
    sku         text NOT NULL,
    title       text NOT NULL,
    components  jsonb,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sku)
);

CREATE TABLE warehouses (
    tenant_id     text NOT NULL,
    warehouse_id  text NOT NULL,
    name          text NOT NULL,
    priority      integer NOT NULL,
    regions       jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, warehouse_id)
);

CREATE TABLE stock (
    tenant_id     text NOT NULL,
    sku           text NOT NULL,
    warehouse_id  text NOT NULL,
    on_hand       bigint NOT NULL CHECK (on_hand >= 0),
    reserved      bigint NOT NULL CHECK (reserved >= 0),
    version       bigint NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK (on_hand >= reserved),
    PRIMARY KEY (tenant_id, sku, warehouse_id)
);

-- Entries of one (sku, warehouse) are appended under that stock row's lock, so entry_id order is
-- their order.
CREATE TABLE ledger (
    tenant_id       text NOT NULL,
    entry_id        bigserial NOT NULL,
    sku             text NOT NULL,
    warehouse_id    text NOT NULL,
    movement        text NOT NULL,
    quantity        bigint NOT NULL,
    reason          text,
    reference       text,
    on_hand_after   bigint NOT NULL,
    reserved_after  bigint NOT NULL,
    at              timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, entry_id)
);
CREATE INDEX ledger_by_position ON ledger (tenant_id, sku, warehouse_id, entry_id);

CREATE TABLE reservations (
    tenant_id       text NOT NULL,
    reservation_id  uuid NOT NULL,
    reference       text NOT NULL,
    state           text NOT NULL,
    mode            text NOT NULL,
    expires_at      timestamptz,
    lines           jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, reservation_id)
);
CREATE INDEX reservations_held_by_expiry ON reservations (expires_at) WHERE state = 'held';
CREATE INDEX reservations_by_reference ON reservations (tenant_id, reference);

-- Paid orders waiting for stock: one row per (order, SKU short), served in payment order when
-- stock of that SKU arrives.
CREATE TABLE backorder_lines (
    tenant_id  text NOT NULL,
    sku        text NOT NULL,
    paid_at    timestamptz NOT NULL,
    order_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, sku, paid_at, order_id)
);
CREATE INDEX backorder_lines_by_order ON backorder_lines (tenant_id, order_id);

-- The as-of time of the last stock snapshot applied per warehouse: an older one is refused.
CREATE TABLE snapshot_watermarks (
    tenant_id     text NOT NULL,
    warehouse_id  text NOT NULL,
    as_of         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, warehouse_id)
);

-- How each sales channel's listed stock derives from the shared pool, and which channels are
-- closed per SKU (their listing pushed as 0) because the pool fell to their threshold.
CREATE TABLE channel_policies (
    tenant_id     text NOT NULL,
    channel       text NOT NULL,
    policy        text NOT NULL,
    amount        bigint NOT NULL,
    safety_stock  bigint NOT NULL,
    close_below   bigint NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

CREATE TABLE channel_listings (
    tenant_id  text NOT NULL,
    sku        text NOT NULL,
    channel    text NOT NULL,
    closed     boolean NOT NULL,
    PRIMARY KEY (tenant_id, sku, channel)
);
