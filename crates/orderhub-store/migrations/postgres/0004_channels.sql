-- Channel intake: the shops orderhub receives orders for, and every message a channel sent.

-- A shop on a channel, by the channel's own shop id (unique within the channel), and the tenant
-- it belongs to. Secrets and tokens are encrypted by the application.
CREATE TABLE channel_shops (
    channel       text NOT NULL,
    shop_id       text NOT NULL,
    tenant_id     text NOT NULL,
    app_key       text NOT NULL,
    secret        text NOT NULL,
    access_token  text NOT NULL,
    message_key   text NOT NULL,
    api_base_url  text NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (channel, shop_id)
);

-- Raw messages, kept before the channel is answered, so orders can be derived again after a
-- mapping fix. The body is encrypted (it carries buyers' addresses). `dedup_key`: the channel's
-- message id (or a hash of the body), so a message sent twice is stored once.
CREATE TABLE channel_messages (
    tenant_id     text NOT NULL,
    message_id    uuid NOT NULL,
    channel       text NOT NULL,
    shop_id       text NOT NULL,
    dedup_key     text NOT NULL,
    received_at   timestamptz NOT NULL,
    headers       jsonb NOT NULL,
    body          text NOT NULL,
    state         text NOT NULL CHECK (state IN ('pending', 'processed', 'rejected', 'failed')),
    rule          text,
    field         text,
    reason        text,
    attempts      integer NOT NULL DEFAULT 0,
    processed_at  timestamptz,
    PRIMARY KEY (tenant_id, message_id),
    UNIQUE (tenant_id, channel, shop_id, dedup_key)
);
CREATE INDEX channel_messages_state ON channel_messages (state, tenant_id, message_id);
