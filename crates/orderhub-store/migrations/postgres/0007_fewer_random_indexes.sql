-- Fewer indexes with random keys on the hot tables (see the SQLite migration of the same number):
-- 1. orders: one unique index over (tenant, channel order id, shop) serves both the uniqueness of
--    a channel order per shop and the search by channel order id in any shop.
ALTER TABLE orders DROP CONSTRAINT orders_tenant_id_shop_id_external_order_id_key;
ALTER TABLE orders ADD CONSTRAINT orders_external_key UNIQUE (tenant_id, external_order_id, shop_id);
DROP INDEX orders_by_external;

-- 2. channel_messages: indexes over the open messages only (pending, rejected, failed).
DROP INDEX channel_messages_state;
CREATE INDEX channel_messages_pending ON channel_messages (message_id) WHERE state = 'pending';
CREATE INDEX channel_messages_open ON channel_messages (tenant_id, state, message_id)
    WHERE state <> 'processed';
