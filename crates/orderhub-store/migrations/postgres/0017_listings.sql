-- Listings (issue 20): which channel item (and SKU of it) in which shop sells our SKU or kit, and
-- what its shelf should show. want_qty/want_version are set in the transaction of every stock
-- movement of the SKU (or of a kit's component); the stock-push worker sends want_qty and, once
-- the channel acknowledged it, stores what it sent as pushed_qty/pushed_version. A listing is due
-- while want_version > pushed_version (and it is not paused) from next_attempt_at on.
CREATE TABLE listings (
    tenant_id        text NOT NULL,
    listing_id       uuid NOT NULL,
    channel          text NOT NULL,
    shop_id          text NOT NULL,
    sku              text NOT NULL,
    channel_item_id  text NOT NULL,
    channel_sku_id   text NOT NULL,
    paused           boolean NOT NULL,
    fixed_quantity   bigint CHECK (fixed_quantity >= 0),
    want_qty         bigint NOT NULL CHECK (want_qty >= 0),
    want_version     bigint NOT NULL,
    pushed_qty       bigint,
    pushed_version   bigint NOT NULL,
    pushed_at        timestamptz,
    attempts         integer NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    last_error       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, listing_id),
    UNIQUE (tenant_id, channel, shop_id, channel_item_id, channel_sku_id)
);
CREATE INDEX listings_by_sku ON listings (tenant_id, sku);
-- Only listings with something to send: the worker's scan reads nothing else.
CREATE INDEX listings_due ON listings (tenant_id, next_attempt_at)
    WHERE want_version > pushed_version AND NOT paused;
-- The stock SKUs whose movements change a listing's quantity: the SKU itself, or each component
-- of a kit. A stock movement finds its listings with one lookup here (none: one index probe).
CREATE TABLE listing_stock (
    tenant_id   text NOT NULL,
    sku         text NOT NULL,
    listing_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, sku, listing_id)
);
CREATE INDEX listing_stock_by_listing ON listing_stock (tenant_id, listing_id);
