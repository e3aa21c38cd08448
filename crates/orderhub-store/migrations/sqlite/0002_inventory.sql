-- Inventory: SKU master (with kits), warehouses, stock per (sku, warehouse), the append-only ledger,
-- and reservations. The CHECKs restate the domain's invariants: a bug that slips past the code
-- fails the transaction instead of overselling.
CREATE TABLE skus (
    tenant_id   TEXT NOT NULL,
    sku         TEXT NOT NULL,
    title       TEXT NOT NULL,
    components  TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, sku)
) WITHOUT ROWID;

CREATE TABLE warehouses (
    tenant_id     TEXT NOT NULL,
    warehouse_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    regions       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, warehouse_id)
) WITHOUT ROWID;

CREATE TABLE stock (
    tenant_id     TEXT NOT NULL,
    sku           TEXT NOT NULL,
    warehouse_id  TEXT NOT NULL,
    on_hand       INTEGER NOT NULL CHECK (on_hand >= 0),
    reserved      INTEGER NOT NULL CHECK (reserved >= 0),
    version       INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CHECK (on_hand >= reserved),
    PRIMARY KEY (tenant_id, sku, warehouse_id)
) WITHOUT ROWID;

CREATE TABLE ledger (
    entry_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    sku             TEXT NOT NULL,
    warehouse_id    TEXT NOT NULL,
    movement        TEXT NOT NULL,
    quantity        INTEGER NOT NULL,
    reason          TEXT,
    reference       TEXT,
    on_hand_after   INTEGER NOT NULL,
    reserved_after  INTEGER NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX ledger_by_position ON ledger (tenant_id, sku, warehouse_id, entry_id);

CREATE TABLE reservations (
    tenant_id       TEXT NOT NULL,
    reservation_id  TEXT NOT NULL,
    reference       TEXT NOT NULL,
    state           TEXT NOT NULL,
    mode            TEXT NOT NULL,
    expires_at      INTEGER,
    lines           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, reservation_id)
) WITHOUT ROWID;
CREATE INDEX reservations_held_by_expiry ON reservations (expires_at) WHERE state = 'held';
CREATE INDEX reservations_by_reference ON reservations (tenant_id, reference);

-- Paid orders waiting for stock: one row per (order, SKU short), served in payment order when
-- stock of that SKU arrives.
CREATE TABLE backorder_lines (
    tenant_id  TEXT NOT NULL,
    sku        TEXT NOT NULL,
    paid_at    INTEGER NOT NULL,
    order_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, sku, paid_at, order_id)
) WITHOUT ROWID;
CREATE INDEX backorder_lines_by_order ON backorder_lines (tenant_id, order_id);

-- The as-of time of the last stock snapshot applied per warehouse: an older one is refused.
CREATE TABLE snapshot_watermarks (
    tenant_id     TEXT NOT NULL,
    warehouse_id  TEXT NOT NULL,
    as_of         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, warehouse_id)
) WITHOUT ROWID;

-- How each sales channel's listed stock derives from the shared pool, and which channels are
-- closed per SKU (their listing pushed as 0) because the pool fell to their threshold.
CREATE TABLE channel_policies (
    tenant_id     TEXT NOT NULL,
    channel       TEXT NOT NULL,
    policy        TEXT NOT NULL,
    amount        INTEGER NOT NULL,
    safety_stock  INTEGER NOT NULL,
    close_below   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel)
) WITHOUT ROWID;

CREATE TABLE channel_listings (
    tenant_id  TEXT NOT NULL,
    sku        TEXT NOT NULL,
    channel    TEXT NOT NULL,
    closed     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, sku, channel)
) WITHOUT ROWID;
