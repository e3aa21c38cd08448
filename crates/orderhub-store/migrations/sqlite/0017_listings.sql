-- Listings (issue 20): which channel item (and SKU of it) in which shop sells our SKU or kit, and
-- what its shelf should show. want_qty/want_version are set in the transaction of every stock
-- movement of the SKU (or of a kit's component); the stock-push worker sends want_qty and, once
-- the channel acknowledged it, stores what it sent as pushed_qty/pushed_version. A listing is due
-- while want_version > pushed_version (and it is not paused) from next_attempt_at on.
CREATE TABLE listings (
    tenant_id        TEXT NOT NULL,
    listing_id       TEXT NOT NULL,
    channel          TEXT NOT NULL,
    shop_id          TEXT NOT NULL,
    sku              TEXT NOT NULL,
    channel_item_id  TEXT NOT NULL,
    channel_sku_id   TEXT NOT NULL,
    paused           INTEGER NOT NULL,
    fixed_quantity   INTEGER CHECK (fixed_quantity >= 0),
    want_qty         INTEGER NOT NULL CHECK (want_qty >= 0),
    want_version     INTEGER NOT NULL,
    pushed_qty       INTEGER,
    pushed_version   INTEGER NOT NULL,
    pushed_at        INTEGER,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, listing_id),
    UNIQUE (tenant_id, channel, shop_id, channel_item_id, channel_sku_id)
) WITHOUT ROWID;
CREATE INDEX listings_by_sku ON listings (tenant_id, sku);
-- Only listings with something to send: the worker's scan reads nothing else.
CREATE INDEX listings_due ON listings (tenant_id, next_attempt_at)
    WHERE want_version > pushed_version AND paused = 0;
-- The stock SKUs whose movements change a listing's quantity: the SKU itself, or each component
-- of a kit. A stock movement finds its listings with one lookup here (none: one index probe).
CREATE TABLE listing_stock (
    tenant_id   TEXT NOT NULL,
    sku         TEXT NOT NULL,
    listing_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, sku, listing_id)
) WITHOUT ROWID;
CREATE INDEX listing_stock_by_listing ON listing_stock (tenant_id, listing_id);
