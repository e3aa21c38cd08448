-- Tenants, API keys, orders, audit trail, outbox and idempotency records.
-- Times are microseconds since the Unix epoch, UTC. Order documents are JSON with personal fields
-- encrypted by the application. Tables with large rows (orders, outbox, idempotency) keep a rowid: WITHOUT ROWID
-- tables store whole rows in the key's B-tree, which suits only small rows.
CREATE TABLE tenants (
    tenant_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    key_hash    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    shops       TEXT,
    pii_read    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE orders (
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
    PRIMARY KEY (tenant_id, order_id),
    UNIQUE (tenant_id, shop_id, external_order_id)
);
CREATE INDEX orders_by_status ON orders (tenant_id, status, order_id);
CREATE INDEX orders_by_updated ON orders (tenant_id, updated_at);

CREATE TABLE audit (
    tenant_id     TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    audit_id      TEXT NOT NULL,
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    action        TEXT NOT NULL,
    from_status   TEXT,
    to_status     TEXT NOT NULL,
    from_version  INTEGER NOT NULL,
    to_version    INTEGER NOT NULL,
    detail        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, order_id, audit_id)
) WITHOUT ROWID;

CREATE TABLE outbox_heads (
    tenant_id  TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL
);

CREATE TABLE outbox (
    tenant_id          TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    event_id           TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    aggregate_id       TEXT NOT NULL,
    aggregate_version  INTEGER NOT NULL,
    occurred_at        INTEGER NOT NULL,
    trace_id           TEXT NOT NULL,
    payload            TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE idempotency (
    tenant_id     TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    body          BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key_id, idem_key)
);
