-- Channel intake: the shops orderhub receives orders for, and every message a channel sent.
-- Times are microseconds since the Unix epoch, UTC.

-- A shop on a channel, by the channel's own shop id (unique within the channel), and the tenant
-- it belongs to. Secrets and tokens are encrypted by the application.
CREATE TABLE channel_shops (
    channel       TEXT NOT NULL,
    shop_id       TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    app_key       TEXT NOT NULL,
    secret        TEXT NOT NULL,
    access_token  TEXT NOT NULL,
    message_key   TEXT NOT NULL,
    api_base_url  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (channel, shop_id)
);

-- Raw messages, kept before the channel is answered, so orders can be derived again after a
-- mapping fix. The body is encrypted (it carries buyers' addresses). `dedup_key`: the channel's
-- message id (or a hash of the body), so a message sent twice is stored once.
CREATE TABLE channel_messages (
    tenant_id     TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    channel       TEXT NOT NULL,
    shop_id       TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    headers       TEXT NOT NULL,
    body          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'processed', 'rejected', 'failed')),
    rule          TEXT,
    field         TEXT,
    reason        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    processed_at  INTEGER,
    PRIMARY KEY (tenant_id, message_id),
    UNIQUE (tenant_id, channel, shop_id, dedup_key)
);
CREATE INDEX channel_messages_state ON channel_messages (state, tenant_id, message_id);
