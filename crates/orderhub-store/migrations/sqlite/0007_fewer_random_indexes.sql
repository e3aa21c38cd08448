-- Fewer indexes with random keys on the hot tables. Every index whose key is random (a channel's
-- order id, a buyer) costs a page of the WAL per order at each commit; `bench channels` measured
-- ~38 KB written per channel order, most of it such pages.
--
-- 1. orders: one unique index over (tenant, channel order id, shop) serves both the uniqueness of
--    a channel order per shop and the search by channel order id in any shop, which had an index
--    of its own (orders_by_external). SQLite cannot drop a table's UNIQUE: the table is rebuilt.
CREATE TABLE orders_0007 (
    tenant_id          TEXT NOT NULL,
    order_id           TEXT NOT NULL,
    shop_id            TEXT NOT NULL,
    channel            TEXT NOT NULL,
    external_order_id  TEXT NOT NULL,
    status             TEXT NOT NULL,
    version            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    doc                BLOB NOT NULL,
    buyer_nick         TEXT,
    buyer_id           TEXT,
    exceptions         TEXT NOT NULL DEFAULT '',
    exception_since    INTEGER,
    PRIMARY KEY (tenant_id, order_id),
    UNIQUE (tenant_id, external_order_id, shop_id)
);
INSERT INTO orders_0007 (tenant_id, order_id, shop_id, channel, external_order_id, status, version,
                         created_at, updated_at, doc, buyer_nick, buyer_id, exceptions, exception_since)
SELECT tenant_id, order_id, shop_id, channel, external_order_id, status, version,
       created_at, updated_at, doc, buyer_nick, buyer_id, exceptions, exception_since
FROM orders ORDER BY rowid;
DROP TABLE orders;
ALTER TABLE orders_0007 RENAME TO orders;
CREATE INDEX orders_by_status ON orders (tenant_id, status, order_id);
CREATE INDEX orders_by_updated ON orders (tenant_id, updated_at);
CREATE INDEX orders_by_buyer_nick ON orders (tenant_id, buyer_nick, order_id) WHERE buyer_nick IS NOT NULL;
CREATE INDEX orders_by_buyer_id ON orders (tenant_id, buyer_id, order_id) WHERE buyer_id IS NOT NULL;
CREATE INDEX orders_by_created ON orders (tenant_id, created_at, order_id);
CREATE INDEX orders_with_exceptions ON orders (tenant_id, order_id) WHERE exceptions <> '';
CREATE INDEX orders_with_exceptions_by_age ON orders (tenant_id, exception_since, order_id)
    WHERE exceptions <> '';

-- 2. channel_messages: rebuilt for two reasons.
--    * Its CHECK on state was an `IN` list, which SQLite evaluates by building a temporary index
--      of the list at every INSERT and UPDATE (perf: a temporary b-tree opened, created and
--      filled per message, twice); the same rule as comparisons costs nothing.
--    * Indexes over the open messages only (pending, rejected, failed), which stay few, instead of
--      every message by state. The processor's scan for pending messages has its own (it read
--      the whole table: its query could use no index); listing processed messages walks the
--      primary key.
CREATE TABLE channel_messages_0007 (
    tenant_id     TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    channel       TEXT NOT NULL,
    shop_id       TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    headers       TEXT NOT NULL,
    body          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state = 'pending' OR state = 'processed' OR state = 'rejected'
                                      OR state = 'failed'),
    rule          TEXT,
    field         TEXT,
    reason        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    processed_at  INTEGER,
    PRIMARY KEY (tenant_id, message_id),
    UNIQUE (tenant_id, channel, shop_id, dedup_key)
);
INSERT INTO channel_messages_0007 (tenant_id, message_id, channel, shop_id, dedup_key, received_at,
                                   headers, body, state, rule, field, reason, attempts, processed_at)
SELECT tenant_id, message_id, channel, shop_id, dedup_key, received_at,
       headers, body, state, rule, field, reason, attempts, processed_at
FROM channel_messages ORDER BY rowid;
DROP TABLE channel_messages;
ALTER TABLE channel_messages_0007 RENAME TO channel_messages;
CREATE INDEX channel_messages_pending ON channel_messages (message_id) WHERE state = 'pending';
CREATE INDEX channel_messages_open ON channel_messages (tenant_id, state, message_id)
    WHERE state <> 'processed';
